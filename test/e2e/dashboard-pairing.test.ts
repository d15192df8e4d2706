/**
 * The dashboard's Pairing and Groups pages and the Devices page's sync details, in a
 * real browser (Debian's chromium through playwright-core) against a real hub
 * process and real child processes, driven by roles, names and labels. A device is
 * paired with the code the page shows, approved from the page, moved to a group made
 * on the page, and its refused writes explained on screen. Screenshots go to
 * tmp/dashboard-screenshots (kept out of git).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { tempDir } from '../helpers.js';
import { expectInPage, haveBrowser, launchBrowser, SCREENSHOTS, until } from './browser.js';
import { type Agent, freePort, hubArgs, runCli, startAgent, startChildAgent } from './helpers.js';

/** The QR encoder the hub's terminal QR code is drawn with (qrcode-terminal's own), to check the page against. */
const require = createRequire(import.meta.url);
const TerminalQr = require('qrcode-terminal/vendor/QRCode') as new (
  type: number,
  level: number,
) => {
  addData(text: string): void;
  make(): void;
  getModuleCount(): number;
  isDark(r: number, c: number): boolean;
};
const LEVEL_L = (require('qrcode-terminal/vendor/QRCode/QRErrorCorrectLevel') as { L: number }).L;

/** The QR symbol of `text` as rows of 0 and 1, as `trosyn-sync pairing-code` prints it. */
function terminalMatrix(text: string): string[] {
  const qr = new TerminalQr(-1, LEVEL_L);
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  return Array.from({ length: n }, (_, r) =>
    Array.from({ length: n }, (_, c) => (qr.isDark(r, c) ? '1' : '0')).join(''),
  );
}

/** The QR symbol an SVG of the page draws, read back from its squares (4 modules of quiet zone). */
function svgMatrix(viewBox: string, d: string): string[] {
  const side = Number(viewBox.split(' ')[2]);
  const n = side - 8;
  const rows = Array.from({ length: n }, () => Array<string>(n).fill('0'));
  for (const m of d.matchAll(/M(\d+) (\d+)h1v1h-1z/g)) {
    const [x, y] = [Number(m[1]) - 4, Number(m[2]) - 4];
    assert.ok(x >= 0 && y >= 0 && x < n && y < n, `module ${x},${y} inside the symbol`);
    (rows[y] as string[])[x] = '1';
  }
  return rows.map((r) => r.join(''));
}

const dir = tempDir('trosyn-dashboard-pairing-e2e-');

function navLink(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true });
}

/** A table row whose header cell starts with `name`. */
function row(page: Page, name: string) {
  return page
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: new RegExp(`^${name}\\b`) }) });
}

/** Whether the element has the keyboard focus. */
const hasFocus = (l: Locator) =>
  l.evaluate(
    (el) => el === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement,
  );

const text = async (l: { textContent(): Promise<string | null> }) => (await l.textContent()) ?? '';

