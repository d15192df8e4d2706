/**
 * The dashboard's Events page and Overview charts in a real browser (Debian's
 * chromium through playwright-core) against real hub and child processes: events
 * appear live and filter, exports download the rows the filter matches, and the
 * event stream resumes after the hub restarts without losing what happened while
 * it was down. Screenshots go to tmp/dashboard-screenshots (kept out of git).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { tempDir } from '../helpers.js';
import { haveBrowser, launchBrowser, SCREENSHOTS, until } from './browser.js';
import { type Agent, freePort, hubArgs, runCli, startAgent, startChildAgent } from './helpers.js';

const dir = tempDir('trosyn-dashboard-events-e2e-');

interface Logged {
  id: number;
  event: { type: string; at: number; deviceId?: string; group?: string; code?: string };
}

describe('the Events page and the Overview charts in a browser', { skip: !haveBrowser }, () => {
  let browser: Browser;
  let hub: Agent;
  let child: Agent | undefined;
  let hubData: string;
  let syncPort: number;
  let httpPort: number;
  let base: string;
  let adminToken: string;
  let page: Page;

  const startHub = async () => {
    hub = startAgent([...hubArgs(hubData, syncPort), '--http-port', String(httpPort)]);
    return hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
  };
  const bearer = () => ({ authorization: `Bearer ${adminToken}` });
  /** The hub's event log as a script reads it, with the admin token. */
  const log = async (query = ''): Promise<Logged[]> => {
    const res = await fetch(`${base}/api/events/log?limit=1000${query}`, { headers: bearer() });
    assert.equal(res.status, 200);
    return ((await res.json()) as { events: Logged[] }).events;
  };
  const putGroup = async (name: string, write: string[] = ['*']) => {
    const res = await fetch(`${base}/api/groups/${name}`, {
      method: 'PUT',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify({ read: ['*'], write }),
    });
    assert.equal(res.status, 200);
  };
  const table = () => page.getByRole('table', { name: 'Hub events' });
  /** The ids of the rows the page shows, top to bottom. */
  const shownIds = async () =>
    (
      await table()
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event-id')))
    ).map(Number);
  const rowsOfKind = (kind: string) =>
    table()
      .getByRole('row')
      .filter({ has: page.getByRole('cell', { name: kind, exact: true }) });

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchBrowser();
    hubData = join(dir.path, 'hub');
    syncPort = await freePort();
    httpPort = await freePort();
    const started = await startHub();
    base = String(started.adminUrl);
    adminToken = String(started.adminToken);
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    page = await context.newPage();
    await page.goto(String(started.signInUrl));
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await child?.kill();
    await hub?.kill();
    dir.remove();
  });

  it('shows events live as they happen, and filters them by kind, device and time', async () => {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Events' }).click();
    await page.getByRole('heading', { name: 'Events', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/events');
    await page.getByText('Live', { exact: true }).waitFor();

    // Events caused from outside the page appear in it without a reload.
    await putGroup('sales');
    await until(
      async () => (await rowsOfKind('scopes-changed').count()) === 1,
      'the group change shows live',
    );
    assert.match((await rowsOfKind('scopes-changed').textContent()) ?? '', /group sales/);

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
    child = (await startChildAgent(childData, syncPort, 'reception')).agent;
    await until(async () => (await rowsOfKind('device-connected').count()) === 1, 'the child connects, live');
    await until(async () => (await rowsOfKind('device-paired').count()) === 1, 'its pairing shows');
    assert.match((await rowsOfKind('device-connected').textContent()) ?? '', /reception/, 'by its name');
    await page.screenshot({ path: join(SCREENSHOTS, 'events.png'), fullPage: true });

    // By kind: only those rows, and a new one of that kind still arrives live; others do not.
    await page.getByLabel('Kind').selectOption('scopes-changed');
    await until(async () => (await table().locator('tbody tr').count()) === 1, 'one scopes-changed row');
    await putGroup('hr');
    await until(
      async () => (await rowsOfKind('scopes-changed').count()) === 2,
      'the new one of that kind, live',
    );
    await runCli(['put', 'notes', 'n1', '{"text":"hi"}', '--data', childData]);
    const kinds = await table()
      .locator('tbody tr td:nth-child(2)')
      .evaluateAll((cells) => cells.map((c) => c.textContent));
    assert.deepEqual(kinds, ['scopes-changed', 'scopes-changed']);

    // By device: the child's events only, every one of them the log has.
    await page.getByLabel('Kind').selectOption('');
    await page.getByLabel('Device').selectOption({ label: 'reception' });
    const deviceId = (
      (await runCli(['devices', '--data', hubData])) as unknown as { deviceId: string; name: string }[]
    ).find((d) => d.name === 'reception')?.deviceId as string;
    assert.ok((await log(`&device=${deviceId}`)).length >= 3, 'paired, connected, sync started at least');
    await until(
      async () =>
        JSON.stringify(await shownIds()) ===
        JSON.stringify((await log(`&device=${deviceId}`)).map((e) => e.id)),
      "exactly the device's events",
    );
    assert.ok(
      (await table().locator('tbody tr td:nth-child(3)').allTextContents()).every((t) => t === 'reception'),
      'each row names the device',
    );

    // By time: a range in the future matches nothing; clearing shows everything again.
    await page.getByLabel('Device').selectOption('');
    await page.getByLabel('From').fill('2099-01-01T00:00');
    await page.getByText('No events match.').waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();
    const everything = await log();
    await until(async () => (await shownIds()).length >= everything.length, 'every event again');
  });

  it('exports the filtered events as JSON and CSV files with the right rows', async () => {
    await page.getByLabel('Kind').selectOption('scopes-changed');
    await until(async () => (await table().locator('tbody tr').count()) === 2, 'two rows');
    const expected = await log('&type=scopes-changed');

    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export JSON' }).click(),
    ]);
    assert.match(json.suggestedFilename(), /^trosyn-events-.*\.json$/);
    const exported = JSON.parse(readFileSync(await json.path(), 'utf8')) as Logged[];
    assert.deepEqual(exported, expected, 'the JSON file holds the filtered events, newest first');

    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export CSV' }).click(),
    ]);
    assert.match(csv.suggestedFilename(), /^trosyn-events-.*\.csv$/);
    const lines = readFileSync(await csv.path(), 'utf8')
      .trim()
      .split('\r\n');
    assert.equal(lines[0], 'id,time,type,device_id,device_name,code,message,details');
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(',').slice(0, 3)),
      expected.map((e) => [String(e.id), new Date(e.event.at).toISOString(), 'scopes-changed']),
      'one CSV line per event, in the same order',
    );
    await page.getByRole('button', { name: 'Clear filters' }).click();
  });

  it('resumes the event stream after the hub restarts: what happened while it was down is not lost', async () => {
    const before = await log();
    const lastId = before[0]?.id as number;
    await until(async () => (await shownIds())[0] === lastId, 'the page is up to date');

    await hub.kill();
    await page.getByText('Reconnecting…', { exact: true }).waitFor();
    await startHub();
    // Right after the restart, before the page has reconnected: events it must still get.
    await putGroup('after-restart-1');
    await putGroup('after-restart-2');
    await page.getByText('Live', { exact: true }).waitFor({ timeout: 20_000 });
    await putGroup('after-reconnect');
    await until(async () => (await log()).some((e) => e.event.group === 'after-reconnect'), 'logged');

    const missed = (await log()).filter((e) => e.id > lastId);
    // The hub recorded the child's disconnection as it stopped, after the page's stream had closed.
    assert.ok(
      missed.some((e) => e.event.type === 'device-disconnected'),
      `an event from while the page was cut off: ${missed.map((e) => e.event.type).join(', ')}`,
    );
    let expected: number[] = [];
    await until(
      async () => {
        expected = (await log()).filter((e) => e.id > lastId).map((e) => e.id);
        return JSON.stringify((await shownIds()).filter((id) => id > lastId)) === JSON.stringify(expected);
      },
      `the page shows every event after ${lastId}`,
      20_000,
    );
    assert.ok(expected.length >= missed.length);
    const shown = await shownIds();
    assert.equal(new Set(shown).size, shown.length, 'none twice');
    // Nothing was truncated, and no error from while the hub was down stays on screen.
    // (A truncation alert stays once shown.)
    await until(async () => (await page.getByRole('alert').count()) === 0, 'no alert is shown').catch(
      async (err: Error) => {
        throw new Error(`${err.message}: ${(await page.getByRole('alert').allTextContents()).join(' | ')}`);
      },
    );
  });

  it('the Overview lists the latest errors from the log and charts traffic and devices', async () => {
    // A write outside the child's scopes: the hub refuses it, an error in the log.
    await putGroup('default', ['notes']);
    await runCli(['put', 'secrets', 's1', '{"x":1}', '--data', join(dir.path, 'child')]);
    await until(async () => (await log('&type=writes-refused')).length > 0, 'the refusal is logged', 20_000);

    // Loaded afresh, the page shows the error from the hub's log, not from what it saw live.
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    const errors = page.getByRole('list', { name: 'Latest errors' });
    await until(
      async () => /SCOPE_WRITE_DENIED/.test((await errors.textContent()) ?? ''),
      'the error is listed',
    );

    for (const name of ['Changes per second', 'Bytes per second', 'Connected devices'])
      await page.getByRole('figure', { name }).waitFor();
    const devices = page.getByRole('figure', { name: 'Connected devices' }).getByRole('img');
    await until(
      async () => /connected 1 now/.test((await devices.getAttribute('aria-label')) ?? ''),
      'a sample with the connected child (one every 10 s)',
      30_000,
    );
    assert.equal(await page.getByRole('button', { name: 'Last hour' }).getAttribute('aria-pressed'), 'true');
    await page.getByRole('button', { name: 'Last 24 hours' }).click();
    assert.equal(
      await page.getByRole('button', { name: 'Last 24 hours' }).getAttribute('aria-pressed'),
      'true',
    );
    assert.match(
      (await devices.getAttribute('aria-label')) ?? '',
      /last 24 hours/,
      'the charts show the day now',
    );
    await page.screenshot({ path: join(SCREENSHOTS, 'overview-charts.png'), fullPage: true });
  });
});
