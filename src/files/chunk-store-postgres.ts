/**
 * The chunk store in PostgreSQL: one row a chunk, its bytes a `bytea`, in a schema of
 * its own (`trosyn_chunks`). The store of a hub on PostgreSQL, so every hub process
 * serving one database reads the chunks any of them received: a file version put on a
 * child of one process is fetched from another by that one's children.
 *
 * Layout: `chunks (hash bytea PRIMARY KEY, length, touched, bytes)`, the bytes kept
 * uncompressed out of line (STORAGE EXTERNAL: file content is mostly compressed
 * already, and a read then costs no decompression). Migrations are recorded in the
 * schema's `schema_migrations`, as the store's and the registry's are.
 *
 * ## Why a chunk is absent or complete and verified
 *
 * The bytes are hashed before anything is sent (unless the caller just did), and a
 * chunk is one row written by one statement: a transaction the server commits whole
 * or not at all. A crash of the process or of the server never leaves part of a row.
 *
 * ## Durability
 *
 * A put commits without waiting for the server's write-ahead log to reach its disk
 * (`synchronous_commit = off` on the store's connections): a server crash may lose
 * the last puts, whole, never half. `flush()` then commits a transaction of its own
 * with `synchronous_commit = on`: its commit record is flushed to disk with every
 * record before it in the log, so every put that resolved before `flush()` was called
 * (by any process) is durable when it resolves. One disk flush for a page of chunks,
 * not one for each.
 *
 * ## Wake-ups
 *
 * A flush that follows new chunks NOTIFYs on the schema's channel (payload-free, at
 * its commit). `onArrival()` LISTENs there: another hub process learns that content
 * it was waiting for may have arrived, and looks again (content-sync.ts).
 *
 * ## Garbage collection
 *
 * A put of a chunk already stored moves its `touched` time forward in the same
 * statement (`INSERT ... ON CONFLICT DO UPDATE`). A collection removes a page of
 * unreferenced chunks with `DELETE ... WHERE touched < cutoff`: a chunk that any
 * process put again since the collection began (or within the grace period before)
 * is kept, since the statement reads the row as it is when it deletes; puts under way
 * in this process are left out of the page. One collection runs at a time across the
 * processes sharing the database (a session advisory lock).
 *
 * ## From a data directory
 *
 * `importFrom` names a pack store (`PackChunkStore`, `<dataDir>/chunks`) a hub kept
 * before it moved to PostgreSQL or before its content was shared: at start its chunks
 * are copied in (each verified), made durable, and only then is the directory
 * removed. A start cut short copies again what is left; nothing is lost.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import type { Logger } from 'pino';
import { type Clock, LifecycleGuard, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { Migration } from '../store/migrations.js';
import {
  type PostgresConnection,
  type PostgresTarget,
  PostgresWakeups,
} from '../store/postgres-connection.js';
import { openMigrated } from '../store/postgres-migrations.js';
import { TrosynError } from '../errors.js';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkNotFoundError,
  ChunkStoreFullError,
  ChunkStoreIoError,
  InvalidChunkHashError,
  notStarted,
} from './chunk-store-errors.js';
import {
  ChunkOperations,
  bytesToWrite,
  chunkHash,
  type ChunkStore,
  type ChunkStoreStats,
  type GcOptions,
  type GcReport,
  type GetOptions,
  isChunkHash,
  type IsReferenced,
  type PutOptions,
} from './chunk-store.js';
import { PackChunkStore } from './chunk-store-pack.js';

/** The schema of the chunk store, apart from the store's and the registry's. */
export const POSTGRES_CHUNKS_SCHEMA = 'trosyn_chunks';

/**
 * Forward-only steps of the chunk schema, recorded in its `schema_migrations`.
 * Append a step; never edit one that has shipped.
 */
export const POSTGRES_CHUNK_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'chunks by the SHA-256 of their bytes, with when each was last put',
    sql: `
      CREATE TABLE chunks (
        hash bytea PRIMARY KEY CHECK (length(hash) = 32),
        length integer NOT NULL,
        touched bigint NOT NULL,
        bytes bytea NOT NULL
      );
      ALTER TABLE chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
    `,
  },
];

