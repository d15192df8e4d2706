/**
 * End to end: a hub and its children as separate processes (bench/fixtures/),
 * real TLS on 127.0.0.1, real SQLite files, product defaults (durability `full`).
 *
 * 1. Initial sync hub -> child of 100,000 (median of ROUNDS, a fresh child each)
 *    and of 1,000,000 records (one run): records/s from the child's connection to
 *    caught-up, bytes on the wire, peak RSS of both processes.
 * 2. Baselines measured in the same run: PouchDB 9 replicating the same documents
 *    over HTTP on loopback (LevelDB on both sides), and a raw SQLite bulk insert of
 *    the same rows.
 * 3. Propagation latency child A -> hub -> child B with 2 and with 50 children
 *    connected (A and B in one process: one clock).
 * 4. "Already in sync" at 1,000,000 records: a fresh session to caught-up with
 *    nothing to transfer.
 *
 * `npm run bench -- e2e --quick` (or BENCH_SCALE=0.1) runs it at a tenth of the size.
 * BENCH_E2E_PARTS=propagation (with --quick, so a full run's results stay) runs only
 * part 3, BENCH_E2E_PARTS=sync only the large initial sync (BENCH_LARGE_ROUNDS
 * rounds, with CPU per record of both sides); BENCH_PROFILE=<dir> writes CPU
 * profiles of every process and BENCH_NODE_FLAGS adds Node flags to them
 * (bench/proc.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { median, percentile, perSec, rawSqliteInsert, round, scratch, sourceVersion } from './common.js';
import { cpuMs, Fixture, machineCpuMs, RssSampler, tcpBytes } from './proc.js';

const QUICK = process.argv.includes('--quick');
const SCALE = Number(process.env.BENCH_SCALE ?? (QUICK ? 0.1 : 1));
const SMALL = Math.round(100_000 * SCALE);
const LARGE = Math.round(1_000_000 * SCALE);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** The 1M syncs take half a minute each: fewer rounds. */
const LARGE_ROUNDS = Number(process.env.BENCH_LARGE_ROUNDS ?? 3);
const CHILDREN = Number(process.env.BENCH_CHILDREN ?? 50);
const PROBE_WRITES = Number(process.env.BENCH_PROBE_WRITES ?? (QUICK ? 100 : 500));
const PROBE_WARMUP = 20;
/** One write at most every 20 ms (50 writes/s), each waited for at the reader. */
const PROBE_INTERVAL_MS = 20;
const RECHECK_ROUNDS = 20;
const BATCH = 1000;
const MB = 1e6;
/** Only these parts of the benchmark (one so far: propagation); all when unset. */
const PARTS = process.env.BENCH_E2E_PARTS?.split(',').map((p) => p.trim());

const TARGETS = {
  recordsPerSec1M: 50_000,
  ratioVsPouchdb: 20,
  propagationP99Ms50: 50,
  inSyncCheckMs1M: 10,
  hubPeakRssMB1M: 300,
};

export interface SyncRun {
  records: number;
  /** From the child's connection (TLS and handshake done) to caught-up. */
  ms: number;
  /** From the child agent's start() (opening its store, connecting) to caught-up. */
  fromStartMs: number;
  recordsPerSec: number;
  /** Frame bytes both ways, from the hub's connection statistics. */
  frameBytes: number;
  /** Bytes on the TCP connection both ways (TLS records included), from the kernel (ss). */
  tcpBytes: number;
  frameMBps: number;
  tcpMBps: number;
  hubPeakRssMB: number;
  hubStartRssMB: number;
  childPeakRssMB: number;
  /** CPU time of the hub and child processes during the sync (/proc, 10 ms resolution). */
  hubCpuMs: number;
  childCpuMs: number;
  childCpuUsPerRecord: number;
  /** CPU time everything else on the machine used meanwhile (2 cores: up to 2 s per second). */
  otherCpuMs: number;
  machineIowaitMs: number;
  connectAttempts: number;
}

