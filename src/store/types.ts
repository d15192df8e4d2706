/**
 * The data model shared by every layer: identifiers, revisions, record states,
 * conflicts. The store is the lowest layer, so these types live here and the layers
 * above import them.
 */

/** SHA-256 of a device's certificate (DER), 64 lowercase hex characters. */
export type DeviceId = string & { readonly __brand: 'DeviceId' };
/** SHA-256 of a revision's canonical form, 64 lowercase hex characters. */
export type RevId = string & { readonly __brand: 'RevId' };
/** A position in one node's change log; strictly increasing, never reused. */
export type Seq = number & { readonly __brand: 'Seq' };

/**
 * The identity of one node's change log: random, and new whenever the store is
 * created, recreated, restored or found rolled back. Positions (`Seq`) mean
 * something only together with the log they are positions in.
 */
export interface ChangeLogInfo {
  /** 32 lowercase hex characters. */
  id: string;
  /** Wall-clock ms when this identity was made. */
  createdAt: number;
}

/** One change log of one peer: where a received revision came from. */
export interface PeerLog {
  device: DeviceId;
  /** The peer's change log identity (ChangeLogInfo.id). */
  log: string;
}

/**
 * How far this node has applied a peer's change log. `check` is the token the peer
 * gave for position `seq` of its log (see StorageAdapter.checkpoint); the peer uses
 * it to tell whether its log still holds, at `seq`, what this node applied. The
 * empty cursor is `{ log: '', seq: 0, check: '' }`.
 */
export interface PeerCursor {
  log: string;
  seq: Seq;
  check: string;
}

/** The cursor of a peer this node has never applied anything from. */
export const EMPTY_CURSOR: Readonly<PeerCursor> = Object.freeze({ log: '', seq: 0 as Seq, check: '' });

/** A JSON value as stored in record bodies. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Device ID -> number of writes that device made to one record. */
export type VersionVector = Record<string, number>;

/**
 * One immutable version of a record, identified by the hash of its content and
 * metadata. A tombstone has `deleted: true` and `body: null`. A revision whose body
 * was dropped by history retention is a stub: `pruned: true`, `body: null`, every
 * other field intact, so its identity can still be verified.
 */
export interface Revision {
  rev: RevId;
  collection: string;
  id: string;
  /** The revisions this one superseded when it was written (sorted). */
  parents: RevId[];
  vv: VersionVector;
  /** Hybrid logical clock: 12 hex digits of wall-clock ms, then 4 of a counter. */
  hlc: string;
  author: DeviceId;
  /** True when a hub wrote it (the `hub-wins` strategy prefers these). */
  hub: boolean;
  deleted: boolean;
  /** SHA-256 of the canonical JSON body; empty for a tombstone. */
  bodyHash: string;
  body: JsonObject | null;
  /** Per-field clocks, kept for collections that merge field by field. */
  fields?: Record<string, string>;
  pruned?: boolean;
}

/** A revision as one node holds it. */
export interface StoredRevision extends Revision {
  seq: Seq;
  /** True while no other known revision supersedes it. */
  head: boolean;
  /** Local-only revisions are never offered to peers. */
  local: boolean;
  /** The peer it was received from; undefined when it was written here. */
  source: DeviceId | undefined;
}

export type ConflictStatus = 'none' | 'open' | 'auto';

/** What a record resolves to from its current heads. */
export interface Resolution {
  winner: RevId;
  deleted: boolean;
  body: JsonObject | null;
  /** True when `body` is not simply the winner's body (a merge or custom result). */
  derived: boolean;
}

/**
 * The reducer's verdict on one incoming revision, given the current heads of its
 * record. `stale` and `stub` revisions are kept in history only.
 */
export type ReduceOutcome =
  | { kind: 'stale' }
  | { kind: 'stub' }
  | ({
      kind: 'head';
      /** Heads the revision supersedes. */
      supersedes: RevId[];
      /** All heads after the revision joins them (sorted by rev). */
      heads: RevId[];
    } & Settlement);

/** How a record's heads settle: its resolution, latest HLC, conflict state and the strategy that decided. */
export interface Settlement {
  resolution: Resolution;
  hlc: string;
  conflict: ConflictStatus;
  strategy: string;
}

/**
 * Pure and synchronous: settles a record's current heads (sorted by rev, at least
 * two) again under its collection's strategy now, after the strategy changed.
 */
export type Resettler = (heads: readonly StoredRevision[]) => Settlement;

/**
 * Pure and synchronous: decides what one revision does to its record. The storage
 * adapter calls it inside its transaction, once per revision, in order.
 */
export type Reducer = (heads: readonly StoredRevision[], incoming: Revision) => ReduceOutcome;

/** The current state of a record, as `get` and `list` return it. */
export interface RecordView {
  collection: string;
  id: string;
  rev: RevId;
  deleted: boolean;
  body: JsonObject | null;
  hlc: string;
  conflict: ConflictStatus;
  seq: Seq;
}

