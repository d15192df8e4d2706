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
  // The same decisions a session's opening makes, both ways: a side announcing a log
  // it had replaced is rolled back and takes a new identity; each side checks the
  // other's cursor for its log (a rolled-back log gets a new identity here too); then
  // the source leaves out what came from the target's current log.
  for (const [self, other] of [
    [source, target],
    [target, source],
  ] as const) {
    const log = (await other.changeLog()).id;
    if (await self.isRetiredLog(other.deviceId, log)) await other.rotateChangeLog(log);
  }
  await target.openFor(source.deviceId, await source.cursorFor(target.deviceId));
  const start = await source.openFor(target.deviceId, await target.cursorFor(source.deviceId));
  const peer = { device: target.deviceId, log: (await target.changeLog()).id };
  let since: Seq = start.from;
  for (;;) {
    const limit = Math.max(1, Math.min(options.batchSize ?? 1000, budget - result.sent));
    const batch = await source.changesSince({
      since,
      peer,
      limit,
      ...(options.readable && { collections: options.readable }),
    });
    if (batch.upTo <= since) {
      result.complete = true;
      return result;
    }
    const report = await target.applyChanges(
      source.deviceId,
      { ...batch, log: start.log },
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