/** Options of {@link PostgresChunkStore}. */
export interface PostgresChunkStoreOptions {
  /** The database (a URL or a node-postgres pool config); the password never appears in a message. */
  connection: PostgresConnection;
  /** The schema of the chunk table (created if missing). Default `trosyn_chunks`. */
  schema?: string;
  /** Connections the store opens at most. Default 4. */
  maxConnections?: number;
  /**
   * `flush()` waits for the server's log to reach its disk. Default true. False is for
   * tests and benchmarks only: a server crash may then lose flushed chunks (whole).
   */
  fsync?: boolean;
  /** Verify each chunk's hash on `get()` unless the call says otherwise. Default true. */
  verifyOnRead?: boolean;
  /** A pack store directory whose chunks are copied in at start, then removed (see the top of this file). */
  importFrom?: string;
  logger?: Logger;
  /** Times of puts and the grace period of collections are read from it. Default the system's. */
  clock?: Pick<Clock, 'now'>;
}

const DEFAULT_GRACE_MS = 60 * 60_000;
/** Rows a collection reads at a time, and hashes a `missing` query takes. */
const PAGE = 1000;
/** Chunks copied at once from a pack store at start. */
const IMPORT_IN_FLIGHT = 8;
/** disk_full: the server's disk has no room for the row. */
const DISK_FULL = '53100';

/** A chunk store that says when chunks may have arrived through another process. */
export interface SharedChunkStore extends ChunkStore {
  /**
   * Calls `listener` soon after any process sharing the store flushed new chunks (and
   * once after a lost wake-up connection is back). Returns the unsubscribe function.
   */
  onArrival(listener: () => void): () => void;
}

/** The chunk store in PostgreSQL; see the top of this file. */
export class PostgresChunkStore implements SharedChunkStore {
  private readonly options: PostgresChunkStoreOptions;
  private readonly logger: Logger;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly fsync: boolean;
  private readonly verifyOnRead: boolean;
  private readonly guard = new LifecycleGuard();
  private db: PostgresTarget | undefined;
  /** Operations in progress, which stop() waits for. */
  private readonly operations = new ChunkOperations();
  /** Puts of a chunk under way: a second put of it waits for the first; a collection keeps it. */
  private readonly writing = new Map<string, Promise<boolean>>();
  /** A put wrote a chunk since the last flush began: the next flush tells the other processes. */
  private wrote = false;
  private flushing: Promise<void> = Promise.resolve();
  private collecting: Promise<unknown> = Promise.resolve();
  /** Told when any process flushed new chunks (LISTEN on the schema's channel). */
  private readonly wakeups: PostgresWakeups;

  constructor(options: PostgresChunkStoreOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.fsync = options.fsync ?? true;
    this.verifyOnRead = options.verifyOnRead ?? true;
    this.wakeups = new PostgresWakeups(this.schema, this.logger);
  }

  get schema(): string {
    return this.options.schema ?? POSTGRES_CHUNKS_SCHEMA;
  }

  /** The database as `postgres://user@host:port/database`, without the password. */
  get label(): string {
    return this.db?.label ?? 'PostgreSQL';
  }

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  start(): Promise<void> {
    return this.guard.start(async () => {
      const target = await openMigrated(this.options.connection, {
        schema: this.schema,
        maxConnections: this.options.maxConnections ?? 4,
        logger: this.logger,
        steps: POSTGRES_CHUNK_MIGRATIONS,
        now: Date.now(),
        what: 'chunk store',
        // Puts commit without waiting for the disk; flush() waits for all of them at once.
        // A startup option of each new connection (an `options` parameter of the
        // connection string takes its place: puts then simply wait for the disk).
        startupOptions: '-c synchronous_commit=off',
      });
      this.db = target;
      this.wakeups.open(target);
      const from = this.options.importFrom;
      if (from !== undefined && existsSync(from)) {
        try {
          await this.importPack(from);
        } catch (err) {
          this.db = undefined;
          await target.pool.end().catch(() => undefined);
          throw err;
        }
      }
    });
  }