type Line = Record<string, unknown>;

/** The run with the median duration. */
export function medianRun(runs: SyncRun[]): SyncRun {
  const sorted = [...runs].sort((a, b) => a.ms - b.ms);
  return sorted[Math.floor(sorted.length / 2)] as SyncRun;
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = scratch('trosyn-bench-e2e-');
  const began = performance.now();
  const log = (text: string) => console.log(`[${((performance.now() - began) / 1000).toFixed(0)}s] ${text}`);
  if (PARTS !== undefined) return runParts(PARTS, dir, log);
  const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
  log(`records ${label(SMALL)} and ${label(LARGE)}${SCALE !== 1 ? ` (scale ${SCALE})` : ''}`);

  // --- raw SQLite baseline ------------------------------------------------------------
  const rawSmallMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++)
    rawSmallMs.push(rawSqliteInsert(join(dir, `raw-small-${r}.db`), SMALL, BATCH, 'full'));
  const rawLargeMs = rawSqliteInsert(join(dir, 'raw-large.db'), LARGE, BATCH, 'full');
  const rawSmall = perSec(SMALL, median(rawSmallMs));
  const rawLarge = perSec(LARGE, rawLargeMs);
  log(`raw SQLite insert: ${rawSmall.toLocaleString()} and ${rawLarge.toLocaleString()} rows/s`);

  // --- initial sync, small ------------------------------------------------------------
  const hubDir = join(dir, 'hub');
  const preloadSmall = await preload(hubDir, 0, SMALL);
  log(`hub store preloaded with ${label(SMALL)} in ${(preloadSmall / 1000).toFixed(1)} s`);
  const smallRuns: SyncRun[] = [];
  {
    const hub = await startHub(hubDir);
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const { run: result, child } = await initialSync(
          hub,
          join(dir, `small-${r}`),
          `child-small-${r}`,
          SMALL,
        );
        await child.stop();
        smallRuns.push(result);
        log(
          `initial sync ${label(SMALL)} round ${r + 1}: ${result.recordsPerSec.toLocaleString()} records/s`,
        );
      }
    } finally {
      await hub.fixture.stop();
    }
  }

  // --- initial sync, large, then the in-sync check ------------------------------------------
  const preloadLarge = await preload(hubDir, SMALL, LARGE);
  log(`hub store grown to ${label(LARGE)} in ${(preloadLarge / 1000).toFixed(1)} s`);
  const largeRuns: SyncRun[] = [];
  let recheck: { totalMs: number[]; afterConnectMs: number[]; tlsMs: number[]; transferred: number } = {
    totalMs: [],
    afterConnectMs: [],
    tlsMs: [],
    transferred: 0,
  };
  {
    const hub = await startHub(hubDir);
    try {
      for (let r = 0; r < LARGE_ROUNDS; r++) {
        const { run: result, child } = await initialSync(
          hub,
          join(dir, `large-${r}`),
          `child-large-${r}`,
          LARGE,
        );
        largeRuns.push(result);
        log(
          `initial sync ${label(LARGE)} round ${r + 1}: ${result.recordsPerSec.toLocaleString()} records/s`,
        );
        if (r === LARGE_ROUNDS - 1) {
          // Let the child's last lazy cursor update reach the hub, so that nothing is left to send.
          await sleep(1500);
          recheck = (await child.request('recheck', {
            index: 0,
            rounds: RECHECK_ROUNDS,
            gapMs: 200,
          })) as unknown as typeof recheck;
          log(`in-sync check at ${label(LARGE)}: median ${median(recheck.totalMs).toFixed(1)} ms`);
        }
        await child.stop();
      }
    } finally {
      await hub.fixture.stop();
    }
  }
  const large = medianRun(largeRuns);
  const largeRecordsPerSec = perSec(LARGE, median(largeRuns.map((r) => r.ms)));

  // --- propagation ---------------------------------------------------------------------------
  const propagation = await measurePropagation(join(dir, 'propagation'), log);

  // --- PouchDB ---------------------------------------------------------------------------
  const pouch = await measurePouchdb(join(dir, 'pouchdb'), log);

  // --- results -----------------------------------------------------------------------------
  const small = medianRun(smallRuns);
  const recordsPerSec100k = perSec(SMALL, median(smallRuns.map((r) => r.ms)));
  const pouchdbRecordsPerSec100k = pouch.best?.docsPerSec;
  const ratioVsPouchdb =
    pouchdbRecordsPerSec100k === undefined ? null : round(recordsPerSec100k / pouchdbRecordsPerSec100k, 2);
  const inSyncCheckMs1M = round(median(recheck.totalMs), 2);
  const figures = {
    recordsPerSec100k,
    recordsPerSec1M: largeRecordsPerSec,
    pouchdbRecordsPerSec100k: pouchdbRecordsPerSec100k ?? null,
    ratioVsPouchdb,
    // Memory: the largest peak of any run, not the median one.
    hubPeakRssMB1M: Math.max(...largeRuns.map((r) => r.hubPeakRssMB)),
    childPeakRssMB1M: Math.max(...largeRuns.map((r) => r.childPeakRssMB)),
    propagationP50Ms50: propagation.many.p50,
    propagationP99Ms50: propagation.many.p99,
    propagationP50Ms1: propagation.one.p50,
    propagationP99Ms1: propagation.one.p99,
    inSyncCheckMs1M,
    inSyncCheckAfterConnectMs1M: round(median(recheck.afterConnectMs), 2),
    mbPerSec100k: round(small.tcpMBps, 2),
    mbPerSec1M: round(large.tcpMBps, 2),
    rawSqliteInsertRecordsPerSec100k: rawSmall,
    rawSqliteInsertRecordsPerSec1M: rawLarge,
    ratioVsRawSqlite100k: round(recordsPerSec100k / rawSmall),
    ratioVsRawSqlite1M: round(largeRecordsPerSec / rawLarge),
  };
  const targets = {
    recordsPerSec1M: {
      target: `>= ${TARGETS.recordsPerSec1M}`,
      met: figures.recordsPerSec1M >= TARGETS.recordsPerSec1M,
    },
    ratioVsPouchdb: {
      target: `>= ${TARGETS.ratioVsPouchdb}`,
      met: ratioVsPouchdb !== null && ratioVsPouchdb >= TARGETS.ratioVsPouchdb,
    },
    propagationP99Ms50: {
      target: `<= ${TARGETS.propagationP99Ms50}`,
      met: figures.propagationP99Ms50 <= TARGETS.propagationP99Ms50,
    },
    inSyncCheckMs1M: {
      target: `<= ${TARGETS.inSyncCheckMs1M}`,
      met: inSyncCheckMs1M <= TARGETS.inSyncCheckMs1M,
    },
    hubPeakRssMB1M: {
      target: `<= ${TARGETS.hubPeakRssMB1M}`,
      met: figures.hubPeakRssMB1M <= TARGETS.hubPeakRssMB1M,
    },
  };

  console.log('');
  console.log(
    `records (small, large)      ${SMALL.toLocaleString()}, ${LARGE.toLocaleString()} (sampleBody, ~316 B JSON)`,
  );
  console.log(
    `raw SQLite insert           ${rawSmall.toLocaleString()} / ${rawLarge.toLocaleString()} rows/s   (baseline, 1.00)`,
  );
  console.log(
    `sync ${label(SMALL).padEnd(5)} hub -> child    ${recordsPerSec100k.toLocaleString()} records/s   (x${figures.ratioVsRawSqlite100k} raw SQLite; ${figures.mbPerSec100k} MB/s on the wire)`,
  );
  console.log(
    `sync ${label(LARGE).padEnd(5)} hub -> child    ${figures.recordsPerSec1M.toLocaleString()} records/s   (x${figures.ratioVsRawSqlite1M} raw SQLite; ${figures.mbPerSec1M} MB/s; target >= ${TARGETS.recordsPerSec1M.toLocaleString()}: ${met(targets.recordsPerSec1M.met)})`,
  );
  console.log(
    `PouchDB ${label(SMALL).padEnd(5)}             ${pouchdbRecordsPerSec100k?.toLocaleString() ?? 'n/a'} docs/s   (sync is x${ratioVsPouchdb ?? 'n/a'}; target >= ${TARGETS.ratioVsPouchdb}: ${met(targets.ratioVsPouchdb.met)})`,
  );
  console.log(
    `peak RSS at ${label(LARGE)}           hub ${figures.hubPeakRssMB1M} MiB (target <= ${TARGETS.hubPeakRssMB1M}: ${met(targets.hubPeakRssMB1M.met)}; ${large.hubStartRssMB} MiB at start), child ${figures.childPeakRssMB1M} MiB`,
  );
  console.log(
    `propagation A->hub->B       2 children p50 ${figures.propagationP50Ms1} / p99 ${figures.propagationP99Ms1} ms; ${CHILDREN} children p50 ${figures.propagationP50Ms50} / p99 ${figures.propagationP99Ms50} ms (target p99 <= ${TARGETS.propagationP99Ms50}: ${met(targets.propagationP99Ms50.met)})`,
  );
  console.log(
    `in-sync check at ${label(LARGE).padEnd(5)}     ${inSyncCheckMs1M} ms fresh session, ${figures.inSyncCheckAfterConnectMs1M} ms after connect (target <= ${TARGETS.inSyncCheckMs1M}: ${met(targets.inSyncCheckMs1M.met)})`,
  );

  return {
    ...figures,
    targets,
    scale: SCALE,
    records: { small: SMALL, large: LARGE },
    setup: {
      processes:
        'hub, each child set and each PouchDB side in its own process (node --import tsx bench/fixtures/*.ts); TLS 1.3 on 127.0.0.1',
      durability:
        'product default (synchronous=full) on hub and children; hub store preloaded with synchronous=off in a separate process',
      syncTiming:
        'child process clock: from the Child "connected" event (TLS + handshake done) to its first "caught-up"',
      wire: 'mbPerSec*: TCP bytes both ways on the hub port from ss -ti (TLS records included), 10^6 bytes per MB; frame bytes from the hub Connection statistics alongside',
      rss: 'peak of VmRSS sampled every 100 ms and VmHWM from /proc, MiB, of the fixture processes, which run the TypeScript sources through tsx (hubStartRssMB: the hub before any child connected)',
      rounds: { small: ROUNDS, large: LARGE_ROUNDS },
      batchSize: BATCH,
      rawSqlite:
        'better-sqlite3, one WITHOUT ROWID table, WAL, synchronous=full, transactions of 1000 rows, JSON built outside the timing',
    },
    sync100k: { medianRun: small, runs: smallRuns, preloadMs: Math.round(preloadSmall) },
    sync1M: { medianRun: large, runs: largeRuns, preloadMs: Math.round(preloadLarge) },
    inSyncCheck: {
      rounds: RECHECK_ROUNDS,
      what: 'pause() then resume() of a fully synced child: new TCP + TLS + handshake + sync.open both ways to caught-up; afterConnect = from the connection being up to caught-up',
      totalMs: summary(recheck.totalMs),
      afterConnectMs: summary(recheck.afterConnectMs),
      bareTlsConnectMs: summary(recheck.tlsMs),
      bareTls:
        'a bare TLS 1.3 connection to the hub with the child certificate, timed to secureConnect: the TCP + TLS share of a fresh session',
      revisionsTransferred: recheck.transferred,
    },
    propagation: propagation.details,
    pouchdb: pouch.details,
    rawSqlite: { msPerRoundSmall: rawSmallMs.map(Math.round), msLarge: Math.round(rawLargeMs) },
    source: sourceVersion(),
  };
}

