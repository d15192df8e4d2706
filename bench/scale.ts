/**
 * Scale: many children on one hub. A hub process and PROCS processes of children
 * (bench/fixtures/), each child a real mutual-TLS session with its own SQLite
 * store, all on 127.0.0.1, product defaults (durability `full`).
 *
 * 1. Connect: every child started at once; the time until all are connected, and
 *    the hub's memory before (no child: the baseline) and with all of them.
 * 2. Propagation: WRITES single writes on one child, 500 ms apart; how late each
 *    reaches every other child (p50, p99, max over all arrivals), beside the same
 *    figure with only two children connected, measured first in the same run.
 * 3. Relay: WRITERS children write RELAY_RATE records a second in total for
 *    RELAY_SECONDS; how late each reaches every other child, and how many never do.
 * 4. Restart: the hub stops and starts again on the same port; the children come
 *    back with the product's reconnect backoff (full jitter): the first and the
 *    last reconnect after the hub is up again.
 *
 * Lateness is the wall clock at the reader's change event less the `t` the writer
 * put in the record (all processes share one clock). On a machine with few cores
 * the children's own work (a thousand SQLite stores applying every change) shares
 * the cores with the hub: the figures are a bound for one machine, not an office.
 *
 * 5. Child at rest: a child agent as users run it (the built `trosyn-sync child`,
 *    paired, connected, nothing to do): its memory over IDLE_SECONDS, beside a bare
 *    `node` process that does nothing, measured in the same run.
 *
 * 6. Child initial sync: the same built child agent, paired with a built hub that
 *    holds SYNC_RECORDS records (1,000,000; loaded beforehand by the hub fixture): the
 *    time from the child's start until it is caught up, and its peak memory (VmHWM).
 *
 * `npm run bench -- scale --quick` runs 100 children. BENCH_CHILDREN, BENCH_PROCS,
 * BENCH_RELAY_RATE, BENCH_RELAY_SECONDS, BENCH_CHILD_SYNC_RECORDS set the sizes;
 * BENCH_SCALE_PARTS=child (with --quick, so a full run's results stay) runs only
 * parts 5 and 6.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { round, scratch, sourceVersion } from './common.js';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { buildCli, startTrosyn, stopTrosyn } from './files.js';
import { cpuMs, Fixture, memoryOf, RssSampler, wallMs } from './proc.js';

const QUICK = process.argv.includes('--quick');
const CHILDREN = Number(process.env.BENCH_CHILDREN ?? (QUICK ? 100 : 1000));
const PROCS = Number(process.env.BENCH_PROCS ?? (QUICK ? 2 : 8));
const WRITES = Number(process.env.BENCH_WRITES ?? (QUICK ? 10 : 20));
const WRITERS = 10;
/**
 * The children's SQLite durability. A thousand children here share one disk and two
 * cores, where an office has a disk per desktop: with `full`, a write reaches the
 * last child only after a thousand fsyncs in a row on that one disk. `normal` (WAL,
 * no fsync a commit) keeps the figures the hub's; BENCH_CHILD_SYNCHRONOUS=full
 * measures the other. The hub keeps the product default (`full`) either way.
 */
const CHILD_SYNCHRONOUS = process.env.BENCH_CHILD_SYNCHRONOUS ?? 'normal';
const RELAY_RATE = Number(process.env.BENCH_RELAY_RATE ?? 1000);
const RELAY_SECONDS = Number(process.env.BENCH_RELAY_SECONDS ?? 3);

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? (QUICK ? 30 : 60));
const SYNC_RECORDS = Number(process.env.BENCH_CHILD_SYNC_RECORDS ?? (QUICK ? 100_000 : 1_000_000));
/** Only these parts (so far: `child`, parts 5 and 6); all when unset. */
const PARTS = process.env.BENCH_SCALE_PARTS?.split(',').map((p) => p.trim());