  stop(): Promise<void> {
    return this.guard.stop(async () => {
      const db = this.db;
      if (!db) return;
      await this.operations.settled();
      await this.flushing;
      this.db = undefined;
      // The listeners stay: a start again listens for them again.
      await this.wakeups.close();
      await db.pool.end().catch(() => undefined);
    });
  }

  onArrival(listener: () => void): () => void {
    return this.wakeups.subscribe(listener);
  }

  put(hash: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    return this.run(hash, async () => {
      // Checked and copied before the first await: the caller may change its buffer then.
      if (!options.verified) {
        const actual = chunkHash(bytes);
        if (actual !== hash) throw new ChunkHashMismatchError(hash, actual);
      }
      const own = bytesToWrite(bytes, options);
      for (;;) {
        const earlier = this.writing.get(hash);
        if (!earlier) break;
        // Another put of this chunk is under way: it writes, this one does not, unless it fails.
        if (
          await earlier.then(
            () => true,
            () => false,
          )
        )
          return false;
      }
      const write = this.write(hash, own);
      this.writing.set(hash, write);
      try {
        return await write;
      } finally {
        if (this.writing.get(hash) === write) this.writing.delete(hash);
      }
    });
  }

  flush(): Promise<void> {
    return this.run(undefined, () => {
      // One flush at a time; each waits for the log up to its own commit.
      const run = this.flushing.then(async () => {
        const wrote = this.wrote;
        this.wrote = false;
        const steps = [
          'BEGIN',
          ...(this.fsync ? ['SET LOCAL synchronous_commit = on', 'SELECT txid_current()'] : []),
          ...(wrote ? [`NOTIFY ${this.schema}`] : []),
          'COMMIT',
        ];
        if (steps.length === 2) return;
        try {
          await this.target().pool.query(steps.join('; '));
        } catch (err) {
          if (wrote) this.wrote = true;
          throw this.failure('flush chunks', err);
        }
      });
      this.flushing = run.catch(() => undefined);
      return run;
    });
  }

  has(hash: string): Promise<boolean> {
    return this.run(hash, async () => {
      const { rowCount } = await this.query('look up a chunk', 'SELECT 1 FROM chunks WHERE hash = $1', [
        Buffer.from(hash, 'hex'),
      ]);
      return (rowCount ?? 0) > 0;
    });
  }

  missing(hashes: readonly string[]): Promise<string[]> {
    return this.run(undefined, async () => {
      for (const hash of hashes) if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
      const unique = [...new Set(hashes)];
      const present = new Set<string>();
      for (let i = 0; i < unique.length; i += PAGE) {
        const { rows } = await this.query<{ hash: string }>(
          'look up chunks',
          `SELECT encode(hash, 'hex') AS hash FROM chunks
           WHERE hash = ANY (SELECT decode(h, 'hex') FROM unnest($1::text[]) AS h)`,
          [unique.slice(i, i + PAGE)],
        );
        for (const row of rows) present.add(row.hash);
      }
      return unique.filter((hash) => !present.has(hash));
    });
  }

  get(hash: string, options: GetOptions = {}): Promise<Buffer> {
    return this.run(hash, async () => {
      const key = Buffer.from(hash, 'hex');
      const { rows } = await this.query<{ bytes: Buffer }>(
        'read a chunk',
        'SELECT bytes FROM chunks WHERE hash = $1',
        [key],
      );
      const bytes = rows[0]?.bytes;
      if (bytes === undefined) throw new ChunkNotFoundError(hash);
      if (!(options.verify ?? this.verifyOnRead)) return bytes;
      const actual = chunkHash(bytes);
      if (actual === hash) return bytes;
      // Only a damaged copy goes: a put may have written a sound one meanwhile.
      await this.query(
        'remove a damaged chunk',
        'DELETE FROM chunks WHERE hash = $1 AND sha256(bytes) <> hash',
        [key],
      );
      throw new ChunkCorruptError(hash, actual);
    });
  }

  delete(hash: string): Promise<boolean> {
    return this.run(hash, async () => {
      await this.writing.get(hash)?.catch(() => undefined);
      const { rowCount } = await this.query('remove a chunk', 'DELETE FROM chunks WHERE hash = $1', [
        Buffer.from(hash, 'hex'),
      ]);
      return (rowCount ?? 0) > 0;
    });
  }

