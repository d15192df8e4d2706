/**
 * The dashboard in a real browser (Debian's chromium through playwright-core)
 * against a real hub process and a real child process, driven as a person with a
 * screen reader or a keyboard would: by roles, names and labels. Screenshots go to
 * tmp/dashboard-screenshots (kept out of git).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';
import { expectInPage, haveBrowser, launchBrowser, SCREENSHOTS, until } from './browser.js';
import { type Agent, freePort, hubArgs, runCli, startAgent, startChildAgent } from './helpers.js';

const dir = tempDir('trosyn-dashboard-e2e-');

/** The status the page's own origin gets for a request: what the browser can read with its cookie. */
function statusFromPage(page: Page, path: string): Promise<number> {
  return page.evaluate((p) => fetch(p).then((r) => r.status), path);
}

/** The text of the table row whose header cell is the device named `name`. */
function deviceRow(page: Page, name: string) {
  return page
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: new RegExp(`^${name}\\b`) }) });
}

/** The State cell of a device's row: after Group, the second data cell. */
async function stateOf(page: Page, name: string): Promise<string> {
  return ((await deviceRow(page, name).getByRole('cell').nth(1).textContent()) ?? '').trim();
}

/** A link of the page navigation. */
function navLink(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true });
}

async function rowText(page: Page, name: string): Promise<string> {
  return (await deviceRow(page, name).textContent()) ?? '';
}

