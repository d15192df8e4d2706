/**
 * The hub on PostgreSQL beside the hub on SQLite, in one run, on one machine, with
 * the same data and the same children (bench/fixtures/: every hub and child set a
 * process of its own, real TLS on 127.0.0.1).
 *
 * 1. Initial sync hub -> child of SMALL records (median of ROUNDS, a fresh child
 *    each, the two stores' rounds taken in turn) and of LARGE records (LARGE_ROUNDS),
 *    as bench/e2e.ts measures it: from the child's connection to caught-up.
 * 2. Propagation latency child A -> hub -> child B with 2 and with 50 children,
 *    bench/e2e.ts's measurement on each store.
 * 3. A fleet of FLEET children (FLEET_PROCS processes): on PostgreSQL two hub
 *    processes on one database, half the children on each (each child knows both
 *    addresses, its own process's first); on SQLite one hub process serving them all.
 *    The time until all are connected, each hub's peak RSS, and single writes of a
 *    hub-1 child timed to every other child: to all of them, and to hub 2's half
 *    (on PostgreSQL the cross-process path: hub 1 commits, hub 2 is woken by NOTIFY).
 *
 * The PostgreSQL server is a throwaway cluster (test/helpers-postgres.ts), restarted
 * with durable settings (fsync, synchronous_commit and full_page_writes on, as the
 * SQLite hub's synchronous=full) and pg_stat_statements, whose busiest statements of
 * each part go into the results; it is stopped and removed at the end, also on
 * failure. BENCH_PROFILE=<dir> writes CPU profiles of every process (bench/proc.ts):
 * the hubs are named hub-sqlite, hub-postgres, fleet-*-hub-*.
 *
 * `npm run bench -- postgres --quick` runs a tenth of the sizes. BENCH_ROUNDS,
 * BENCH_LARGE_ROUNDS, BENCH_PG_LARGE (records; 0 skips it), BENCH_FLEET, BENCH_PROCS,
 * BENCH_FLEET_WRITES set them; BENCH_PG_PARTS=sync,propagation,fleet (with --quick)
 * runs some parts only.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { postgresBinDir, type PostgresCluster, startPostgresCluster } from '../test/helpers-postgres.js';
import { median, perSec, round, scratch, sourceVersion } from './common.js';
import {
  type HubOptions,
  initialSync,
  measurePropagation,
  medianRun,
  preload,
  type RunningHub,
  startHub,
  type SyncRun,
} from './e2e.js';
import { cpuMs, Fixture, memoryOf, RssSampler, wallMs } from './proc.js';
import { merge, timedWrites } from './scale.js';

const QUICK = process.argv.includes('--quick');
const SCALE = Number(process.env.BENCH_SCALE ?? (QUICK ? 0.1 : 1));
const SMALL = Math.round(100_000 * SCALE);
const LARGE = Number(process.env.BENCH_PG_LARGE ?? Math.round(1_000_000 * SCALE));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LARGE_ROUNDS = Number(process.env.BENCH_LARGE_ROUNDS ?? 1);
const FLEET = Number(process.env.BENCH_FLEET ?? Math.round(500 * SCALE));
const FLEET_PROCS = Number(process.env.BENCH_PROCS ?? (QUICK ? 2 : 4));
const FLEET_WRITES = Number(process.env.BENCH_FLEET_WRITES ?? (QUICK ? 10 : 20));
const PARTS = process.env.BENCH_PG_PARTS?.split(',').map((p) => p.trim()) ?? ['sync', 'propagation', 'fleet'];

type Kind = 'sqlite' | 'postgres';
const KINDS: Kind[] = ['sqlite', 'postgres'];
type Line = Record<string, unknown>;
type Log = (text: string) => void;

/** The server settings the benchmark runs PostgreSQL with (over the test helper's). */
const SERVER_SETTINGS: Record<string, string> = {
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  shared_buffers: '128MB',
  max_connections: '100',
};

