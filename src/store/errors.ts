import { TrosynError } from '../errors.js';

/** The store was used before `start()` or after `stop()`. */
export class StoreClosedError extends TrosynError {
  constructor() {
    super('STORE_CLOSED', 'the store is not open (call start() first, or it was stopped)');
  }
}

/** The database file could not be opened or is not a Trosyn Sync store. */
export class StoreOpenError extends TrosynError {
  constructor(path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('STORE_OPEN_FAILED', `cannot open the store at ${path}: ${reason}`, { path }, { cause });
  }
}

/** SQLite found the database file damaged (or not a database at all). */
export class StoreCorruptError extends TrosynError {
  constructor(path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'STORE_CORRUPT',
      `the store ${path} is damaged (${reason}); restore a backup, or move the file away and start the agent with --recover to get back from the network what this node had`,
      { path },
      { cause },
    );
  }
}

/** The database was written by a newer version of Trosyn Sync than this one. */
export class SchemaTooNewError extends TrosynError {
  constructor(found: number, supported: number) {
    super(
      'STORE_SCHEMA_TOO_NEW',
      `the store has schema version ${found} but this build supports up to ${supported}; upgrade Trosyn Sync or restore a backup`,
      { found, supported },
    );
  }
}

/** A revision names a parent this node has never seen. */
export class UnknownAncestorError extends TrosynError {
  constructor(rev: string, parent: string) {
    super('UNKNOWN_ANCESTOR', `revision ${rev} names parent ${parent}, which this node does not have`, {
      rev,
      parent,
    });
  }
}

/** The disk is full or the store otherwise refused a write; nothing of the write was kept. */
export class StoreWriteError extends TrosynError {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('STORE_WRITE_FAILED', `the store could not write: ${reason}`, undefined, { cause });
  }
}

/**
 * A node that already has an identity (it has run, or paired) finds its store file
 * missing or empty: the disk was replaced, the file deleted, or the directory copied
 * without it. Starting afresh silently would hide the loss.
 */
export class StoreMissingError extends TrosynError {
  constructor(path: string, state: 'missing' | 'empty') {
    super(
      'STORE_MISSING',
      `the store ${path} is ${state}, but this data directory belongs to a node that has run before; start with --recover to begin with an empty store and get back from the network what this node had (writes that never left it are lost), or restore a backup`,
      { path, state },
    );
  }
}
