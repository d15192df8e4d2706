import { type Clock, systemClock } from '../lifecycle.js';

export interface RateLimit {
  /** Burst size: events allowed at once. */
  burst: number;
  /** Sustained rate: events per minute refilled. */
  perMinute: number;
}

/**
 * Token buckets by key (a source address, a device): each key may spend `burst`
 * events at once and regains `perMinute` per minute. The number of keys tracked is
 * bounded, so a flood from many addresses cannot grow memory without limit.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly limit: RateLimit;
  private readonly clock: Clock;
  private readonly maxKeys: number;

  constructor(limit: RateLimit, options: { clock?: Clock; maxKeys?: number } = {}) {
    this.limit = limit;
    this.clock = options.clock ?? systemClock;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Spends one event for `key`; false when the key is over its limit. */
  take(key: string): boolean {
    const now = this.clock.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      bucket.tokens = Math.min(
        this.limit.burst,
        bucket.tokens + ((now - bucket.at) * this.limit.perMinute) / 60_000,
      );
      bucket.at = now;
    } else {
      bucket = { tokens: this.limit.burst, at: now };
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    // Re-inserted last, so the map's order is least-recently-used first.
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /**
   * Gives back one event spent with `take`, for an attempt that turned out to be
   * legitimate. A key no longer tracked gets nothing: it starts full anyway.
   */
  refund(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.limit.burst, bucket.tokens + 1);
  }
}

/** A sustained rate with a burst, of units of work (revisions) per second. */
export interface WorkLimit {
  /** Units regained per second: the long-run rate. */
  perSecond: number;
  /** Units that may be spent at once after a quiet while. */
  burst: number;
}

/**
 * Token buckets by key that delay work instead of refusing it. `reserve` charges
 * the work at once, letting a bucket go into debt, and says how long the work must
 * wait for that debt to be paid: however the work comes (one large batch or many
 * small ones), a key spends at most `burst` plus `perSecond` a second of work.
 * Each key starts full. Bounded in keys like RateLimiter.
 */
export class WorkThrottle {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  readonly limit: Readonly<WorkLimit>;
  private readonly clock: Clock;
  private readonly maxKeys: number;

  constructor(limit: WorkLimit, options: { clock?: Clock; maxKeys?: number } = {}) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 0))
      throw new RangeError(`a work limit needs perSecond > 0 and burst >= 0, not ${JSON.stringify(limit)}`);
    this.limit = { ...limit };
    this.clock = options.clock ?? systemClock;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /**
   * Charges `cost` units to `key` now; resolves how long (ms) the work must wait
   * before it goes on: 0 while the key is within its burst. Whoever waits must not
   * charge again for the same work.
   */
  reserve(key: string, cost: number): number {
    const now = this.clock.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      bucket.tokens = Math.min(
        this.limit.burst,
        bucket.tokens + ((now - bucket.at) * this.limit.perSecond) / 1000,
      );
      bucket.at = now;
    } else {
      bucket = { tokens: this.limit.burst, at: now };
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(key, bucket);
    bucket.tokens -= Math.max(0, cost);
    return bucket.tokens >= 0 ? 0 : Math.ceil((-bucket.tokens * 1000) / this.limit.perSecond);
  }

  /** The units `key` could spend now without waiting (negative: its debt). */
  available(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit.burst;
    return Math.min(
      this.limit.burst,
      bucket.tokens + ((this.clock.now() - bucket.at) * this.limit.perSecond) / 1000,
    );
  }
}