export async function run(): Promise<Record<string, unknown>> {
  const known = ['sync', 'propagation', 'fleet'];
  const unknown = PARTS.filter((p) => !known.includes(p));
  if (unknown.length > 0)
    throw new Error(`BENCH_PG_PARTS: unknown part ${unknown.join(', ')}; choose from ${known.join(', ')}`);
  if (PARTS.length < known.length && !QUICK)
    throw new Error('BENCH_PG_PARTS runs part of the benchmark: add --quick, so the full results stay');
  const dir = scratch('trosyn-bench-postgres-');
  const began = performance.now();
  const log: Log = (text) => console.log(`[${((performance.now() - began) / 1000).toFixed(0)}s] ${text}`);
  const server = await DurableCluster.start();
  try {
    log(`PostgreSQL ${server.version}: ${JSON.stringify(server.settings)}`);
    const sync = PARTS.includes('sync') ? await syncPart(dir, server, log) : undefined;
    const propagation = PARTS.includes('propagation') ? await propagationPart(dir, server, log) : undefined;
    const fleet = PARTS.includes('fleet') ? await fleetPart(dir, server, log) : undefined;
    const result = { ...summarize(sync, propagation, fleet) };
    return {
      ...result,
      scale: SCALE,
      ...(PARTS.length < known.length && { parts: PARTS }),
      records: { small: SMALL, large: LARGE },
      setup: {
        processes:
          'each hub and each child set in its own process (node --import tsx bench/fixtures/*.ts); TLS 1.3 on 127.0.0.1; the PostgreSQL server on a unix socket on the same machine',
        sqlite: 'the product default: SQLite files in the hub data directory, synchronous=full',
        postgres: {
          version: server.version,
          settings: server.settings,
          how: 'a throwaway cluster (test/helpers-postgres.ts) restarted with these settings; the hub connects as the superuser over the unix socket; store and registry in one fresh database per part; after each preload VACUUM (ANALYZE) and CHECKPOINT, so that no autovacuum or checkpoint of the load runs during a measurement',
        },
        disk: 'one disk for both stores (the scratch directory and the cluster are both under the system temporary directory)',
        syncTiming:
          "bench/e2e.ts: child process clock, from the Child's connected event to its first caught-up",
        rounds: {
          small: ROUNDS,
          large: LARGE_ROUNDS,
          order: 'SQLite and PostgreSQL rounds in turn, both hubs up',
        },
        fleet: {
          children: FLEET,
          processes: FLEET_PROCS,
          writes: FLEET_WRITES,
          childSynchronous: 'normal (as bench/scale.ts: one disk for all the children)',
          backoff: 'product',
          lateness:
            "wall clock at the reader's change event less the writer's `t` in the record (bench/scale.ts); writes 500 ms apart from child 0 of the first process (a hub-1 child)",
        },
        serverCpu:
          'serverCpuMs: CPU time of the PostgreSQL server processes (postmaster, its live children, and the children it reaped) over the same window, from /proc',
      },
      source: sourceVersion(),
    };
  } finally {
    await server.stop();
  }
}

// --- the PostgreSQL server ---------------------------------------------------------------

/**
 * The test helper's throwaway cluster, restarted (before anything connected to it)
 * with durable settings and pg_stat_statements.
 */
class DurableCluster {
  private databases = 0;

  private constructor(
    readonly cluster: PostgresCluster,
    readonly version: string,
    readonly settings: Record<string, string>,
    private readonly statements: boolean,
  ) {}