/** Some parts only (BENCH_E2E_PARTS): for development and profiling, never a full result. */
async function runParts(
  parts: string[],
  dir: string,
  log: (text: string) => void,
): Promise<Record<string, unknown>> {
  if (!QUICK)
    throw new Error('BENCH_E2E_PARTS runs part of the benchmark: add --quick, so the full results stay');
  const known = ['propagation', 'sync'];
  const unknown = parts.filter((p) => !known.includes(p));
  if (unknown.length > 0)
    throw new Error(`BENCH_E2E_PARTS: unknown part ${unknown.join(', ')}; choose from ${known.join(', ')}`);
  const result: Record<string, unknown> = { parts, source: sourceVersion() };
  if (parts.includes('sync')) Object.assign(result, await measureLargeSync(join(dir, 'sync'), log));
  if (!parts.includes('propagation')) return result;
  const propagation = await measurePropagation(join(dir, 'propagation'), log);
  console.log(
    `propagation A->hub->B       2 children p50 ${propagation.one.p50} / p99 ${propagation.one.p99} ms; ${CHILDREN} children p50 ${propagation.many.p50} / p99 ${propagation.many.p99} ms`,
  );
  return {
    ...result,
    propagationP50Ms50: propagation.many.p50,
    propagationP99Ms50: propagation.many.p99,
    propagationP50Ms1: propagation.one.p50,
    propagationP99Ms1: propagation.one.p99,
    propagation: propagation.details,
  };
}

