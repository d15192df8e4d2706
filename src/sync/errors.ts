import { type ErrorCode, isErrorCode } from '../error-codes.js';
import { TrosynError } from '../errors.js';

/** A collection name that is empty, too long, or uses characters outside [A-Za-z0-9_.-]. */
export class InvalidCollectionError extends TrosynError {
  constructor(name: unknown, reason: string) {
    super('INVALID_COLLECTION', `invalid collection name ${JSON.stringify(name)}: ${reason}`, {
      collection: String(name),
    });
  }
}

/** A record id that is empty, too long, or holds control characters. */
export class InvalidRecordIdError extends TrosynError {
  constructor(id: unknown, reason: string) {
    super('INVALID_RECORD_ID', `invalid record id ${JSON.stringify(id)}: ${reason}`, {
      id: String(id),
    });
  }
}

/** A record body that is not a JSON object (or holds values JSON cannot carry). */
export class InvalidBodyError extends TrosynError {
  constructor(reason: string) {
    super('INVALID_BODY', `invalid record body: ${reason}`);
  }
}

/** A record body larger than the configured limit. */
export class RecordTooLargeError extends TrosynError {
  constructor(bytes: number, limit: number) {
    super(
      'RECORD_TOO_LARGE',
      `record body is ${bytes} bytes, over the limit of ${limit} bytes (option maxRecordBytes)`,
      {
        bytes,
        limit,
      },
    );
  }
}

/** A revision from a peer that is malformed or whose hash does not match its content. */
export class InvalidRevisionError extends TrosynError {
  constructor(rev: unknown, reason: string) {
    super('INVALID_REVISION', `invalid revision ${String(rev)}: ${reason}`, { rev: String(rev) });
  }
}

/** A revision whose clock is further in the future than the allowed skew. */
export class ClockSkewError extends TrosynError {
  constructor(rev: string, aheadMs: number, limitMs: number) {
    super(
      'CLOCK_SKEW',
      `revision ${rev} is ${Math.round(aheadMs / 1000)} s ahead of this node's clock (limit ${Math.round(limitMs / 1000)} s); fix the writer's system clock`,
      { rev, aheadMs, limitMs },
    );
  }
}

/** A peer sent a revision of a collection that is local-only here. */
export class LocalOnlyCollectionError extends TrosynError {
  constructor(collection: string) {
    super(
      'LOCAL_ONLY_COLLECTION',
      `collection ${collection} is local-only on this node and is never synced`,
      {
        collection,
      },
    );
  }
}

/** A batch continues from a point after this node's cursor: changes in between would be lost. */
export class SyncGapError extends TrosynError {
  constructor(since: number, cursor: number) {
    super('SYNC_GAP', `batch starts after sequence ${since} but this node has only applied up to ${cursor}`, {
      since,
      cursor,
    });
  }
}

/**
 * A peer announced a change log identity it had already replaced by another: its
 * store was restored from an older copy of itself. Sent to that peer, which then
 * gives its log a new identity, so that what came from the abandoned timeline is
 * no longer taken for its own. `newer` is the sender's cursor for the peer's newer
 * log: a position the peer gave it, which the peer can check (its issue mark), so
 * that no one can make a node replace its log by saying so.
 */
export class ChangeLogRolledBackError extends TrosynError {
  constructor(log: string, newer?: { log: string; seq: number; check: string }) {
    super(
      'CHANGE_LOG_ROLLED_BACK',
      `change log ${log.slice(0, 12)} was already replaced by a newer one: this store was restored from an older copy; it takes a new change log identity`,
      { log, ...(newer && { newer: { log: newer.log, seq: newer.seq, check: newer.check } }) },
    );
  }
}

/** No record with that collection and id. */
export class RecordNotFoundError extends TrosynError {
  constructor(collection: string, id: string) {
    super('RECORD_NOT_FOUND', `no record ${collection}/${id}`, { collection, id });
  }
}

/** No revision with that hash (or unique prefix) for the record. */
export class RevisionNotFoundError extends TrosynError {
  constructor(collection: string, id: string, rev: string) {
    super('REVISION_NOT_FOUND', `record ${collection}/${id} has no revision ${rev}`, {
      collection,
      id,
      rev,
    });
  }
}

/** A revision prefix that matches more than one revision. */
export class AmbiguousRevisionError extends TrosynError {
  constructor(rev: string, matches: number) {
    super('AMBIGUOUS_REVISION', `revision prefix ${rev} matches ${matches} revisions; give more characters`, {
      rev,
      matches,
    });
  }
}

/** The revision's body was dropped by history retention, so it cannot be restored. */
export class RevisionPrunedError extends TrosynError {
  constructor(rev: string) {
    super('REVISION_PRUNED', `revision ${rev} was pruned by history retention and its body is gone`, { rev });
  }
}

/** Resolve was called on a record that has no conflict. */
export class NoConflictError extends TrosynError {
  constructor(collection: string, id: string) {
    super('NO_CONFLICT', `record ${collection}/${id} has no conflict to resolve`, {
      collection,
      id,
    });
  }
}

/** A conflict number that names no conflict entry of this node. */
export class ConflictNotFoundError extends TrosynError {
  constructor(conflictId: number) {
    super('CONFLICT_NOT_FOUND', `no conflict number ${conflictId} on this node`, { conflictId });
  }
}

/** An option is invalid or conflicts with another; the message says what to change. */
export class InvalidOptionError extends TrosynError {
  constructor(option: string, reason: string) {
    super('INVALID_OPTION', `option ${option}: ${reason}`, { option });
  }
}

/** The engine was used before start() or after stop(). */
export class NotStartedError extends TrosynError {
  constructor(what: string) {
    super('NOT_STARTED', `${what} is not started`);
  }
}

/**
 * A sync session ended by protocol error or by the peer. A peer's code this build
 * does not know becomes PEER_ERROR, with the code in `details.peerCode`.
 */
export class SyncProtocolError extends TrosynError {
  constructor(code: ErrorCode | string, message: string, details?: Record<string, unknown>) {
    const known = isErrorCode(code);
    super(known ? code : 'PEER_ERROR', message, known ? details : { ...details, peerCode: code });
  }
}
