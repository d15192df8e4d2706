import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { ERROR_CODES } from '../error-codes.js';

/**
 * The pieces both agents' Prometheus metrics are built from. Each agent has its own
 * prom-client Registry (never the library's global one: many hubs and children may
 * run in one process, in tests or an embedding app); the Node process metrics
 * (`process_*`, `nodejs_*`) are the process's, so they live in one registry shared
 * by every agent of the process and are appended to each agent's scrape.
 */

/** The Content-Type of a scrape: Prometheus text format 0.0.4. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Buckets (seconds) of the duration histograms: 10 ms to 10 minutes. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The metric the backup alert reads: when the last scheduled backup succeeded (hubs with a schedule). */
export const BACKUP_METRIC = 'trosyn_last_backup_success_timestamp_seconds';

let processRegistry: Registry | undefined;

/** The process metrics, made the first time an agent is scraped and shared from then on. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    // Gauges named like counters, which Prometheus' lint refuses; the same counts are
    // there without the suffix (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources).
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/**
 * An agent's registry and its scrape: the agent's own metrics, then the process's.
 * Every collect() callback runs at scrape time, so a scrape reads what the parts
 * keep now.
 */
export class AgentMetrics {
  readonly registry = new Registry();

  /** The Prometheus text of a scrape. */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    return `${own}${own.endsWith('\n') || own === '' ? '' : '\n'}${await processMetrics().metrics()}`;
  }

  /**
   * A counter whose values the agent already keeps (totals since start that never
   * go back), read at scrape time rather than counted twice: `read` gives each
   * series' labels and value.
   */
  keptCounter<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => ReadonlyArray<[Partial<Record<L, string>>, number]>,
  ): Counter<L> {
    return new Counter<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, Math.max(0, value));
      },
    });
  }
}

/**
 * A label value for an error code: the code when it is one of the table's, else
 * `OTHER`, so a peer sending made-up codes cannot add series without bound.
 */
export function codeLabel(code: string | undefined): string {
  return code !== undefined && Object.hasOwn(ERROR_CODES, code) ? code : 'OTHER';
}

/** Codes that say a peer sent bytes or messages that break the wire protocol or the sync exchange. */
const PROTOCOL_CODES: ReadonlySet<string> = new Set([
  ...Object.entries(ERROR_CODES)
    .filter(([, info]) => info.area === 'Wire protocol')
    .map(([code]) => code),
  'UNEXPECTED_MESSAGE',
  'UNKNOWN_METHOD',
  'SYNC_GAP',
  'HANDSHAKE_FAILED',
]);

/** True for a frame or protocol error (a bad frame, an invalid or unexpected message). */
export function isProtocolError(code: string | undefined): boolean {
  return code !== undefined && PROTOCOL_CODES.has(code);
}

/**
 * Times from a position of a change log being written to its acknowledgement by a
 * peer, on one clock: positions are kept as they are written (the newest `size`),
 * and each acknowledgement reports how long the positions it covers waited.
 */
export class AckTimes {
  private readonly entries: Array<{ seq: number; at: number; origin: string }> = [];
  private readonly size: number;

  constructor(size = 10_000) {
    this.size = size;
  }

  /** A position written at `at` (ms); `origin` is the device it came from, which never acknowledges its own. */
  written(seq: number, at: number, origin: string): void {
    const last = this.entries[this.entries.length - 1];
    if (last && seq <= last.seq) return;
    this.entries.push({ seq, at, origin });
    if (this.entries.length > this.size) this.entries.splice(0, this.entries.length - this.size);
  }

  /** Calls `observe` with the wait (seconds) of every kept position in (from, to], except those from `peer`. */
  acknowledged(
    peer: string,
    from: number,
    to: number,
    now: number,
    observe: (seconds: number) => void,
  ): void {
    if (to <= from) return;
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.entries[mid] as { seq: number }).seq <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.entries.length; i++) {
      const e = this.entries[i] as { seq: number; at: number; origin: string };
      if (e.seq > to) break;
      if (e.origin !== peer) observe(Math.max(0, now - e.at) / 1000);
    }
  }

  /** Forgets positions up to `upTo` (every peer has acknowledged them). */
  forget(upTo: number): void {
    let n = 0;
    while (n < this.entries.length && (this.entries[n] as { seq: number }).seq <= upTo) n++;
    if (n > 0) this.entries.splice(0, n);
  }
}

/**
 * Bytes of file content served to peers over their connections, summed into a
 * total that never goes back: each look adds what each peer's connection moved
 * since the last look (a new connection starts from zero).
 */
export class ServedBytes {
  private readonly last = new Map<string, number>();
  private sum = 0;

  /** Adds what moved since the last look; `peers` are the connections now. */
  look(peers: ReadonlyArray<{ peer: string; bytesOut: number }>): number {
    for (const p of peers) {
      const before = this.last.get(p.peer) ?? 0;
      this.sum += p.bytesOut >= before ? p.bytesOut - before : p.bytesOut;
      this.last.set(p.peer, p.bytesOut);
    }
    return this.sum;
  }

  /** A peer's connection ended (after a last look): its next one starts from zero. */
  ended(peer: string): void {
    this.last.delete(peer);
  }
}
