/**
 * Crash loops: a hub and children on loopback under writes on every node, killed
 * with SIGKILL at seeded random points and restarted, again and again. Afterwards
 * every acknowledged write must be on every node, no revision twice in a change
 * log, and every SQLite file must pass `PRAGMA integrity_check`.
 */
import { freePort } from '../e2e/helpers.js';
import { Cluster } from './cluster.js';
import { type ExperimentResult, outcome } from './result.js';
import { SeededRandom } from './seeded.js';

/** Options of {@link crashLoops}. */
export interface CrashOptions {
  seed: number;
  /** A fresh directory for the nodes' data. */
  dir: string;
  /** SIGKILLs in all (hub and children). */
  kills: number;
  /** Child agents. Default 3. */
  children?: number;
  /** Chance a kill hits the hub rather than a child. Default 0.3. */
  hubShare?: number;
  /** Time allowed to converge after the last kill (ms). Default 60 s. */
  convergeTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs the crash loops; resolves with the figures (it does not judge them: see `problems`). */
export async function crashLoops(o: CrashOptions): Promise<ExperimentResult> {
  const began = Date.now();
  const rng = new SeededRandom(o.seed);
  const schedule = rng.fork('kills');
  const port = await freePort();
  const cluster = new Cluster(o.dir, o.children ?? 3, {
    hubArgs: ['--host', '127.0.0.1', '--port', String(port), '--no-discovery', '--no-admin-api'],
    childArgs: ['--hub', `127.0.0.1:${port}`, '--no-discovery', '--retry-max', '1000', '--api-port', '0'],
    pairAddress: `127.0.0.1:${port}`,
    childWrites: 'api',
  });
  try {
    await cluster.start();
    cluster.startWriters(rng, [20, 80]);
    for (let k = 0; k < o.kills; k++) {
      await sleep(schedule.between(200, 1500));
      const target = schedule.next() < (o.hubShare ?? 0.3) ? cluster.hub : schedule.pick(cluster.children);
      const downMs = schedule.between(0, 800);
      await cluster.kill(target);
      o.log?.(`kill ${k + 1}/${o.kills}: ${target.name}, down ${Math.round(downMs)} ms`);
      await sleep(downMs);
      await cluster.startNode(target);
    }
    // A last stretch of writes with everything up, so the final state is a live one.
    await sleep(1_000);
    await cluster.stopWriters();
    const convergeMs = await cluster.converge(o.convergeTimeoutMs ?? 60_000, 'after the crash loops');
    const stuck = await cluster.unconnected(15_000);
    await cluster.stop();
    const check = cluster.verify();
    return {
      name: 'crash-loops',
      seed: o.seed,
      faults: {
        kills: cluster.nodes.reduce((n, x) => n + x.kills, 0),
        ...Object.fromEntries(cluster.nodes.map((n) => [`kills.${n.name}`, n.kills])),
      },
      ...outcome(cluster, check),
      convergeMs,
      durationMs: Date.now() - began,
      measured: { hubRevisions: check.hubRevisions, sqliteFiles: cluster.storeFiles().length },
      violations: stuck.map((name) => `${name} not connected after convergence`),
    };
  } finally {
    await cluster.stopWriters();
    cluster.killAll();
  }
}
