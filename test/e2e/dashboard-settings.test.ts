/**
 * The dashboard's Settings page in a real browser (Debian's chromium through
 * playwright-core) against a real hub and two real children: a strategy changed on
 * the page settles an existing conflict again, on the hub and on a child that gets
 * the policy over sync; a change made with the CLI shows live, without taking the
 * page's unsaved edits; a wrong hub-only pattern saves nothing. Then every page,
 * signed in, is checked for WCAG AA contrast. Screenshots go to
 * tmp/dashboard-screenshots (kept out of git).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { tempDir } from '../helpers.js';
import {
  checkContrast,
  checkFocusOutline,
  haveBrowser,
  launchBrowser,
  SCREENSHOTS,
  until,
  expectInPage,
} from './browser.js';
import { type Agent, freePort, hubArgs, runCli, startAgent, startChildAgent } from './helpers.js';

const dir = tempDir('trosyn-dashboard-settings-e2e-');

interface Desk {
  name: string;
  data: string;
  agent?: Agent;
}

interface Settings {
  requireApproval: boolean;
  policy: {
    version: number;
    collections: Record<string, { conflict?: string; localOnly?: boolean }>;
    hubOnly: string[];
    retention: { maxRevisions?: number; maxAgeDays?: number };
  };
}

function navLink(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true });
}

describe('the Settings page in a browser', { skip: !haveBrowser }, () => {
  let browser: Browser;
  let hub: Agent;
  let syncPort: number;
  let page: Page;
  const hubData = join(dir.path, 'hub');
  const a: Desk = { name: 'desk-a', data: join(dir.path, 'a') };
  const b: Desk = { name: 'desk-b', data: join(dir.path, 'b') };
  const cli = (node: Desk | 'hub', ...args: string[]) =>
    runCli([...args, '--data', node === 'hub' ? hubData : node.data]);
  const settings = async () => (await cli('hub', 'settings')) as unknown as Settings;
  const conflicts = async (node: Desk | 'hub', status: string) =>
    (await cli(node, 'conflicts', '--status', status)) as unknown as { collection: string; id: string }[];
  const hasConflict = async (node: Desk | 'hub', status: string, collection: string, id: string) =>
    (await conflicts(node, status)).some((c) => c.collection === collection && c.id === id);

  async function start(desk: Desk): Promise<void> {
    desk.agent = (await startChildAgent(desk.data, syncPort, desk.name)).agent;
    await desk.agent.waitFor((l) => l.event === 'connected', 20_000, `${desk.name} connects`);
  }

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const d of [hubData, a.data, b.data]) mkdirSync(d, { recursive: true });
    // The policy the hub starts with: tickets wait for a person, everything else lww.
    writeFileSync(
      join(hubData, 'config.json'),
      JSON.stringify({ collections: { tickets: { conflict: 'manual' } } }),
    );
    syncPort = await freePort();
    hub = startAgent([...hubArgs(hubData, syncPort), '--http-port', String(await freePort())]);
    const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    for (const desk of [a, b]) {
      const code = String((await cli('hub', 'pairing-code')).code);
      await runCli([
        'pair',
        code,
        '--hub',
        `127.0.0.1:${syncPort}`,
        '--data',
        desk.data,
        '--name',
        desk.name,
      ]);
      await start(desk);
    }
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await page.goto(String(started.signInUrl));
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    for (const desk of [a, b]) await desk.agent?.kill();
    await hub?.kill();
    dir.remove();
  });

  it('shows the policy; a strategy set on the page settles an existing conflict again, on the hub and on a child', async () => {
    // A conflict on notes (lww) between two children that edited offline: settled at once, nothing open.
    await cli(a, 'put', 'notes', 'n-1', JSON.stringify({ text: 'agenda' }));
    await until(
      async () => (await cli(b, 'get', 'notes', 'n-1').catch(() => undefined)) !== undefined,
      'n-1 reaches desk-b',
    );
    await a.agent?.kill();
    await b.agent?.kill();
    await cli(a, 'put', 'notes', 'n-1', JSON.stringify({ text: 'agenda, by A' }));
    await cli(b, 'put', 'notes', 'n-1', JSON.stringify({ text: 'agenda, by B' }));
    await start(a);
    await start(b);
    await until(() => hasConflict('hub', 'auto', 'notes', 'n-1'), 'the hub settled the conflict by lww');
    await until(() => hasConflict(b, 'auto', 'notes', 'n-1'), 'desk-b settled it by lww too');
    assert.equal(await hasConflict(b, 'open', 'notes', 'n-1'), false, 'nothing open on desk-b yet');

    await navLink(page, 'Settings').click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/settings');
    await page.getByText('These settings reach every child').waitFor();
    await page.getByText(/^Policy version 1\b/).waitFor();
    const table = page.getByRole('table', { name: /Conflict strategy and sync of each collection/ });
    assert.equal(
      await table.getByRole('combobox', { name: 'Conflict strategy of tickets' }).inputValue(),
      'manual',
    );
    assert.equal(await table.getByRole('checkbox', { name: 'tickets is local only' }).isChecked(), false);
    assert.equal(await page.getByRole('checkbox', { name: /New devices wait/ }).isChecked(), false);
    assert.equal(await page.getByLabel('Revisions kept per record').inputValue(), '', 'keep all');
    // The hub's collections are suggested; tickets, in the table already, is not.
    const suggested = await page
      .locator('datalist option')
      .evaluateAll((os) => os.map((o) => o.getAttribute('value')));
    assert.ok(suggested.includes('notes'), `notes is suggested (${suggested.join(', ')})`);
    assert.ok(!suggested.includes('tickets'));

    // Added with the keyboard: Enter in the name field adds the row (not a save) and focuses its strategy.
    await page.getByLabel('Collection name').fill('notes');
    await page.getByLabel('Collection name').press('Enter');
    const notes = table.getByRole('combobox', { name: 'Conflict strategy of notes' });
    await notes.waitFor();
    await expectInPage(
      page,
      'document.activeElement?.getAttribute("aria-label")',
      'Conflict strategy of notes',
    );
    assert.equal((await settings()).policy.version, 1, 'adding a row saves nothing');
    await notes.selectOption('manual');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Saved: policy version 2, 1 conflict settled again.' })
      .waitFor();
    await page.getByText(/^Policy version 2\b/).waitFor();

    const s = await settings();
    assert.equal(s.policy.version, 2);
    assert.deepEqual(s.policy.collections, {
      notes: { conflict: 'manual' },
      tickets: { conflict: 'manual' },
    });
    assert.ok(await hasConflict('hub', 'open', 'notes', 'n-1'), 'open on the hub');
    // The policy reached the children over sync, and each settled its own copy the same way.
    for (const desk of [a, b])
      await until(() => hasConflict(desk, 'open', 'notes', 'n-1'), `the conflict is open on ${desk.name}`);
    await page.screenshot({ path: join(SCREENSHOTS, 'settings.png'), fullPage: true });
  });

  it('shows a change made with the CLI live, and keeps unsaved edits when one arrives, saying so', async () => {
    const approval = page.getByRole('checkbox', { name: /New devices wait/ });
    assert.equal(await approval.isChecked(), false);
    await cli('hub', 'settings', 'set', '--require-approval', 'on');
    await until(() => approval.isChecked(), 'the page shows approval on');

    // An edit in progress, then a change elsewhere: the edit stays, the page says what happened.
    const revisions = page.getByLabel('Revisions kept per record');
    const days = page.getByLabel('Oldest history kept (days)');
    await revisions.fill('20');
    await cli('hub', 'settings', 'set', '--retention-days', '30');
    const changed = page.getByRole('status').filter({ hasText: 'changed elsewhere (now policy version 3)' });
    await changed.waitFor();
    assert.equal(await revisions.inputValue(), '20', 'the unsaved edit is kept');
    assert.equal(await days.inputValue(), '', 'the form still shows what the edit started from');
    await page.getByRole('button', { name: 'Reload settings' }).click();
    assert.equal(await days.inputValue(), '30');
    assert.equal(await revisions.inputValue(), '', 'reloading drops the edit');
    await changed.waitFor({ state: 'detached' });
    await page.getByText(/^Policy version 3\b/).waitFor();
  });

  it('a wrong hub-only pattern shows its error and saves nothing; fixed, it saves with a removed collection', async () => {
    const hubOnly = page.getByLabel(/Kept on the hub/);
    await hubOnly.fill('audit.* -drafts');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('"-drafts" is not a collection name').waitFor();
    assert.equal(await hubOnly.getAttribute('aria-invalid'), 'true');
    await expectInPage(page, 'document.activeElement?.tagName', 'TEXTAREA', 'focus on the field');
    let s = await settings();
    assert.equal(s.policy.version, 3, 'nothing saved');
    assert.deepEqual(s.policy.hubOnly, []);

    await hubOnly.fill('audit.*');
    await page.getByRole('button', { name: 'Remove notes' }).click();
    assert.equal(await page.getByRole('combobox', { name: 'Conflict strategy of notes' }).count(), 0);
    await page.getByRole('button', { name: 'Save settings' }).click();
    // Back to lww, the notes conflict left open earlier is settled again.
    await page
      .getByRole('status')
      .filter({ hasText: 'Saved: policy version 4, 1 conflict settled again.' })
      .waitFor();
    assert.equal(await hubOnly.getAttribute('aria-invalid'), null);
    s = await settings();
    assert.deepEqual(s.policy.hubOnly, ['audit.*']);
    assert.deepEqual(s.policy.collections, { tickets: { conflict: 'manual' } }, 'notes back to lww');
    assert.equal(s.requireApproval, true, 'what the CLI set stays: only the changed parts were sent');
    assert.deepEqual(s.policy.retention, { maxAgeDays: 30 });
    assert.equal(await hasConflict('hub', 'open', 'notes', 'n-1'), false, 'settled by lww again');
  });

  it('every page shows its text, and the keyboard focus, with WCAG AA contrast', async () => {
    // The check itself finds a text too pale to read.
    await page.evaluate(
      `(() => {
        const p = document.createElement('p');
        p.id = 'pale';
        p.textContent = 'too pale';
        p.style.color = '#aaaaaa';
        document.querySelector('main').append(p);
      })()`,
    );
    const pale = await checkContrast(page);
    assert.deepEqual(
      pale.failures.filter((f) => f.text === 'too pale').map((f) => f.ratio),
      [2.32],
    );
    await page.evaluate(`document.getElementById('pale').remove()`);

    const pages = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allTextContents();
    assert.ok(pages.length >= 9, `every page is in the navigation (${pages.join(', ')})`);
    const failures: string[] = [];
    const check = async (where: string, least = 10) => {
      const result = await checkContrast(page);
      assert.ok(result.checked >= least, `${where}: ${result.checked} texts checked`);
      for (const f of result.failures)
        failures.push(
          `${where}: "${f.text}" (${f.element}) ${f.color} on ${f.background}: ${f.ratio} < ${f.required}`,
        );
    };
    for (const name of pages) {
      await navLink(page, name).click();
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await until(async () => (await page.getByText('Loading…').count()) === 0, `${name} has loaded`);
      await check(name);
    }
    // A conflict's page, and a dialog open over a page.
    await navLink(page, 'Conflicts').click();
    await page.getByLabel('Show', { exact: true }).selectOption('all');
    await page.getByRole('button', { name: 'Review notes/n-1' }).click();
    await page.getByRole('heading', { name: 'Conflict on notes/n-1', level: 1 }).waitFor();
    await check('a conflict');
    await navLink(page, 'Groups').click();
    await page.getByRole('button', { name: 'New group' }).click();
    await page.getByRole('dialog', { name: 'New group' }).waitFor();
    await check('the New group dialog');
    await page.keyboard.press('Escape');
    // A pairing code on screen; a collection's records.
    await navLink(page, 'Pairing').click();
    await page.getByRole('button', { name: 'Issue code' }).click();
    await page.getByRole('timer', { name: 'Time left' }).waitFor();
    await check('an issued pairing code');
    await navLink(page, 'Records').click();
    await page.getByLabel('Collection', { exact: true }).selectOption('notes');
    await page.getByRole('link', { name: 'n-1', exact: true }).waitFor();
    await check('the records of notes');

    // The keyboard's focus is seen (3:1) on each control it reaches.
    await navLink(page, 'Settings').click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    let reached = 0;
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const f = await checkFocusOutline(page);
      if (f.element === 'body') continue;
      reached++;
      if (f.ratio < 3)
        failures.push(
          `focus on ${f.element} "${f.text}": outline ${f.color} on ${f.background}: ${f.ratio} < 3`,
        );
    }
    assert.ok(reached >= 20, `${reached} controls reached by Tab`);

    // Signed out: the sign-in form.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    await check('the sign-in form', 3);
    assert.deepEqual(failures, []);
  });
});
