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
