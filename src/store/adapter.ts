import type { Startable } from '../lifecycle.js';
import type {
  ApplyInput,
  ApplyResult,
  ChangeBatch,
  ChangesQuery,
  ConflictRecord,
  DeviceId,
  ListQuery,
  RecordView,
  RetentionPolicy,
  RevId,
  Seq,
  StoredRevision,
  StoreStats,
} from './types.js';

/**
 * Where a node keeps its records, revisions, change log, cursors and conflicts.
 *
 * The adapter owns transactions and I/O; the sync engine owns the decisions and
 * hands them in as a pure `Reducer`. A second implementation (PostgreSQL, say) must
 * pass the shared acceptance suite in `./testing/adapter-suite.ts`.
 *
 * Every method except `start` rejects with `StoreClosedError` before `start()` or
 * after `stop()`.
 */
export interface StorageAdapter extends Startable {
  /**
   * Applies revisions in order and records `cursor` for `source`, all in one
   * transaction: either everything (cursor included) is durable, or nothing is.
   * Known revisions are skipped; a revision whose parents are unknown is rejected
   * alone with `UNKNOWN_ANCESTOR`.
   */
  apply(input: ApplyInput): Promise<ApplyResult>;

  /** The current heads of a record (empty when the record is unknown). */
  heads(collection: string, id: string): Promise<StoredRevision[]>;
  getRecord(collection: string, id: string): Promise<RecordView | undefined>;
  listRecords(collection: string, query: ListQuery): Promise<RecordView[]>;
  /** Names of the collections that hold at least one record. */
  listCollections(): Promise<string[]>;

  /** All known revisions of a record, oldest first (by HLC, then rev). */
  history(collection: string, id: string): Promise<StoredRevision[]>;
  getRevision(collection: string, id: string, rev: RevId): Promise<StoredRevision | undefined>;

  /** The change log after `since`, bounded by count and bytes. */
  changesSince(query: ChangesQuery): Promise<ChangeBatch>;
  latestSeq(): Promise<Seq>;
  /** Writes made on this node (not received, not local-only) after `since`: a peer's outbox. */
  countLocalChanges(since: Seq): Promise<number>;

  /** The last sequence number of `peer`'s change log that this node has applied. */
  getCursor(peer: DeviceId): Promise<Seq>;
  /** Moves a cursor forward (never backward) without applying revisions. */
  setCursor(peer: DeviceId, seq: Seq): Promise<void>;

  listConflicts(filter?: {
    status?: ConflictRecord['status'];
    collection?: string;
  }): Promise<ConflictRecord[]>;

  /** Drops bodies that the policy no longer keeps; returns how many. Heads are never pruned. */
  prune(policy: RetentionPolicy, now: number): Promise<number>;

  /**
   * A number that changes whenever another connection (another process) commits to
   * the same storage, and not on this adapter's own commits: lets an agent notice
   * outside writes without reading anything.
   */
  dataVersion(): Promise<number>;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  stats(): Promise<StoreStats>;
}
