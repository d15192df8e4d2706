import { type Clock, systemClock } from '../lifecycle.js';

export interface RateLimit {
  /** Burst size: events allowed at once. */
  burst: number;
  /** Sustained rate: events per minute refilled. */
  perMinute: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets by key, each full (`burst`) when first seen and refilled at
 * `perMs` a millisecond up to `burst`; at most `maxKeys` of them, the least
 * recently used dropped first.
 */
class Buckets {
  private readonly map = new Map<string, Bucket>();

  constructor(
    private readonly burst: number,
    private readonly perMs: number,
    private readonly maxKeys: number,
  ) {}

  /** `key`'s bucket refilled up to `now`, and marked the most recently used. */
  refilled(key: string, now: number): Bucket {
    let bucket = this.map.get(key);
    if (bucket) {
      this.map.delete(key);
      bucket.tokens = this.level(bucket, now);
      bucket.at = now;
    } else {
      bucket = { tokens: this.burst, at: now };
      if (this.map.size >= this.maxKeys) {
        const oldest = this.map.keys().next().value;
        if (oldest !== undefined) this.map.delete(oldest);
      }
    }
    // Re-inserted last, so the map's order is least-recently-used first.
    this.map.set(key, bucket);
    return bucket;
  }

  /** What `key`'s bucket holds at `now`, without touching it (full when not tracked). */
  peek(key: string, now: number): number {
    const bucket = this.map.get(key);
    return bucket ? this.level(bucket, now) : this.burst;
  }

  get(key: string): Bucket | undefined {
    return this.map.get(key);
  }

  private level(bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.perMs);
  }
}

/**
 * Token buckets by key (a source address, a device): each key may spend `burst`
 * events at once and regains `perMinute` per minute. The number of keys tracked is
 * bounded, so a flood from many addresses cannot grow memory without limit.
 */
export class RateLimiter {
  private readonly buckets: Buckets;
  private readonly limit: RateLimit;
  private readonly clock: Clock;

  constructor(limit: RateLimit, options: { clock?: Clock; maxKeys?: number } = {}) {
    this.limit = limit;
    this.clock = options.clock ?? systemClock;
    this.buckets = new Buckets(limit.burst, limit.perMinute / 60_000, options.maxKeys ?? 10_000);
  }

  /** Spends one event for `key`; false when the key is over its limit. */
  take(key: string): boolean {
    const bucket = this.buckets.refilled(key, this.clock.now());
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
  private readonly buckets: Buckets;
  readonly limit: Readonly<WorkLimit>;
  private readonly clock: Clock;

  constructor(limit: WorkLimit, options: { clock?: Clock; maxKeys?: number } = {}) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 0))
      throw new RangeError(`a work limit needs perSecond > 0 and burst >= 0, not ${JSON.stringify(limit)}`);
    this.limit = { ...limit };
    this.clock = options.clock ?? systemClock;
    this.buckets = new Buckets(limit.burst, limit.perSecond / 1000, options.maxKeys ?? 10_000);
  }

  /**
   * Charges `cost` units to `key` now; resolves how long (ms) the work must wait
   * before it goes on: 0 while the key is within its burst. Whoever waits must not
   * charge again for the same work.
   */
  reserve(key: string, cost: number): number {
    const bucket = this.buckets.refilled(key, this.clock.now());
    bucket.tokens -= Math.max(0, cost);
    return bucket.tokens >= 0 ? 0 : Math.ceil((-bucket.tokens * 1000) / this.limit.perSecond);
  }

  /** The units `key` could spend now without waiting (negative: its debt). */
  available(key: string): number {
    return this.buckets.peek(key, this.clock.now());
  }
}
