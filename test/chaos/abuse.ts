/**
 * Abuse: a hub and well-behaved children on loopback, and four kinds of abuse from
 * other loopback addresses: a flood of TLS connection attempts from one address,
 * TLS handshakes that never finish, a paired child writing as fast as it can, and
 * a paired identity sending garbage frames after a valid handshake. The
 * propagation latency between the well-behaved children (a write on one until it
 * is in the stores of the others) is measured quiet, then during each phase of
 * abuse; the goal is that abuse at most doubles it. Afterwards every acknowledged
 * write must be on every node, no well-behaved child may have been disconnected,
 * the hub must still run, and the limits that acted must show in the hub's log
 * (its JSON lines, counted by `code`) and in its Prometheus counters. The fast
 * writer meets the hub's per-device write limit at its default: every write it was
 * told was written must be in the hub's store after the phase, and the revisions
 * the limit held must be as many in the log as in the counters.
 *
 * The abuse runs in phases, each measured: in the full form one kind at a time
 * (which of them costs the others what) and then all four at once (the worst
 * case); in the short form only all at once, to stay within the test's time. The
 * attackers run in a worker thread, so their sockets never delay the timers that
 * measure the latency (they share the machine's cores with the hub all the same).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { freePort, pairWithHub, runCli } from '../e2e/helpers.js';
import type { AttackCounts, AttackPlan } from './abuse-worker.js';
import { type AckedWrite, COLLECTION, Cluster, type ChaosNode, errorCode } from './cluster.js';
import { type ExperimentResult, outcome } from './result.js';
import { SeededRandom } from './seeded.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../../src/transport/server.js';

/** One kind of abuse. */
export type AbuseKind = 'flood' | 'slow' | 'writer' | 'garbage';

/** Options of {@link abuse}. */
export interface AbuseOptions {
  seed: number;
  /** A fresh directory for the nodes' data. */
  dir: string;
  /** Well-behaved children (besides the fast writer). Default 3. */
  children?: number;
  /** Latency samples taken before any abuse. */
  quietSamples: number;
  /** The phases of abuse, one after the other: the kinds each runs at once. */
  phases: AbuseKind[][];
  /** Shortest length of a phase (ms); a flood runs to its end within `boundMs`. */
  phaseMs: number;
  /** TLS connection attempts of the flood, from one address. */
  attempts: number;
  /** Flood attempts in flight at once. Default 64. */
  floodConcurrency?: number;
  /** Addresses the never-finishing handshakes come from, and sockets held from each. */
  slowAddresses: number;
  slowPerAddress: number;
  /** Writes the fast writer keeps in flight. Default 4. */
  writerConcurrency?: number;
  /** Whether missing the 2x latency goal is a violation (the full form's timing run). */
  judgeLatency: boolean;
  /** Longest a phase may last (ms). Default 90 s. */
  boundMs?: number;
  /** Time allowed to converge after each phase (ms). Default 60 s. */
  convergeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Latency figures of one stretch of samples (ms). */
export interface LatencyFigures {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** What one phase measured. */
export interface PhaseFigures {
  kinds: AbuseKind[];
  latency: LatencyFigures;
  /** abused p50 / quiet p50, and the same for p99. */
  ratioP50: number;
  ratioP99: number;
  /** Probes that did not reach every other well-behaved child within the probe's limit. */
  lateProbes: number;
  durationMs: number;
  /** From the end of the phase until every node held every acknowledged write (ms). */
  drainMs: number;
  attacks: AttackCounts;
  writer?: {
    acked: number;
    /** Of the acknowledged writes, those in the hub's store once the phase drained (all must be). */
    stored: number;
    failed: number;
    perSecond: number;
    failureCodes: Record<string, number>;
  };
}

/** The latency goal: abuse at most doubles the quiet figure (judged on the p50). */
export const LATENCY_GOAL_RATIO = 2;
/** Garbage after the handshake: the codes the hub may end such a connection with. */
const GARBAGE_CODES = ['BAD_FRAME', 'FRAME_TOO_LARGE', 'INVALID_MESSAGE', 'UNKNOWN_MESSAGE_TYPE'];
/**
 * Starts the attackers' module in a worker thread: TypeScript, loaded through tsx,
 * whose loader hooks a worker does not inherit.
 */
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => {
  tsx.register();
  return import(${JSON.stringify(new URL('./abuse-worker.ts', import.meta.url).href)});
});`;
/** A probe that takes longer than this is counted late and given up (ms). */
const PROBE_LIMIT_MS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The p-th percentile (0..100) of sorted values, nearest rank. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

function figures(samples: readonly number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    samples: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
  };
}

/** Prometheus text to `name{labels}` -> value (comments left out). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    const value = Number(line.slice(at + 1));
    if (Number.isFinite(value)) out.set(line.slice(0, at), value);
  }
  return out;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`the hub's metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** The counters (`…_total`) that grew between two scrapes, and by how much. */
function countersMoved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [key, value] of after) {
    const name = key.split('{')[0] as string;
    if (!name.endsWith('_total')) continue;
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) moved[key] = delta;
  }
  return moved;
}

