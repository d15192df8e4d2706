/**
 * Clock skew: a hub and three children on loopback, one child's clock hours ahead
 * and one's hours behind (the agent's process sees a shifted wall clock through
 * libfaketime; timers and the monotonic clock are left alone). Checked:
 *
 * - under writes on every node, every acknowledged write reaches every node;
 * - a record edited in turn by the children, each edit made after the previous one
 *   arrived, ends at the last edit everywhere, its history in the order written
 *   (the hybrid logical clock of a child behind moves past what it received);
 * - concurrent edits of one record while the children are offline settle to the
 *   same revision on every node whatever order the children come back in;
 * - the skewed children's status (the CLI's and the local API's) warns of the skew.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli } from '../e2e/helpers.js';
import { type AckedWrite, COLLECTION, Cluster, type ChaosNode } from './cluster.js';
import { type ExperimentResult, outcome } from './result.js';
import { SeededRandom } from './seeded.js';

/** Where Debian's libfaketime (package libfaketime) puts its multi-threaded library. */
const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];

/** Options of {@link clockSkew}. */
export interface ClockOptions {
  seed: number;
  dir: string;
  /** How far the skewed children's clocks are off (hours). */
  skewHours: number;
  /** How long every node writes (ms). */
  writeMs: number;
  /** Rounds of concurrent edits, each with the children coming back in another order. */
  conflictRounds: number;
  log?: (line: string) => void;
}

/** The libfaketime library, or undefined when it is not installed. */
export function libfaketime(): string | undefined {
  return LIBFAKETIME.find((p) => existsSync(p));
}

/** Why the clock skew experiment cannot run here, or undefined. */
export function clockSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  return libfaketime() ? undefined : 'needs libfaketime (apt-get install libfaketime)';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function api(node: ChaosNode, path: string, method = 'GET'): Promise<Record<string, unknown>> {
  const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${node.apiPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** Waits until every node's current revision of `id` is `rev` (ms waited). */
async function everywhere(cluster: Cluster, id: string, rev: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const heads = await Promise.all(
      cluster.nodes.map((n) =>
        runCli(['get', COLLECTION, id, '--data', n.data]).then(
          (r) => r.rev as string,
          () => '',
        ),
      ),
    );
    if (heads.every((h) => h === rev)) return;
    if (Date.now() > deadline)
      throw new Error(
        `${id} is not at ${rev.slice(0, 12)} everywhere: ${heads.map((h) => h.slice(0, 12)).join(' ')}`,
      );
    await sleep(200);
  }
}

/** Waits until a child has nothing left for the hub and is connected. */
async function drained(node: ChaosNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await api(node, '/api/status');
    if (s.state === 'synced' && s.pending === 0) return;
    if (Date.now() > deadline) throw new Error(`${node.name} not synced: ${JSON.stringify(s).slice(0, 300)}`);
    await sleep(100);
  }
}