describe('the dashboard in a browser', { skip: !haveBrowser }, () => {
  let browser: Browser;
  let hub: Agent;
  let child: Agent | undefined;
  let base: string;
  let signInUrl: string;
  let adminToken: string;
  let hubData: string;
  let syncPort: number;
  let admin: BrowserContext;
  let page: Page;

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
      '--backup-dir',
      join(dir.path, 'backups'),
    ]);
    const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    base = String(started.adminUrl);
    signInUrl = String(started.signInUrl);
    adminToken = String(started.adminToken);
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    admin = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    page = await admin.newPage();
  });

  after(async () => {
    await browser?.close();
    await child?.kill();
    await hub?.kill();
    dir.remove();
  });

  it('signed out, shows only the sign-in form, and the API answers 401', async () => {
    await page.goto(`${base}/devices`);
    await page.getByRole('heading', { name: 'Sign in to Trosyn Sync' }).waitFor();
    assert.equal(await page.getByLabel('Admin token').isVisible(), true);
    assert.equal(await page.getByRole('navigation').count(), 0, 'no navigation');
    assert.equal(await page.getByRole('table').count(), 0, 'no device table');
    assert.equal(await page.getByRole('button').count(), 1, 'one button: Sign in');
    for (const path of ['/api/status', '/api/devices', '/api/events', '/api/session'])
      assert.equal(await statusFromPage(page, path), 401, path);
    await page.screenshot({ path: join(SCREENSHOTS, 'sign-in.png') });
  });

  it('the sign-in link signs in once, leaves no secret in the address bar, and signing out locks again', async () => {
    assert.match(signInUrl, new RegExp(`^${base}/#signin=tsl_`));
    await page.goto(signInUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the secret is gone from the address bar');
    assert.equal(await statusFromPage(page, '/api/devices'), 200, 'the cookie opens the API');
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === 'trosyn_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(session.expires > Date.now() / 1000 + 11 * 3600, 'it expires in 12 hours');
    assert.equal(
      await page.evaluate<unknown>('document.cookie'),
      '',
      'page scripts cannot read the session cookie',
    );
    await page.getByRole('heading', { name: 'Hub' }).waitFor();
    await until(
      async () => /Version\s*0\.\d/.test((await page.locator('main').textContent()) ?? ''),
      'the hub status shows',
    );

    // The same link in another browser: used up.
    const other = await browser.newContext();
    try {
      const again = await other.newPage();
      await again.goto(signInUrl);
      const alert = again.getByRole('alert');
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? '', /used already or has expired/);
      assert.equal(await again.getByLabel('Admin token').isVisible(), true, 'the form is offered instead');
      assert.equal(await statusFromPage(again, '/api/devices'), 401);
    } finally {
      await other.close();
    }

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Trosyn Sync' }).waitFor();
    assert.equal(await statusFromPage(page, '/api/devices'), 401, 'signed out: the API is closed again');

    // A fresh link from the command line, as an admin who lost the first one would.
    const fresh = await runCli(['dashboard-link', '--data', hubData]);
    assert.equal(fresh.hubRunning, true);
    await page.goto(String(fresh.url));
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  it('the Overview shows the last backup, and Back up now makes one', async () => {
    const hubCard = page.getByRole('region', { name: 'Hub' });
    const lastBackup = hubCard.locator('dt:text-is("Last backup") + dd');
    await until(
      async () => /none yet|ago|just now/.test((await lastBackup.textContent()) ?? ''),
      'the backup line',
    );
    const before = readdirSync(join(dir.path, 'backups')).filter((n) => n.startsWith('backup-'));
    await hubCard.getByRole('button', { name: 'Back up now' }).click();
    await hubCard
      .getByRole('status')
      .filter({ hasText: /Backed up: \d/ })
      .waitFor();
    await until(
      async () => /just now, \d/.test((await lastBackup.textContent()) ?? ''),
      'the new backup shows',
    );
    const after = readdirSync(join(dir.path, 'backups')).filter((n) => n.startsWith('backup-'));
    const made = after.filter((n) => !before.includes(n));
    assert.equal(made.length, 1, 'one backup more');
    assert.ok(existsSync(join(dir.path, 'backups', made[0] as string, 'manifest.json')), 'complete');
    assert.equal(await hubCard.getByRole('alert').count(), 0);
    // The command line shows it too.
    const status = (await runCli(['status', '--data', hubData])) as {
      backups?: { dir: string; everyHours: number; last: { dir: string } | null };
    };
    assert.equal(status.backups?.dir, join(dir.path, 'backups'));
    assert.equal(status.backups?.everyHours, 24);
    assert.equal(status.backups?.last?.dir, join(dir.path, 'backups', made[0] as string));
  });

  it('shows a child live as it pairs and connects; approve, rename and revoke work from the Devices page', async () => {
    await navLink(page, 'Devices').click();
    await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/devices');
    assert.equal(
      await navLink(page, 'Devices').getAttribute('aria-current'),
      'page',
      'the current page is marked',
    );
    await page.getByText('Live', { exact: true }).waitFor();

    // Pair a device while the page is open: it appears without a reload, waiting for approval.
    const code = String((await runCli(['pairing-code', '--data', hubData])).code);
    const childData = join(dir.path, 'child');
    await runCli([
      'pair',
      code,
      '--hub',
      `127.0.0.1:${syncPort}`,
      '--data',
      childData,
      '--name',
      'reception',
    ]);
    await until(
      async () => (await stateOf(page, 'reception')) === 'pending',
      'the paired device shows as pending',
    );
    const started = await startChildAgent(childData, syncPort, 'reception');
    child = started.agent;

    await page.getByRole('button', { name: 'Approve reception' }).click();
    await until(
      async () => /^(online|syncing)$/.test(await stateOf(page, 'reception')),
      'the approved child connects',
    );
    await until(async () => (await stateOf(page, 'reception')) === 'online', 'the child is in sync');
    assert.match(await rowText(page, 'reception'), /127\.0\.0\.1/, 'its address');
    assert.match(await rowText(page, 'reception'), /now/, 'seen now');
    assert.equal(
      await page.getByRole('button', { name: 'Approve reception' }).count(),
      0,
      'approved: no more approve',
    );

    // A second device that waits for approval, and a record, for the pictures.
    const code2 = String((await runCli(['pairing-code', '--data', hubData])).code);
    await runCli([
      'pair',
      code2,
      '--hub',
      `127.0.0.1:${syncPort}`,
      '--data',
      join(dir.path, 'child2'),
      '--name',
      'finance-laptop',
    ]);
    await runCli(['put', 'notes', 'n1', '{"text":"hello"}', '--data', hubData]);
    await until(async () => (await stateOf(page, 'finance-laptop')) === 'pending', 'the second device shows');
    await page.screenshot({ path: join(SCREENSHOTS, 'devices.png'), fullPage: true });
    await navLink(page, 'Overview').click();
    const byState = page.getByRole('list', { name: 'Devices by state' });
    await until(
      async () => /1\s*online.*1\s*pending/s.test((await byState.textContent()) ?? ''),
      'the overview counts one online and one pending device',
    );
    await until(
      async () => /1 records/.test((await page.locator('main').textContent()) ?? ''),
      'the store counts the record',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
    await navLink(page, 'Devices').click();
    await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();

    // Rename, with the keyboard: Enter opens the dialog, focus goes into it, Escape leaves it.
    const rename = page.getByRole('button', { name: 'Rename reception' });
    await rename.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Rename reception' });
    await dialog.waitFor();
    await expectInPage(
      page,
      'document.activeElement?.id',
      'device-name',
      'focus moved into the dialog, on its field',
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await expectInPage(
      page,
      'document.activeElement?.getAttribute("aria-label")',
      'Rename reception',
      'focus went back to the button that opened it',
    );
    await rename.click();
    await dialog.getByLabel('New name').fill('front-desk');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await until(async () => (await deviceRow(page, 'front-desk').count()) === 1, 'the new name shows');
    const devices = (await runCli(['devices', '--data', hubData])) as unknown as {
      name: string;
      state: string;
    }[];
    assert.deepEqual(
      devices.map((d) => [d.name, d.state]),
      [
        ['front-desk', 'approved'],
        ['finance-laptop', 'pending'],
      ],
      'the registry has the new name',
    );

    // Move to a group made through the API with the bearer token.
    const put = await fetch(`${base}/api/groups/sales`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ read: ['*'], write: ['*'] }),
    });
    assert.equal(put.status, 200);
    await page.getByRole('button', { name: 'Move front-desk to a group' }).click();
    const move = page.getByRole('dialog', { name: 'Move front-desk to a group' });
    await until(
      async () => (await move.getByLabel('Group').locator('option').count()) === 2,
      'the new group is offered',
    );
    await move.getByLabel('Group').selectOption('sales');
    await move.getByRole('button', { name: 'Move' }).click();
    await until(async () => /sales/.test(await rowText(page, 'front-desk')), 'the device is in sales');

    // Revoke asks first; Cancel changes nothing.
    await page.getByRole('button', { name: 'Revoke front-desk' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Revoke front-desk?' });
    await confirm.waitFor();
    await expectInPage(
      page,
      'document.activeElement?.textContent',
      'Cancel',
      'the safe choice has the focus',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'revoke-confirm.png') });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    assert.notEqual(await stateOf(page, 'front-desk'), 'revoked');
    await page.getByRole('button', { name: 'Revoke front-desk' }).click();
    await confirm.getByRole('button', { name: 'Revoke device' }).click();
    await until(async () => (await stateOf(page, 'front-desk')) === 'revoked', 'the device shows as revoked');
    const disconnected = await child.waitFor(
      (l) => l.event === 'disconnected' && l.code === 'DEVICE_REVOKED',
      15_000,
      'the child is told it was revoked',
    );
    assert.equal(disconnected.code, 'DEVICE_REVOKED');
    assert.equal(
      await page.getByRole('button', { name: 'Rename front-desk' }).count(),
      0,
      'a revoked device has no actions',
    );

    await navLink(page, 'Overview').click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    const counts = page.getByRole('list', { name: 'Devices by state' });
    await until(
      async () => /1\s*revoked/.test((await counts.textContent()) ?? ''),
      'the overview counts the revoked device',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'overview-after-revoke.png'), fullPage: true });
  });

  it("another page in the admin's browser cannot act with the admin's session", async () => {
    // Another port of 127.0.0.1 is another origin but the same site: the SameSite=Strict
    // cookie goes along, so the CSRF header and the Origin check are what stop it.
    const evil = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>'),
    );
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const tab = await admin.newPage();
    try {
      await tab.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      const pending = (await runCli(['devices', '--data', hubData, '--state', 'pending'])) as unknown as {
        deviceId: string;
      }[];
      const victim = pending[0]?.deviceId as string;
      assert.ok(victim, 'a pending device to try to approve');
      const outcomes = await tab.evaluate(
        async ({ hubUrl, id }) => {
          const simple = await fetch(`${hubUrl}/api/groups/evil`, {
            method: 'PUT',
            mode: 'no-cors',
            credentials: 'include',
            headers: { 'content-type': 'text/plain' },
            body: '{"read":["*"],"write":["*"]}',
          }).then(
            (r) => r.type,
            (e: Error) => e.name,
          );
          const withHeader = await fetch(`${hubUrl}/api/devices/${id}/approve`, {
            method: 'POST',
            credentials: 'include',
            headers: { 'x-trosyn-csrf': '1' },
          }).then(
            (r) => String(r.status),
            (e: Error) => e.name,
          );
          return { simple, withHeader };
        },
        { hubUrl: base, id: victim },
      );
      assert.equal(
        outcomes.withHeader,
        'TypeError',
        'the custom header needs a preflight the hub never grants',
      );
      // A form posted from that page, the oldest trick.
      await tab.setContent(
        `<form method="post" action="${base}/api/devices/${victim}/approve"><button>go</button></form>`,
      );
      const [answer] = await Promise.all([
        tab.waitForNavigation(),
        tab.getByRole('button', { name: 'go' }).click(),
      ]);
      assert.equal(answer?.status(), 403, 'refused: no CSRF header');
      const after = (await runCli([
        'devices',
        '--data',
        hubData,
        '--state',
        'pending',
      ])) as unknown as unknown[];
      assert.equal(after.length, 1, 'the device still waits for approval');
      const groups = await fetch(`${base}/api/groups`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      const names = ((await groups.json()) as { groups: { name: string }[] }).groups.map((g) => g.name);
      assert.ok(
        !names.includes('evil'),
        `no group was made by the other page (${names.join(', ')}; ${outcomes.simple})`,
      );
    } finally {
      await tab.close();
      evil.close();
    }
  });

  it('over HTTPS (a certificate of the admin): signs in with a Secure cookie and follows events', async () => {
    const cert = await createIdentity('hub.office.lan');
    writeFileSync(join(dir.path, 'cert.pem'), cert.certPem);
    writeFileSync(join(dir.path, 'key.pem'), cert.keyPem, { mode: 0o600 });
    const tlsHub = startAgent([
      ...hubArgs(join(dir.path, 'tls-hub'), await freePort()),
      '--http-port',
      String(await freePort()),
      '--http-cert',
      join(dir.path, 'cert.pem'),
      '--http-key',
      join(dir.path, 'key.pem'),
    ]);
    // The browser is told to accept the self-signed certificate, as the admin would after checking its fingerprint.
    const secure = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const started = await tlsHub.waitFor((l) => l.event === 'started', 20_000, 'the HTTPS hub starts');
      assert.match(String(started.adminUrl), /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.match(String(started.signInUrl), /^https:\/\//);
      const tab = await secure.newPage();
      await tab.goto(String(started.signInUrl));
      await tab.getByRole('heading', { name: 'Overview' }).waitFor();
      await tab.getByText('Live', { exact: true }).waitFor();
      const cookie = (await secure.cookies()).find((c) => c.name === 'trosyn_session');
      assert.equal(cookie?.secure, true, 'the session cookie is Secure over HTTPS');
      assert.equal(await statusFromPage(tab, '/api/devices'), 200);
    } finally {
      await secure.close();
      await tlsHub.kill();
    }
  });

  // Last: it locks this address out for a minute, the admin's browser included.
  it('wrong tokens at the form are refused, then rate-limited', async () => {
    const guesser = await browser.newContext();
    try {
      const form = await guesser.newPage();
      await form.goto(base);
      const token = form.getByLabel('Admin token');
      await token.waitFor();
      const attempt = async (guess: string) => {
        await token.fill(guess);
        await form.getByRole('button', { name: 'Sign in' }).click();
        const alert = form.getByRole('alert');
        await alert.waitFor();
        await until(
          async () => await form.getByRole('button', { name: 'Sign in' }).isEnabled(),
          'the form is back',
        );
        return (await alert.textContent()) ?? '';
      };
      // The admin's session used a link; the address has 10 wrong tokens before the lockout.
      for (let i = 0; i < 10; i++)
        assert.match(await attempt(`tsa_wrong${i}`), /wrong admin token/, `guess ${i + 1}`);
      assert.match(await attempt('tsa_wrong-again'), /Too many wrong attempts/);
      assert.match(
        await attempt(adminToken),
        /Too many wrong attempts/,
        'locked out: the right token waits too',
      );
      assert.equal(await form.getByRole('heading', { name: 'Overview' }).count(), 0);
    } finally {
      await guesser.close();
    }
  });
});
