/**
 * The dashboard's Conflicts, Records and Files pages in a real browser (Debian's
 * chromium through playwright-core) against a real hub and two real children: a
 * conflict made by two children editing offline is compared and settled from the
 * page, a revert made from a record's history, files written on a child listed and
 * downloaded; each result is checked where it must arrive, on a child. Screenshots
 * go to tmp/dashboard-screenshots (kept out of git).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { tempDir } from '../helpers.js';
import { expectInPage, haveBrowser, launchBrowser, SCREENSHOTS, until } from './browser.js';
import { type Agent, freePort, hubArgs, runCli, startAgent, startChildAgent } from './helpers.js';

const dir = tempDir('trosyn-dashboard-records-e2e-');

interface Desk {
  name: string;
  data: string;
  agent?: Agent;
}

interface Got {
  rev: string;
  body: Record<string, unknown> | null;
}

function navLink(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true });
}

describe('the Conflicts, Records and Files pages in a browser', { skip: !haveBrowser }, () => {
  let browser: Browser;
  let hub: Agent;
  let hubId: string;
  let syncPort: number;
  let page: Page;
  const hubData = join(dir.path, 'hub');
  const a: Desk = { name: 'desk-a', data: join(dir.path, 'a') };
  const b: Desk = { name: 'desk-b', data: join(dir.path, 'b') };
  const cli = (node: Desk | 'hub', ...args: string[]) =>
    runCli([...args, '--data', node === 'hub' ? hubData : node.data]);
  const get = (node: Desk | 'hub', collection: string, id: string): Promise<Got | undefined> =>
    cli(node, 'get', collection, id).then(
      (r) => r as unknown as Got,
      () => undefined,
    );

  async function start(desk: Desk): Promise<void> {
    desk.agent = (await startChildAgent(desk.data, syncPort, desk.name)).agent;
    await desk.agent.waitFor((l) => l.event === 'connected', 20_000, `${desk.name} connects`);
  }

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const d of [hubData, a.data, b.data]) mkdirSync(d, { recursive: true });
    // The hub's policy, which both desks receive: tickets wait for a person.
    writeFileSync(
      join(hubData, 'config.json'),
      JSON.stringify({ collections: { tickets: { conflict: 'manual' } } }),
    );
    syncPort = await freePort();
    hub = startAgent([...hubArgs(hubData, syncPort), '--http-port', String(await freePort())]);
    const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    hubId = String(started.deviceId);
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
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
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

  it('a conflict from two offline children: its sides against their ancestor, field by field; resolved from the page, the result reaches the children', async () => {
    const base = { title: 'New laptop', status: 'new', owner: 'ana' };
    await cli(a, 'put', 'tickets', 't-7', JSON.stringify(base));
    await cli(a, 'put', 'tickets', 't-8', JSON.stringify({ title: 'Printer toner', status: 'new' }));
    await cli(a, 'put', 'tickets', 't-9', JSON.stringify({ title: 'Desk lamp', status: 'new' }));
    await until(async () => (await get(b, 'tickets', 't-9')) !== undefined, 'the base reaches desk-b');
    await a.agent?.kill();
    await b.agent?.kill();
    // Offline, both edit both tickets: status on both sides, the title on desk-b only.
    await cli(a, 'put', 'tickets', 't-7', JSON.stringify({ ...base, status: 'approved' }));
    await cli(
      b,
      'put',
      'tickets',
      't-7',
      JSON.stringify({ ...base, title: 'New laptop 14"', status: 'rejected' }),
    );
    const keepA = { title: 'Printer toner', status: 'ordered by A' };
    await cli(a, 'put', 'tickets', 't-8', JSON.stringify(keepA));
    await cli(b, 'put', 'tickets', 't-8', JSON.stringify({ title: 'Printer toner', status: 'ordered by B' }));
    await cli(a, 'put', 'tickets', 't-9', JSON.stringify({ title: 'Desk lamp', status: 'duplicate' }));
    await cli(b, 'put', 'tickets', 't-9', JSON.stringify({ title: 'Desk lamp', status: 'cancelled' }));
    await start(a);
    await start(b);
    await until(async () => {
      const open = (await cli('hub', 'conflicts', '--status', 'open')) as unknown as { id: string }[];
      return open.filter((c) => ['t-7', 't-8', 't-9'].includes(c.id)).length === 3;
    }, 'the three conflicts are open on the hub');

    await navLink(page, 'Conflicts').click();
    await page.getByRole('heading', { name: 'Conflicts', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/conflicts');
    const list = page.getByRole('table', { name: /Conflicts on the hub/ });
    await until(
      async () => (await list.getByRole('row').count()) === 4,
      'the three open conflicts are listed',
    );

    // Open one with the keyboard: focus lands on the page's heading.
    await page.getByRole('button', { name: 'Review tickets/t-7' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Conflict on tickets/t-7', level: 1 }).waitFor();
    await expectInPage(page, 'document.activeElement?.tagName', 'H1', 'focus on the heading');
    assert.match(new URL(page.url()).search, /^\?conflict=\d+$/, 'the address names the conflict');

    const diff = page.getByRole('table', { name: /The versions of tickets\/t-7, field by field/ });
    await diff.waitFor();
    const header = (await diff.getByRole('row').first().textContent()) ?? '';
    assert.match(header, /Common ancestor/);
    assert.match(header, /desk-a/);
    assert.match(header, /desk-b/);
    const row = (field: string) =>
      diff.getByRole('row').filter({ has: page.getByRole('rowheader', { name: new RegExp(`^${field}`) }) });
    const status = (await row('status').textContent()) ?? '';
    assert.match(status, /changed on both sides/, 'status: changed on both sides');
    assert.match(
      status,
      /"new".*"approved".*"rejected"|"new".*"rejected".*"approved"/,
      'ancestor, then each side',
    );
    const title = (await row('title').textContent()) ?? '';
    assert.doesNotMatch(title, /both sides/);
    assert.equal((title.match(/changed/g) ?? []).length, 1, 'title: changed on one side only');
    assert.doesNotMatch((await row('owner').textContent()) ?? '', /changed/, 'owner: unchanged');
    assert.match((await diff.locator('caption').textContent()) ?? '', /2 of 3 fields differ/);
    await page.screenshot({ path: join(SCREENSHOTS, 'conflicts.png'), fullPage: true });

    // The merged body starts from both sides' changes: desk-b's title is in it.
    const editor = page.getByLabel('Merged body (JSON)');
    const suggested = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    assert.equal(suggested['title'], 'New laptop 14"', "the one side's change to the title is kept");
    assert.equal(suggested['owner'], 'ana');

    // Not JSON: said at once, and nothing is written.
    await editor.fill('{"status": ');
    const invalid = page.getByRole('alert').filter({ hasText: 'Not valid JSON' });
    await invalid.waitFor();
    assert.equal(await editor.getAttribute('aria-invalid'), 'true');
    await page.getByRole('button', { name: 'Resolve with this body' }).click();
    await editor.fill('["a list"]');
    await page.getByRole('alert').filter({ hasText: 'must be a JSON object' }).waitFor();
    await page.getByRole('button', { name: 'Resolve with this body' }).click();
    const stillOpen = (await cli('hub', 'conflicts', '--status', 'open')) as unknown as { id: string }[];
    assert.ok(
      stillOpen.some((c) => c.id === 't-7'),
      'an invalid body resolves nothing',
    );

    const merged = { title: 'New laptop 14"', status: 'approved', owner: 'ana', note: 'agreed on the phone' };
    await editor.fill(JSON.stringify(merged, null, 2));
    assert.equal(await editor.getAttribute('aria-invalid'), 'false');
    await page.getByRole('button', { name: 'Resolve with this body' }).click();
    await page.getByRole('status').filter({ hasText: 'tickets/t-7 resolved' }).waitFor();
    await until(
      async () => /Resolution/.test((await diff.getByRole('row').first().textContent()) ?? ''),
      'the page shows the resolution beside the sides',
    );
    for (const desk of [a, b])
      await until(
        async () => isDeepStrictEqual((await get(desk, 'tickets', 't-7'))?.body, merged),
        `the merged body reaches ${desk.name}`,
      );

    // The other one: keep desk-a's side as it is.
    await page.getByRole('link', { name: 'All conflicts' }).click();
    await page.getByRole('button', { name: 'Review tickets/t-8' }).click();
    await page.getByRole('heading', { name: 'Conflict on tickets/t-8', level: 1 }).waitFor();
    await page.getByRole('button', { name: /^Keep side \d \(desk-a\)$/ }).click();
    await page.getByRole('status').filter({ hasText: 'tickets/t-8 resolved' }).waitFor();
    await until(
      async () => isDeepStrictEqual((await get(b, 'tickets', 't-8'))?.body, keepA),
      "desk-a's side reaches desk-b",
    );

    // The last: delete the record, after a confirmation whose safe choice has the focus.
    await page.getByRole('link', { name: 'All conflicts' }).click();
    await page.getByRole('button', { name: 'Review tickets/t-9' }).click();
    await page.getByRole('heading', { name: 'Conflict on tickets/t-9', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Delete the record' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete tickets/t-9?' });
    await confirm.waitFor();
    await expectInPage(page, 'document.activeElement?.textContent', 'Cancel');
    await confirm.getByRole('button', { name: 'Delete record' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'tickets/t-9 resolved (deleted)' }).waitFor();
    await until(async () => (await get(a, 'tickets', 't-9')) === undefined, 'the deletion reaches desk-a');
    const t9 = (await cli(a, 'history', 'tickets', 't-9')) as unknown as {
      deleted: boolean;
      head: boolean;
    }[];
    assert.deepEqual(
      t9.filter((e) => e.head).map((e) => e.deleted),
      [true],
      'one head on desk-a: the deletion',
    );
    await page.getByRole('link', { name: 'All conflicts' }).click();
    await page.getByText('No conflicts here: nothing waits for a person.').waitFor();
  });

  it("a record's history: find it by id, compare two revisions, revert (confirmed); the revert reaches a child as the hub's write", async () => {
    for (const text of ['first draft', 'second draft', 'final']) {
      await cli(a, 'put', 'notes', 'n-1', JSON.stringify({ text, pages: text === 'final' ? 3 : 1 }));
    }
    await until(
      async () => (await get('hub', 'notes', 'n-1'))?.body?.['text'] === 'final',
      'the hub has all three',
    );

    await navLink(page, 'Records').click();
    await page.getByRole('heading', { name: 'Records', level: 1 }).waitFor();
    const collection = page.getByLabel('Collection');
    await until(
      async () => (await collection.locator('option', { hasText: 'notes' }).count()) === 1,
      'notes is offered',
    );
    await collection.selectOption('notes');
    await page.getByRole('table', { name: /Records of notes/ }).waitFor();
    await page.getByRole('link', { name: 'n-1', exact: true }).waitFor();
    const search = page.getByRole('search', { name: 'Find a record by id' });
    await search.getByLabel('Record id').fill('n-1');
    await search.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('heading', { name: 'notes/n-1', level: 1 }).waitFor();

    const timeline = page.getByRole('list', { name: 'Revisions of notes/n-1, oldest first' });
    await until(async () => (await timeline.getByRole('listitem').count()) === 3, 'three revisions');
    const items = await timeline.getByRole('listitem').allTextContents();
    assert.match(items[2] ?? '', /current/);
    assert.match(items[0] ?? '', /desk-a/, 'by its author');

    // By default the last change: text and pages changed, between the second and the last revision.
    const diff = page.getByRole('table', { name: /against/ });
    assert.match((await diff.locator('caption').textContent()) ?? '', /2 of 2 fields differ/);
    const history = (await cli('hub', 'history', 'notes', 'n-1')) as unknown as { rev: string }[];
    const first = history[0]?.rev as string;
    await page.getByLabel('From', { exact: true }).selectOption(first);
    await page.getByLabel('To', { exact: true }).selectOption(history[1]?.rev as string);
    await until(
      async () => /1 of 2 fields differ/.test((await diff.locator('caption').textContent()) ?? ''),
      'the first two differ in the text only',
    );

    await page.getByRole('button', { name: `Revert to ${first.slice(0, 8)}` }).click();
    const confirm = page.getByRole('alertdialog', { name: `Revert notes/n-1 to ${first.slice(0, 8)}?` });
    await confirm.waitFor();
    await expectInPage(
      page,
      'document.activeElement?.textContent',
      'Cancel',
      'the safe choice has the focus',
    );
    await confirm.getByRole('button', { name: 'Revert' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page
      .getByRole('status')
      .filter({ hasText: `notes/n-1 reverted to ${first.slice(0, 8)}` })
      .waitFor();
    await until(
      async () => (await timeline.getByRole('listitem').count()) === 4,
      'the revert is a fourth revision',
    );

    await until(
      async () => (await get(b, 'notes', 'n-1'))?.body?.['text'] === 'first draft',
      'the reverted content reaches desk-b',
    );
    const onB = (await cli(b, 'history', 'notes', 'n-1')) as unknown as { rev: string; author: string }[];
    assert.equal(onB.length, 4);
    assert.equal(onB[3]?.author, hubId, 'written by the hub');
    assert.notEqual(onB[3]?.rev, first, 'a new revision with the old content');
  });

  it('files put on a child are listed with their versions and transfers, and download byte for byte', async () => {
    const v1 = randomBytes(300_000);
    const v2 = Buffer.concat([v1.subarray(0, 150_000), randomBytes(200_000)]);
    const path = join(dir.path, 'q3.bin');
    writeFileSync(path, v1);
    await cli(a, 'files', 'put', path, '--name', 'reports/q3.bin');
    writeFileSync(path, v2);
    const second = await cli(a, 'files', 'put', path, '--name', 'reports/q3.bin');

    await navLink(page, 'Files').click();
    await page.getByRole('heading', { name: 'Files', level: 1 }).waitFor();
    const files = page.getByRole('table', { name: 'Files of files, current versions' });
    const row = files
      .getByRole('row')
      .filter({ has: page.getByRole('rowheader', { name: 'reports/q3.bin' }) });
    await until(
      async () => /341\.8 KiB.*yes/.test((await row.textContent()) ?? ''),
      'the second version is listed, its size, with its content on the hub',
      30_000,
    );
    const devices = page.getByRole('table', { name: /File content exchanged with each connected device/ });
    await until(
      async () => (await devices.getByRole('row').count()) === 3,
      'both connected devices, each a row',
    );
    assert.match((await devices.textContent()) ?? '', /desk-a.*desk-b|desk-b.*desk-a/s);

    const [current] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download reports/q3.bin' }).click(),
    ]);
    assert.equal(current.suggestedFilename(), 'q3.bin');
    assert.ok(readFileSync(await current.path()).equals(v2), 'the current version, byte for byte');

    await page.getByRole('link', { name: 'reports/q3.bin', exact: true }).click();
    await page.getByRole('heading', { name: 'reports/q3.bin', level: 1 }).waitFor();
    const versions = page.getByRole('table', { name: 'Versions of reports/q3.bin, newest first' });
    await until(async () => (await versions.getByRole('row').count()) === 3, 'two versions');
    const history = (await cli('hub', 'files', 'history', 'reports/q3.bin')) as unknown as { rev: string }[];
    const older = history[0]?.rev as string;
    assert.notEqual(older, second.rev);
    await page.screenshot({ path: join(SCREENSHOTS, 'files.png'), fullPage: true });
    const [old] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: `Download version ${older.slice(0, 8)}` }).click(),
    ]);
    assert.ok(readFileSync(await old.path()).equals(v1), 'the older version, byte for byte');
  });
});