/** Runs the clock skew experiment; resolves with the figures (see `problems`). */
export async function clockSkew(o: ClockOptions): Promise<ExperimentResult> {
  const began = Date.now();
  const lib = libfaketime();
  if (!lib) throw new Error(clockSkipReason());
  const rng = new SeededRandom(o.seed);
  const port = await freePort();
  // c1 ahead, c2 behind, c3 on time. FAKETIME_DONT_FAKE_MONOTONIC keeps timers real.
  const shifted = (sign: '+' | '-') => [
    'env',
    `LD_PRELOAD=${lib}`,
    `FAKETIME=${sign}${o.skewHours}h`,
    'FAKETIME_DONT_FAKE_MONOTONIC=1',
  ];
  const cluster = new Cluster(o.dir, 3, {
    hubArgs: [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--no-discovery',
      '--no-admin-api',
      '--heartbeat',
      '1',
    ],
    childArgs: ['--hub', `127.0.0.1:${port}`, '--no-discovery', '--retry-max', '500', '--api-port', '0'],
    pairAddress: `127.0.0.1:${port}`,
    childWrites: 'api',
    wrappers: { c1: shifted('+'), c2: shifted('-') },
  });
  const [ahead, behind, onTime] = cluster.children as [ChaosNode, ChaosNode, ChaosNode];
  const violations: string[] = [];
  const measured: Record<string, unknown> = {};
  try {
    await cluster.start();

    // 1. Writes on every node at once.
    cluster.phase = 'writes';
    cluster.startWriters(rng, [20, 60]);
    await sleep(o.writeMs);
    await cluster.stopWriters();
    measured.writesConvergeMs = await cluster.converge(60_000, 'after the writes');

    // 2. One record edited in turn, each edit after the previous one arrived everywhere.
    const turns = [behind, onTime, ahead, behind, onTime];
    const written: AckedWrite[] = [];
    for (const [i, node] of turns.entries()) {
      const rev = await cluster.write(node, 'in-turn', { by: node.name, n: i, value: i });
      const w = { node: node.name, id: 'in-turn', value: i, rev, phase: 'in-turn' };
      cluster.acked.push(w);
      written.push(w);
      await everywhere(cluster, 'in-turn', rev, 30_000);
    }
    for (const n of cluster.nodes) {
      const history = (await runCli(['history', COLLECTION, 'in-turn', '--data', n.data])) as unknown as
        Array<{ rev: string }> | { revisions: Array<{ rev: string }> };
      const revs = (Array.isArray(history) ? history : history.revisions).map((r) => r.rev);
      const expected = written.map((w) => w.rev);
      // `history` lists revisions oldest first: the order they were written in, on every node.
      if (revs.join() !== expected.join())
        violations.push(
          `${n.name}'s history of in-turn is ${revs.map((r) => r.slice(0, 8)).join(' ')}, not the ${expected.length} edits in the order written (${expected.map((r) => r.slice(0, 8)).join(' ')})`,
        );
    }
    const conflictsInTurn = await api(onTime, `/api/conflicts?status=open`);
    if (JSON.stringify(conflictsInTurn).includes('in-turn'))
      violations.push('edits made one after the other became a conflict');

    // 3. Concurrent edits while the children are offline, brought back in different orders.
    const orders = [
      [ahead, behind, onTime],
      [onTime, behind, ahead],
      [behind, onTime, ahead],
    ];
    const winners: Record<string, string> = {};
    for (let round = 0; round < o.conflictRounds; round++) {
      const order = orders[round % orders.length] as ChaosNode[];
      const id = `concurrent-${round}`;
      for (const c of cluster.children) await api(c, '/api/sync/pause', 'POST');
      const revs = new Map<string, string>();
      for (const c of cluster.children) {
        const rev = await cluster.write(c, id, { by: c.name, value: round * 10 + revs.size });
        cluster.acked.push({ node: c.name, id, value: round * 10 + revs.size, rev, phase: 'concurrent' });
        revs.set(c.name, rev);
      }
      for (const c of order) {
        await api(c, '/api/sync/resume', 'POST');
        await drained(c, 30_000);
      }
      await cluster.converge(30_000, `after concurrent round ${round}`);
      const heads = await Promise.all(
        cluster.nodes.map((n) =>
          runCli(['get', COLLECTION, id, '--data', n.data]).then((r) => r.rev as string),
        ),
      );
      const winner = [...revs.entries()].find(([, r]) => r === heads[0])?.[0] ?? 'none';
      winners[`${id} (back: ${order.map((c) => c.name).join(',')})`] = winner;
      if (new Set(heads).size !== 1) violations.push(`${id} settled differently on different nodes`);
    }
    measured.winners = winners;
    if (new Set(Object.values(winners)).size !== 1)
      violations.push(
        `concurrent edits settled by the order the children came back: ${JSON.stringify(winners)}`,
      );

    // 4. The skew shows in the status of the children whose clock is off, and only theirs.
    for (const c of cluster.children) {
      const live = await api(c, '/api/status');
      const cli = await runCli(['status', '--data', c.data]);
      const skewed = c !== onTime;
      for (const [where, warning] of [
        ['local API', live.clockWarning],
        ['CLI', cli.clockWarning],
      ] as const) {
        if (skewed && (typeof warning !== 'string' || !warning.includes(c === ahead ? 'behind' : 'ahead of')))
          violations.push(`${c.name}'s ${where} status does not warn of its clock: ${String(warning)}`);
        if (!skewed && warning !== undefined)
          violations.push(`${c.name}'s ${where} status warns of a clock that is right: ${String(warning)}`);
      }
      measured[`hubClock.${c.name}`] = (live.hubClock as { offsetMs?: number } | undefined)?.offsetMs;
    }

    const convergeMs = await cluster.converge(30_000, 'at the end');
    const stuck = await cluster.unconnected(10_000);
    violations.push(...stuck.map((n) => `${n} not connected at the end`));
    await cluster.stop();
    const check = cluster.verify();
    return {
      name: 'clock-skew',
      seed: o.seed,
      faults: { [`${ahead.name}`]: `+${o.skewHours} h`, [`${behind.name}`]: `-${o.skewHours} h` },
      ...outcome(cluster, check),
      convergeMs,
      durationMs: Date.now() - began,
      measured,
      violations,
    };
  } finally {
    await cluster.stopWriters();
    cluster.killAll();
  }
}