  stats(): Promise<ChunkStoreStats> {
    return this.run(undefined, async () => {
      const { rows } = await this.query<{ chunks: number; bytes: number }>(
        'count chunks',
        'SELECT count(*) AS chunks, coalesce(sum(length), 0)::bigint AS bytes FROM chunks',
      );
      return { chunks: Number(rows[0]?.chunks ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
    });
  }

  gc(isReferenced: IsReferenced, options: GcOptions = {}): Promise<GcReport> {
    return this.run(undefined, () => {
      const run = this.collecting.then(() => this.collect(isReferenced, options));
      this.collecting = run.catch(() => undefined);
      return run;
    });
  }

  // --- internals -------------------------------------------------------------

  private target(): PostgresTarget {
    if (!this.db) throw notStarted();
    return this.db;
  }

  /** Runs a public operation: checks the store is open and the hash well formed, and lets stop() wait for it. */
  private run<T>(hash: string | undefined, fn: () => Promise<T>): Promise<T> {
    return this.operations.run(this.db !== undefined, hash, fn);
  }

  /** Inserts a chunk, or marks a stored one put again; resolves whether it wrote the bytes. */
  private async write(hash: string, bytes: Buffer): Promise<boolean> {
    const key = Buffer.from(hash, 'hex');
    const now = this.clock.now();
    const { rows } = await this.query<{ inserted: boolean; length: number }>(
      'store a chunk',
      `INSERT INTO chunks (hash, length, touched, bytes) VALUES ($1, $2, $3, $4)
       ON CONFLICT (hash) DO UPDATE SET touched = greatest(chunks.touched, excluded.touched)
       RETURNING (xmax = 0) AS inserted, length`,
      [key, bytes.length, now, bytes],
    );
    const row = rows[0];
    if (row?.inserted) {
      this.wrote = true;
      return true;
    }
    if (row && row.length === bytes.length) return false;
    // A row of another length under this name is not this chunk (damaged): replaced.
    await this.query(
      'store a chunk',
      'UPDATE chunks SET length = $2, touched = $3, bytes = $4 WHERE hash = $1 AND length <> $2',
      [key, bytes.length, now, bytes],
    );
    this.wrote = true;
    return true;
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    action: string,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const target = this.target();
    try {
      return await target.pool.query<R>(text, values);
    } catch (err) {
      throw this.failure(action, err);
    }
  }

  /** CHUNK_STORE_FULL when the server's disk is full, CHUNK_STORE_FAILED for anything else. */
  private failure(action: string, err: unknown): TrosynError {
    if (err instanceof TrosynError) return err;
    const target = this.db;
    const clean = target ? target.sanitize(err) : (err as Error);
    const label = target?.label ?? 'PostgreSQL';
    if ((clean as { code?: string }).code === DISK_FULL) return new ChunkStoreFullError(label, clean);
    return new ChunkStoreIoError(action, `${label} (schema ${this.schema})`, clean);
  }

  private async collect(isReferenced: IsReferenced, options: GcOptions): Promise<GcReport> {
    const cutoff = this.clock.now() - (options.graceMs ?? DEFAULT_GRACE_MS);
    const report: GcReport = { removed: 0, bytes: 0, kept: 0 };
    // One collection at a time across the processes: held by a connection of its own.
    let client: pg.PoolClient;
    try {
      client = await this.target().pool.connect();
    } catch (err) {
      throw this.failure('begin a collection', err);
    }
    const lock = `trosyn-sync chunks gc ${this.schema}`;
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [lock]);
    } catch (err) {
      client.release(true);
      throw this.failure('begin a collection', err);
    }
    try {
      let after: Buffer = Buffer.alloc(0);
      for (;;) {
        options.signal?.throwIfAborted();
        const { rows } = await this.query<{ hash: Buffer; length: number; touched: number }>(
          'list chunks',
          `SELECT hash, length, touched FROM chunks WHERE hash > $1 ORDER BY hash LIMIT ${PAGE}`,
          [after],
        );
        if (rows.length === 0) break;
        after = (rows[rows.length - 1] as { hash: Buffer }).hash;
        const doomed: { hash: string; length: number }[] = [];
        for (const row of rows) {
          options.signal?.throwIfAborted();
          if (!this.db) throw notStarted();
          const hash = row.hash.toString('hex');
          if (row.touched >= cutoff || this.writing.has(hash) || (await isReferenced(hash))) report.kept++;
          else doomed.push({ hash, length: row.length });
        }
        // A put begun meanwhile here keeps its chunk; one in another process moved `touched`.
        const gone = doomed.filter((d) => !this.writing.has(d.hash));
        report.kept += doomed.length - gone.length;
        if (gone.length === 0) continue;
        const { rows: removed } = await this.query<{ length: number }>(
          'remove chunks',
          `DELETE FROM chunks WHERE touched < $2
             AND hash = ANY (SELECT decode(h, 'hex') FROM unnest($1::text[]) AS h)
           RETURNING length`,
          [gone.map((d) => d.hash), cutoff],
        );
        report.removed += removed.length;
        report.bytes += removed.reduce((n, r) => n + r.length, 0);
        report.kept += gone.length - removed.length;
      }
    } finally {
      const unlocked = await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]).then(
        () => true,
        () => false,
      );
      client.release(!unlocked);
    }
    return report;
  }

  /** Copies the chunks of a pack store into this one, makes them durable, and removes the directory. */
  private async importPack(dir: string): Promise<void> {
    const pack = new PackChunkStore({ dir, fsync: false });
    await pack.start();
    let copied = 0;
    let damaged = 0;
    try {
      const hashes = packHashes(dir);
      let next = 0;
      const worker = async () => {
        while (next < hashes.length) {
          const hash = hashes[next++] as string;
          let bytes: Buffer;
          try {
            bytes = await pack.get(hash);
          } catch (err) {
            // A damaged or vanished chunk is left out: it is then missing, and fetched again.
            if (err instanceof ChunkCorruptError || err instanceof ChunkNotFoundError) {
              damaged++;
              continue;
            }
            throw err;
          }
          await this.put(hash, bytes, { verified: true });
          copied++;
        }
      };
      await Promise.all(Array.from({ length: IMPORT_IN_FLIGHT }, worker));
      this.wrote = true;
      await this.flush();
    } finally {
      await pack.stop();
    }
    await rm(dir, { recursive: true, force: true });
    this.logger.info(
      { from: dir, db: this.label, schema: this.schema, chunks: copied, damaged },
      'chunks copied from the data directory into the database',
    );
  }
}

