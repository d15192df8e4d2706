/** Reconnect delays: exponential, capped, with full jitter (a random delay up to the current bound). */
export interface BackoffOptions {
  /** First bound in ms. Default 500. */
  initialMs?: number;
  /** Largest bound in ms. Default 30 s. */
  maxMs?: number;
  /** Random source in [0, 1): injectable so tests are repeatable. Default Math.random. */
  random?: () => number;
}

/**
 * Full jitter spreads the reconnects of many children after a hub restart over the
 * whole window instead of stampeding at the same instants.
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** The upper bound for the next delay. */
  bound(): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
  }

  /** The next delay, and one more attempt counted. */
  next(): number {
    const delay = Math.floor(this.random() * this.bound());
    this.attempt++;
    return delay;
  }

  /** Back to the first bound (after a healthy session). */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