/** What the hub's write-limit lines (`device writes throttled`) add up to. */
export interface ThrottleLog {
  lines: number;
  batches: number;
  revisions: number;
  heldMs: number;
}

/** The hub's JSON log lines (its log file and any it rolled over to), counted by `code`. */
function hubLog(dir: string): {
  lines: number;
  bytes: number;
  codes: Record<string, number>;
  refusals: Record<string, number>;
  throttled: ThrottleLog;
} {
  const codes: Record<string, number> = {};
  const refusals: Record<string, number> = {};
  const throttled: ThrottleLog = { lines: 0, batches: 0, revisions: 0, heldMs: 0 };
  let lines = 0;
  let bytes = 0;
  for (const f of readdirSync(dir).filter((x) => /^agent(\.\d+)?\.log$/.test(x))) {
    const text = readFileSync(join(dir, f), 'utf8');
    bytes += Buffer.byteLength(text);
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      lines++;
      let line: {
        code?: unknown;
        count?: unknown;
        msg?: unknown;
        err?: { code?: unknown };
        batches?: unknown;
        revisions?: unknown;
        heldMs?: unknown;
      };
      try {
        line = JSON.parse(raw) as typeof line;
      } catch {
        continue;
      }
      // The per-device write limit's lines: the first hold of a device, then a count a minute.
      if (line.msg === 'device writes throttled') {
        throttled.lines++;
        throttled.batches += Number(line.batches) || 0;
        throttled.revisions += Number(line.revisions) || 0;
        throttled.heldMs += Number(line.heldMs) || 0;
      }
      const code = typeof line.code === 'string' ? line.code : line.err?.code;
      if (typeof code !== 'string') continue;
      codes[code] = (codes[code] ?? 0) + 1;
      // The sync service's refusal lines say how many refusals each stands for.
      if (line.msg === 'connections refused' && typeof line.count === 'number')
        refusals[code] = (refusals[code] ?? 0) + line.count;
    }
  }
  return { lines, bytes, codes, refusals, throttled };
}

