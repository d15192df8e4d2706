/**
 * The kept event log through the admin API over a real socket, with real hubs on
 * real registry databases: the stream resumes after Last-Event-ID with no gap and
 * no duplicate, the log survives a restart, old history is reported truncated, the
 * log filters, pages and exports; signed out, nothing under /api/ answers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventLogPage, metricsHistory } from '../../src/hub/admin-api/event-schemas.js';
import { AdminApiServer, ensureAdminToken } from '../../src/hub/admin-api/server.js';
import type { Hub } from '../../src/hub/hub.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import { startTestHub } from '../fixtures/nodes.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';
import { SseClient } from './helpers.js';

const dir = tempDir('trosyn-event-log-api-');
after(() => dir.remove());
let n = 0;

interface Served {
  hub: Hub;
  server: AdminApiServer;
  base: string;
  headers: Record<string, string>;
  stop: () => Promise<void>;
}

/** A started hub on `dataDir` with its admin API on a free loopback port. */
async function serve(dataDir: string, parts: { clock?: FakeClock } = {}): Promise<Served> {
  const hub = await startTestHub(dataDir, {}, parts);
  // The token is made once per registry; a restarted hub keeps it.
  const token = (await ensureAdminToken(hub.registry)) ?? tokens.get(dataDir);
  if (token) tokens.set(dataDir, token);
  const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0, eventHeartbeatMs: 60_000 });
  await server.start();
  return {
    hub,
    server,
    base: `http://127.0.0.1:${server.port}`,
    headers: { authorization: `Bearer ${tokens.get(dataDir) as string}` },
    stop: async () => {
      await server.stop();
      await hub.stop();
    },
  };
}
const tokens = new Map<string, string>();

async function getJson(s: Served, path: string): Promise<{ status: number; body: unknown; res: Response }> {
  const res = await fetch(`${s.base}${path}`, { headers: s.headers });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined, res };
}

async function logIds(s: Served, query = ''): Promise<number[]> {
  const { body } = await getJson(s, `/api/events/log?limit=1000${query}`);
  return eventLogPage.parse(body).events.map((e) => e.id);
}

const groupEvent = (s: Served, i: number) =>
  s.hub.putGroup({ name: `g${i}`, description: '', read: ['*'], write: ['*'] });

