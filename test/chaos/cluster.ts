/**
 * A real hub and real children for the chaos runs: agents started with the
 * trosyn-sync command (optionally inside network namespaces), writers that record
 * every acknowledged write (only once the API or the CLI answered success), and the
 * checks made after convergence, on the SQLite files themselves.
 */
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CLI, type Agent, type CliCommand, runCli, startAgent } from '../e2e/helpers.js';
import type { SeededRandom } from './seeded.js';

/** The collection every chaos write goes to. */
export const COLLECTION = 'chaos';

/** One node of the cluster. */
export interface ChaosNode {
  name: string;
  role: 'hub' | 'child';
  data: string;
  /** Network namespace the agent runs in (none: this machine's loopback). */
  ns?: string;
  agent?: Agent;
  /** Port of a running child's local API. */
  apiPort?: number;
  /** Times the agent was killed with SIGKILL. */
  kills: number;
}

/** A write whose API call or command answered success. */
export interface AckedWrite {
  node: string;
  id: string;
  value: number;
  rev: string;
  /** Label of the run phase the write was made in. */
  phase: string;
}

/** How the agents of a cluster are started and written to. */
export interface ClusterLayout {
  /** Hub arguments after `hub --data DIR`. */
  hubArgs: string[];
  /** Child arguments after `child --data DIR --name NAME`. */
  childArgs: string[];
  /** The hub's address for `pair --hub`. */
  pairAddress: string;
  /** How children write: their local HTTP API, or the CLI beside the agent. The hub always writes with the CLI. */
  childWrites: 'api' | 'cli';
  /** Namespace of each node by name, when the agents run inside namespaces. */
  namespaces?: Record<string, string>;
  /** A command each node's agent and CLI run through, by name (it ends by exec-ing them, e.g. `env VAR=…`). */
  wrappers?: Record<string, string[]>;
}

/** What the stores hold after a run: the figures of a result. */
export interface StoreCheck {
  /** Acknowledged writes missing on at least one node, or held there with another value. */
  lost: AckedWrite[];
  /** Records whose revisions or current revision differ between nodes. */
  divergent: string[];
  /** Revisions stored more than once in a node's change log. */
  duplicates: number;
  /** `PRAGMA integrity_check` of every SQLite file that is not `ok`. */
  integrity: string[];
  /** Rows in the hub's change log (acknowledged writes plus those that were made but never answered). */
  hubRevisions: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The revisions of the chaos collection a store holds: record id -> revs, the
 * `value` each revision's body carries, the current revision, and the row count.
 */
function readStore(data: string): {
  revs: Map<string, Set<string>>;
  values: Map<string, unknown>;
  heads: Map<string, string>;
  rows: number;
  distinct: number;
} {
  const db = new Database(join(data, 'trosyn.db'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const revs = new Map<string, Set<string>>();
    const values = new Map<string, unknown>();
    let rows = 0;
    const distinct = new Set<string>();
    for (const r of db
      .prepare('SELECT record_id AS id, rev, body FROM revisions WHERE collection = ?')
      .iterate(COLLECTION) as IterableIterator<{ id: string; rev: string; body: string | null }>) {
      rows++;
      distinct.add(`${r.id}\0${r.rev}`);
      values.set(
        `${r.id}\0${r.rev}`,
        r.body === null ? null : (JSON.parse(r.body) as { value?: unknown }).value,
      );
      let set = revs.get(r.id);
      if (!set) revs.set(r.id, (set = new Set()));
      set.add(r.rev);
    }
    const heads = new Map<string, string>();
    for (const r of db
      .prepare('SELECT id, rev FROM resolutions WHERE collection = ?')
      .iterate(COLLECTION) as IterableIterator<{ id: string; rev: string }>)
      heads.set(r.id, r.rev);
    return { revs, values, heads, rows, distinct: distinct.size };
  } finally {
    db.close();
  }
}

/** A hub and its children, with writers on every node. */
export class Cluster {
  readonly hub: ChaosNode;
  readonly children: ChaosNode[];
  readonly acked: AckedWrite[] = [];
  /** Writes that failed (the node was down, the answer never came): not counted as acknowledged. */
  failedWrites = 0;
  /** Failed writes by node and error code (`c1:STORE_WRITE_FAILED`; `none` when no code came back). */
  readonly failureCodes = new Map<string, number>();
  /** Label of the phase new writes belong to. */
  phase = 'run';
  /** The phase of every write attempted, acknowledged or not, by record id. */
  private readonly attempts = new Map<string, string>();
  private writing = false;
  private writers: Promise<void>[] = [];

  constructor(
    dir: string,
    children: number,
    private readonly layout: ClusterLayout,
  ) {
    this.hub = { name: 'hub', role: 'hub', data: join(dir, 'hub'), kills: 0 };
    this.children = Array.from({ length: children }, (_, i) => ({
      name: `c${i + 1}`,
      role: 'child' as const,
      data: join(dir, `c${i + 1}`),
      kills: 0,
    }));
    for (const n of this.nodes) {
      mkdirSync(n.data, { recursive: true });
      const ns = layout.namespaces?.[n.name];
      if (ns) n.ns = ns;
    }
  }

  get nodes(): ChaosNode[] {
    return [this.hub, ...this.children];
  }

  private prefix(node: ChaosNode): string[] | undefined {
    const wrap = this.layout.wrappers?.[node.name] ?? [];
    const ns = node.ns ? ['ip', 'netns', 'exec', node.ns] : [];
    return ns.length + wrap.length > 0 ? [...ns, ...wrap] : undefined;
  }

  private cliIn(node: ChaosNode): CliCommand {
    return { command: [...(this.prefix(node) ?? []), process.execPath, CLI] };
  }

  /** Starts the hub, pairs every child and starts it. */
  async start(): Promise<void> {
    const started = await this.startNode(this.hub);
    let code = started.pairingCode as string | undefined;
    for (const child of this.children) {
      code ??= (await runCli(['pairing-code', '--data', this.hub.data])).code as string;
      await runCli(
        ['pair', code, '--hub', this.layout.pairAddress, '--data', child.data, '--name', child.name],
        this.cliIn(child),
      );
      code = undefined;
      await this.startNode(child);
    }
  }

  /** Starts a node's agent; resolves with its `started` line once it runs. */
  async startNode(node: ChaosNode): Promise<Record<string, unknown>> {
    // Logs beside the data, for the post-mortem of a failed run (`npm run chaos -- --keep`).
    const logs = ['--log-level', 'info', '--log-file', join(node.data, 'agent.log')];
    const args =
      node.role === 'hub'
        ? ['hub', '--data', node.data, ...logs, ...this.layout.hubArgs]
        : ['child', '--data', node.data, '--name', node.name, ...logs, ...this.layout.childArgs];
    const prefix = this.prefix(node);
    node.agent = startAgent(args, prefix ? { prefix } : {});
    const started = await node.agent.waitFor((l) => l.event === 'started', 30_000, `${node.name} starts`);
    if (typeof started.apiPort === 'number') node.apiPort = started.apiPort;
    return started;
  }

  /** Kills a node's agent with SIGKILL, as a power cut would. */
  async kill(node: ChaosNode): Promise<void> {
    await node.agent?.kill('SIGKILL');
    node.kills++;
  }

  /** Stops every agent with SIGTERM (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const agent = n.agent;
        if (!agent) return;
        const timer = setTimeout(() => agent.proc.kill('SIGKILL'), 10_000);
        await agent.kill('SIGTERM');
        clearTimeout(timer);
      }),
    );
  }

  /**
   * The children not connected to the hub (by their last connection event) after
   * waiting up to `withinMs` for each: a session stuck after a fault.
   */
  async unconnected(withinMs: number): Promise<string[]> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const out = this.children.filter((n) => !n.agent || !connectedNow(n.agent)).map((n) => n.name);
      if (out.length === 0 || Date.now() > deadline) return out;
      await sleep(100);
    }
  }