/** How many of `writes` the node's store holds (each by its revision). */
function storedOn(node: ChaosNode, writes: readonly AckedWrite[]): number {
  const db = new Database(join(node.data, 'trosyn.db'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const stmt = db.prepare('SELECT 1 FROM revisions WHERE collection = ? AND record_id = ? AND rev = ?');
    return writes.filter((w) => stmt.get(COLLECTION, w.id, w.rev) !== undefined).length;
  } finally {
    db.close();
  }
}

/** Read-only handles on the well-behaved children's stores, to see a revision arrive. */
class Arrivals {
  private readonly dbs: Array<{ name: string; has: (id: string, rev: string) => boolean; close(): void }>;

  constructor(nodes: ChaosNode[]) {
    this.dbs = nodes.map((n) => {
      const db = new Database(join(n.data, 'trosyn.db'), { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      const stmt = db.prepare('SELECT 1 FROM revisions WHERE collection = ? AND record_id = ? AND rev = ?');
      return {
        name: n.name,
        has: (id, rev) => stmt.get(COLLECTION, id, rev) !== undefined,
        close: () => db.close(),
      };
    });
  }

  /** Waits until every store but `from`'s holds the revision; the time it took (ms), or undefined past the limit. */
  async wait(from: string, id: string, rev: string, since: number): Promise<number | undefined> {
    const waiting = new Set(this.dbs.filter((d) => d.name !== from));
    for (;;) {
      for (const d of [...waiting]) if (d.has(id, rev)) waiting.delete(d);
      const now = performance.now();
      if (waiting.size === 0) return now - since;
      if (now - since > PROBE_LIMIT_MS) return undefined;
      await sleep(1);
    }
  }

  close(): void {
    for (const d of this.dbs) d.close();
  }
}

/** Runs the abuse experiment; resolves with the figures (it does not judge the log or stores: see `problems`). */
export async function abuse(o: AbuseOptions): Promise<ExperimentResult> {
  const began = Date.now();
  const rng = new SeededRandom(o.seed);
  const port = await freePort();
  const metricsPort = await freePort();
  const good = o.children ?? 3;
  const cluster = new Cluster(o.dir, good + 1, {
    hubArgs: [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--no-discovery',
      '--no-admin-api',
      '--log-format',
      'json',
      '--metrics-port',
      String(metricsPort),
    ],
    childArgs: ['--hub', `127.0.0.1:${port}`, '--no-discovery', '--retry-max', '1000', '--api-port', '0'],
    pairAddress: `127.0.0.1:${port}`,
    childWrites: 'api',
  });
  const children = cluster.children.slice(0, good);
  const writer = cluster.children[good] as ChaosNode;
  const violations: string[] = [];
  let arrivals: Arrivals | undefined;
  let worker: Worker | undefined;
  let writing = false;
  try {
    // Started side by side: the hub, then every child paired with a code of its own and started.
    const started = await cluster.startNode(cluster.hub);
    const garbageDir = join(o.dir, 'garbage');
    const codes = [started.pairingCode as string];
    for (let i = 1; i < cluster.children.length + 1; i++)
      codes.push((await runCli(['pairing-code', '--data', cluster.hub.data])).code as string);
    await Promise.all(
      [...cluster.children, { name: 'garbage', data: garbageDir } as ChaosNode].map(async (node, i) => {
        await pairWithHub(codes[i] as string, node.data, port, node.name);
        if (node.name !== 'garbage') await cluster.startNode(node);
      }),
    );
    const stuckAtStart = await cluster.unconnected(15_000);
    if (stuckAtStart.length > 0) throw new Error(`${stuckAtStart.join(', ')} never connected`);
    arrivals = new Arrivals(children);
    const seen = children.map((c) => c.agent?.lines.length ?? 0);
    const metricsBefore = await scrape(metricsPort);

    // One probe: a write on a well-behaved child, until it is in the others' stores.
    const probeRng = rng.fork('probes');
    let probes = 0;
    const probe = async (phase: string): Promise<number | undefined> => {
      const node = children[probes % children.length] as ChaosNode;
      const id = `probe-${++probes}`;
      const value = Math.floor(probeRng.next() * 1_000_000);
      cluster.phase = phase;
      const rev = await cluster.write(node, id, { by: node.name, value });
      const since = performance.now();
      cluster.acked.push({ node: node.name, id, value, rev, phase });
      return arrivals?.wait(node.name, id, rev, since);
    };

    const quiet: number[] = [];
    let lateQuiet = 0;
    for (let i = 0; i < o.quietSamples; i++) {
      const ms = await probe('quiet');
      if (ms === undefined) lateQuiet++;
      else quiet.push(ms);
      await sleep(20);
    }
    const quietFigures = figures(quiet);
    o.log?.(`quiet: p50 ${quietFigures.p50} ms, p99 ${quietFigures.p99} ms over ${quiet.length} probes`);
    if (lateQuiet > 0) violations.push(`${lateQuiet} quiet probes took longer than ${PROBE_LIMIT_MS} ms`);

    const garbageIdentity = {
      keyPem: readFileSync(join(garbageDir, 'identity', 'key.pem'), 'utf8'),
      certPem: readFileSync(join(garbageDir, 'identity', 'cert.pem'), 'utf8'),
    };
    const phases: PhaseFigures[] = [];
    let writes = 0;
    for (const [index, kinds] of o.phases.entries()) {
      const label = kinds.length === 4 ? 'all' : kinds.join('+');
      const phase = `abuse-${index + 1}-${label}`;
      const bound = o.boundMs ?? 90_000;
      const plan: AttackPlan = {
        port,
        seed: o.seed + index,
        boundMs: bound,
        ...(kinds.includes('flood') && {
          flood: { address: '127.0.10.1', attempts: o.attempts, concurrency: o.floodConcurrency ?? 64 },
        }),
        ...(kinds.includes('slow') && {
          slow: {
            addresses: Array.from({ length: o.slowAddresses }, (_, i) => `127.0.20.${i + 1}`),
            perAddress: o.slowPerAddress,
            // The cluster's hub runs with the product's handshake limit.
            limitMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
          },
        }),
        ...(kinds.includes('garbage') && { garbage: { address: '127.0.30.1', ...garbageIdentity } }),
      };
      const phaseStart = Date.now();
      // The flood ends by itself, once every attempt is made: the phase lasts at least that long.
      let floodOver = !plan.flood;
      const attacks =
        plan.flood || plan.slow || plan.garbage
          ? new Promise<AttackCounts>((resolve, reject) => {
              const w = new Worker(WORKER_BOOT, { eval: true, workerData: plan });
              worker = w;
              w.on('message', (m: { floodDone?: true; counts?: AttackCounts }) => {
                if (m.floodDone) floodOver = true;
                if (m.counts) resolve(m.counts);
              });
              w.once('error', reject);
              w.once('exit', (code) => reject(new Error(`the attackers' worker exited (${code})`)));
            })
          : Promise.resolve({} as AttackCounts);
      let attackersFailed = false;
      attacks.catch(() => (attackersFailed = true));
      // The fast writer: `writerConcurrency` writes in flight, each followed at once by the next.
      const writerCounts = { acked: 0, failed: 0, failureCodes: {} as Record<string, number> };
      writing = kinds.includes('writer');
      const writerLoops = writing
        ? Array.from({ length: o.writerConcurrency ?? 4 }, async () => {
            while (writing) {
              const id = `w-${++writes}`;
              const value = writes;
              try {
                const rev = await cluster.write(writer, id, { by: writer.name, value });
                cluster.acked.push({ node: writer.name, id, value, rev, phase });
                writerCounts.acked++;
              } catch (err) {
                writerCounts.failed++;
                const code = errorCode(err);
                writerCounts.failureCodes[code] = (writerCounts.failureCodes[code] ?? 0) + 1;
                await sleep(50);
              }
            }
          })
        : [];
      const samples: number[] = [];
      let late = 0;
      while (
        (Date.now() - phaseStart < o.phaseMs || !floodOver) &&
        Date.now() - phaseStart < bound &&
        !attackersFailed &&
        cluster.hub.agent?.proc.exitCode === null
      ) {
        const ms = await probe(phase).catch(() => undefined);
        if (ms === undefined) late++;
        else samples.push(ms);
        await sleep(20);
      }
      const durationMs = Date.now() - phaseStart;
      writing = false;
      await Promise.all(writerLoops);
      const running = worker as Worker | undefined;
      running?.postMessage('stop');
      const counts = await attacks;
      await running?.terminate();
      worker = undefined;
      const hubExited =
        cluster.hub.agent?.proc.exitCode !== null || cluster.hub.agent?.proc.signalCode !== null;
      if (hubExited) {
        violations.push(`the hub exited during ${phase}: ${cluster.exited()}`);
        break;
      }
      const drainMs = await cluster.converge(o.convergeTimeoutMs ?? 60_000, `after ${phase}`);
      // The fast writer's acknowledged writes, every one in the hub's store: the write limit holds, never drops.
      const writerStored = kinds.includes('writer')
        ? storedOn(
            cluster.hub,
            cluster.acked.filter((w) => w.node === writer.name && w.phase === phase),
          )
        : 0;
      const latency = figures(samples);
      const round = (x: number) => Math.round(x * 100) / 100;
      const result: PhaseFigures = {
        kinds,
        latency,
        ratioP50: round(latency.p50 / quietFigures.p50),
        ratioP99: round(latency.p99 / quietFigures.p99),
        lateProbes: late,
        durationMs,
        drainMs,
        attacks: counts,
        ...(kinds.includes('writer') && {
          writer: {
            ...writerCounts,
            stored: writerStored,
            perSecond: Math.round((writerCounts.acked * 1000) / durationMs),
          },
        }),
      };
      phases.push(result);
      o.log?.(
        `${label}: p50 ${latency.p50} ms (x${result.ratioP50}), p99 ${latency.p99} ms (x${result.ratioP99}), ` +
          `${late} late, drained in ${drainMs} ms; ${JSON.stringify({ ...counts, ...(result.writer && { writer: result.writer }) })}`,
      );
      if (late > 0) violations.push(`${late} probes took longer than ${PROBE_LIMIT_MS} ms during ${phase}`);
      if (result.writer && result.writer.stored !== result.writer.acked)
        violations.push(
          `${phase}: ${result.writer.acked - result.writer.stored} of the fast writer's ${result.writer.acked} acknowledged writes are not in the hub's store`,
        );
      if (o.judgeLatency && !(result.ratioP50 <= LATENCY_GOAL_RATIO))
        violations.push(
          `${label}: the propagation p50 rose to ${latency.p50} ms, x${result.ratioP50} of the quiet ${quietFigures.p50} ms (goal x${LATENCY_GOAL_RATIO})`,
        );
    }
    const metricsAfter = await scrape(metricsPort);
    // A well-behaved child that lost its session at any point of the run.
    for (const [i, c] of children.entries()) {
      const drops = (c.agent?.lines.slice(seen[i]) ?? []).filter(
        (l) => (l as { event?: string }).event === 'disconnected',
      );
      if (drops.length > 0)
        violations.push(
          `${c.name} was disconnected ${drops.length} times (${drops.map((d) => (d as { code?: string }).code ?? '?').join(', ')})`,
        );
    }
    const stuck = await cluster.unconnected(15_000);
    violations.push(...stuck.map((n) => `${n} not connected after the abuse`));
    arrivals.close();
    arrivals = undefined;
    await cluster.stop();
    const check = cluster.verify();
    const log = hubLog(cluster.hub.data);
    const metrics = countersMoved(metricsBefore, metricsAfter);

    // The limits that acted must show in the log, and in the counters.
    const attempted = phases.flatMap((p) => [p.attacks]);
    const refusedByLimit = attempted.reduce(
      (n, a) =>
        n +
        (a.flood?.refused ?? 0) +
        (a.slow?.refusedAtOnce ?? 0) +
        (a.garbage?.failedBefore['closed before TLS'] ?? 0),
      0,
    );
    const timedOut = attempted.reduce((n, a) => n + (a.slow?.timedOut ?? 0), 0);
    const garbageClosed = attempted.reduce(
      (n, a) => n + GARBAGE_CODES.reduce((m, c) => m + (a.garbage?.closedWith[c] ?? 0), 0),
      0,
    );
    if (refusedByLimit > 0 && !log.codes.RATE_LIMITED)
      violations.push(
        `${refusedByLimit} connections were refused at once, and the log never names RATE_LIMITED`,
      );
    if (refusedByLimit > 0 && !Object.keys(metrics).some((k) => k.startsWith('trosyn_rate_limited_total')))
      violations.push('connections were refused, and trosyn_rate_limited_total did not move');
    if (timedOut > 0 && !log.codes.HANDSHAKE_TIMEOUT)
      violations.push(
        `${timedOut} handshakes were cut after the time limit, and the log never names HANDSHAKE_TIMEOUT`,
      );
    if (garbageClosed > 0 && !GARBAGE_CODES.some((c) => log.codes[c]))
      violations.push(
        `garbage frames ended connections, and the log names none of ${GARBAGE_CODES.join(', ')}`,
      );
    const ranKinds = new Set(phases.flatMap((p) => p.kinds));
    if (ranKinds.has('flood') && refusedByLimit === 0)
      violations.push('the flood was never refused: no limit acted');
    // The per-device write limit: what it held shows in the log and in the counters alike.
    const heldRevisions = metrics.trosyn_device_writes_throttled_total ?? 0;
    if (heldRevisions !== log.throttled.revisions)
      violations.push(
        `the write limit held ${heldRevisions} revisions by the metrics, and ${log.throttled.revisions} by the log`,
      );
    if (ranKinds.has('garbage') && garbageClosed === 0)
      violations.push('no garbage connection was ended with a protocol error code');

    const floodTotals = phases.reduce((n, p) => n + (p.attacks.flood?.attempts ?? 0), 0);
    return {
      name: 'abuse',
      seed: o.seed,
      faults: {
        phases: phases.map((p) => (p.kinds.length === 4 ? 'all' : p.kinds.join('+'))).join(','),
        connectionAttempts: floodTotals,
        slowSockets: o.slowAddresses * o.slowPerAddress,
        phaseMs: o.phaseMs,
      },
      ...outcome(cluster, check),
      convergeMs: phases.at(-1)?.drainMs ?? 0,
      durationMs: Date.now() - began,
      measured: {
        quiet: quietFigures,
        phases: phases.map((p) => ({ ...p, label: p.kinds.length === 4 ? 'all' : p.kinds.join('+') })),
        latencyGoal: `abused p50 at most x${LATENCY_GOAL_RATIO} the quiet p50${o.judgeLatency ? '' : ' (not judged in this form)'}`,
        refusedByLimit,
        hubLog: log,
        metricsMoved: metrics,
        fastWriter: writer.name,
      },
      violations,
    };
  } finally {
    writing = false;
    arrivals?.close();
    await (worker as Worker | undefined)?.terminate();
    cluster.killAll();
  }
}