describe('the event log through the admin API', () => {
  it('a stream that reconnects with Last-Event-ID gets every kept event after it, then live ones, with no gap and no duplicate', async () => {
    const s = await serve(join(dir.path, `hub-${++n}`));
    const first = new SseClient(`${s.base}/api/events`, s.headers);
    await eventually(() => first.comments.includes('connected'), 5000, 'the first stream opened');
    for (let i = 0; i < 5; i++) await groupEvent(s, i);
    await eventually(() => first.events.length === 5, 5000, 'five events live');
    const seen = first.events.map((e) => Number(e.id));
    assert.ok(
      seen.every((id, i) => Number.isInteger(id) && (i === 0 || id > (seen[i - 1] as number))),
      `kept events carry increasing ids: ${seen.join(', ')}`,
    );
    first.close();
    const lastSeen = seen[2] as number; // as if the connection broke after the third

    // Events keep coming while the client is away and while it reconnects.
    let producing = true;
    let made = 5;
    const producer = (async () => {
      while (producing) {
        await groupEvent(s, made++);
        // The registry's calls are synchronous underneath: let the sockets and timers run.
        await new Promise((r) => setImmediate(r));
      }
    })();
    await eventually(() => made > 40, 10_000, 'events made while away');
    const resumed = new SseClient(`${s.base}/api/events`, {
      ...s.headers,
      'last-event-id': String(lastSeen),
    });
    await eventually(() => resumed.events.length > 60, 10_000, 'the stream caught up and goes on live');
    producing = false;
    await producer;
    await s.hub.eventLog.flush();
    const kept = (await logIds(s)).reverse();
    const expected = kept.filter((id) => id > lastSeen);
    await eventually(
      () => resumed.events.length >= expected.length,
      10_000,
      `all ${expected.length} kept events after ${lastSeen}`,
    );
    const got = resumed.events.map((e) => Number(e.id));
    assert.deepEqual(got, expected, 'exactly the kept events after the last one seen, in order');
    assert.equal(new Set(got).size, got.length, 'none twice');
    assert.deepEqual(
      resumed.events.map((e) => e.event),
      expected.map(() => 'scopes-changed'),
    );
    resumed.close();

    // The first connection after a page load names its starting point in the query.
    const fromQuery = new SseClient(`${s.base}/api/events?lastEventId=${kept.at(-2) as number}`, s.headers);
    await eventually(() => fromQuery.events.length === 1, 5000, 'the one event after it');
    assert.equal(Number(fromQuery.events[0]?.id), kept.at(-1));
    // The header wins over the query, as on an EventSource's own reconnection.
    const both = new SseClient(`${s.base}/api/events?lastEventId=0`, {
      ...s.headers,
      'last-event-id': String(kept.at(-1)),
    });
    await eventually(() => both.comments.includes('connected'), 5000, 'connected');
    await groupEvent(s, 999);
    await eventually(() => both.events.length === 1, 5000, 'only the new event');
    assert.ok(Number(both.events[0]?.id) > (kept.at(-1) as number));
    fromQuery.close();
    both.close();

    const bad = await fetch(`${s.base}/api/events`, { headers: { ...s.headers, 'last-event-id': 'abc' } });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'INVALID_REQUEST');
    await s.stop();
  });

  it('keeps events across a restart; after the retention, a resume is told the history was truncated', async () => {
    const dataDir = join(dir.path, `hub-${++n}`);
    const one = await serve(dataDir);
    for (let i = 0; i < 3; i++) await groupEvent(one, i);
    await one.hub.eventLog.flush();
    const before = eventLogPage.parse((await getJson(one, '/api/events/log')).body);
    assert.equal(before.events.length, 3);
    await one.stop();

    const two = await serve(dataDir);
    const after = eventLogPage.parse((await getJson(two, '/api/events/log')).body);
    assert.deepEqual(after.events, before.events, 'the same events, with the same ids, after a restart');
    await groupEvent(two, 3);
    await two.hub.eventLog.flush();
    const newest = eventLogPage.parse((await getJson(two, '/api/events/log?limit=1')).body);
    assert.ok((newest.events[0]?.id as number) > (before.events[0]?.id as number), 'new ids follow the old');
    assert.equal(newest.latestId, newest.events[0]?.id);
    await two.stop();

    // Started 31 days later: the default retention (30 days) has dropped everything.
    const clock = new FakeClock(Date.now() + 31 * 86_400_000);
    const three = await serve(dataDir, { clock });
    assert.deepEqual(eventLogPage.parse((await getJson(three, '/api/events/log')).body).events, []);
    const oldest = before.events.at(-1)?.id as number;
    const stale = new SseClient(`${three.base}/api/events`, {
      ...three.headers,
      'last-event-id': String(oldest),
    });
    const truncated = await stale.next((e) => e.event === 'history-truncated', 'history-truncated');
    assert.equal(truncated.id, undefined, 'a notice, not a kept event');
    assert.deepEqual(
      { ...JSON.parse(truncated.data), at: 0 },
      {
        type: 'history-truncated',
        at: 0,
        reason: 'pruned',
        lastEventId: oldest,
        oldestId: null,
        latestId: newest.latestId,
      },
    );
    // An id this log never gave: told so, and the next event is not taken for one already seen.
    const unknown = new SseClient(`${three.base}/api/events`, {
      ...three.headers,
      'last-event-id': '1000000',
    });
    const notice = await unknown.next((e) => e.event === 'history-truncated', 'history-truncated');
    assert.equal(JSON.parse(notice.data).reason, 'unknown-id');
    await groupEvent(three, 9);
    await clock.tick(100); // the batch window, on the hub's clock
    const live = await unknown.next((e) => e.event === 'scopes-changed', 'the next event');
    assert.equal(Number(live.id), newest.latestId + 1);
    // A client that is up to date gets no notice.
    const current = new SseClient(`${three.base}/api/events`, {
      ...three.headers,
      'last-event-id': String(newest.latestId + 1),
    });
    await eventually(() => current.comments.includes('connected'), 5000, 'connected');
    await groupEvent(three, 10);
    await clock.tick(100);
    await current.next((e) => e.event === 'scopes-changed', 'the new event');
    assert.deepEqual(
      current.events.map((e) => e.event),
      ['scopes-changed'],
    );
    for (const c of [stale, unknown, current]) c.close();
    await three.stop();
  });

  it('filters by device, type and time; pages newest first; exports JSON and CSV as attachments', async () => {
    const s = await serve(join(dir.path, `hub-${++n}`));
    const desk = randomDeviceId() as DeviceId;
    const other = randomDeviceId() as DeviceId;
    await s.hub.registry.register({ deviceId: desk, name: '=Front desk, "east"', group: 'default' });
    await s.hub.registry.register({ deviceId: other, name: 'laptop', group: 'default' });
    await s.hub.revoke(other);
    await groupEvent(s, 1);
    const t1 = Date.now();
    await s.hub.revoke(desk);
    await groupEvent(s, 2);
    await s.hub.eventLog.flush();

    const all = eventLogPage.parse((await getJson(s, '/api/events/log')).body);
    assert.deepEqual(
      all.events.map((e) => e.event.type),
      ['scopes-changed', 'device-revoked', 'scopes-changed', 'device-revoked'],
      'newest first',
    );
    assert.equal(all.next, null);
    assert.equal(all.retentionDays, 30);

    const byDevice = eventLogPage.parse(
      (await getJson(s, `/api/events/log?device=${encodeURIComponent(formatDeviceId(desk))}`)).body,
    );
    assert.deepEqual(
      byDevice.events.map((e) => [e.event.type, e.event['deviceId']]),
      [['device-revoked', desk]],
      'by device, named in its readable form',
    );
    const byType = eventLogPage.parse((await getJson(s, '/api/events/log?type=device-revoked,error')).body);
    assert.equal(byType.events.length, 2);
    const since = eventLogPage.parse((await getJson(s, `/api/events/log?since=${t1}`)).body);
    assert.ok(since.events.length >= 2 && since.events.every((e) => e.event.at >= t1), 'since');

    // Pages of one, newest first, until `next` is null.
    const paged: number[] = [];
    let before = '';
    for (let i = 0; i < 10; i++) {
      const page = eventLogPage.parse((await getJson(s, `/api/events/log?limit=1${before}`)).body);
      paged.push(...page.events.map((e) => e.id));
      if (page.next === null) break;
      before = `&before=${page.next}`;
    }
    assert.deepEqual(
      paged,
      all.events.map((e) => e.id),
      'the pages add up to the log',
    );

    for (const [query, code] of [
      ['type=nope', 'INVALID_REQUEST'],
      ['limit=0', 'INVALID_REQUEST'],
      ['limit=1001', 'INVALID_REQUEST'],
      ['since=5&until=5', 'INVALID_REQUEST'],
      ['format=xml', 'INVALID_REQUEST'],
      ['device=XYZ', 'INVALID_DEVICE_ID'],
    ] as const) {
      const { status, body } = await getJson(s, `/api/events/log?${query}`);
      assert.equal(status, 400, query);
      assert.equal((body as { code: string }).code, code, query);
    }

    const json = await fetch(`${s.base}/api/events/log?format=json&type=device-revoked`, {
      headers: s.headers,
    });
    assert.equal(json.status, 200);
    assert.match(String(json.headers.get('content-type')), /^application\/json/);
    assert.match(
      String(json.headers.get('content-disposition')),
      /^attachment; filename="trosyn-events-.*\.json"$/,
    );
    const exported = (await json.json()) as { id: number; event: { type: string; deviceId: string } }[];
    assert.deepEqual(
      exported.map((e) => [e.id, e.event.deviceId]),
      byType.events.map((e) => [e.id, e.event['deviceId']]),
      'the export holds what the filter matches',
    );

    const csv = await fetch(`${s.base}/api/events/log?format=csv`, { headers: s.headers });
    assert.match(String(csv.headers.get('content-type')), /^text\/csv/);
    assert.match(
      String(csv.headers.get('content-disposition')),
      /^attachment; filename="trosyn-events-.*\.csv"$/,
    );
    const lines = (await csv.text()).split('\r\n').filter((l) => l !== '');
    assert.equal(lines[0], 'id,time,type,device_id,device_name,code,message,details');
    assert.equal(lines.length, 1 + all.events.length, 'a header and one line per event');
    const deskLine = lines.find((l) => l.includes(desk)) as string;
    assert.ok(
      deskLine.includes(`,${desk},"'=Front desk, ""east""",`),
      `quoted, and kept from running as a formula: ${deskLine}`,
    );
    assert.match(deskLine, /^\d+,\d{4}-\d\d-\d\dT[\d:.]+Z,device-revoked,/);
    await s.stop();
  });

  it('signed out, every /api route answers 401, the OpenAPI document and the API root included; the token is no longer taken from the query', async () => {
    const s = await serve(join(dir.path, `hub-${++n}`));
    for (const path of [
      '/api/',
      '/api/openapi.json',
      '/api/events',
      '/api/events/log',
      '/api/metrics/history',
    ]) {
      const res = await fetch(`${s.base}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(((await res.json()) as { code: string }).code, 'UNAUTHORIZED', path);
    }
    const doc = await getJson(s, '/api/openapi.json');
    assert.equal(doc.status, 200, 'with the token');
    const paths = Object.keys((doc.body as { paths: Record<string, unknown> }).paths);
    for (const p of ['/api/events', '/api/events/log', '/api/metrics/history'])
      assert.ok(paths.includes(p), p);
    assert.equal((await getJson(s, '/api/')).status, 200);

    const token = (s.headers['authorization'] as string).slice('Bearer '.length);
    const viaQuery = await fetch(`${s.base}/api/events?token=${encodeURIComponent(token)}`);
    assert.equal(viaQuery.status, 401, 'a token in the URL would land in logs and history');
    await s.stop();
  });

  it('serves the metrics history of the last hour and day', async () => {
    const s = await serve(join(dir.path, `hub-${++n}`));
    for (const window of ['1h', '24h'] as const) {
      const { status, body } = await getJson(s, `/api/metrics/history?window=${window}`);
      assert.equal(status, 200);
      const series = metricsHistory.parse(body);
      assert.equal(series.window, window);
      assert.equal(series.stepMs, window === '1h' ? 10_000 : 60_000);
    }
    assert.equal((await getJson(s, '/api/metrics/history?window=7d')).status, 400);
    await s.stop();
  });
});
