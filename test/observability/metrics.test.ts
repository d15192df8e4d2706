/**
 * The Prometheus metrics of a real hub and a real child over mutual TLS, scraped
 * over real sockets: the admin API's /metrics (admin token), the hub's own metrics
 * listener (no token), the child's local API /metrics (its token). Every scrape is
 * checked by `promtool check metrics`; the alert rules by `promtool check rules`;
 * the Grafana dashboard's queries against what the agents really expose.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Child } from '../../src/child/child.js';
import { API_TOKEN_FILE } from '../../src/child/local-api/server.js';
import { pairWithHub } from '../../src/child/pairing.js';
import { AdminApiServer } from '../../src/hub/admin-api/server.js';
import type { Hub, HubInit } from '../../src/hub/hub.js';
import { BACKUP_METRIC } from '../../src/observability/metrics.js';
import { shortDeviceId } from '../../src/transport/device-id.js';
import { createIdentity } from '../../src/transport/identity.js';
import { pairedChildOf, startTestHub } from '../fixtures/nodes.js';
import { eventually, FakeClock, seededBytes, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-metrics-');
after(() => dir.remove());
let n = 0;

/** One sample of a scrape. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text scrape (comments skipped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name and these labels, or undefined. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.ok(found.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]?.value;
}

/** Runs promtool with `args`, `input` on its standard input; resolves with its exit code and output. */
function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input ?? '');
  });
}

async function assertValidScrape(text: string): Promise<void> {
  const { code, output } = await promtool(['check', 'metrics'], text);
  assert.equal(code, 0, `promtool check metrics: ${output}`);
  assert.equal(output.trim(), '', `promtool finds nothing to say: ${output}`);
}

interface Running {
  hub: Hub;
  admin: AdminApiServer;
  token: string;
  child: Child;
  childDir: string;
  childToken: string;
  scrapeHub(): Promise<Sample[]>;
  scrapeChild(): Promise<Sample[]>;
  text: { hub(): Promise<string>; child(): Promise<string> };
  stop(): Promise<void>;
}

/** A hub with its admin API and a registered child with its local API, all on loopback; the child is not started. */
async function start(init: Partial<HubInit> = {}): Promise<Running> {
  const hub = await startTestHub(join(dir.path, `hub-${++n}`), init);
  const admin = new AdminApiServer(hub, { host: '127.0.0.1', port: 0 });
  await admin.start();
  const token = admin.takeCreatedToken() as string;
  const childDir = join(dir.path, `child-${n}`);
  const child = await pairedChildOf(hub, childDir, { name: 'reception', localApi: { port: 0 } });
  const get = async (url: string, bearer: string) => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${bearer}` } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return res.text();
  };
  const running: Running = {
    hub,
    admin,
    token,
    child,
    childDir,
    childToken: '',
    text: {
      hub: () => get(`http://127.0.0.1:${admin.port}/metrics`, token),
      child: () => {
        running.childToken ||= readFileSync(join(childDir, API_TOKEN_FILE), 'utf8').trim();
        return get(`http://127.0.0.1:${child.apiPort as number}/metrics`, running.childToken);
      },
    },
    scrapeHub: async () => parse(await running.text.hub()),
    scrapeChild: async () => parse(await running.text.child()),
    stop: async () => {
      await child.stop();
      await admin.stop();
      await hub.stop();
    },
  };
  return running;
}

