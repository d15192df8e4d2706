import type { Startable } from '../lifecycle.js';
import type {
  ApplyInput,
  ApplyResult,
  ChangeBatch,
  ChangeLogInfo,
  ChangesQuery,
  ConflictRecord,
  DeviceId,
  ListQuery,
  PeerCursor,
  PeerLog,
  RecordView,
  Resettler,
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

  /** The change log after `since`, bounded by count and bytes, with the checkpoint of its end. */
  changesSince(query: ChangesQuery): Promise<ChangeBatch>;
  latestSeq(): Promise<Seq>;
  /**
   * How many revisions after `since` a peer would be sent (not local-only, not
   * received from `excludeSource`): the outbox toward that peer.
   */
  countChanges(since: Seq, excludeSource?: PeerLog): Promise<number>;

  /**
   * This store's change log identity. A new store makes one when it is first
   * started; it stays until `rotateChangeLog`.
   */
  changeLog(): Promise<ChangeLogInfo>;
  /**
   * Gives the change log a new identity (same positions, same revisions), so that
   * every peer's cursor for it restarts from 0: for a store found restored from an
   * older copy of itself, whose positions past the copy were reused.
   */
  rotateChangeLog(now: number): Promise<ChangeLogInfo>;
  /**
   * A token for position `seq` of this change log: it changes if the revision at
   * `seq` is ever a different one (a rolled-back log that reused the position).
   * '' for 0; a token no position has when `seq` is past the end. Salted with a
   * secret of this store, so it tells a peer nothing about a local-only revision.
   */
  checkpoint(seq: Seq): Promise<string>;
  /**
   * True when `token` is one this store handed out for position `seq` of its log
   * `log`, even a position it no longer holds (see checkpointToken): a peer's cursor
   * past the end with such a token means this store lost positions; any other is
   * made up, or from before tokens carried the mark.
   */
  issued(log: string, seq: Seq, token: string): Promise<boolean>;

  /**
   * True when the peer has announced another log since this one (a cursor for a new
   * log retires the cursor's old log): a peer announcing it again was rolled back.
   */
  isRetiredLog(source: PeerLog): Promise<boolean>;

  /** How far this node has applied `peer`'s change log (EMPTY_CURSOR if never). */
  getCursor(peer: DeviceId): Promise<PeerCursor>;
  /**
   * Records a cursor without applying revisions: one for another log than the one
   * recorded replaces it; one for the same log only moves it forward.
   */
  setCursor(peer: DeviceId, cursor: PeerCursor): Promise<void>;
  /**
   * Records several peers' cursors as `setCursor` does, in one transaction: the hub
   * saves its children's cursor moves together, not a commit (and an fsync) each.
   */
  setCursors(cursors: ReadonlyArray<readonly [DeviceId, PeerCursor]>): Promise<void>;

  listConflicts(filter?: {
    status?: ConflictRecord['status'];
    collection?: string;
  }): Promise<ConflictRecord[]>;

  /**
   * Settles again, with `settle`, every record of `collection` whose heads are in
   * conflict (its strategy changed): each one's resolution and active conflict entry
   * take the new verdict, in one transaction, without a new revision. Returns the
   * records whose state changed.
   */
  resettle(collection: string, settle: Resettler, now: number): Promise<RecordView[]>;

  /** Drops bodies that the policy no longer keeps; returns how many. Heads are never pruned. */
  prune(policy: RetentionPolicy, now: number): Promise<number>;

  /**
   * Optional capability: a number that changes whenever another connection (another
   * process) commits to the same storage, and not on this adapter's own commits, so
   * an agent notices outside writes without reading anything (SQLite's
   * `data_version`). Without it the agent looks at the change log each time.
   */
  dataVersion?(): Promise<number>;
  /**
   * Optional: calls `listener` soon after any process commits a write here (a
   * wake-up carrying nothing; PostgreSQL's LISTEN/NOTIFY, a watch on SQLite's
   * files), so an agent notices other processes' writes at once rather than at its
   * next look. Returns the unsubscribe function, or undefined when this store
   * gives no wake-ups (then the agent looks on the clock).
   */
  onCommit?(listener: () => void): (() => void) | undefined;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  stats(): Promise<StoreStats>;
}