/** The record as a revision that became a head leaves it (`seq`: that revision's position). */
export function headRecord(
  r: Revision,
  outcome: Extract<ReduceOutcome, { kind: 'head' }>,
  seq: Seq,
): RecordView {
  return {
    collection: r.collection,
    id: r.id,
    rev: outcome.resolution.winner,
    deleted: outcome.resolution.deleted,
    body: outcome.resolution.body,
    hlc: outcome.hlc,
    conflict: outcome.conflict,
    seq,
  };
}

export interface ConflictRecord {
  /** Local identifier of this conflict entry. */
  conflictId: number;
  collection: string;
  id: string;
  /** `open` waits for a person (manual strategy); `auto` was settled by the strategy. */
  status: 'open' | 'auto' | 'resolved';
  strategy: string;
  heads: RevId[];
  winner: RevId;
  openedAt: number;
  updatedAt: number;
  resolvedAt: number | null;
  resolvedBy: RevId | null;
}

/** A revision to store, with where it came from. */
export interface IncomingRevision {
  revision: Revision;
  local: boolean;
  /** The body's canonical JSON text, when the caller already has it (saves serialising it again). */
  bodyText?: string;
}

export interface ApplyInput {
  revisions: readonly IncomingRevision[];
  /** The peer and change log the revisions came from; undefined for writes made on this node. */
  source?: PeerLog;
  /**
   * Cursor to record for `source.device` in the same transaction. A cursor for
   * another log than the one recorded replaces it; one for the same log only moves it forward.
   */
  cursor?: PeerCursor;
  reduce: Reducer;
  /** Wall-clock ms, recorded on conflict entries. */
  now: number;
}

export interface AppliedRevision {
  revision: Revision;
  seq: Seq;
  outcome: ReduceOutcome['kind'];
  /** Present when the record's current state changed. */
  record?: RecordView;
}

export interface RejectedRevision {
  rev: string;
  collection: string;
  id: string;
  code: string;
  message: string;
}

export interface ApplyResult {
  applied: AppliedRevision[];
  /** Revisions already known: re-delivery is a no-op. */
  duplicates: number;
  /** Revisions refused by the store (e.g. unknown ancestor); the rest were applied. */
  rejected: RejectedRevision[];
}

export interface ChangesQuery {
  /** Return revisions with a sequence number greater than this. */
  since: Seq;
  /** At most this many revisions. */
  limit: number;
  /** Stop adding revisions once their body bytes reach this (at least one is returned). */
  maxBytes: number;
  /**
   * Leave out revisions received from this change log of a peer (echo suppression).
   * Revisions received from an older log of the same device are not left out: a
   * peer whose store was recreated gets back what it no longer has.
   */
  excludeSource?: PeerLog;
  /** Only revisions of collections this predicate accepts; others are skipped. */
  collections?: (collection: string) => boolean;
  /**
   * Only revisions of these collections, left out inside the store: the others are
   * never read (`collections` still applies on top). For a reader that wants a few
   * named collections out of a log of many revisions, e.g. the file versions.
   */
  collectionIn?: readonly string[];
  /**
   * Also say where the batch's revisions came from (`ChangeBatch.origin`), so that
   * one batch can be sent to several peers. A store may leave it out; batches are
   * then read per peer.
   */
  origin?: boolean;
}

/**
 * Where the revisions of a batch came from. A batch read without `excludeSource`
 * is the very batch a peer would get with its own log excluded, when that log is
 * not in `logs` and, if `more`, is not `next` either.
 */
export interface BatchOrigin {
  /** The peer change logs that revisions in (since, upTo] were received from (besides `excludeSource`). */
  logs: PeerLog[];
  /**
   * When `more`: the log the first revision after `upTo` was received from (null when
   * it was written here); undefined when the batch is the end of the log.
   */
  next?: PeerLog | null;
  /** Body bytes of the batch's revisions, as counted against `maxBytes`. */
  bodyBytes: number;
}

export interface ChangeBatch {
  since: Seq;
  /** Highest sequence number examined: the receiver's next cursor. */
  upTo: Seq;
  revisions: Revision[];
  /** True when more changes are waiting after `upTo`. */
  more: boolean;
  /** The checkpoint token of position `upTo` (see StorageAdapter.checkpoint). */
  check: string;
  /** Where its revisions came from, when asked for (`ChangesQuery.origin`) and the store tells. */
  origin?: BatchOrigin;
}

export interface ListQuery {
  /** Return records whose id sorts after this one (paging). */
  after?: string;
  limit: number;
  includeDeleted?: boolean;
}

export interface RetentionPolicy {
  /** Keep the bodies of at most this many revisions per record (heads always kept). */
  maxRevisions?: number;
  /** Drop the bodies of revisions older than this many ms (heads always kept). */
  maxAgeMs?: number;
}

export interface StoreStats {
  records: number;
  revisions: number;
  latestSeq: Seq;
  openConflicts: number;
}