const GOALS = {
  childIdleRssMB: 80,
  childSyncPeakRssMB: 150,
  hubPeakRssMB: 500,
  relayP99Ms: 1000,
  reconnectAllSec: 60,
  reconnectFirstSec: 1,
};

type Line = Record<string, unknown>;

interface Hub {
  fixture: Fixture;
  hubId: string;
  port: number;
}

async function startHub(dir: string, port = 0): Promise<Hub> {
  const { fixture, ready } = await Fixture.start('hub', 'hub', ['serve', dir, String(port)]);
  return { fixture, hubId: ready.deviceId as string, port: ready.port as number };
}

/** Percentiles of a lateness histogram ([ms, count] pairs). */
function fromHistogram(pairs: Array<[number, number]>): { p50: number; p99: number; max: number; n: number } {
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  const n = sorted.reduce((sum, [, c]) => sum + c, 0);
  const at = (p: number) => {
    const rank = Math.ceil(p * n);
    let seen = 0;
    for (const [ms, c] of sorted) {
      seen += c;
      if (seen >= rank) return ms;
    }
    return sorted.at(-1)?.[0] ?? 0;
  };
  return { n, p50: at(0.5), p99: at(0.99), max: sorted.at(-1)?.[0] ?? 0 };
}

/** Merges the `arrivals` answers of several processes. */
export function merge(answers: Line[]): {
  latency: ReturnType<typeof fromHistogram>;
  missing: number;
  complete: boolean;
  lastById: Map<string, number>;
} {
  const histogram = new Map<number, number>();
  const lastById = new Map<string, number>();
  for (const a of answers) {
    for (const [ms, c] of a.histogram as Array<[number, number]>)
      histogram.set(ms, (histogram.get(ms) ?? 0) + c);
    for (const [id, ms] of a.lastById as Array<[string, number]>)
      lastById.set(id, Math.max(lastById.get(id) ?? 0, ms));
  }
  return {
    latency: fromHistogram([...histogram]),
    missing: answers.reduce((s, a) => s + (a.missing as number), 0),
    complete: answers.every((a) => a.complete === true),
    lastById,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = scratch('trosyn-bench-scale-');
  const log = (text: string) => console.log(`  ${text}`);
  if (PARTS !== undefined && (!QUICK || PARTS.join() !== 'child'))
    throw new Error(
      'BENCH_SCALE_PARTS=child runs parts 5 and 6 only, with --quick (so the full results stay)',
    );
  mkdirSync(join(dir, 'cli'));
  const { cli, built } = buildCli(join(dir, 'cli'));
  const idle = await childIdle(dir, cli, built);
  log(
    `child at rest: ${idle.childRssMB} MiB after ${IDLE_SECONDS} s (most ${idle.childPeakAfterSettleMB} MiB after the first ${IDLE_SECONDS / 2} s; ${idle.childStartRssMB} MiB at start), bare node ${idle.nodeRssMB} MiB (goal <= ${GOALS.childIdleRssMB})`,
  );
  const childSync = await childInitialSync(dir, cli);
  log(
    `child initial sync of ${childSync.records} records: ${childSync.seconds} s (${childSync.recordsPerSec}/s), child peak ${childSync.childPeakRssMB} MiB (goal <= ${GOALS.childSyncPeakRssMB}), hub peak ${childSync.hubPeakRssMB} MiB`,
  );
  if (PARTS !== undefined)
    return {
      ...sourceVersion(),
      childIdleRssMB: idle.childRssMB,
      childIdle: idle,
      childSync,
      childSyncPeakRssMB: childSync.childPeakRssMB,
    };
  const perProc = Math.ceil(CHILDREN / PROCS);
  let hub = await startHub(join(dir, 'hub'));
  const port = hub.port;
  const fixtures: Fixture[] = [];
  try {
    await sleep(1000);
    const hubIdleRssMB = Math.round(memoryOf(hub.fixture.pid)?.rssMB ?? 0);

    // --- baseline: propagation with two children ------------------------------------------
    const pair = await Fixture.start('pair', 'children', [dir, '2', hub.hubId, String(port), 'pair'], {
      env: { BENCH_CHILD_SYNCHRONOUS: CHILD_SYNCHRONOUS },
    });
    await hub.fixture.request('allow', { deviceIds: pair.ready.deviceIds });
    await pair.fixture.request('start');
    await pair.fixture.request('caughtUp');
    const quiet = await propagate([pair.fixture], pair.fixture, 'quiet');
    log(`propagation, 2 children: p50 ${quiet.p50} ms, p99 ${quiet.p99} ms, max ${quiet.max} ms`);
    await pair.fixture.stop();

    // --- connect ------------------------------------------------------------------------
    const starting = await Promise.all(
      Array.from({ length: PROCS }, (_, p) => {
        const count = Math.min(perProc, CHILDREN - p * perProc);
        return Fixture.start(
          `children-${p}`,
          'children',
          [dir, String(count), hub.hubId, String(port), `c${p}`],
          {
            env: { BENCH_CHILD_BACKOFF: 'product', BENCH_CHILD_SYNCHRONOUS: CHILD_SYNCHRONOUS },
            readyTimeoutMs: 600_000,
          },
        );
      }),
    );
    for (const { fixture, ready } of starting) {
      fixtures.push(fixture);
      await hub.fixture.request('allow', { deviceIds: ready.deviceIds });
    }
    const sampler = new RssSampler([hub.fixture.pid], 200);
    const t0 = wallMs();
    await Promise.all(fixtures.map((f) => f.request('start')));
    const caught = await Promise.all(fixtures.map((f) => f.request('caughtUp')));
    const lines = caught.flatMap((c) => c.children as Line[]);
    const connectAllSec = round((Math.max(...lines.map((l) => l.connectedAt as number)) - t0) / 1000, 2);
    const caughtUpAllSec = round((Math.max(...lines.map((l) => l.caughtUpAt as number)) - t0) / 1000, 2);
    const connected = (await hub.fixture.request('connectedCount')).count as number;
    log(`${connected} children connected in ${connectAllSec} s (all caught up in ${caughtUpAllSec} s)`);
    await sleep(2000);
    const hubConnectedRssMB = Math.round(memoryOf(hub.fixture.pid)?.rssMB ?? 0);

    // --- propagation --------------------------------------------------------------------
    const writer = fixtures[0] as Fixture;
    const many = await propagate(fixtures, writer, 'prop');
    log(
      `propagation to ${connected - 1} children: p50 ${many.p50} ms, p99 ${many.p99} ms, max ${many.max} ms`,
    );

    // --- relay --------------------------------------------------------------------------
    const cpu0 = [hub.fixture.pid, ...fixtures.map((f) => f.pid)].map(cpuMs);
    const hubUsage = usagePeaks(hub.fixture);
    const relay = await relayRun(fixtures);
    const relayHubMemory = await hubUsage.stop();
    const cpu1 = [hub.fixture.pid, ...fixtures.map((f) => f.pid)].map(cpuMs);
    const relayHubCpuMs = (cpu1[0] as number) - (cpu0[0] as number);
    const relayChildrenCpuMs = cpu1.slice(1).reduce((s, c, i) => s + c - (cpu0[i + 1] as number), 0);
    log(
      `relay ${RELAY_RATE}/s from ${WRITERS} writers for ${RELAY_SECONDS} s: ${relay.acked} writes, p50 ${relay.p50} ms, p99 ${relay.p99} ms, max ${relay.max} ms, ${relay.missing} never arrived`,
    );
    log(
      `hub memory during the relay, most of each: ${Object.entries(relayHubMemory)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    log(
      `relay CPU per delivery: hub ${round((relayHubCpuMs * 1000) / Math.max(1, relay.n), 1)} µs, children ${round((relayChildrenCpuMs * 1000) / Math.max(1, relay.n), 1)} µs (${relay.n} deliveries)`,
    );
    // What the relay asks of this machine: every write applied by every child in scope,
    // each at the CPU it took here. Above the machine's cores, the children fall behind
    // whatever the hub does, and the lateness measures the machine, not the hub.
    const relayChildUs = (relayChildrenCpuMs * 1000) / Math.max(1, relay.n);
    const relayChildCoresNeeded = round((RELAY_RATE * (connected - 1) * relayChildUs) / 1e6, 1);
    log(
      `relay load: ${RELAY_RATE} writes/s to ${connected - 1} children each need ${relayChildCoresNeeded} cores of child work alone at ${round(relayChildUs, 1)} µs a delivery; this machine has ${availableParallelism()}`,
    );
    const hubPeakRssMB = sampler.stop().get(hub.fixture.pid) ?? 0;

    // --- restart ------------------------------------------------------------------------
    await hub.fixture.stop();
    const down = wallMs();
    await sleep(1000);
    hub = await startHub(join(dir, 'hub'), port);
    const up = wallMs();
    const back = await Promise.all(
      fixtures.map((f) => f.request('connectedSince', { since: down, timeoutMs: 180_000 })),
    );
    const times = back.flatMap((b) => b.times as Array<number | null>);
    const reconnected = times.filter((t): t is number => t !== null);
    const reconnectFirstSec = round((Math.min(...reconnected) - up) / 1000, 2);
    const reconnectAllSec =
      reconnected.length === times.length ? round((Math.max(...reconnected) - up) / 1000, 2) : null;
    log(
      `hub restart: ${reconnected.length} of ${times.length} back, the first ${reconnectFirstSec} s and the last ${reconnectAllSec ?? 'never'} s after the hub was up`,
    );

    const result = {
      ...sourceVersion(),
      childIdleRssMB: idle.childRssMB,
      childIdle: idle,
      childSyncPeakRssMB: childSync.childPeakRssMB,
      childSync,
      children: connected,
      processes: PROCS,
      childSynchronous: CHILD_SYNCHRONOUS,
      connectAllSec,
      caughtUpAllSec,
      hubIdleRssMB,
      hubConnectedRssMB,
      hubPeakRssMB,
      propagationP50Ms: many.p50,
      propagationP99Ms: many.p99,
      propagationMaxMs: many.max,
      propagationWrites: WRITES,
      quietPropagation: quiet,
      relayRatePerSec: RELAY_RATE,
      relaySeconds: RELAY_SECONDS,
      relayWriters: WRITERS,
      relayAcked: relay.acked,
      relayWriteSec: relay.writeSec,
      relayDeliveries: relay.n,
      relayMissing: relay.missing,
      relayShort: relay.short,
      relayP50Ms: relay.p50,
      relayP99Ms: relay.p99,
      relayMaxMs: relay.max,
      relayHubMemory,
      relayHubCpuMs,
      relayChildrenCpuMs,
      relayHubCpuUsPerDelivery: round((relayHubCpuMs * 1000) / Math.max(1, relay.n), 2),
      relayChildCpuUsPerDelivery: round((relayChildrenCpuMs * 1000) / Math.max(1, relay.n), 2),
      relayChildCoresNeeded,
      machineCores: availableParallelism(),
      reconnectFirstSec,
      reconnectAllSec,
      goals: {
        childIdleRssMB: {
          target: `<= ${GOALS.childIdleRssMB}`,
          met: idle.childRssMB <= GOALS.childIdleRssMB,
        },
        childSyncPeakRssMB: {
          target: `<= ${GOALS.childSyncPeakRssMB} during the initial sync of ${childSync.records} records`,
          met: childSync.childPeakRssMB <= GOALS.childSyncPeakRssMB,
        },
        hubPeakRssMB: { target: `<= ${GOALS.hubPeakRssMB}`, met: hubPeakRssMB <= GOALS.hubPeakRssMB },
        relayP99Ms: {
          target: `<= ${GOALS.relayP99Ms}, none missing`,
          met: relay.p99 <= GOALS.relayP99Ms && relay.missing === 0,
        },
        reconnectAllSec: {
          target: `<= ${GOALS.reconnectAllSec}`,
          met: reconnectAllSec !== null && reconnectAllSec <= GOALS.reconnectAllSec,
        },
        reconnectFirstSec: {
          target: `<= ${GOALS.reconnectFirstSec}`,
          met: reconnectFirstSec <= GOALS.reconnectFirstSec,
        },
      },
      how: {
        layout: `one hub process; ${PROCS} processes of about ${perProc} children each (each child its own TLS session and SQLite store)`,
        lateness:
          "wall clock at the reader's change event less the writer's `t` in the record; one machine, one clock",
        baseline: 'quietPropagation: the same single-write propagation with two children, in the same run',
        hubMemory: 'hubIdleRssMB before any child; the hub runs under tsx (its loader thread included)',
      },
    };
    console.log(
      `  hub memory: ${hubIdleRssMB} MiB idle, ${hubConnectedRssMB} MiB with ${connected} children, peak ${hubPeakRssMB} MiB (goal <= ${GOALS.hubPeakRssMB})`,
    );
    return result;
  } finally {
    await Promise.all(fixtures.map((f) => f.stop()));
    await hub.fixture.stop();
  }
}

/**
 * `writes` single writes on the first child of `writer`, 500 ms apart, each tracked
 * to every child of every fixture: each fixture's answer of arrivals (see `merge`).
 */
export async function timedWrites(
  fixtures: Fixture[],
  writer: Fixture,
  collection: string,
  writes: number,
): Promise<Line[]> {
  await Promise.all(fixtures.map((f) => f.request('track', { collection })));
  await writer.request('writeLoop', { index: 0, collection, rate: 2, seconds: writes / 2, tag: collection });
  return Promise.all(
    fixtures.map((f) =>
      f.request('arrivals', {
        collection,
        expected: writes,
        own: f === writer ? { 0: writes } : {},
        timeoutMs: 60_000,
      }),
    ),
  );
}

/**
 * WRITES single writes on the first child of `writer`, 500 ms apart, each tracked
 * to every other child; lateness over all arrivals.
 */
async function propagate(
  fixtures: Fixture[],
  writer: Fixture,
  collection: string,
): Promise<{ p50: number; p99: number; max: number; n: number; missing: number; lastMedianMs: number }> {
  const merged = merge(await timedWrites(fixtures, writer, collection, WRITES));

  const last = [...merged.lastById.values()].sort((a, b) => a - b);
  return {
    ...merged.latency,
    missing: merged.missing,
    lastMedianMs: last[Math.floor(last.length / 2)] ?? 0,
  };
}

async function relayRun(fixtures: Fixture[]): Promise<{
  acked: number;
  writeSec: number;
  p50: number;
  p99: number;
  max: number;
  n: number;
  missing: number;
  short: Array<{ child: string; missing: number }>;
}> {
  await Promise.all(fixtures.map((f) => f.request('track', { collection: 'relay' })));
  // Writers spread over the processes: child i of process i % PROCS.
  const writers = Array.from({ length: WRITERS }, (_, w) => ({
    fixture: fixtures[w % fixtures.length] as Fixture,
    index: Math.floor(w / fixtures.length),
    tag: `w${w}`,
  }));
  const t0 = wallMs();
  const done = await Promise.all(
    writers.map((w) =>
      w.fixture.request('writeLoop', {
        index: w.index,
        collection: 'relay',
        rate: RELAY_RATE / WRITERS,
        seconds: RELAY_SECONDS,
        tag: w.tag,
      }),
    ),
  );
  const writeSec = round((wallMs() - t0) / 1000, 2);
  const acked = done.reduce((s, d) => s + (d.acked as number), 0);
  const perWriter = acked / WRITERS;
  const answers = await Promise.all(
    fixtures.map((f) => {
      const own: Record<number, number> = {};
      for (const w of writers) if (w.fixture === f) own[w.index] = perWriter;
      return f.request('arrivals', { collection: 'relay', expected: acked, own, timeoutMs: 300_000 });
    }),
  );
  const merged = merge(answers);
  const short = answers.flatMap((a) => a.short as Array<{ child: string; missing: number }>);
  if (short.length > 0) console.log(`  children short of the relay: ${JSON.stringify(short.slice(0, 40))}`);
  return { acked, writeSec, ...merged.latency, missing: merged.missing, short };
}

/**
 * A built, paired child agent at rest for IDLE_SECONDS, sampled every second: its
 * memory at the end, the most in the second half, and at start; and a bare `node`
 * doing nothing, the floor any Node program stands on.
 */
async function childIdle(
  dir: string,
  cli: string,
  built: string,
): Promise<{
  childRssMB: number;
  childPeakAfterSettleMB: number;
  childStartRssMB: number;
  nodeRssMB: number;
  seconds: number;
  built: string;
}> {
  const root = join(dir, 'idle');
  mkdirSync(root, { recursive: true });
  const t = await startTrosyn(cli, root);
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const rss = (pid: number) => memoryOf(pid)?.rssMB ?? 0;
    const childStartRssMB = Math.round(rss(t.child.pid));
    let peak = 0;
    for (let s = 1; s <= IDLE_SECONDS; s++) {
      await sleep(1000);
      if (s > IDLE_SECONDS / 2) peak = Math.max(peak, rss(t.child.pid));
    }
    return {
      childRssMB: Math.round(rss(t.child.pid)),
      childPeakAfterSettleMB: Math.round(peak),
      childStartRssMB,
      nodeRssMB: Math.round(rss(bare.pid as number)),
      seconds: IDLE_SECONDS,
      built,
    };
  } finally {
    bare.kill();
    await stopTrosyn(t);
  }
}

/**
 * A built child agent's initial sync of SYNC_RECORDS records from a built hub that
 * holds them (loaded first by the hub fixture, with synchronous=off): seconds from
 * the child's start to caught-up, and the peak memory (VmHWM) of both.
 */
async function childInitialSync(
  dir: string,
  cli: string,
): Promise<{
  records: number;
  seconds: number;
  recordsPerSec: number;
  childPeakRssMB: number;
  hubPeakRssMB: number;
  loadSec: number;
}> {
  const root = join(dir, 'child-sync');
  mkdirSync(root, { recursive: true });
  const loadStart = Date.now();
  execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join('bench', 'fixtures', 'hub.ts'),
      'preload',
      join(root, 'hub'),
      '0',
      String(SYNC_RECORDS),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const loadSec = round((Date.now() - loadStart) / 1000, 1);
  const start = Date.now();
  const t = await startTrosyn(cli, root, { caughtUpMs: 600_000 });
  const seconds = round((Date.now() - start) / 1000, 1);
  try {
    return {
      records: SYNC_RECORDS,
      seconds,
      recordsPerSec: Math.round(SYNC_RECORDS / seconds),
      childPeakRssMB: Math.round(memoryOf(t.child.pid)?.hwmMB ?? 0),
      hubPeakRssMB: Math.round(memoryOf(t.hub.pid)?.hwmMB ?? 0),
      loadSec,
    };
  } finally {
    await stopTrosyn(t);
  }
}

/** The most of each memory figure a fixture reports (its `usage`), asked every second until stopped. */
function usagePeaks(fixture: Fixture): { stop(): Promise<Record<string, number>> } {
  const peaks: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      const u = await fixture.request('usage', {}, 10_000).catch(() => undefined);
      for (const [k, v] of Object.entries(u ?? {}))
        if (typeof v === 'number' && k !== 're') peaks[k] = Math.max(peaks[k] ?? 0, v);
      await sleep(1000);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peaks;
    },
  };
}