describe('the dashboard: pairing, groups and sync details, in a browser', { skip: !haveBrowser }, () => {
  let browser: Browser;
  let hub: Agent;
  let child: Agent | undefined;
  let base: string;
  let adminToken: string;
  let hubData: string;
  let syncPort: number;
  let hubId: string;
  let admin: BrowserContext;
  let page: Page;
  const childData = join(dir.path, 'child');
  const bearer = () => ({ authorization: `Bearer ${adminToken}` });

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchBrowser();
    hubData = join(dir.path, 'hub');
    syncPort = await freePort();
    hub = startAgent([
      ...hubArgs(hubData, syncPort),
      '--http-port',
      String(await freePort()),
      '--require-approval',
      // Low enough that a device's writes are held back (each batch counts 20 and more).
      '--write-limit',
      '10',
      '--write-burst',
      '10',
    ]);
    const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    base = String(started.adminUrl);
    adminToken = String(started.adminToken);
    hubId = String(
      ((await (await fetch(`${base}/api/status`, { headers: bearer() })).json()) as { deviceId: string })
        .deviceId,
    );
    admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await admin.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    page = await admin.newPage();
    await page.goto(String(started.signInUrl));
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await child?.kill();
    await hub?.kill();
    dir.remove();
  });

  it('issues a code on the Pairing page: the code, the QR code of its pairing link, a countdown, commands to copy; a child pairs with it and is approved there', async () => {
    await navLink(page, 'Pairing').click();
    await page.getByRole('heading', { name: 'Pairing', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/pairing');
    await page.getByText('Live', { exact: true }).waitFor();
    await page.getByLabel('Group').selectOption('default');
    await page.getByLabel('Valid for (minutes)').fill('5');
    await page.getByRole('button', { name: 'Issue code' }).click();

    const panel = page.getByRole('region', { name: 'Pairing code', exact: true });
    const codeText = panel.getByText(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    await codeText.waitFor();
    const code = await text(codeText);
    assert.match(await text(panel), /for group default/);

    // The QR code is the symbol the hub's terminal prints for this code's pairing link.
    const qr = panel.getByRole('img', { name: `QR code for pairing code ${code}` });
    const viewBox = (await qr.getAttribute('viewBox')) ?? '';
    const d = (await qr.locator('path').getAttribute('d')) ?? '';
    const link = `trosyn-sync://pair?code=${code}&hub=${hubId}&port=${syncPort}`;
    assert.deepEqual(svgMatrix(viewBox, d), terminalMatrix(link), 'the QR code of the pairing link');
    assert.ok((await text(panel)).includes(link), 'its text is shown too');

    // A countdown that runs.
    const timer = panel.getByRole('timer', { name: 'Time left' });
    const first = await text(timer);
    assert.match(first, /^Expires in [0-5] min \d\d s/);
    await until(async () => (await text(timer)) !== first, 'the countdown moves');

    // The commands for the device, copied by their buttons.
    const pairCommand = await text(panel.locator('pre').first());
    const startCommand = await text(panel.locator('pre').nth(1));
    assert.equal(pairCommand, `trosyn-sync pair ${code}`, 'on loopback: no --hub to guess');
    assert.equal(startCommand, 'trosyn-sync child');
    await panel.getByRole('button', { name: 'Copy pair command' }).click();
    await panel.getByText('Copied').waitFor();
    assert.equal(await page.evaluate<string>('navigator.clipboard.readText()'), pairCommand);
    await page.screenshot({ path: join(SCREENSHOTS, 'pairing.png'), fullPage: true });

    // The issued codes list it, by its first group only.
    const codes = page.getByRole('table', { name: /The latest codes/ });
    await until(
      async () => /active/.test(await text(row(page, code.slice(0, 4)))),
      'the code is listed as active',
    );
    assert.ok(!(await text(codes)).includes(code.slice(5)), 'the secret part is never listed');

    // Pair a real child with the command as shown (plus where the child keeps its data and finds the hub).
    const [program, ...args] = pairCommand.split(' ');
    assert.equal(program, 'trosyn-sync');
    await runCli([...args, '--hub', `127.0.0.1:${syncPort}`, '--data', childData, '--name', 'reception']);
    const waiting = page.getByRole('list', { name: 'Devices waiting for approval' });
    await until(async () => /reception/.test(await text(waiting)), 'the paired device waits, live');
    await until(
      async () =>
        /used/.test(await text(row(page, code.slice(0, 4)))) &&
        /reception/.test(await text(row(page, code.slice(0, 4)))),
      'the code shows as used by reception',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'pairing-pending.png'), fullPage: true });
    await page.getByRole('button', { name: 'Approve reception' }).click();
    await page.getByRole('status').filter({ hasText: 'reception approved' }).waitFor();
    await until(
      async () => (await page.getByRole('list', { name: 'Devices waiting for approval' }).count()) === 0,
      'nobody waits any more',
    );
    const [, ...childArgs] = startCommand.split(' ');
    assert.deepEqual(childArgs, ['child']);
    child = (await startChildAgent(childData, syncPort, 'reception')).agent;

    await navLink(page, 'Devices').click();
    await until(
      async () => /online/.test(await text(row(page, 'reception'))),
      'the approved child is online',
    );
  });

  it('a code expires on screen: its QR code goes and a new one is asked for', async () => {
    // Its own browser (the clock is the context's): a fresh sign-in link from the command line.
    const other = await browser.newContext();
    const tab = await other.newPage();
    try {
      await tab.clock.install();
      await tab.goto(String((await runCli(['dashboard-link', '--data', hubData])).url));
      await tab.getByRole('heading', { name: 'Overview' }).waitFor();
      await navLink(tab, 'Pairing').click();
      await tab.getByLabel('Valid for (minutes)').fill('1');
      await tab.getByRole('button', { name: 'Issue code' }).click();
      const panel = tab.getByRole('region', { name: 'Pairing code', exact: true });
      await panel.getByRole('img', { name: /QR code for pairing code/ }).waitFor();
      await tab.clock.fastForward('01:01');
      await panel.getByRole('alert').filter({ hasText: 'This code has expired' }).waitFor();
      assert.equal(await text(panel.getByRole('timer', { name: 'Time left' })), 'Expired.');
      assert.equal(await panel.getByRole('img').count(), 0, 'no QR code of an expired code');
      // The lifetime is checked before anything is sent.
      await tab.getByLabel('Valid for (minutes)').fill('0');
      await tab.getByRole('button', { name: 'Issue code' }).click();
      await tab.getByRole('alert').filter({ hasText: 'from 1 to 1440' }).waitFor();
      await expectInPage(
        tab,
        'document.activeElement?.getAttribute("type")',
        'number',
        'focus on the lifetime field',
      );
    } finally {
      await other.close();
    }
  });

  it('creates, edits and deletes groups (checked in the page, refused by the hub with its code), and moves a device to one', async () => {
    await navLink(page, 'Groups').click();
    await page.getByRole('heading', { name: 'Groups and scopes', level: 1 }).waitFor();
    assert.equal(
      await page.getByRole('button', { name: 'Delete default' }).count(),
      0,
      'no delete for default',
    );

    // A bad pattern is caught in the page: the field says why, has the focus, and nothing is sent.
    const open = page.getByRole('button', { name: 'New group' });
    await open.click();
    const dialog = page.getByRole('dialog', { name: 'New group' });
    await dialog.waitFor();
    await expectInPage(
      page,
      "document.activeElement === document.querySelector('dialog input')",
      true,
      'focus on the name',
    );
    await dialog.getByLabel('Name').fill('front');
    await dialog.getByLabel('Description').fill('Front office');
    await dialog.getByLabel('May read').fill('*');
    await dialog.getByLabel('May write').fill('notes, ../x');
    await dialog.getByRole('button', { name: 'Create group' }).click();
    const write = dialog.getByLabel('May write');
    await until(async () => (await write.getAttribute('aria-invalid')) === 'true', 'the field is marked');
    assert.match(await text(dialog), /"\.\.\/x" is not a collection name/);
    assert.equal(await hasFocus(write), true, 'focus on it');
    const groupsNow = async () =>
      (
        (await (await fetch(`${base}/api/groups`, { headers: bearer() })).json()) as {
          groups: { name: string; description: string; write: string[] }[];
        }
      ).groups;
    assert.ok(!(await groupsNow()).some((g) => g.name === 'front'), 'nothing was sent');

    await write.fill('notes');
    await dialog.getByRole('button', { name: 'Create group' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await hasFocus(open), true, 'focus back on New group');
    await until(async () => /Front office/.test(await text(row(page, 'front'))), 'the new group is listed');
    assert.deepEqual(
      (await groupsNow()).find((g) => g.name === 'front'),
      { name: 'front', description: 'Front office', read: ['*'], write: ['notes'] },
    );

    // Edit.
    await page.getByRole('button', { name: 'Edit front' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit group front' });
    await edit.getByLabel('Description').fill('Reception and front office');
    await edit.getByRole('button', { name: 'Save' }).click();
    await until(
      async () => /Reception and front office/.test(await text(row(page, 'front'))),
      'the edit shows',
    );

    // Move the device into it, from the Devices page.
    await navLink(page, 'Devices').click();
    await page.getByRole('button', { name: 'Move reception to a group' }).click();
    const move = page.getByRole('dialog', { name: 'Move reception to a group' });
    await move.getByLabel('Group').selectOption('front');
    await move.getByRole('button', { name: 'Move' }).click();
    await until(async () => /front/.test(await text(row(page, 'reception'))), 'the device is in front');

    // Deleting a group a device is in: confirmed first, then refused by the hub, whose code shows.
    await navLink(page, 'Groups').click();
    await until(
      async () => /\b1\b/.test(await text(row(page, 'front').getByRole('cell').nth(3))),
      'one device in front',
    );
    await page.getByRole('button', { name: 'Delete front' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete group front?' });
    await confirm.waitFor();
    await expectInPage(
      page,
      'document.activeElement?.textContent',
      'Cancel',
      'the safe choice has the focus',
    );
    await confirm.getByRole('button', { name: 'Delete group' }).click();
    await confirm.getByRole('alert').filter({ hasText: 'GROUP_IN_USE' }).waitFor();
    assert.match(await text(confirm.getByRole('alert')), /1 device\(s\) are in it/);
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-delete-refused.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    assert.ok(
      (await groupsNow()).some((g) => g.name === 'front'),
      'still there',
    );

    // An unused group goes.
    await open.click();
    await dialog.getByLabel('Name').fill('temp');
    await dialog.getByRole('button', { name: 'Create group' }).click();
    await until(async () => (await row(page, 'temp').count()) === 1, 'temp is listed');
    await page.getByRole('button', { name: 'Delete temp' }).click();
    await page
      .getByRole('alertdialog', { name: 'Delete group temp?' })
      .getByRole('button', { name: 'Delete group' })
      .click();
    await until(async () => (await row(page, 'temp').count()) === 0, 'temp is gone');
    assert.ok(!(await groupsNow()).some((g) => g.name === 'temp'));
    await page.getByRole('status').filter({ hasText: 'Group temp deleted' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'groups.png'), fullPage: true });
  });

  it("a device's sync details say why it is not in sync: the writes the hub refused, and why", async () => {
    assert.ok(child, 'the child runs');
    await navLink(page, 'Devices').click();
    await until(
      async () => /online/.test(await text(row(page, 'reception'))),
      'the child is back online in front',
    );
    // Written on the device outside its group's write scope (front may write notes only).
    await runCli(['put', 'hr', 'salary', '{"amount":1}', '--data', childData]);
    await runCli(['put', 'notes', 'n1', '{"text":"hi"}', '--data', childData]);
    await until(async () => {
      const res = await fetch(`${base}/api/records/notes/n1`, { headers: bearer() });
      return res.status === 200;
    }, 'the write in scope reached the hub');

    const details = page.getByRole('button', { name: 'Sync details of reception' });
    await details.click();
    const dialog = page.getByRole('dialog', { name: 'Sync details of reception' });
    await dialog.waitFor();
    const why = dialog.getByRole('list', { name: 'Why it may not be in sync' });
    await until(
      async () => /The hub refused 1 change it wrote \(SCOPE_WRITE_DENIED\)/.test(await text(why)),
      'the refusal is explained',
    );
    const refused = dialog.getByRole('table', { name: /Writes of this device the hub refused/ });
    const salary = row(page, 'salary');
    assert.match(await text(refused), /1 since the hub started/);
    assert.match(await text(salary), /hr/);
    assert.match(await text(salary), /SCOPE_WRITE_DENIED/);
    assert.match(await text(salary), /group front may not write collection hr/);
    // Its own writes come back as positions of the hub's log it acknowledges a moment later.
    await until(
      async () => /Hub to device\s*up to date.*Initial sync\s*done/s.test(await text(dialog)),
      'in step both ways, the initial sync done',
    );
    // Its writes went through the per-device write limit: held back, shown with the figures.
    assert.match(
      await text(dialog),
      /Write limit\s*(held back|holding back its writes now): \d+ changes? in \d+ batch/,
    );
    // Both processes read this machine's clock: measured in step, within half a round trip.
    await until(
      async () => /Clock\s*in step with the hub's \(within ±\d+ ms\), measured/.test(await text(dialog)),
      "the device's clock is shown",
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'device-details.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await hasFocus(details), true, 'focus back on Details');

    // Offline: the details say so, and what the hub still knows.
    await child?.kill();
    child = undefined;
    await until(
      async () => /offline|error/.test(await text(row(page, 'reception'))),
      'the child shows offline',
    );
    await details.click();
    await until(
      async () =>
        /It is not connected/.test(
          await text(dialog.getByRole('list', { name: 'Why it may not be in sync' })),
        ),
      'offline is a reason',
    );
    assert.match(await text(dialog), /Device to hub\s*not known while it is not connected/);
    await dialog.getByRole('button', { name: 'Close' }).click();
  });
});
