import type { Seq } from '../store/types.js';
import type { ApplyOptions, Replica } from './replica.js';

export interface TransferOptions extends ApplyOptions {
  /** Revisions per batch. Default 1000. */
  batchSize?: number;
  /** Stop after this many revisions (a partial sync). Default: all. */
  maxRevisions?: number;
  /** Read scope applied on the sending side. */
  readable?: (collection: string) => boolean;
}

export interface TransferResult {
  batches: number;
  sent: number;
  applied: number;
  duplicates: number;
  rejected: number;
  /** True when `target` has everything `source` offers it. */
  complete: boolean;
}

/**
 * Moves `source`'s changes into `target` directly, in batches, from `target`'s
 * cursor for `source`. The same primitives a session uses, without a channel:
 * for tests, benchmarks and tools that hold both replicas.
 */
export async function transfer(
  source: Replica,
  target: Replica,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const result: TransferResult = {
    batches: 0,
    sent: 0,
    applied: 0,
    duplicates: 0,
    rejected: 0,
    complete: false,
  };
  const budget = options.maxRevisions ?? Number.POSITIVE_INFINITY;
  let since: Seq = await target.cursorFor(source.deviceId);
  for (;;) {
    const limit = Math.max(1, Math.min(options.batchSize ?? 1000, budget - result.sent));
    const batch = await source.changesSince({
      since,
      peer: target.deviceId,
      limit,
      ...(options.readable && { collections: options.readable }),
    });
    if (batch.upTo <= since) {
      result.complete = true;
      return result;
    }
    const report = await target.applyChanges(
      source.deviceId,
      batch,
      options.admit ? { admit: options.admit } : {},
    );
    result.batches++;
    result.sent += batch.revisions.length;
    result.applied += report.applied;
    result.duplicates += report.duplicates;
    result.rejected += report.rejected.length;
    since = batch.upTo;
    if (!batch.more) {
      result.complete = true;
      return result;
    }
    if (result.sent >= budget) return result;
  }
}