/** The hashes a pack store's index lists (its layout: chunk-store-pack.ts). */
export function packHashes(dir: string): string[] {
  const path = join(dir, 'index.db');
  if (!existsSync(path)) return [];
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare<[], string>('SELECT lower(hex(hash)) FROM chunks ORDER BY hash').pluck().all();
  } finally {
    db.close();
  }
}

/**
 * Copies a pack store's chunks (verified) into the chunk schema through `client`,
 * which holds a transaction whose search path is that schema (migrate-store); returns
 * how many chunks and bytes were copied, and how many were left out as damaged.
 */
export async function copyPackChunks(
  dir: string,
  client: pg.ClientBase,
  now: number,
): Promise<{ chunks: number; bytes: number; damaged: number }> {
  const result = { chunks: 0, bytes: 0, damaged: 0 };
  if (!existsSync(dir)) return result;
  const pack = new PackChunkStore({ dir, fsync: false });
  await pack.start();
  try {
    for (const hash of packHashes(dir)) {
      let bytes: Buffer;
      try {
        bytes = await pack.get(hash);
      } catch (err) {
        if (err instanceof ChunkCorruptError || err instanceof ChunkNotFoundError) {
          result.damaged++;
          continue;
        }
        throw err;
      }
      await client.query(
        `INSERT INTO chunks (hash, length, touched, bytes) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING`,
        [Buffer.from(hash, 'hex'), bytes.length, now, bytes],
      );
      result.chunks++;
      result.bytes += bytes.length;
    }
  } finally {
    await pack.stop();
  }
  return result;
}
