/**
 * Watches how many file descriptors the process holds against its limit. When they
 * run out, the kernel refuses every new socket and file, and Node's accept loop
 * drops incoming connections without a word (libuv closes them to get past EMFILE):
 * a flood of connections, or a limit set too low, would look like a hub that simply
 * stopped answering. So the agent looks every few seconds and says so in its log,
 * with the figures and what to do, once a minute while it lasts and once when it
 * ends. The same figures are in the metrics (`process_open_fds`, `process_max_fds`).
 *
 * Linux only (it reads /proc/self); elsewhere the watch does nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { type Clock, type Startable, systemClock, type Timer } from '../lifecycle.js';

/** Descriptors open now and the soft limit on them. */
export interface DescriptorUse {
  open: number;
  limit: number;
}

let knownLimit: number | undefined;

/**
 * This process's descriptors and its soft limit, or undefined where /proc/self is
 * not there. With none left, reading /proc fails too (EMFILE): that is all of them.
 */
export function descriptorUse(): DescriptorUse | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (!m || m[1] === 'unlimited') return undefined;
    knownLimit = Number(m[1]);
    // The directory's own descriptor, open while it is read, is not the agent's.
    return { open: readdirSync('/proc/self/fd').length - 1, limit: knownLimit };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'EMFILE' || code === 'ENFILE') && knownLimit !== undefined)
      return { open: knownLimit, limit: knownLimit };
    return undefined;
  }
}

export interface DescriptorWatchOptions {
  logger: Logger;
  clock?: Clock;
  /** How often to look (ms). Default 5 s. */
  everyMs?: number;
  /** The share of the limit in use that counts as running out. Default 0.9. */
  high?: number;
  /** The share below which it has ended. Default 0.8. */
  low?: number;
  /** Said again this often while it lasts (ms). Default 1 minute. */
  repeatMs?: number;
  /** Where the figures come from; for tests. Default descriptorUse. */
  read?: () => DescriptorUse | undefined;
}

/** Logs when the process is running out of file descriptors, and when that ends. */
export class DescriptorWatch implements Startable {
  private readonly o: Required<Omit<DescriptorWatchOptions, 'logger' | 'clock'>> & DescriptorWatchOptions;
  private readonly clock: Clock;
  private timer: Timer | undefined;
  private short = false;
  private saidAt = -Infinity;

  constructor(options: DescriptorWatchOptions) {
    this.o = { everyMs: 5000, high: 0.9, low: 0.8, repeatMs: 60_000, read: descriptorUse, ...options };
    this.clock = options.clock ?? systemClock;
  }

  isStarted(): boolean {
    return this.timer !== undefined;
  }

  async start(): Promise<void> {
    if (this.timer || this.o.read() === undefined) return;
    this.check();
    this.timer = this.clock.setInterval(() => this.check(), this.o.everyMs);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Looks now: logs if the process runs short (again), or no longer does. */
  check(): void {
    const use = this.o.read();
    if (!use) return;
    const share = use.open / use.limit;
    const now = this.clock.now();
    if (share >= this.o.high) {
      if (this.short && now - this.saidAt < this.o.repeatMs) return;
      this.short = true;
      this.saidAt = now;
      this.o.logger.error(
        { code: 'DESCRIPTORS_EXHAUSTED', open: use.open, limit: use.limit },
        `file descriptors nearly exhausted: ${use.open} of ${use.limit} in use; new connections and files are refused by the system until some close. Raise the limit (ulimit -n, or LimitNOFILE= in the service unit) or find what holds so many connections`,
      );
    } else if (this.short && share < this.o.low) {
      this.short = false;
      // At the level of the error it ends, so whoever saw that sees this.
      this.o.logger.warn(
        { open: use.open, limit: use.limit },
        `file descriptors available again: ${use.open} of ${use.limit} in use`,
      );
    }
  }
}