  /** Kills every agent at once (cleanup after a failure). */
  killAll(): void {
    for (const n of this.nodes) n.agent?.proc.kill('SIGKILL');
  }

  /** One write on a node; resolves with the revision once the node answered success. */
  async write(node: ChaosNode, id: string, body: Record<string, unknown>): Promise<string> {
    if (node.role === 'child' && this.layout.childWrites === 'api') {
      if (node.apiPort === undefined) throw new Error(`${node.name} has no API`);
      const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${node.apiPort}/api/records/${COLLECTION}/${id}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) {
        const answer = (await res.json().catch(() => ({}))) as { code?: unknown };
        throw Object.assign(new Error(`PUT answered ${res.status}`), { code: answer.code });
      }
      const result = (await res.json()) as { rev?: unknown };
      if (typeof result.rev !== 'string') throw new Error('PUT answered without a revision');
      return result.rev;
    }
    const result = await runCli(['put', COLLECTION, id, JSON.stringify(body), '--data', node.data]);
    if (typeof result.rev !== 'string') throw new Error('put printed no revision');
    return result.rev;
  }

  /** Starts one writer per node: unique ids, each write recorded once acknowledged. */
  startWriters(rng: SeededRandom, pauseMs: [number, number]): void {
    this.writing = true;
    this.writers = this.nodes.map(async (node) => {
      const r = rng.fork(`writer-${node.name}`);
      let n = 0;
      while (this.writing) {
        n++;
        const id = `${node.name}-${n}`;
        const value = Math.floor(r.next() * 1_000_000);
        const phase = this.phase;
        this.attempts.set(id, phase);
        try {
          const rev = await this.write(node, id, { by: node.name, n, value });
          this.acked.push({ node: node.name, id, value, rev, phase });
        } catch (err) {
          this.failedWrites++;
          const key = `${node.name}:${errorCode(err)}`;
          this.failureCodes.set(key, (this.failureCodes.get(key) ?? 0) + 1);
          await sleep(100);
        }
        await sleep(r.between(pauseMs[0], pauseMs[1]));
      }
    });
  }

  /** The phase a record was written in ('' for one no writer made). */
  phaseOf(id: string): string {
    return this.attempts.get(id) ?? '';
  }

  /** Stops the writers; resolves when the last write in flight has ended. */
  async stopWriters(): Promise<void> {
    this.writing = false;
    await Promise.all(this.writers);
    this.writers = [];
  }

  /**
   * Waits, with the agents running, until every node holds every acknowledged write
   * and every node holds the same revisions; resolves with the time it took (ms).
   */
  async converge(timeoutMs: number, what: string): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let last = '';
    for (;;) {
      const missing = this.unconverged();
      if (missing === '') return Date.now() - started;
      last = missing;
      if (Date.now() > deadline)
        throw new Error(`not converged after ${timeoutMs} ms (${what}): ${last}${this.exited()}`);
      await sleep(250);
    }
  }

  /** The agents that exited on their own, with the end of their stderr ('' when none did). */
  exited(): string {
    return this.nodes
      .filter((n) => n.agent && n.agent.proc.exitCode !== null)
      .map((n) => `; ${n.name}'s agent exited (${n.agent?.proc.exitCode}): ${n.agent?.stderr().slice(-1500)}`)
      .join('');
  }

  /** '' when converged, else what is missing where (reads the stores, agents may run). */
  private unconverged(): string {
    const stores = this.nodes.map((n) => ({ node: n, ...readStore(n.data) }));
    for (const s of stores) {
      const missing = this.acked.filter((w) => !holds(s, w));
      if (missing.length > 0)
        return `${s.node.name} lacks ${missing.length} acknowledged writes (${missing
          .slice(0, 3)
          .map((w) => w.id)
          .join(', ')}…)`;
    }
    const first = stores[0];
    if (!first) return '';
    for (const s of stores.slice(1)) {
      const diff = divergentKeys(first, s);
      if (diff.length > 0) return `${s.node.name} and ${first.node.name} differ on ${diff.length} records`;
    }
    return '';
  }

  /** The final checks, on stopped agents: lost, divergent, duplicated, integrity of every SQLite file. */
  verify(): StoreCheck {
    const stores = this.nodes.map((n) => ({ node: n, ...readStore(n.data) }));
    const lost = this.acked.filter((w) => stores.some((s) => !holds(s, w)));
    const divergent = new Set<string>();
    const first = stores[0];
    if (first) for (const s of stores.slice(1)) for (const k of divergentKeys(first, s)) divergent.add(k);
    const duplicates = stores.reduce((sum, s) => sum + (s.rows - s.distinct), 0);
    const integrity: string[] = [];
    for (const n of this.nodes) {
      for (const f of readdirSync(n.data).filter((x) => x.endsWith('.db'))) {
        try {
          const db = new Database(join(n.data, f), { readonly: true, fileMustExist: true });
          try {
            const rows = db.pragma('integrity_check') as { integrity_check: string }[];
            const text = rows.map((r) => r.integrity_check).join('; ');
            if (text !== 'ok') integrity.push(`${n.name}/${f}: ${text}`);
          } finally {
            db.close();
          }
        } catch (err) {
          // A file too damaged to open or to check.
          integrity.push(`${n.name}/${f}: ${(err as Error).message}`);
        }
      }
    }
    return {
      lost,
      divergent: [...divergent],
      duplicates,
      integrity,
      hubRevisions: stores[0]?.rows ?? 0,
    };
  }

  /** The SQLite files the final check opens, by node. */
  storeFiles(): string[] {
    return this.nodes.flatMap((n) =>
      readdirSync(n.data)
        .filter((x) => x.endsWith('.db'))
        .map((f) => `${n.name}/${f}`),
    );
  }
}