describe('Prometheus metrics of a hub and a child', () => {
  it('scrapes pass promtool; a write on the child moves the hub; connected goes 1 then 0', async () => {
    const r = await start();
    const { hub, child } = r;
    // Without the token: refused like any admin route.
    const anonymous = await fetch(`http://127.0.0.1:${r.admin.port}/metrics`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { code: string }).code, 'UNAUTHORIZED');

    await child.start();
    const deviceId = child.deviceId;
    const device = shortDeviceId(deviceId);
    await eventually(() => hub.connectedChildren().length === 1, 10_000, 'the child connected');
    const before = await r.scrapeHub();
    await assertValidScrape(await r.text.hub());
    assert.equal(value(before, 'trosyn_device_connected', { device }), 1);
    assert.equal(value(before, 'trosyn_device_info', { device, name: 'reception', group: 'default' }), 1);
    assert.equal(value(before, 'trosyn_connected_devices'), 1);
    assert.equal(value(before, 'trosyn_devices', { state: 'approved' }), 1);
    assert.equal(value(before, 'trosyn_build_info', { role: 'hub' }), 1);
    assert.ok((value(before, 'trosyn_store_bytes') ?? 0) > 0, 'the store has bytes on disk');
    assert.ok(
      before.some((s) => s.name === 'process_cpu_user_seconds_total'),
      'process metrics too',
    );
    const changesIn = value(before, 'trosyn_changes_total', { direction: 'in' }) ?? -1;

    // A write on the child raises the hub's changes in, and the child's changes out.
    await child.replica.put('notes', 'n1', { text: 'hello' });
    await eventually(
      async () => (value(await r.scrapeHub(), 'trosyn_changes_total', { direction: 'in' }) ?? 0) > changesIn,
      10_000,
      "the hub's changes in rose",
    );
    await eventually(
      async () => value(await r.scrapeChild(), 'trosyn_pending_changes', { direction: 'to_hub' }) === 0,
      10_000,
      "the child's outbox emptied",
    );
    const childSamples = await r.scrapeChild();
    await assertValidScrape(await r.text.child());
    assert.equal(value(childSamples, 'trosyn_hub_connected'), 1);
    assert.ok((value(childSamples, 'trosyn_changes_total', { direction: 'out' }) ?? 0) >= 1);
    assert.ok((value(childSamples, 'trosyn_propagation_seconds_count') ?? 0) >= 1, 'the write was timed');
    assert.ok((value(childSamples, 'trosyn_sync_round_duration_seconds_count') ?? 0) >= 1);
    assert.equal(value(childSamples, 'trosyn_build_info', { role: 'child' }), 1);
    const hubNow = await r.scrapeHub();
    assert.ok((value(hubNow, 'trosyn_sync_round_duration_seconds_count') ?? 0) >= 1, 'a round was timed');
    assert.equal(value(hubNow, 'trosyn_device_pending_changes', { device, direction: 'from_device' }), 0);

    // A hub write reaches the child: the hub times its propagation to the device's acknowledgement.
    await hub.replica.put('notes', 'from-hub', { text: 'hi' });
    await eventually(
      async () => (value(await r.scrapeHub(), 'trosyn_propagation_seconds_count') ?? 0) >= 1,
      10_000,
      "the hub's write was acknowledged and timed",
    );

    // At most 50 series per device.
    const perDevice = (await r.scrapeHub()).filter((s) => s.labels.device === device);
    assert.ok(perDevice.length >= 5 && perDevice.length <= 50, `${perDevice.length} series for the device`);

    await child.stop();
    await eventually(() => hub.connectedChildren().length === 0, 10_000, 'the child is gone');
    const gone = await r.scrapeHub();
    assert.equal(value(gone, 'trosyn_device_connected', { device }), 0);
    assert.equal(value(gone, 'trosyn_connected_devices'), 0);
    assert.ok((value(gone, 'trosyn_device_last_seen_timestamp_seconds', { device }) ?? 0) > 0);
    assert.equal(value(gone, 'trosyn_device_sync_lag_seconds', { device }), undefined, 'no lag offline');
    await r.stop();
  });

  it('refused writes are counted by reason on both sides; a wrong pairing code counts a failure', async () => {
    const r = await start({ pairingLimits: { perAddress: { burst: 100, perMinute: 100 } } });
    const { hub, child } = r;
    await hub.putGroup({ name: 'front', description: '', read: ['*'], write: ['notes'] });
    await child.start();
    await hub.updateDevice(child.deviceId, { group: 'front' });
    await eventually(() => hub.connectedChildren().length === 1, 10_000, 'the child reconnected in front');
    await child.replica.put('hr', 'salary', { secret: 1 });
    const refused = { by: 'hub', reason: 'SCOPE_WRITE_DENIED' };
    await eventually(
      async () => value(await r.scrapeHub(), 'trosyn_refused_writes_total', refused) === 1,
      10_000,
      'the hub counted the refusal',
    );
    await eventually(
      async () => value(await r.scrapeChild(), 'trosyn_refused_writes_total', refused) === 1,
      10_000,
      'the child counted the refusal',
    );

    // Pairing: one wrong code, then the right one.
    const { code } = await hub.registry.issueCode();
    const plain = code.replace(/-/g, '');
    const wrong = `${plain.slice(0, 10)}${plain.slice(10) === 'ZZ' ? 'YY' : 'ZZ'}`;
    const address = { host: '127.0.0.1', port: hub.port };
    await assert.rejects(
      pairWithHub({ identity: await createIdentity('guesser'), code: wrong, address, name: 'guess' }),
      { code: 'PAIRING_FAILED' },
    );
    await eventually(
      async () =>
        value(await r.scrapeHub(), 'trosyn_pairing_failures_total', { reason: 'PAIRING_FAILED' }) === 1,
      5000,
      'the failure was counted',
    );
    await pairWithHub({ identity: await createIdentity('honest'), code, address, name: 'honest' });
    await eventually(
      async () => value(await r.scrapeHub(), 'trosyn_pairing_attempts_total') === 2,
      5000,
      'both attempts counted',
    );
    const after = await r.scrapeHub();
    assert.equal(value(after, 'trosyn_pairing_failures_total', { reason: 'PAIRING_FAILED' }), 1);
    assert.equal(value(after, 'trosyn_devices', { state: 'approved' }), 2);
    await assertValidScrape(await r.text.hub());
    await r.stop();
  });

  it('connections refused by the rate limit are counted by limit and reason', async () => {
    const hub = await startTestHub(join(dir.path, `hub-${++n}`), {
      metrics: { port: 0 },
      connectionLimit: { burst: 1, perMinute: 1 },
    });
    const scrape = async () =>
      parse(await (await fetch(`http://127.0.0.1:${hub.metricsPort as number}/metrics`)).text());
    assert.equal(value(await scrape(), 'trosyn_rate_limited_total', { limit: 'connection' }), undefined);
    // Plain TCP that never speaks TLS: the first spends the one attempt, the rest are refused at once.
    const sockets = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(hub.port, '127.0.0.1', () => resolve(socket));
            socket.on('error', reject);
          }),
      ),
    );
    await eventually(
      async () => value(await scrape(), 'trosyn_rate_limited_total', { limit: 'connection' }) === 2,
      5000,
      'two refused by the limit',
    );
    assert.equal(value(await scrape(), 'trosyn_connections_rejected_total', { reason: 'RATE_LIMITED' }), 2);
    for (const socket of sockets) socket.destroy();
    await hub.stop();
  });

  it('the metrics listener serves /metrics without a token, and only that', async () => {
    const hub = await startTestHub(join(dir.path, `hub-${++n}`), { metrics: { port: 0 } });
    const port = hub.metricsPort as number;
    assert.ok(port > 0);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    const samples = parse(await res.text());
    assert.equal(value(samples, 'trosyn_build_info', { role: 'hub' }), 1);
    const other = await fetch(`http://127.0.0.1:${port}/api/status`);
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { code: string }).code, 'ROUTE_NOT_FOUND');
    await hub.stop();
    assert.equal(hub.metricsPort, undefined);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'closed with the hub');
    await assert.rejects(startTestHub(join(dir.path, 'bad'), { metrics: { port: 70_000 } }), {
      code: 'INVALID_OPTION',
    });
  });

  it('a copy of a file counts its bytes as deduplicated on the hub, not as fetched', async () => {
    const r = await start();
    await r.child.start();
    const bytes = seededBytes('dedupe', 300_000);
    const one = async function* () {
      yield bytes;
    };
    await r.child.files.putStream(one(), { name: 'report.bin' });
    await eventually(
      async () =>
        (value(await r.scrapeHub(), 'trosyn_file_bytes_total', { direction: 'in' }) ?? 0) >= bytes.length,
      10_000,
      'the hub fetched the first version',
    );
    let hub = await r.scrapeHub();
    assert.equal(value(hub, 'trosyn_file_deduplicated_bytes_total'), 0, 'nothing of the first was here');
    const fetched = value(hub, 'trosyn_file_bytes_total', { direction: 'in' }) as number;
    await r.child.files.putStream(one(), { name: 'report copy.bin' });
    await eventually(
      async () => (value(await r.scrapeHub(), 'trosyn_file_deduplicated_bytes_total') ?? 0) > 0,
      10_000,
      'the copy is counted',
    );
    hub = await r.scrapeHub();
    assert.equal(
      value(hub, 'trosyn_file_deduplicated_bytes_total'),
      bytes.length,
      'the whole copy stayed put',
    );
    assert.equal(
      value(hub, 'trosyn_file_bytes_total', { direction: 'in' }),
      fetched,
      'and nothing more travelled',
    );
    assert.equal(
      value(await r.scrapeChild(), 'trosyn_file_deduplicated_bytes_total'),
      0,
      "the child's own versions are not counted",
    );
    await assertValidScrape(await r.text.hub());
    await r.stop();
  });

  it('a hub with scheduled backups exposes when the last one succeeded, its size and the runs by result', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 30, 9, 0, 0));
    const plain = await startTestHub(join(dir.path, `hub-${++n}`), { metrics: { port: 0 } });
    const none = await fetch(`http://127.0.0.1:${plain.metricsPort as number}/metrics`);
    assert.doesNotMatch(await none.text(), /backup/, 'a hub without a schedule has no backup metrics');
    await plain.stop();

    const hub = await startTestHub(
      join(dir.path, `hub-${++n}`),
      { metrics: { port: 0 }, backups: { dir: join(dir.path, `backups-${n}`), everyHours: 24, keep: 2 } },
      { clock },
    );
    try {
      const scrape = async () => {
        const text = await (await fetch(`http://127.0.0.1:${hub.metricsPort as number}/metrics`)).text();
        await assertValidScrape(text);
        return parse(text);
      };
      await hub.replica.put('notes', 'n1', { v: 1 });
      let samples = await scrape();
      assert.equal(value(samples, BACKUP_METRIC), 0, 'none yet');
      assert.equal(value(samples, 'trosyn_backups_total', { result: 'ok' }), 0);
      assert.equal(value(samples, 'trosyn_backups_total', { result: 'failed' }), 0);
      clock.advance(60_000);
      await eventually(async () => (await hub.status()).backups?.last != null, 10_000, 'the first backup');
      samples = await scrape();
      const last = (await hub.status()).backups?.last;
      assert.equal(value(samples, BACKUP_METRIC), (last?.at as number) / 1000);
      assert.equal(value(samples, 'trosyn_last_backup_bytes'), last?.bytes);
      assert.ok((last?.bytes ?? 0) > 0);
      assert.equal(value(samples, 'trosyn_backups_total', { result: 'ok' }), 1);
    } finally {
      await hub.stop();
    }
  });

  it('the alert rules pass promtool; the Grafana dashboard queries only metrics the agents expose', async () => {
    const rules = await promtool(['check', 'rules', 'deploy/prometheus/alerts.yml']);
    assert.equal(rules.code, 0, rules.output);
    const alerts = readFileSync('deploy/prometheus/alerts.yml', 'utf8');
    assert.match(alerts, new RegExp(BACKUP_METRIC), 'the backup rule reads the backup metric');

    const r = await start();
    await r.child.start();
    await r.child.replica.put('notes', 'n1', { text: 'hello' });
    await eventually(
      async () => (value(await r.scrapeChild(), 'trosyn_propagation_seconds_count') ?? 0) >= 1,
      10_000,
      'the child synced',
    );
    // Every name a scrape declares, samples or not yet (a counter by reason before its first count).
    const exposed = new Set<string>();
    for (const text of [await r.text.hub(), await r.text.child()]) {
      for (const s of parse(text)) exposed.add(s.name);
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        const [, name, type] = m as unknown as [string, string, string];
        exposed.add(name);
        if (type === 'histogram') for (const x of ['_bucket', '_sum', '_count']) exposed.add(`${name}${x}`);
      }
    }
    const dashboard = JSON.parse(readFileSync('deploy/grafana/trosyn.json', 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
      templating?: { list: Array<{ query?: unknown }> };
    };
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...(dashboard.templating?.list ?? []).map((v) => JSON.stringify(v.query ?? '')),
    ];
    assert.ok(exprs.length >= 8, `${exprs.length} queries`);
    const used = new Set(
      exprs.flatMap((e) => [...e.matchAll(/\b(?:trosyn|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0])),
    );
    const missing = [...used].filter((name) => !exposed.has(name));
    assert.deepEqual(missing, [], 'every metric the dashboard queries is exposed');
    await r.stop();
  });
});