/** The large initial sync alone, beside the raw insert of as many rows: for profiling its costs. */
async function measureLargeSync(dir: string, log: (text: string) => void): Promise<Record<string, unknown>> {
  const hubDir = join(dir, 'hub');
  await preload(hubDir, 0, LARGE);
  const hub = await startHub(hubDir);
  const runs: SyncRun[] = [];
  const rawMs: number[] = [];
  try {
    for (let r = 0; r < LARGE_ROUNDS; r++) {
      rawMs.push(rawSqliteInsert(join(dir, `raw-${r}.db`), LARGE, BATCH, 'full'));
      const { run, child } = await initialSync(hub, join(dir, `large-${r}`), `child-large-${r}`, LARGE);
      await child.stop();
      runs.push(run);
      log(
        `initial sync round ${r + 1}: ${run.recordsPerSec.toLocaleString()} records/s (raw ${perSec(LARGE, rawMs[r] as number).toLocaleString()}); CPU per record hub ${round((run.hubCpuMs * 1000) / LARGE, 1)} µs, child ${run.childCpuUsPerRecord} µs`,
      );
    }
  } finally {
    await hub.fixture.stop();
  }
  const recordsPerSec = perSec(LARGE, median(runs.map((r) => r.ms)));
  const raw = perSec(LARGE, median(rawMs));
  console.log(
    `sync ${LARGE} hub -> child   ${recordsPerSec.toLocaleString()} records/s (x${round(recordsPerSec / raw)} raw SQLite ${raw.toLocaleString()})`,
  );
  return { syncRecordsPerSec: recordsPerSec, rawSqliteInsertRecordsPerSec: raw, syncRuns: runs };
}