  static async start(): Promise<DurableCluster> {
    const cluster = await startPostgresCluster();
    try {
      const bin = postgresBinDir();
      // Debian: /usr/lib/postgresql/<major>/bin, extensions in /usr/share/postgresql/<major>/extension.
      const major = basename(dirname(bin));
      const statements = existsSync(
        join('/usr/share/postgresql', major, 'extension', 'pg_stat_statements.control'),
      );
      const socketDir = cluster.socketDir;
      const options = [
        "-c listen_addresses=''",
        `-k ${socketDir}`,
        ...Object.entries(SERVER_SETTINGS).map(([k, v]) => `-c ${k}=${v}`),
        ...(statements ? ['-c shared_preload_libraries=pg_stat_statements'] : []),
      ].join(' ');
      const args = [
        '-D',
        join(socketDir, 'data'),
        'restart',
        '-m',
        'fast',
        '-w',
        '-t',
        '60',
        '-l',
        join(socketDir, 'server.log'),
        '-o',
        options,
      ];
      const asRoot = process.getuid?.() === 0;
      const [file, argv] = asRoot
        ? ['runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args]]
        : [join(bin, 'pg_ctl'), args];
      execFileSync(file, argv, { cwd: socketDir, stdio: 'ignore' });
      const shown = await cluster.query(
        `SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
        [Object.keys(SERVER_SETTINGS)],
      );
      const settings = Object.fromEntries(
        shown.rows.map((r: { name: string; setting: string; unit: string | null }) => [
          r.name,
          r.unit ? `${r.setting} x ${r.unit}` : r.setting,
        ]),
      );
      for (const [k, v] of Object.entries({ fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' }))
        if (settings[k] !== v) throw new Error(`PostgreSQL runs with ${k}=${settings[k]}, not ${v}`);
      const version = String((await cluster.query('SHOW server_version')).rows[0]?.server_version);
      // In the maintenance database, where the benchmark reads and resets it for all databases.
      if (statements) await cluster.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      return new DurableCluster(cluster, version, settings, statements);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** A fresh database and the hub fixture's environment for it. */
  async database(keyFile: string): Promise<{ name: string; env: Record<string, string> }> {
    const name = await this.cluster.createDatabase(undefined, `bench_${++this.databases}`);
    const url = `postgres://postgres@/${name}?host=${encodeURIComponent(this.cluster.socketDir)}`;
    return { name, env: { BENCH_HUB_STORE: url, BENCH_HUB_IDENTITY_KEY_FILE: keyFile } };
  }

  /** After a bulk load: what autovacuum and the checkpointer would do later, done now. */
  async settle(database: string): Promise<void> {
    await this.cluster.query('VACUUM (ANALYZE)', [], database);
    await this.cluster.query('CHECKPOINT');
  }

  async resetStatements(): Promise<void> {
    if (this.statements) await this.cluster.query('SELECT pg_stat_statements_reset()');
  }

  /** The statements that took the most server time in `database` since the last reset. */
  async topStatements(database: string, limit = 8): Promise<Line[]> {
    if (!this.statements) return [];
    const result = await this.cluster.query(
      `SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, wal_bytes
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = $1 ORDER BY total_exec_time DESC LIMIT $2`,
      [database, limit],
    );
    const total = await this.cluster.query(
      `SELECT coalesce(sum(total_exec_time), 0) AS ms, coalesce(sum(calls), 0) AS calls
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`,
      [database],
    );
    const all = total.rows[0] as { ms: number; calls: string };
    return [
      { query: '(all statements)', calls: Number(all.calls), totalMs: round(Number(all.ms), 1) },
      ...result.rows.map((r: Record<string, unknown>) => ({
        query: String(r.query).slice(0, 160),
        calls: Number(r.calls),
        totalMs: round(Number(r.total_exec_time), 1),
        meanMs: round(Number(r.total_exec_time) / Math.max(1, Number(r.calls)), 3),
        rows: Number(r.rows),
        blocksHit: Number(r.shared_blks_hit),
        blocksRead: Number(r.shared_blks_read),
        walBytes: Number(r.wal_bytes),
      })),
    ];
  }

  /** CPU time (ms) of the server: postmaster with the children it reaped, and its live children. */
  cpuMs(): number {
    let pm: number;
    try {
      pm = Number(
        readFileSync(join(this.cluster.socketDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
      );
    } catch {
      return 0;
    }
    let ticks = 0;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const f = stat
          .slice(stat.lastIndexOf(')') + 2)
          .split(' ')
          .map(Number);
        if (Number(name) === pm) ticks += (f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0);
        else if (f[1] === pm) ticks += (f[11] ?? 0) + (f[12] ?? 0);
      } catch {
        // Gone meanwhile.
      }
    }
    return ticks * 10;
  }

  async stop(): Promise<void> {
    await this.cluster.stop();
  }
}

function identityKey(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'identity.key');
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return file;
}

// --- 1. initial sync ---------------------------------------------------------------------

interface SyncSide {
  small: SyncRun[];
  large: SyncRun[];
  preloadMs: { small: number; large: number };
  /** PostgreSQL server CPU during each run (ms), in the order of the runs. */
  serverCpuMs: { small: number[]; large: number[] };
}

interface SyncPart {
  sides: Record<Kind, SyncSide>;
  /** The busiest statements of the last load (run side by side with SQLite's), and of the syncs. */
  statements: { preload: Line[]; small: Line[]; large: Line[] };
}

async function syncPart(dir: string, server: DurableCluster, log: Log): Promise<SyncPart> {
  const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
  const db = await server.database(identityKey(dir));
  const options: Record<Kind, HubOptions> = {
    sqlite: { name: 'hub-sqlite' },
    postgres: { name: 'hub-postgres', env: db.env },
  };
  const hubDirs: Record<Kind, string> = {
    sqlite: join(dir, 'hub-sqlite'),
    postgres: join(dir, 'hub-postgres'),
  };
  const side = (): SyncSide => ({
    small: [],
    large: [],
    preloadMs: { small: 0, large: 0 },
    serverCpuMs: { small: [], large: [] },
  });
  const sides: Record<Kind, SyncSide> = { sqlite: side(), postgres: side() };
  const statements = { preload: [] as Line[], small: [] as Line[], large: [] as Line[] };

  const rounds = async (size: 'small' | 'large', records: number, count: number) => {
    const hubs = {} as Record<Kind, RunningHub>;
    try {
      for (const kind of KINDS) hubs[kind] = await startHub(hubDirs[kind], options[kind]);
      await server.resetStatements();
      for (let r = 0; r < count; r++) {
        for (const kind of KINDS) {
          const cpu0 = server.cpuMs();
          const { run: result, child } = await initialSync(
            hubs[kind],
            join(dir, `${kind}-${size}-${r}`),
            `child-${kind}-${size}-${r}`,
            records,
          );
          sides[kind].serverCpuMs[size].push(server.cpuMs() - cpu0);
          await child.stop();
          sides[kind][size].push(result);
          log(
            `initial sync ${label(records)} ${kind.padEnd(8)} round ${r + 1}: ${result.recordsPerSec.toLocaleString()} records/s (hub CPU ${result.hubCpuMs} ms, server CPU ${sides[kind].serverCpuMs[size].at(-1)} ms)`,
          );
        }
      }
      statements[size] = await server.topStatements(db.name);
    } finally {
      for (const kind of KINDS) await hubs[kind]?.fixture.stop();
    }
  };

  // Both stores loaded at once (not measured: the loads are for the syncs).
  const load = async (from: number, to: number, size: 'small' | 'large') => {
    await server.resetStatements();
    await Promise.all(
      KINDS.map(async (kind) => {
        sides[kind].preloadMs[size] = Math.round(await preload(hubDirs[kind], from, to, options[kind]));
      }),
    );
    statements.preload = await server.topStatements(db.name);
    log(
      `hub stores loaded with records ${label(from)}..${label(to)} side by side: ${KINDS.map((k) => `${k} ${(sides[k].preloadMs[size] / 1000).toFixed(1)} s`).join(', ')}`,
    );
    await server.settle(db.name);
  };
  await load(0, SMALL, 'small');
  await rounds('small', SMALL, ROUNDS);
  if (LARGE > SMALL && LARGE_ROUNDS > 0) {
    await load(SMALL, LARGE, 'large');
    await rounds('large', LARGE, LARGE_ROUNDS);
  }
  return { sides, statements };
}

// --- 2. propagation ----------------------------------------------------------------------

type PropagationResult = Awaited<ReturnType<typeof measurePropagation>> & { serverCpuMs: number };

async function propagationPart(
  dir: string,
  server: DurableCluster,
  log: Log,
): Promise<{ sides: Record<Kind, PropagationResult>; statements: Line[] }> {
  const sides = {} as Record<Kind, PropagationResult>;
  let statements: Line[] = [];
  for (const kind of KINDS) {
    const db = kind === 'postgres' ? await server.database(identityKey(dir)) : undefined;
    await server.resetStatements();
    const cpu0 = server.cpuMs();
    const options: HubOptions = { name: `propagation-hub-${kind}`, ...(db && { env: db.env }) };
    const tagged: Log = (text) => log(`${kind}: ${text}`);
    const result = await measurePropagation(join(dir, `propagation-${kind}`), tagged, options);
    sides[kind] = { ...result, serverCpuMs: server.cpuMs() - cpu0 };
    if (db) statements = await server.topStatements(db.name);
  }
  return { sides, statements };
}

// --- 3. the fleet ------------------------------------------------------------------------

type Latency = ReturnType<typeof merge>['latency'] & { missing: number; complete: boolean };

interface FleetResult {
  hubProcesses: number;
  children: number;
  /** Children connected to each hub process once all had caught up. */
  connectedPerHub: number[];
  connectAllSec: number;
  caughtUpAllSec: number;
  hubIdleRssMB: number[];
  hubConnectedRssMB: number[];
  hubPeakRssMB: number[];
  /** Every arrival of every write at every other child. */
  propagationAll: Latency;
  /** The arrivals at the second half of the children (hub 2's on PostgreSQL). */
  propagationHub2Children: Latency;
  hubCpuMs: { connect: number[]; propagation: number[] };
  serverCpuMs: { connect: number; propagation: number };
  statements: Line[];
}

async function fleetPart(dir: string, server: DurableCluster, log: Log): Promise<Record<Kind, FleetResult>> {
  const out = {} as Record<Kind, FleetResult>;
  for (const kind of KINDS) out[kind] = await fleet(kind, join(dir, `fleet-${kind}`), server, log);
  return out;
}

async function fleet(kind: Kind, dir: string, server: DurableCluster, log: Log): Promise<FleetResult> {
  const hubs: RunningHub[] = [];
  const fixtures: Fixture[] = [];
  try {
    const db = kind === 'postgres' ? await server.database(identityKey(dir)) : undefined;
    if (db) {
      for (const n of [1, 2])
        hubs.push(await startHub(join(dir, `hub-${n}`), { name: `fleet-postgres-hub-${n}`, env: db.env }));
      if (hubs[0]?.hubId !== hubs[1]?.hubId)
        throw new Error('the two hub processes on one database present different identities');
    } else hubs.push(await startHub(join(dir, 'hub'), { name: 'fleet-sqlite-hub' }));
    await sleep(1000);
    const rss = (h: RunningHub) => Math.round(memoryOf(h.fixture.pid)?.rssMB ?? 0);
    const hubIdleRssMB = hubs.map(rss);

    // Processes of the first half connect to hub 1 first, of the second half to hub 2.
    const perProc = Math.ceil(FLEET / FLEET_PROCS);
    const groupOf = (p: number) => (p < FLEET_PROCS / 2 ? 0 : 1);
    const starting = await Promise.all(
      Array.from({ length: FLEET_PROCS }, (_, p) => {
        const own = hubs[Math.min(groupOf(p), hubs.length - 1)] as RunningHub;
        const other = hubs.length > 1 ? hubs[1 - groupOf(p)] : undefined;
        const count = Math.min(perProc, FLEET - p * perProc);
        return Fixture.start(
          `fleet-${kind}-${p}`,
          'children',
          [dir, String(count), own.hubId, String(own.port), `c${p}`],
          {
            env: {
              BENCH_CHILD_BACKOFF: 'product',
              BENCH_CHILD_SYNCHRONOUS: 'normal',
              ...(other && { BENCH_CHILD_OTHER_PORTS: String(other.port) }),
            },
            readyTimeoutMs: 600_000,
          },
        );
      }),
    );
    for (const { fixture, ready } of starting) {
      fixtures.push(fixture);
      for (const hub of hubs) await hub.fixture.request('allow', { deviceIds: ready.deviceIds });
    }
    const hubPids = hubs.map((h) => h.fixture.pid);
    const sampler = new RssSampler(hubPids, 200);
    const cpu0 = hubPids.map(cpuMs);
    const server0 = server.cpuMs();
    const t0 = wallMs();
    await Promise.all(fixtures.map((f) => f.request('start')));
    const caught = await Promise.all(fixtures.map((f) => f.request('caughtUp')));
    const lines = caught.flatMap((c) => c.children as Line[]);
    const connectAllSec = round((Math.max(...lines.map((l) => l.connectedAt as number)) - t0) / 1000, 2);
    const caughtUpAllSec = round((Math.max(...lines.map((l) => l.caughtUpAt as number)) - t0) / 1000, 2);
    const cpu1 = hubPids.map(cpuMs);
    const server1 = server.cpuMs();
    const connectedPerHub = await Promise.all(
      hubs.map(async (h) => (await h.fixture.request('connectedCount')).count as number),
    );
    log(
      `fleet ${kind}: ${connectedPerHub.join(' + ')} children connected in ${connectAllSec} s (all caught up in ${caughtUpAllSec} s)`,
    );
    await sleep(2000);
    const hubConnectedRssMB = hubs.map(rss);

    // Single writes of a hub-1 child, 500 ms apart, timed to every other child.
    await server.resetStatements();
    const cpu2 = hubPids.map(cpuMs);
    const server2 = server.cpuMs();
    const writer = fixtures[0] as Fixture;
    const collection = 'fleet';
    const answers = await timedWrites(fixtures, writer, collection, FLEET_WRITES);
    const cpu3 = hubPids.map(cpuMs);
    const server3 = server.cpuMs();
    const statements = db ? await server.topStatements(db.name) : [];
    const latency = (group: Line[]): Latency => {
      const m = merge(group);
      return { ...m.latency, missing: m.missing, complete: m.complete };
    };
    const propagationAll = latency(answers);
    const propagationHub2Children = latency(answers.filter((_, p) => groupOf(p) === 1));
    const peaks = sampler.stop();
    const hubPeakRssMB = hubPids.map((pid) => peaks.get(pid) ?? 0);
    log(
      `fleet ${kind}: propagation to all p50 ${propagationAll.p50} / p99 ${propagationAll.p99} / max ${propagationAll.max} ms; to hub 2's half p50 ${propagationHub2Children.p50} / p99 ${propagationHub2Children.p99} / max ${propagationHub2Children.max} ms; hub peak RSS ${hubPeakRssMB.join(', ')} MiB`,
    );
    return {
      hubProcesses: hubs.length,
      children: lines.length,
      connectedPerHub,
      connectAllSec,
      caughtUpAllSec,
      hubIdleRssMB,
      hubConnectedRssMB,
      hubPeakRssMB,
      propagationAll,
      propagationHub2Children,
      hubCpuMs: {
        connect: cpu1.map((c, i) => c - (cpu0[i] as number)),
        propagation: cpu3.map((c, i) => c - (cpu2[i] as number)),
      },
      serverCpuMs: { connect: server1 - server0, propagation: server3 - server2 },
      statements,
    };
  } finally {
    await Promise.all(fixtures.map((f) => f.stop()));
    for (const hub of hubs) await hub.fixture.stop();
  }
}

// --- results -----------------------------------------------------------------------------

function summarize(
  sync: SyncPart | undefined,
  propagation: Awaited<ReturnType<typeof propagationPart>> | undefined,
  fleet: Record<Kind, FleetResult> | undefined,
): Record<string, unknown> {
  const figures: Record<string, number | null> = {};
  const rows: Array<[string, number | null, number | null, string]> = [];
  /** One figure of both stores: `<name>Sqlite`, `<name>Postgres`, and a printed row. */
  const pair = (
    name: string,
    label: string,
    sqlite: number | null,
    postgres: number | null,
    better: string,
  ) => {
    figures[`${name}Sqlite`] = sqlite;
    figures[`${name}Postgres`] = postgres;
    rows.push([label, sqlite, postgres, better]);
  };
  const rate = (runs: SyncRun[], records: number) =>
    runs.length === 0 ? null : perSec(records, median(runs.map((r) => r.ms)));
  if (sync) {
    const s = sync.sides;
    const small = `${SMALL / 1000}k`;
    const large = LARGE >= 1_000_000 ? `${LARGE / 1_000_000}M` : `${LARGE / 1000}k`;
    pair(
      'recordsPerSecSmall',
      `initial sync ${small} records/s`,
      rate(s.sqlite.small, SMALL),
      rate(s.postgres.small, SMALL),
      'higher',
    );
    if (s.sqlite.large.length > 0)
      pair(
        'recordsPerSecLarge',
        `initial sync ${large} records/s`,
        rate(s.sqlite.large, LARGE),
        rate(s.postgres.large, LARGE),
        'higher',
      );
    const medianOf = (side: SyncSide, key: keyof SyncRun) => medianRun(side.small)[key] as number;
    pair(
      'hubCpuMsSmall',
      `  hub CPU ms (median run)`,
      medianOf(s.sqlite, 'hubCpuMs'),
      medianOf(s.postgres, 'hubCpuMs'),
      'lower',
    );
    pair(
      'serverCpuMsSmall',
      `  PostgreSQL server CPU ms`,
      median(s.sqlite.serverCpuMs.small),
      median(s.postgres.serverCpuMs.small),
      'lower',
    );
    pair(
      'hubPeakRssMBSmall',
      `  hub peak RSS MiB`,
      Math.max(...s.sqlite.small.map((r) => r.hubPeakRssMB)),
      Math.max(...s.postgres.small.map((r) => r.hubPeakRssMB)),
      'lower',
    );
    pair(
      'loadMsSmall',
      `hub store load 0..${small}, ms (both at once)`,
      s.sqlite.preloadMs.small,
      s.postgres.preloadMs.small,
      'lower',
    );
    if (s.sqlite.large.length > 0)
      pair(
        'loadMsLarge',
        `hub store load ${small}..${large}, ms (both at once)`,
        s.sqlite.preloadMs.large,
        s.postgres.preloadMs.large,
        'lower',
      );
  }
  if (propagation) {
    const p = propagation.sides;
    pair(
      'propagationP50Ms1',
      'propagation A->hub->B, 2 children p50 ms',
      p.sqlite.one.p50,
      p.postgres.one.p50,
      'lower',
    );
    pair(
      'propagationP99Ms1',
      '                                  p99 ms',
      p.sqlite.one.p99,
      p.postgres.one.p99,
      'lower',
    );
    pair(
      'propagationP50Ms50',
      'propagation A->hub->B, 50 children p50 ms',
      p.sqlite.many.p50,
      p.postgres.many.p50,
      'lower',
    );
    pair(
      'propagationP99Ms50',
      '                                   p99 ms',
      p.sqlite.many.p99,
      p.postgres.many.p99,
      'lower',
    );
    const max = (side: PropagationResult, which: 'children1' | 'children50') =>
      (side.details[which] as { latencyMs: { max: number } }).latencyMs.max;
    pair(
      'propagationMaxMs1',
      '  2 children max ms',
      max(p.sqlite, 'children1'),
      max(p.postgres, 'children1'),
      'lower',
    );
    pair(
      'propagationMaxMs50',
      '  50 children max ms',
      max(p.sqlite, 'children50'),
      max(p.postgres, 'children50'),
      'lower',
    );
  }
  if (fleet) {
    const f = fleet;
    const n = f.sqlite.children;
    pair(
      'fleetConnectAllSec',
      `${n} children: all connected s`,
      f.sqlite.connectAllSec,
      f.postgres.connectAllSec,
      'lower',
    );
    pair(
      'fleetHubPeakRssMB',
      `  hub peak RSS MiB (each process)`,
      Math.max(...f.sqlite.hubPeakRssMB),
      Math.max(...f.postgres.hubPeakRssMB),
      'lower',
    );
    pair(
      'fleetPropagationP50Ms',
      `  one write to all: p50 ms`,
      f.sqlite.propagationAll.p50,
      f.postgres.propagationAll.p50,
      'lower',
    );
    pair(
      'fleetPropagationP99Ms',
      `                    p99 ms`,
      f.sqlite.propagationAll.p99,
      f.postgres.propagationAll.p99,
      'lower',
    );
    pair(
      'fleetPropagationMaxMs',
      `                    max ms`,
      f.sqlite.propagationAll.max,
      f.postgres.propagationAll.max,
      'lower',
    );
    pair(
      'fleetHub2PropagationP50Ms',
      `  to hub 2's half: p50 ms`,
      f.sqlite.propagationHub2Children.p50,
      f.postgres.propagationHub2Children.p50,
      'lower',
    );
    pair(
      'fleetHub2PropagationP99Ms',
      `                   p99 ms`,
      f.sqlite.propagationHub2Children.p99,
      f.postgres.propagationHub2Children.p99,
      'lower',
    );
    pair(
      'fleetHub2PropagationMaxMs',
      `                   max ms`,
      f.sqlite.propagationHub2Children.max,
      f.postgres.propagationHub2Children.max,
      'lower',
    );
  }
  const fmt = (v: number | null) =>
    v === null ? '-' : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  console.log(
    `\n${'figure'.padEnd(44)}${'SQLite'.padStart(12)}${'PostgreSQL'.padStart(12)}${'PG/SQLite'.padStart(11)}`,
  );
  for (const [label, sqlite, postgres] of rows) {
    const ratio = sqlite && postgres !== null ? round(postgres / sqlite, 2).toFixed(2) : '-';
    console.log(
      `${label.padEnd(44)}${fmt(sqlite).padStart(12)}${fmt(postgres).padStart(12)}${ratio.padStart(11)}`,
    );
  }
  if (fleet)
    console.log(
      `(fleet: SQLite one hub process with ${fleet.sqlite.connectedPerHub.join(' + ')} children; PostgreSQL two hub processes with ${fleet.postgres.connectedPerHub.join(' + ')}, each child its own process's address first)`,
    );
  return {
    ...figures,
    ...(sync && {
      sync: {
        records: { small: SMALL, large: LARGE },
        sqlite: sync.sides.sqlite,
        postgres: sync.sides.postgres,
        postgresStatements: sync.statements,
      },
    }),
    ...(propagation && {
      propagation: {
        sqlite: { ...propagation.sides.sqlite.details, serverCpuMs: propagation.sides.sqlite.serverCpuMs },
        postgres: {
          ...propagation.sides.postgres.details,
          serverCpuMs: propagation.sides.postgres.serverCpuMs,
        },
        postgresStatements: propagation.statements,
      },
    }),
    ...(fleet && { fleet }),
  };
}