/** The code of a failed write: the API's `code`, or the CLI's `trosyn-sync: CODE: …` line; `none` without one. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
  const cli = /trosyn-sync: ([A-Z_]+):/.exec((err as Error).message ?? '');
  return cli?.[1] ?? 'none';
}

/** Whether a store holds an acknowledged write: its revision, with the value written. */
function holds(store: { values: Map<string, unknown> }, w: AckedWrite): boolean {
  return store.values.get(`${w.id}\0${w.rev}`) === w.value;
}

/** Whether a child's last connection event says it is connected (its session not stuck). */
function connectedNow(agent: Agent): boolean {
  const events = agent.lines
    .map((l) => (l as { event?: string }).event)
    .filter((e) => e === 'connected' || e === 'disconnected');
  return events.at(-1) === 'connected';
}

/** Records of `b` whose revisions or current revision differ from `a`'s (both ways). */
function divergentKeys(
  a: { revs: Map<string, Set<string>>; heads: Map<string, string> },
  b: { revs: Map<string, Set<string>>; heads: Map<string, string> },
): string[] {
  const out: string[] = [];
  const keys = new Set([...a.revs.keys(), ...b.revs.keys()]);
  for (const k of keys) {
    const x = a.revs.get(k);
    const y = b.revs.get(k);
    const same =
      x && y && x.size === y.size && [...x].every((r) => y.has(r)) && a.heads.get(k) === b.heads.get(k);
    if (!same) out.push(k);
  }
  return out;
}