const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

export function summary(values: number[]) {
  return {
    n: values.length,
    p50: round(percentile(values, 50), 2),
    p90: round(percentile(values, 90), 2),
    p99: round(percentile(values, 99), 2),
    max: round(Math.max(...values), 2),
    min: round(Math.min(...values), 2),
  };
}

/**
 * Writes records from..to-1 into the hub store in a separate process (synchronous=off
 * on SQLite; `hub.env` may name another store, see bench/fixtures/hub.ts); its duration.
 */
export async function preload(
  hubDir: string,
  from: number,
  to: number,
  hub: HubOptions = {},
): Promise<number> {
  const { fixture, ready } = await Fixture.start(
    'preload',
    'hub',
    ['preload', hubDir, String(from), String(to)],
    {
      readyTimeoutMs: 1_800_000,
      ...(hub.env && { env: hub.env }),
    },
  );
  await fixture.whenExited();
  if (ready.records !== to) throw new Error(`preload left ${String(ready.records)} records, expected ${to}`);
  return ready.ms as number;
}

/** How a hub fixture is started: its name (profiles go to BENCH_PROFILE/<name>) and environment. */
export interface HubOptions {
  name?: string;
  env?: Record<string, string>;
}

export interface RunningHub {
  fixture: Fixture;
  port: number;
  hubId: string;
  /** RSS of the started hub before any child connected (the Node + tsx + store baseline). */
  startRssMB: number;
}

