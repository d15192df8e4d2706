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

/** The PostgreSQL server could not be reached: refused, no such host or socket, or no answer in time. */
export class StoreUnreachableError extends TrosynError {
  constructor(label: string, cause: Error) {
    super(
      'STORE_UNREACHABLE',
      `cannot reach the PostgreSQL server of ${label} (${cause.message}): is it running and listening at that address, and does the network let this machine through?`,
      { db: label },
      { cause },
    );
  }
}

/** The PostgreSQL server refused to sign the role in: a wrong or missing password, an unknown role, pg_hba.conf. */
export class StoreAuthError extends TrosynError {
  constructor(label: string, cause: Error) {
    super(
      'STORE_AUTH_FAILED',
      `PostgreSQL refused the sign-in to ${label} (${cause.message}): check the role and its password (in the connection string, PGPASSWORD, --store-password-file or TROSYN_STORE_PASSWORD_FILE) and the server's pg_hba.conf`,
      { db: label },
      { cause },
    );
  }
}

/** The server is there but the database named in the connection does not exist. */
export class StoreDatabaseMissingError extends TrosynError {
  constructor(label: string, cause: Error) {
    super(
      'STORE_DATABASE_MISSING',
      `the database of ${label} does not exist (${cause.message}): create it first (createdb -O ROLE NAME, see docs/DEPLOY.md), or correct the name`,
      { db: label },
      { cause },
    );
  }
}

/**
 * A hub that has run on a PostgreSQL database finds its schema there missing or
 * empty (dropped, or the database replaced): the form of STORE_MISSING for
 * PostgreSQL. Starting afresh would hide the loss.
 */
export class PostgresStoreMissingError extends TrosynError {
  constructor(label: string, schema: string, what: 'store' | 'registry' | 'chunk store') {
    const fix =
      what === 'store'
        ? 'restore the database from a backup (pg_dump, a base backup), or start the hub with --recover to begin with an empty store and take back from the children what they hold'
        : what === 'registry'
          ? 'restore the database from a backup (pg_dump, a base backup): without the registry no paired device can connect, and --recover does not bring it back'
          : 'restore the database from a backup (pg_dump, a base backup)';
    super(
      'STORE_MISSING',
      `the PostgreSQL database ${label} holds no hub ${what} (schema ${schema}), but this data directory belongs to a hub that has run on it (a hub that ran on the SQLite files in its data directory does not move to PostgreSQL by itself); ${fix}`,
      { db: label, schema },
    );
  }
}
