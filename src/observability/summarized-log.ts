import { type Clock, type Timer } from '../lifecycle.js';

/**
 * Occurrences logged without flooding the log, every one counted: the first of a
 * key at once, then one line every `everyMs` with what came since (summed by
 * `add`), and a last one at `stop`. A key with nothing in a whole interval is
 * forgotten; with `maxKeys`, the oldest key is told and dropped first. For
 * connections refused by address and code, and writes held back by device.
 */
export class SummarizedLog<T> {
  /** Each key seen lately, and what came since its last line (undefined: nothing). */
  private readonly pending = new Map<string, T | undefined>();
  private timer: Timer | undefined;

  constructor(
    private readonly o: {
      clock: Clock;
      everyMs: number;
      maxKeys?: number;
      /** `sum` and `one` together (may update `sum` in place). */
      add: (sum: T, one: T) => T;
      write: (key: string, what: T) => void;
    },
  ) {}

  start(): void {
    this.timer ??= this.o.clock.setInterval(() => this.flush(), this.o.everyMs);
  }

  /** Stops the interval and writes what is still counted. */
  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.flush();
  }

  note(key: string, one: T): void {
    if (this.pending.has(key)) {
      const sum = this.pending.get(key);
      this.pending.set(key, sum === undefined ? one : this.o.add(sum, one));
      return;
    }
    if (this.o.maxKeys !== undefined && this.pending.size >= this.o.maxKeys) {
      const [oldest, sum] = this.pending.entries().next().value ?? [];
      if (oldest !== undefined) {
        if (sum !== undefined) this.o.write(oldest, sum);
        this.pending.delete(oldest);
      }
    }
    this.o.write(key, one);
    this.pending.set(key, undefined);
  }

  private flush(): void {
    for (const [key, sum] of this.pending) {
      if (sum === undefined) this.pending.delete(key);
      else {
        this.o.write(key, sum);
        this.pending.set(key, undefined);
      }
    }
  }
}