export async function startHub(hubDir: string, hub: HubOptions = {}): Promise<RunningHub> {
  const { fixture, ready } = await Fixture.start(hub.name ?? 'hub', 'hub', ['serve', hubDir], {
    ...(hub.env && { env: hub.env }),
  });
  return {
    fixture,
    port: ready.port as number,
    hubId: ready.deviceId as string,
    startRssMB: ready.rssMB as number,
  };
}

/** One child process syncing the hub's whole store for the first time; the child stays up. */
export async function initialSync(
  hub: RunningHub,
  dir: string,
  name: string,
  expected: number,
): Promise<{ run: SyncRun; child: Fixture }> {
  const { fixture: child, ready } = await Fixture.start(name, 'children', [
    dir,
    '1',
    hub.hubId,
    String(hub.port),
    name,
  ]);
  const deviceId = (ready.deviceIds as string[])[0] as string;
  await hub.fixture.request('allow', { deviceIds: [deviceId] });
  const sampler = new RssSampler([hub.fixture.pid, child.pid]);
  const cpu0 = [cpuMs(hub.fixture.pid), cpuMs(child.pid)] as const;
  const machine0 = machineCpuMs();
  await child.request('start');
  const c = ((await child.request('caughtUp')).children as Line[])[0] as Line;
  const cpu1 = [cpuMs(hub.fixture.pid), cpuMs(child.pid)] as const;
  const machine1 = machineCpuMs();
  const peaks = sampler.stop();
  if (c.records !== expected) {
    await child.stop();
    throw new Error(`${name} holds ${String(c.records)} records after catching up, expected ${expected}`);
  }
  const conns = (await hub.fixture.request('connections')).connections as Line[];
  const conn = conns.find((x) => x.peer === deviceId);
  const frameBytes = conn ? (conn.bytesIn as number) + (conn.bytesOut as number) : 0;
  const tcp = tcpBytes(hub.port);
  const ms = (c.caughtUpAt as number) - (c.connectedAt as number);
  const seconds = ms / 1000;
  return {
    child,
    run: {
      records: expected,
      ms: Math.round(ms),
      fromStartMs: Math.round((c.caughtUpAt as number) - (c.startedAt as number)),
      recordsPerSec: perSec(expected, ms),
      frameBytes,
      tcpBytes: tcp.sent + tcp.received,
      frameMBps: round(frameBytes / MB / seconds, 2),
      tcpMBps: round((tcp.sent + tcp.received) / MB / seconds, 2),
      hubPeakRssMB: peaks.get(hub.fixture.pid) ?? 0,
      hubStartRssMB: hub.startRssMB,
      childPeakRssMB: peaks.get(child.pid) ?? 0,
      hubCpuMs: cpu1[0] - cpu0[0],
      childCpuMs: cpu1[1] - cpu0[1],
      childCpuUsPerRecord: round(((cpu1[1] - cpu0[1]) * 1000) / expected, 1),
      otherCpuMs: Math.max(0, machine1.busy - machine0.busy - (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])),
      machineIowaitMs: machine1.iowait - machine0.iowait,
      connectAttempts: c.attempts as number,
    },
  };
}

interface Latency {
  p50: number;
  p99: number;
}

/**
 * Propagation A -> hub -> B on an empty hub. The other children connect first, so
 * that B's session is the hub's last subscriber (the worst place in the fan-out);
 * the 50-children figure is taken first, then the others disconnect and the
 * 2-children figure is taken.
 */
export async function measurePropagation(
  dir: string,
  log: (text: string) => void,
  hubOptions: HubOptions = {},
): Promise<{ many: Latency; one: Latency; details: Record<string, unknown> }> {
  const hub = await startHub(join(dir, 'hub'), hubOptions);
  const started: Fixture[] = [hub.fixture];
  try {
    const crowd = await Fixture.start('crowd', 'children', [
      dir,
      String(CHILDREN - 2),
      hub.hubId,
      String(hub.port),
      'crowd',
    ]);
    started.push(crowd.fixture);
    const probe = await Fixture.start('probe', 'children', [dir, '2', hub.hubId, String(hub.port), 'probe']);
    started.push(probe.fixture);
    await hub.fixture.request('allow', {
      deviceIds: [...(crowd.ready.deviceIds as string[]), ...(probe.ready.deviceIds as string[])],
    });
    await crowd.fixture.request('start');
    await crowd.fixture.request('caughtUp');
    await probe.fixture.request('start');
    await probe.fixture.request('caughtUp');
    const connected = ((await hub.fixture.request('status')).children as unknown[]).length;
    log(`propagation: ${connected} children connected`);

    const measure = async (tag: string) => {
      const pids = started.filter((f) => f.proc.exitCode === null).map((f) => f.pid);
      const cpu0 = pids.map(cpuMs);
      const machine0 = machineCpuMs();
      const t0 = performance.now();
      const result = await probe.fixture.request('probe', {
        writer: 0,
        reader: 1,
        writes: PROBE_WRITES,
        warmup: PROBE_WARMUP,
        intervalMs: PROBE_INTERVAL_MS,
        tag,
      });
      const cpu = pids.map((pid, i) => cpuMs(pid) - (cpu0[i] as number));
      const machine1 = machineCpuMs();
      const seconds = (performance.now() - t0) / 1000;
      const ours = cpu.reduce((a, b) => a + b, 0);
      const latency = result.latencyMs as number[];
      const commit = result.commitMs as number[];
      return {
        latencyMs: summary(latency),
        writerCommitMs: summary(commit),
        timeouts: result.timeouts as number,
        otherCpuMsPerSec: Math.round(Math.max(0, machine1.busy - machine0.busy - ours) / seconds),
        cpuMsPerWrite: Object.fromEntries(
          started
            .filter((f) => pids.includes(f.pid))
            .map((f) => [
              f.name,
              round((cpu[pids.indexOf(f.pid)] as number) / (PROBE_WRITES + PROBE_WARMUP), 2),
            ]),
        ),
      };
    };
    const many = await measure('many');
    log(`propagation with ${connected} children: p50 ${many.latencyMs.p50} ms, p99 ${many.latencyMs.p99} ms`);
    await crowd.fixture.stop();
    await sleep(1000);
    const remaining = ((await hub.fixture.request('status')).children as unknown[]).length;
    const one = await measure('one');
    log(`propagation with ${remaining} children: p50 ${one.latencyMs.p50} ms, p99 ${one.latencyMs.p99} ms`);
    await probe.fixture.stop();
    return {
      many: { p50: many.latencyMs.p50, p99: many.latencyMs.p99 },
      one: { p50: one.latencyMs.p50, p99: one.latencyMs.p99 },
      details: {
        what: "time from put() on child A to the change event of child B (both in the \"probe\" process: one clock); includes A's own commit, A -> hub, the hub's commit and fan-out, hub -> B and B's commit",
        layout: `hub process; "probe" process with children A and B; "crowd" process with the other ${CHILDREN - 2} children (connected first, so B is the hub's last subscriber)`,
        writes: PROBE_WRITES,
        warmup: PROBE_WARMUP,
        intervalMs: PROBE_INTERVAL_MS,
        body: 'sampleBody (~316 B JSON)',
        children50: { connected, ...many },
        children1: {
          connected: remaining,
          note: 'the writer A and one receiving child B: one child on the receiving side',
          ...one,
        },
      },
    };
  } finally {
    for (const f of started.reverse()) await f.stop();
  }
}

/**
 * PouchDB replication of the same documents: the source (LevelDB on disk) served by
 * express-pouchdb over HTTP on 127.0.0.1 in one process, replicated into a local
 * LevelDB PouchDB in another; with PouchDB's default batch size (100) and with 1000
 * (the batch size of the sync above). The faster one is the baseline.
 */
async function measurePouchdb(
  dir: string,
  log: (text: string) => void,
): Promise<{ best: { docsPerSec: number } | undefined; details: Record<string, unknown> }> {
  let server: Fixture | undefined;
  let client: Fixture | undefined;
  try {
    const s = await Fixture.start('pouchdb-server', 'pouchdb-server', [join(dir, 'server'), String(SMALL)], {
      readyTimeoutMs: 1_800_000,
    });
    server = s.fixture;
    log(
      `PouchDB source loaded with ${String(s.ready.docs)} docs in ${((s.ready.loadMs as number) / 1000).toFixed(1)} s`,
    );
    const c = await Fixture.start('pouchdb-client', 'pouchdb-client', [join(dir, 'client')]);
    client = c.fixture;
    const url = `http://127.0.0.1:${String(s.ready.port)}/source`;
    const runs: Array<Record<string, unknown> & { docsPerSec: number }> = [];
    for (const batchSize of [undefined, 1000]) {
      const sampler = new RssSampler([server.pid, client.pid]);
      const r = await client.request('replicate', {
        url,
        name: `target-${batchSize ?? 'default'}`,
        ...(batchSize !== undefined && { batchSize }),
      });
      const peaks = sampler.stop();
      if (r.docCount !== SMALL)
        throw new Error(`PouchDB replicated ${String(r.docCount)} docs, expected ${SMALL}`);
      const docsPerSec = perSec(SMALL, r.ms as number);
      runs.push({
        batchSize: batchSize ?? 100,
        ms: Math.round(r.ms as number),
        docsPerSec,
        docsWritten: r.docsWritten,
        serverPeakRssMB: peaks.get(server.pid),
        clientPeakRssMB: peaks.get(client.pid),
      });
      log(`PouchDB batch_size ${batchSize ?? 'default (100)'}: ${docsPerSec.toLocaleString()} docs/s`);
    }
    const best = [...runs].sort((a, b) => b.docsPerSec - a.docsPerSec)[0];
    return {
      best,
      details: {
        versions: packageVersions(['pouchdb', 'express-pouchdb']),
        source: `PouchDB on LevelDB (adapter ${String(s.ready.adapter)}), ${SMALL} docs of sampleBody, served by express-pouchdb (mode minimumForPouchDB) over HTTP on 127.0.0.1`,
        target: 'PouchDB on LevelDB on disk, a fresh database per run, in a separate process',
        baseline: 'the faster of the runs',
        runs,
      },
    };
  } catch (err) {
    // No number is made up: the reason goes into the results instead.
    const reason = (err as Error).message;
    log(`PouchDB comparison failed: ${reason}`);
    return { best: undefined, details: { error: reason } };
  } finally {
    await client?.stop();
    await server?.stop();
  }
}

function packageVersions(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    try {
      const text = readFileSync(join('node_modules', name, 'package.json'), 'utf8');
      out[name] = (JSON.parse(text) as { version: string }).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  return out;
}
