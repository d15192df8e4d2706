/**
 * The chunk store in pack files: chunks appended to a few large files, found through
 * an index in SQLite. The default store of every node (`<dataDir>/chunks`).
 *
 * Layout: `<dir>/packs/<pid>-<random>.pack`, each written by one process only, and
 * `<dir>/index.db`, whose table `chunks` maps a chunk's hash to its pack, the offset
 * of its bytes there, its length, when it was last put, and whether it is durable.
 * A record in a pack is a 40-byte header (`TRCK`, the length as u32 little-endian,
 * the SHA-256) followed by the bytes, so a pack describes itself and an index could be
 * rebuilt from the packs alone.
 *
 * ## Why a pack, and not a file a chunk
 *
 * A file a chunk (`DiskChunkStore`) costs an open, a write, a close, a rename and an
 * `fdatasync` for every 64 KiB, and a stat for every question "is it here?": the
 * disk's commit rate, not its bandwidth, then bounds how fast a file arrives, and a
 * node's event loop spends its time on thread-pool round trips. Here a put is one
 * positional write and one index row; "is it here?" is one indexed lookup; and a
 * flush is one `fdatasync` a pack written since the last flush, followed by one
 * synchronous index commit.
 *
 * ## Why a crash never leaves a half chunk that counts
 *
 * 1. The hash is checked before anything is written; the index row is inserted only
 *    after the whole record is written, so a row never points at bytes not yet
 *    handed to the kernel. A process crash (SIGKILL) loses nothing the kernel took.
 * 2. A row starts `durable = 0`. `flush()` fdatasyncs the packs, then marks the rows
 *    of every put that resolved before it `durable = 1` in one commit synced to disk
 *    (`synchronous = FULL` for that commit), so a row marked durable points at bytes
 *    on the disk.
 * 3. A power cut can leave rows with `durable = 0` whose bytes never reached the disk.
 *    `start()` reads and hashes every such row of a writer that is gone: a row whose
 *    bytes match is synced and marked durable, any other is removed (the chunk is
 *    then absent, and fetched again, never half).
 * 4. Bytes of a failed write (a full disk) or a crash between write and index have no
 *    row: they are dead space, which compaction reclaims.
 *
 * ## Garbage collection and compaction
 *
 * `gc()` removes the rows of chunks nothing references and that were not put within
 * the grace period. A put of a chunk already stored appends a row to `touches` in the
 * same statement that finds it (`INSERT ... SELECT` from `chunks`): an append writes
 * the table's last page only, where updating `chunks.touched` in place would write a
 * page of the index for nearly every chunk of a large file put again. A collection
 * first folds `touches` into `chunks.touched` (and again every page of rows), and
 * removes a row with `DELETE ... WHERE touched < cutoff AND NOT EXISTS` a touch since
 * the cutoff, so one in any process never removes a chunk put while it runs. Then
 * packs with less than half their bytes still live are compacted: their live chunks
 * are copied into the current pack, synced, the rows moved in one synced commit,
 * and the old pack deleted. Only packs of writers that are gone, and this process's
 * own finished packs, are compacted: a live process's pack is its own to append to.
 * A reader in another process that looked a chunk up just before its pack went
 * away looks it up again.
 *
 * A store written by `DiskChunkStore` (a file a chunk under `<dir>/<h0h1>/`) is
 * imported at start: every chunk is verified, appended, synced and indexed, and only
 * then are the loose files removed.
 */
import { randomBytes } from 'node:crypto';
import { ownerOnly } from '../store/owner-only.js';
import { type FileHandle, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { TrosynError } from '../errors.js';
import { type SlabRegion, Slabs } from '../slabs.js';
import { type Clock, LifecycleGuard, systemClock } from '../lifecycle.js';
import { type Migration, runMigrations } from '../store/migrations.js';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkNotFoundError,
  ChunkStoreFullError,
  ChunkStoreIoError,
  errno,
  InvalidChunkHashError,
  notStarted,
  processAlive,
  storeFailure,
} from './chunk-store-errors.js';
import {
  ChunkOperations,
  bytesToWrite,
  chunkHash,
  type ChunkLocation,
  type ChunkStore,
  type ChunkStoreStats,
  type GcOptions,
  type GcReport,
  type GetOptions,
  isChunkHash,
  type IsReferenced,
  type ListPlace,
  type PutOptions,
} from './chunk-store.js';
import { MANIFEST_ENTRY_BYTES } from './manifest.js';

export type { ChunkLocation } from './chunk-store.js';

/** Options of {@link PackChunkStore}. */
export interface PackChunkStoreOptions {
  /** The store's directory; a node passes `<dataDir>/chunks`. Created (0700) at start. */
  dir: string;
  /**
   * Sync packs and the index at `flush()`. Default true. False is for tests and
   * benchmarks only: a process crash still loses nothing, but a power cut may.
   */
  fsync?: boolean;
  /** Verify each chunk's hash on `get()` unless the call says otherwise. Default true. */
  verifyOnRead?: boolean;
  /** A pack is finished and a new one begun once it holds this many bytes. Default 256 MiB. */
  packBytes?: number;
  /** Times of puts and the grace period of collections are read from it. Default the system's. */
  clock?: Pick<Clock, 'now'>;
}

const HEADER = 40;
const MAGIC = Buffer.from('TRCK');
const PACK_NAME = /^(\d+)-[0-9a-f]+\.pack$/;
const FAN_OUT_NAME = /^[0-9a-f]{2}$/;
const CHUNK_NAME = /^[0-9a-f]{64}$/;
const DEFAULT_GRACE_MS = 60 * 60_000;
const DEFAULT_PACK_BYTES = 256 * 1024 * 1024;
/** A pack whose live bytes are below this share of its size is compacted by gc. */
const COMPACT_BELOW = 0.5;
/** Open read handles kept, least recently used first out. */
const READERS = 32;
/** Rows a collection reads at a time (it never holds a read open across an await). */
const PAGE = 1000;
/** Neighbouring chunks read or appended with one call, up to this many bytes. */
const COALESCE_BYTES = 1024 * 1024;
/**
 * Read buffers of COALESCE_BYTES kept for `lend` between calls. A buffer handed out
 * and dropped a chunk at a time is garbage the V8 heap must find: a large file's
 * worth of them kept a serving hub's old generation marking without pause (about
 * half its CPU). Two are in use per lend at a time (one passed on, one read ahead).
 */
const LEND_BUFFERS_KEPT = 4;
/** Buffers one write call takes at most (IOV_MAX is 1024 on Linux). */
const MAX_PARTS = 512;
/** Index writes share a commit when queued within this many ms, up to BATCH_MAX of them. */
const BATCH_MS = 2;
const BATCH_MAX = 256;
/** Touches (puts of chunks already stored) past which start() folds them: about 5 MB of rows. */
const FOLD_AT_START = 100_000;

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'where each chunk is in the packs, when it was last put, and whether it is durable',
    sql: `
      CREATE TABLE chunks (
        hash BLOB PRIMARY KEY,
        pack TEXT NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL,
        touched INTEGER NOT NULL,
        durable INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX chunks_by_pack ON chunks (pack);
      CREATE INDEX chunks_not_durable ON chunks (durable) WHERE durable = 0;
    `,
  },
  {
    version: 2,
    description: 'puts of chunks already stored, appended, until a collection folds them into chunks.touched',
    sql: `
      CREATE TABLE touches (at INTEGER NOT NULL, hash BLOB NOT NULL);
    `,
  },
];

interface Row {
  pack: string;
  offset: number;
  length: number;
}

/**
 * True when `row` may be read with the run that starts at `start` and ends with
 * `last`: next in the same pack (past only a record header), the run staying
 * within COALESCE_BYTES.
 */
function adjoins(start: number, last: Row, row: Row): boolean {
  const end = last.offset + last.length;
  return (
    last.pack === row.pack &&
    row.offset >= end &&
    row.offset - end <= HEADER &&
    row.offset + row.length - start <= COALESCE_BYTES
  );
}

/** Chunks of a `lend` read with one call: neighbours in a pack (a chunk not here is a run of its own). */
interface LendRun {
  pack: string;
  /** Offset of the first chunk's bytes in the pack. */
  start: number;
  rows: { hash: string; key: Buffer; row: Row | undefined }[];
}

/** A run read: its bytes from `start` (`got` of them), or no buffer when each chunk is read alone. */
interface LentRun {
  run: LendRun;
  buffer: Buffer | undefined;
  got: number;
}

/** Records appended one after another, written with one call. */
interface AppendGroup {
  pack: Pack;
  start: number;
  bytes: number;
  parts: Buffer[];
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A pack this process writes. */
interface Pack {
  name: string;
  handle: FileHandle;
  /** Bytes reserved so far: the next record starts here. */
  size: number;
  /** Appends to it not yet indexed. */
  writes: Set<Promise<unknown>>;
  /** Written since the last flush. */
  dirty: boolean;
  /** No longer appended to: closed once flushed, and compactable. */
  finished: boolean;
}

/**
 * Every pack open for writing in this process, by path, whichever store instance
 * has it: another instance on the same directory must not compact it (the pid in
 * its name is this process's, alive).
 */
const writingHere = new Set<string>();

function writerOf(pack: string): number {
  return Number(PACK_NAME.exec(pack)?.[1] ?? -1);
}

function header(hash: Buffer, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(length, 4);
  hash.copy(h, 8);
  return h;
}

function prepareStatements(db: Database.Database) {
  return {
    touch: db.prepare<[number, Buffer, number]>(
      'INSERT INTO touches (at, hash) SELECT ?, hash FROM chunks WHERE hash = ? AND length = ?',
    ),
    lastTouch: db.prepare<[], number | null>('SELECT max(rowid) FROM touches').pluck(),
    foldTouches: db.prepare<[number]>(
      `UPDATE chunks SET touched = t.at
       FROM (SELECT hash, max(at) AS at FROM touches WHERE rowid <= ? GROUP BY hash) AS t
       WHERE chunks.hash = t.hash AND chunks.touched < t.at`,
    ),
    dropTouches: db.prepare<[number]>('DELETE FROM touches WHERE rowid <= ?'),
    dropOtherLength: db.prepare<[Buffer, number]>('DELETE FROM chunks WHERE hash = ? AND length != ?'),
    insert: db.prepare<[Buffer, string, number, number, number]>(
      'INSERT OR IGNORE INTO chunks (hash, pack, offset, length, touched, durable) VALUES (?, ?, ?, ?, ?, 0)',
    ),
    has: db.prepare<[Buffer], 1>('SELECT 1 FROM chunks WHERE hash = ?').pluck(),
    // The names of a JSON array that are not stored, in its order: a version's thousands
    // of chunks, nearly all here, come back as the few that are not.
    absent: db
      .prepare<[string], string>(
        'SELECT j.value FROM json_each(?) AS j WHERE NOT EXISTS (SELECT 1 FROM chunks WHERE hash = unhex(j.value))',
      )
      .pluck(),
    locate: db.prepare<[Buffer], Row>('SELECT pack, offset, length FROM chunks WHERE hash = ?'),
    // The entries of an encoded chunk list from @from (@count of them) whose chunks
    // are not stored, by index: read from the list's bytes as they are.
    absentInList: db
      .prepare<[{ list: Buffer; from: number; count: number }], number>(
        `WITH RECURSIVE e(i) AS (SELECT @from WHERE @count > 0 UNION ALL SELECT i + 1 FROM e WHERE i + 1 < @from + @count)
         SELECT e.i FROM e
         WHERE NOT EXISTS (SELECT 1 FROM chunks WHERE hash = substr(@list, e.i * ${MANIFEST_ENTRY_BYTES} + 1, 32))`,
      )
      .pluck(),
    // The stored chunks of an encoded chunk list (36 bytes an entry, its hash first),
    // read from the list's bytes as they are, one index lookup each; a row per pack,
    // its entries, offsets and lengths as JSON arrays (a row each would cost twice as
    // much, most of it in making 13,000 rows of a 1 GiB file's list).
    placedInList: db.prepare<
      [{ list: Buffer; entries: number }],
      { pack: string; entries: string; offsets: string; lengths: string }
    >(
      `WITH RECURSIVE e(i) AS (SELECT 0 WHERE @entries > 0 UNION ALL SELECT i + 1 FROM e WHERE i + 1 < @entries)
       SELECT c.pack, json_group_array(e.i) AS entries, json_group_array(c.offset) AS offsets,
              json_group_array(c.length) AS lengths
       FROM e CROSS JOIN chunks AS c ON c.hash = substr(@list, e.i * ${MANIFEST_ENTRY_BYTES} + 1, 32)
       GROUP BY c.pack`,
    ),
    drop: db.prepare<[Buffer]>('DELETE FROM chunks WHERE hash = ?'),
    dropAt: db.prepare<[Buffer, string, number]>(
      'DELETE FROM chunks WHERE hash = ? AND pack = ? AND offset = ?',
    ),
    dropIfOld: db.prepare<[{ hash: Buffer; cutoff: number }]>(
      `DELETE FROM chunks WHERE hash = @hash AND touched < @cutoff
       AND NOT EXISTS (SELECT 1 FROM touches WHERE hash = @hash AND at >= @cutoff)`,
    ),
    markDurable: db.prepare<[Buffer]>('UPDATE chunks SET durable = 1 WHERE hash = ? AND durable = 0'),
    stats: db.prepare('SELECT count(*) AS chunks, coalesce(sum(length), 0) AS bytes FROM chunks'),
    page: db.prepare<[Buffer], { hash: Buffer; length: number; touched: number }>(
      `SELECT hash, length, touched FROM chunks WHERE hash > ? ORDER BY hash LIMIT ${PAGE}`,
    ),
    notDurable: db.prepare<[], Row & { hash: Buffer }>(
      'SELECT hash, pack, offset, length FROM chunks WHERE durable = 0',
    ),
    inPack: db.prepare<[string], Row & { hash: Buffer }>(
      'SELECT hash, pack, offset, length FROM chunks WHERE pack = ?',
    ),
    livePack: db.prepare<[string], { n: number; bytes: number }>(
      'SELECT count(*) AS n, coalesce(sum(length), 0) AS bytes FROM chunks WHERE pack = ?',
    ),
    move: db.prepare<[string, number, Buffer, string, number]>(
      'UPDATE chunks SET pack = ?, offset = ?, durable = 1 WHERE hash = ? AND pack = ? AND offset = ?',
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** The chunk store in pack files; see the top of this file for its layout and crash safety. */
export class PackChunkStore implements ChunkStore {
  /** The store's directory. */
  readonly dir: string;
  private readonly packsDir: string;
  private readonly fsync: boolean;
  private readonly verifyOnRead: boolean;
  private readonly packBytes: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly guard = new LifecycleGuard();
  private db: Database.Database | undefined;
  private sql!: Statements;
  /** Operations in progress, which stop() waits for. */
  private readonly operations = new ChunkOperations();
  /** Puts writing a chunk now: a second put of the same chunk waits for the first. */
  private readonly writing = new Map<string, Promise<unknown>>();
  /** The pack this process appends to, and the one being created. */
  private current: Pack | undefined;
  private opening: Promise<void> | undefined;
  /** The packs this process has open for writing, by name: the current one and finished ones not yet flushed. */
  private readonly own = new Map<string, Pack>();
  /** Puts marking a stored chunk put again, not yet committed: a collection here keeps those. */
  private readonly touching = new Map<string, number>();
  private batchTimer: NodeJS.Timeout | undefined;
  /** Index writes waiting for the next batch. */
  private queued: { fn: () => unknown; resolve: (value: unknown) => void; reject: (err: unknown) => void }[] =
    [];
  /** Chunks whose put resolved since the last flush. */
  private settled: Buffer[] = [];
  private readonly readers = new Map<string, Promise<FileHandle>>();
  /** Read buffers `lend` reuses (at most LEND_BUFFERS_KEPT). */
  private readonly lendBuffers: Buffer[] = [];
  /** Copies of the chunks being put, until they are written. */
  private readonly slabs = new Slabs(COALESCE_BYTES);
  /** Reads waiting for the next turn of the event loop, to be coalesced. */
  private reads: { row: Row; resolve: (bytes: Buffer) => void; reject: (err: unknown) => void }[] = [];
  /** Appends waiting to be written with their neighbours in one call. */
  private appends: AppendGroup | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private collecting: Promise<unknown> = Promise.resolve();

  constructor(options: PackChunkStoreOptions) {
    this.dir = options.dir;
    this.packsDir = join(options.dir, 'packs');
    this.fsync = options.fsync ?? true;
    this.verifyOnRead = options.verifyOnRead ?? true;
    this.packBytes = options.packBytes ?? DEFAULT_PACK_BYTES;
    this.clock = options.clock ?? systemClock;
  }

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  start(): Promise<void> {
    return this.guard.start(async () => {
      try {
        await mkdir(this.packsDir, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw this.failure('create the chunk directory', this.packsDir, err);
      }
      const path = join(this.dir, 'index.db');
      let db: Database.Database;
      try {
        db = new Database(path);
        ownerOnly(path);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 10000');
        runMigrations(db, MIGRATIONS, Date.now());
      } catch (err) {
        throw this.failure('open the chunk index', path, err);
      }
      this.db = db;
      this.sql = prepareStatements(db);
      this.current = undefined;
      try {
        await this.recover();
        await this.importLoose();
        // Touches left by puts since the last collection, once there are many of them (a
        // node whose agent never runs one): a short command that opens the store, such
        // as a put from the CLI, does not fold its predecessor's tens of thousands.
        if ((this.sql.lastTouch.get() ?? 0) >= FOLD_AT_START) this.foldTouches();
      } catch (err) {
        db.close();
        this.db = undefined;
        throw err;
      }
    });
  }

  stop(): Promise<void> {
    return this.guard.stop(async () => {
      const db = this.db;
      if (!db) return;
      await this.operations.settled();
      await this.syncSettled().catch(() => undefined);
      this.db = undefined;
      await this.opening?.catch(() => undefined);
      this.current = undefined;
      const handles = new Set<FileHandle>([...this.own.values()].map((p) => p.handle));
      for (const p of this.own.values()) writingHere.delete(join(this.packsDir, p.name));
      this.own.clear();
      for (const reader of this.readers.values()) {
        const handle = await reader.catch(() => undefined);
        if (handle) handles.add(handle);
      }
      this.readers.clear();
      await Promise.allSettled([...handles].map((h) => h.close()));
      db.close();
    });
  }

  put(hash: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    return this.run(hash, async () => {
      if (!options.verified) {
        const actual = chunkHash(bytes);
        if (actual !== hash) throw new ChunkHashMismatchError(hash, actual);
      }
      const key = Buffer.from(hash, 'hex');
      // A copy of our own: the caller may reuse its buffer once this call returns.
      // It goes back to the slabs once its write has ended, however it ended.
      let own: SlabRegion | undefined;
      try {
        for (;;) {
          const earlier = this.writing.get(hash);
          if (earlier) {
            // The caller may reuse its buffer while this waits: copy it first.
            own ??= this.slabs.copy(bytes);
            // Another put of this chunk is writing it: this one writes nothing, unless that one fails.
            if (
              await earlier.then(
                () => true,
                () => false,
              )
            )
              return false;
            continue;
          }
          if (this.sql.has.get(key) !== undefined) {
            // Marked put-again: a collection here keeps it from now on, one in another
            // process once the mark commits. A row of another length is not this
            // chunk's; a row a collection removed meanwhile is written anew. No copy
            // is made for the usual case, a chunk already here.
            if ((await this.touch([{ hash, length: bytes.length }]))[0]) return false;
            if (!own) {
              // The caller's bytes may have changed since the call: check the copy.
              own = this.slabs.copy(bytes);
              const actual = chunkHash(own.bytes);
              if (actual !== hash) throw new ChunkHashMismatchError(hash, actual);
            }
            if (this.writing.has(hash)) continue;
            // Not marked: removed meanwhile, or a row of another length, which goes.
            this.sql.dropOtherLength.run(key, bytes.length);
          }
          // Bytes the caller keeps unchanged are written as they are, with nothing to give back.
          own ??= options.unchanged
            ? { bytes: bytesToWrite(bytes, options), release: () => undefined }
            : this.slabs.copy(bytes);
          const write = this.append(key, own.bytes, true);
          this.writing.set(hash, write);
          try {
            await write;
          } finally {
            this.writing.delete(hash);
          }
          return true;
        }
      } finally {
        own?.release();
      }
    });
  }

  flush(): Promise<void> {
    return this.run(undefined, () => this.syncSettled());
  }

  has(hash: string): Promise<boolean> {
    return this.run(hash, async () => this.sql.has.get(Buffer.from(hash, 'hex')) !== undefined);
  }

  missing(hashes: readonly string[]): Promise<string[]> {
    return this.run(undefined, async () => {
      for (const hash of hashes) if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
      const unique = [...new Set(hashes)];
      const absent: string[] = [];
      // One query a thousand hashes, not one a hash.
      for (let i = 0; i < unique.length; i += PAGE)
        for (const hash of this.sql.absent.all(JSON.stringify(unique.slice(i, i + PAGE)))) absent.push(hash);
      return absent;
    });
  }

  absentInList(list: Buffer, from: number, count: number): Promise<number[]> {
    return this.run(undefined, async () => {
      const entries = Math.floor(list.length / MANIFEST_ENTRY_BYTES);
      const start = Math.max(0, Math.min(from, entries));
      return this.sql.absentInList.all({
        list,
        from: start,
        count: Math.max(0, Math.min(count, entries - start)),
      });
    });
  }

  locateList(list: Buffer): Promise<ListPlace[]> {
    return this.run(undefined, async () => {
      const entries = Math.floor(list.length / MANIFEST_ENTRY_BYTES);
      const byEntry: (ListPlace | undefined)[] = new Array(entries);
      for (const row of this.sql.placedInList.all({ list, entries })) {
        const path = join(this.packsDir, row.pack);
        const at = JSON.parse(row.entries) as number[];
        const offsets = JSON.parse(row.offsets) as number[];
        const lengths = JSON.parse(row.lengths) as number[];
        at.forEach((entry, i) => {
          byEntry[entry] = { entry, path, offset: offsets[i] as number, length: lengths[i] as number };
        });
      }
      return byEntry.filter((p) => p !== undefined);
    });
  }

  putAgain(chunks: readonly { hash: string; length: number }[]): Promise<boolean[]> {
    return this.run(undefined, async () => {
      for (const { hash } of chunks) if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
      return this.touch(chunks);
    });
  }

  get(hash: string, options: GetOptions = {}): Promise<Buffer> {
    return this.run(hash, async () => {
      const key = Buffer.from(hash, 'hex');
      const { row, bytes } = await this.readChunk(key, hash);
      // A pack cut short (its bytes never reached the disk) reads as damage, verified or not.
      const whole = bytes.length === row.length;
      if (whole && !(options.verify ?? this.verifyOnRead)) return bytes;
      const actual = chunkHash(bytes);
      if (whole && actual === hash) return bytes;
      // Only this copy goes: a put may have moved the row to a sound copy meanwhile.
      this.sql.dropAt.run(key, row.pack, row.offset);
      throw new ChunkCorruptError(hash, actual);
    });
  }

  async lend(
    hashes: readonly string[],
    each: (hash: string, bytes: Buffer | undefined) => Promise<void>,
    options: GetOptions = {},
  ): Promise<void> {
    for (const hash of hashes) if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
    const verify = options.verify ?? this.verifyOnRead;
    const runs = await this.run(undefined, async () => this.lendRuns(hashes));
    // One run is read ahead while the one before is passed on.
    let next: Promise<LentRun> | undefined = runs.length > 0 ? this.readRun(runs[0] as LendRun) : undefined;
    try {
      for (let i = 0; i < runs.length; i++) {
        const current = await (next as Promise<LentRun>);
        next = i + 1 < runs.length ? this.readRun(runs[i + 1] as LendRun) : undefined;
        try {
          await this.passOn(current, each, verify);
        } finally {
          this.giveBack(current.buffer);
        }
      }
    } finally {
      // Passing on failed (the peer went away): the read ahead still gives its buffer back.
      if (next) void next.then((r) => this.giveBack(r.buffer)).catch(() => undefined);
    }
  }

  delete(hash: string): Promise<boolean> {
    return this.run(hash, async () => {
      await this.writing.get(hash)?.catch(() => undefined);
      return this.sql.drop.run(Buffer.from(hash, 'hex')).changes > 0;
    });
  }

  stats(): Promise<ChunkStoreStats> {
    return this.run(undefined, async () => {
      const { chunks, bytes } = this.sql.stats.get() as { chunks: number; bytes: number };
      return { chunks, bytes };
    });
  }

  gc(isReferenced: IsReferenced, options: GcOptions = {}): Promise<GcReport> {
    return this.run(undefined, () => {
      const run = this.collecting.then(() => this.collect(isReferenced, options));
      this.collecting = run.catch(() => undefined);
      return run;
    });
  }

  /**
   * Where a chunk's bytes are (in its pack, after the record's header), or undefined
   * when it is not stored. A pack is only ever appended to, and removed whole.
   */
  location(hash: string): ChunkLocation | undefined {
    if (!this.db) throw notStarted();
    if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
    const row = this.sql.locate.get(Buffer.from(hash, 'hex'));
    return row && { path: join(this.packsDir, row.pack), offset: row.offset, length: row.length };
  }

  /** The pack files on disk and their sizes: for tests and diagnosis. */
  async packs(): Promise<{ name: string; bytes: number }[]> {
    const out: { name: string; bytes: number }[] = [];
    for (const name of await this.listPacks()) {
      const size = await this.sizeOf(join(this.packsDir, name));
      if (size !== undefined) out.push({ name, bytes: size });
    }
    return out;
  }

  // --- internals -------------------------------------------------------------

  /** Runs a public operation: checks the store is open and the hash well formed, and lets stop() wait for it. */
  private run<T>(hash: string | undefined, fn: () => Promise<T>): Promise<T> {
    return this.operations.run(this.db !== undefined, hash, fn);
  }

  /**
   * Marks stored chunks put again, in one index write; resolves, for each, whether it
   * was marked (false: not stored after all, or stored with another length). Until the
   * write commits, a collection here keeps them.
   */
  private async touch(chunks: readonly { hash: string; length: number }[]): Promise<boolean[]> {
    for (const { hash } of chunks) this.touching.set(hash, (this.touching.get(hash) ?? 0) + 1);
    try {
      return await this.indexWrite(() => {
        const now = this.clock.now();
        return chunks.map(
          ({ hash, length }) => this.sql.touch.run(now, Buffer.from(hash, 'hex'), length).changes > 0,
        );
      });
    } finally {
      for (const { hash } of chunks) {
        const n = (this.touching.get(hash) ?? 1) - 1;
        if (n > 0) this.touching.set(hash, n);
        else this.touching.delete(hash);
      }
    }
  }

  /**
   * Runs an index write in the next batch: the writes queued within BATCH_MS (or
   * until BATCH_MAX are) share one transaction, so a thousand puts cost a few
   * commits, not a thousand (each commit is a write to the index's log).
   */
  private indexWrite<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.queued.length >= BATCH_MAX) this.commitQueued();
      else if (this.queued.length === 1) {
        // Commit at once when nothing else is on its way (one put at a time waits
        // for no timer), else give the puts under way up to BATCH_MS to join.
        const since = Date.now();
        setImmediate(() => {
          if (this.queued.length === 0 || this.batchTimer) return;
          const coming = this.writing.size > this.queued.length;
          if (!coming) this.commitQueued();
          else
            this.batchTimer = setTimeout(
              () => this.commitQueued(),
              Math.max(0, BATCH_MS - (Date.now() - since)),
            );
        });
      }
    });
  }

  private commitQueued(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const batch = this.queued;
    this.queued = [];
    const db = this.db;
    if (!db) {
      for (const op of batch) op.reject(notStarted());
      return;
    }
    let results: unknown[];
    try {
      results = this.guardSql(() => db.transaction(() => batch.map((op) => op.fn()))());
    } catch (err) {
      for (const op of batch) op.reject(err);
      return;
    }
    batch.forEach((op, i) => op.resolve(results[i]));
  }

  /** Runs an index statement; a full disk is CHUNK_STORE_FULL like a pack write. */
  private guardSql<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_FULL') throw new ChunkStoreFullError(this.dir, err);
      throw new ChunkStoreIoError('update the chunk index', join(this.dir, 'index.db'), err);
    }
  }

  /** The pack to append to, begun when none is open or the open one is full. */
  private async writable(length: number): Promise<Pack> {
    for (;;) {
      const pack = this.current;
      if (pack && (pack.size === 0 || pack.size + HEADER + length <= this.packBytes)) return pack;
      if (!this.opening) {
        if (pack) pack.finished = true;
        const name = `${process.pid}-${randomBytes(6).toString('hex')}.pack`;
        const path = join(this.packsDir, name);
        this.opening = open(path, 'wx', 0o600)
          .then(
            (handle) => {
              this.current = { name, handle, size: 0, writes: new Set(), dirty: false, finished: false };
              this.own.set(name, this.current);
              writingHere.add(path);
            },
            (err: unknown) => {
              throw this.failure('create pack', path, err);
            },
          )
          .finally(() => {
            this.opening = undefined;
          });
      }
      await this.opening;
    }
  }

  /** Appends one record to the current pack; resolves where its bytes are. */
  /**
   * Appends one record to the current pack; resolves where its bytes are. Records
   * appended in one turn of the event loop go to the disk in one call (up to
   * COALESCE_BYTES). With `index`, the chunk's row is inserted once the bytes are
   * written, before the pack counts the append as done: a compaction waiting for a
   * pack's appends sees every row.
   */
  private async append(
    key: Buffer,
    bytes: Buffer,
    index: boolean,
  ): Promise<{ pack: string; offset: number }> {
    const pack = await this.writable(bytes.length);
    const start = pack.size;
    pack.size += HEADER + bytes.length;
    pack.dirty = true;
    const write = (async () => {
      await this.coalesced(pack, start, [header(key, bytes.length), bytes]);
      if (index) {
        await this.indexWrite(() =>
          this.sql.insert.run(key, pack.name, start + HEADER, bytes.length, this.clock.now()),
        );
        this.settled.push(key);
      }
    })();
    pack.writes.add(write);
    try {
      await write;
    } finally {
      pack.writes.delete(write);
    }
    return { pack: pack.name, offset: start + HEADER };
  }

  /** Writes `parts` at `start` of the pack, in one call with the records just before and after it. */
  private coalesced(pack: Pack, start: number, parts: Buffer[]): Promise<void> {
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    let group = this.appends;
    if (
      !group ||
      group.pack !== pack ||
      group.start + group.bytes !== start ||
      group.bytes + bytes > COALESCE_BYTES ||
      group.parts.length + parts.length > MAX_PARTS
    ) {
      if (group) this.writeGroup(group);
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      group = { pack, start, bytes: 0, parts: [], done, resolve, reject };
      this.appends = group;
      const scheduled = group;
      setImmediate(() => {
        if (this.appends === scheduled) this.writeGroup(scheduled);
      });
    }
    group.parts.push(...parts);
    group.bytes += bytes;
    return group.done;
  }

  private writeGroup(group: AppendGroup): void {
    if (this.appends === group) this.appends = undefined;
    void (async () => {
      let done = 0;
      try {
        done = (await group.pack.handle.writev(group.parts, group.start)).bytesWritten;
        // writev(2) may write less than asked (a nearly full disk does exactly that).
        while (done < group.bytes) {
          const rest = Buffer.concat(group.parts).subarray(done);
          const more = await group.pack.handle.write(rest, 0, rest.length, group.start + done);
          if (more.bytesWritten <= 0) throw new Error('write(2) wrote nothing');
          done += more.bytesWritten;
        }
        group.resolve();
      } catch (err) {
        // The reserved bytes are dead space: no row will point at them.
        group.reject(this.failure('write chunk', join(this.packsDir, group.pack.name), err));
      }
    })();
  }

  private syncSettled(): Promise<void> {
    // One flush at a time: a flush that snapshots while another is still syncing must
    // not resolve before the chunks the other took are durable.
    const run = this.flushing.then(async () => {
      const keys = this.settled;
      const packs = [...this.own.values()].filter((p) => p.dirty);
      this.settled = [];
      for (const p of packs) p.dirty = false;
      try {
        if (this.fsync) await Promise.all(packs.map((p) => p.handle.datasync()));
        this.markDurable(keys);
      } catch (err) {
        this.settled.push(...keys);
        for (const p of packs) p.dirty = true;
        throw this.failure('sync pack', this.packsDir, err);
      }
      // A finished pack is closed once its bytes are durable and nothing appends to it.
      for (const p of this.own.values())
        if (p.finished && !p.dirty && p.writes.size === 0) await this.release(p);
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Marks rows durable in one commit that is itself synced to disk. */
  private markDurable(keys: readonly Buffer[]): void {
    const db = this.db;
    if (!db || keys.length === 0) return;
    this.synced(() => {
      for (const key of keys) this.sql.markDurable.run(key);
    });
  }

  /** Runs `fn` in one transaction whose commit is synced to disk (when fsync is on). */
  private synced(fn: () => void): void {
    const db = this.db as Database.Database;
    if (this.fsync) db.pragma('synchronous = FULL');
    try {
      this.guardSql(() => db.transaction(fn)());
    } finally {
      if (this.fsync) db.pragma('synchronous = NORMAL');
    }
  }

  private async readChunk(key: Buffer, hash: string): Promise<{ row: Row; bytes: Buffer }> {
    // A collection in another process may compact the pack away between the lookup
    // and the read: the row then points elsewhere, so look it up again, once.
    for (let attempt = 0; ; attempt++) {
      const row = this.sql.locate.get(key);
      if (!row) throw new ChunkNotFoundError(hash);
      try {
        return { row, bytes: await this.readRange(row) };
      } catch (err) {
        if (errno(err) === 'ENOENT' && attempt === 0) {
          this.readers.delete(row.pack);
          continue;
        }
        if (errno(err) === 'ENOENT') {
          this.sql.dropAt.run(key, row.pack, row.offset);
          throw new ChunkNotFoundError(hash);
        }
        throw this.failure('read chunk', join(this.packsDir, row.pack), err);
      }
    }
  }

  /**
   * The chunks of a `lend`, in the order asked, grouped into runs read with one call:
   * neighbours in a pack, one after the other on disk, up to COALESCE_BYTES.
   */
  private lendRuns(hashes: readonly string[]): LendRun[] {
    const runs: LendRun[] = [];
    let run: LendRun | undefined;
    for (const hash of hashes) {
      const key = Buffer.from(hash, 'hex');
      const row = this.sql.locate.get(key);
      const end = run && run.rows[run.rows.length - 1]?.row;
      if (run && row && end && adjoins(run.start, end, row)) run.rows.push({ hash, key, row });
      else {
        run = row ? { pack: row.pack, start: row.offset, rows: [{ hash, key, row }] } : undefined;
        runs.push(run ?? { pack: '', start: 0, rows: [{ hash, key, row: undefined }] });
      }
    }
    return runs;
  }

  /** Reads a run of a `lend` into a kept buffer (a run of one chunk not here reads nothing). */
  private readRun(run: LendRun): Promise<LentRun> {
    return this.run(undefined, async () => {
      const last = run.rows[run.rows.length - 1]?.row;
      if (!last) return { run, buffer: undefined, got: 0 };
      const span = last.offset + last.length - run.start;
      const buffer =
        span <= COALESCE_BYTES
          ? (this.lendBuffers.pop() ?? Buffer.allocUnsafe(COALESCE_BYTES))
          : Buffer.allocUnsafe(span);
      try {
        return { run, buffer, got: await this.readSpan(run.pack, run.start, buffer, span) };
      } catch (err) {
        this.giveBack(buffer);
        // The pack went away (a collection in another process compacted it): each
        // chunk is then looked up again and read alone, as `get` does.
        if (errno(err) === 'ENOENT') {
          this.readers.delete(run.pack);
          return { run, buffer: undefined, got: 0 };
        }
        throw this.failure('read chunk', join(this.packsDir, run.pack), err);
      }
    });
  }

  /** Passes a run's chunks on, each checked as `get` checks it. */
  private async passOn(
    { run, buffer, got }: LentRun,
    each: (hash: string, bytes: Buffer | undefined) => Promise<void>,
    verify: boolean,
  ): Promise<void> {
    for (const { hash, key, row } of run.rows) {
      if (!this.db) throw notStarted();
      if (!row) {
        await each(hash, undefined);
        continue;
      }
      if (!buffer) {
        // Read alone (its pack moved): absent or damaged is undefined, as for a peer.
        const bytes = await this.get(hash, { verify }).catch((err: unknown) => {
          if (err instanceof ChunkNotFoundError || err instanceof ChunkCorruptError) return undefined;
          throw err;
        });
        await each(hash, bytes);
        continue;
      }
      const at = row.offset - run.start;
      const bytes = buffer.subarray(at, Math.max(at, Math.min(got, at + row.length)));
      // A pack cut short (its bytes never reached the disk) reads as damage, verified or not.
      if (bytes.length === row.length && (!verify || chunkHash(bytes) === hash)) {
        await each(hash, bytes);
        continue;
      }
      // Only this copy goes: a put may have moved the row to a sound copy meanwhile.
      this.sql.dropAt.run(key, row.pack, row.offset);
      await each(hash, undefined);
    }
  }

  /** Keeps a read buffer of `lend` for the next one. */
  private giveBack(buffer: Buffer | undefined): void {
    if (buffer && buffer.length === COALESCE_BYTES && this.lendBuffers.length < LEND_BUFFERS_KEPT)
      this.lendBuffers.push(buffer);
  }

  /**
   * Reads a row's bytes. Reads asked for in one turn of the event loop are sorted,
   * and neighbours in a pack (a file's chunks usually are) are read with one call of
   * up to COALESCE_BYTES, each chunk a view of it: one thread-pool round trip for
   * many chunks. A pack cut short gives fewer bytes than the row says.
   */
  private readRange(row: Row): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.reads.push({ row, resolve, reject });
      if (this.reads.length === 1) setImmediate(() => void this.readQueued());
    });
  }

  private async readQueued(): Promise<void> {
    const queued = this.reads;
    this.reads = [];
    queued.sort((a, b) =>
      a.row.pack === b.row.pack ? a.row.offset - b.row.offset : a.row.pack < b.row.pack ? -1 : 1,
    );
    const runs: (typeof queued)[] = [];
    for (const read of queued) {
      const run = runs[runs.length - 1];
      const last = run?.[run.length - 1]?.row;
      const first = run?.[0]?.row;
      if (run && last && first && adjoins(first.offset, last, read.row)) run.push(read);
      else runs.push([read]);
    }
    await Promise.all(
      runs.map(async (run) => {
        const first = (run[0] as (typeof run)[number]).row;
        const last = (run[run.length - 1] as (typeof run)[number]).row;
        try {
          const span = last.offset + last.length - first.offset;
          const bytes = Buffer.allocUnsafe(span);
          const got = await this.readSpan(first.pack, first.offset, bytes, span);
          for (const { row, resolve } of run) {
            const at = row.offset - first.offset;
            resolve(bytes.subarray(at, Math.max(at, Math.min(got, at + row.length))));
          }
        } catch (err) {
          for (const { reject } of run) reject(err);
        }
      }),
    );
  }

  /** Reads `span` bytes of `pack` from `start` into `buffer`; how many there were (fewer: the pack was cut short). */
  private async readSpan(pack: string, start: number, buffer: Buffer, span: number): Promise<number> {
    const handle = await this.reader(pack);
    let got = 0;
    while (got < span) {
      const { bytesRead } = await handle.read(buffer, got, span - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }

  private reader(pack: string): Promise<FileHandle> {
    const known = this.readers.get(pack);
    if (known) {
      // Most recently used last.
      this.readers.delete(pack);
      this.readers.set(pack, known);
      return known;
    }
    const opening = open(join(this.packsDir, pack), 'r');
    this.readers.set(pack, opening);
    opening.catch(() => this.readers.delete(pack));
    if (this.readers.size > READERS) {
      const [oldest, handle] = this.readers.entries().next().value as [string, Promise<FileHandle>];
      this.readers.delete(oldest);
      void handle.then((h) => h.close()).catch(() => undefined);
    }
    return opening;
  }

  /** Closes a pack this process no longer writes. */
  private async release(pack: Pack): Promise<void> {
    if (this.own.get(pack.name) !== pack) return;
    this.own.delete(pack.name);
    writingHere.delete(join(this.packsDir, pack.name));
    await pack.handle.close().catch(() => undefined);
  }

  private async closeReader(pack: string): Promise<void> {
    const reader = this.readers.get(pack);
    this.readers.delete(pack);
    await reader?.then((h) => h.close()).catch(() => undefined);
  }

  /**
   * Rows a writer that is gone never made durable: after a power cut their bytes may
   * not be on the disk. Each is read and hashed; a sound one is synced and marked
   * durable, any other removed.
   */
  private async recover(): Promise<void> {
    // This process has written nothing yet: a row of its pid is a previous process's.
    const suspect = this.sql.notDurable.all().filter((r) => {
      const writer = writerOf(r.pack);
      return writer === process.pid || !processAlive(writer);
    });
    if (suspect.length === 0) return;
    const sound: Buffer[] = [];
    const packs = new Set<string>();
    for (const row of suspect) {
      const hash = row.hash.toString('hex');
      try {
        const { bytes } = await this.readChunk(row.hash, hash);
        if (chunkHash(bytes) === hash) {
          sound.push(row.hash);
          packs.add(row.pack);
          continue;
        }
      } catch (err) {
        if (!(err instanceof ChunkNotFoundError)) throw err;
      }
      this.sql.dropAt.run(row.hash, row.pack, row.offset);
    }
    if (this.fsync)
      for (const pack of packs) {
        const handle = await open(join(this.packsDir, pack), 'r+');
        try {
          await handle.datasync();
        } finally {
          await handle.close();
        }
      }
    this.markDurable(sound);
  }

  /** Imports a store `DiskChunkStore` wrote (a file a chunk under `<dir>/<h0h1>/`). */
  private async importLoose(): Promise<void> {
    const fanOuts = (await this.list(this.dir)).filter((n) => FAN_OUT_NAME.test(n));
    if (fanOuts.length === 0) return;
    const imported: string[] = [];
    for (const fanOut of fanOuts) {
      for (const name of await this.list(join(this.dir, fanOut))) {
        const path = join(this.dir, fanOut, name);
        imported.push(path);
        if (!CHUNK_NAME.test(name)) continue;
        const bytes = await readFile(path).catch(() => undefined);
        // A damaged loose chunk is left out: it is then missing, and fetched again.
        if (!bytes || chunkHash(bytes) !== name) continue;
        await this.put(name, bytes, { verified: true });
      }
    }
    await this.syncSettled();
    for (const path of imported) await unlink(path).catch(() => undefined);
    for (const fanOut of fanOuts) await rm(join(this.dir, fanOut), { recursive: true, force: true });
  }

  private async collect(isReferenced: IsReferenced, options: GcOptions): Promise<GcReport> {
    const cutoff = this.clock.now() - (options.graceMs ?? DEFAULT_GRACE_MS);
    const report: GcReport = { removed: 0, bytes: 0, kept: 0 };
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      // Touches since the last fold are few: the removal's check of them stays cheap.
      this.foldTouches();
      const page = this.sql.page.all(after);
      if (page.length === 0) break;
      after = (page[page.length - 1] as { hash: Buffer }).hash;
      for (const row of page) {
        options.signal?.throwIfAborted();
        if (!this.db) throw notStarted();
        const hash = row.hash.toString('hex');
        if (
          row.touched >= cutoff ||
          this.writing.has(hash) ||
          this.touching.has(hash) ||
          (await isReferenced(hash))
        ) {
          report.kept++;
          continue;
        }
        // The row goes only if no put touched it since it was read, nor is touching it now.
        if (
          !this.touching.has(hash) &&
          !this.writing.has(hash) &&
          this.sql.dropIfOld.run({ hash: row.hash, cutoff }).changes > 0
        ) {
          report.removed++;
          report.bytes += row.length;
        } else report.kept++;
      }
    }
    await this.compact(options.signal);
    return report;
  }

  /** Moves the touches appended so far into `chunks.touched`, in one commit. */
  private foldTouches(): void {
    const last = this.sql.lastTouch.get();
    if (last === null || last === undefined) return;
    const db = this.db;
    if (!db) throw notStarted();
    this.guardSql(() =>
      db.transaction(() => {
        this.sql.foldTouches.run(last);
        this.sql.dropTouches.run(last);
      })(),
    );
  }

  /** Copies the live chunks of mostly dead packs into the current pack, and deletes what is left. */
  private async compact(signal: AbortSignal | undefined): Promise<void> {
    for (const name of await this.listPacks()) {
      signal?.throwIfAborted();
      if (!this.db) throw notStarted();
      const path = join(this.packsDir, name);
      const writer = writerOf(name);
      const mine = this.own.get(name);
      // Another live process's pack, or another store's in this one, is its own to append to.
      if (writer !== process.pid && processAlive(writer)) continue;
      if (!mine && writingHere.has(path)) continue;
      const size = await this.sizeOf(path);
      if (size === undefined) continue;
      const live = this.sql.livePack.get(name) as { n: number; bytes: number };
      if (live.n > 0 && live.bytes + live.n * HEADER >= size * COMPACT_BELOW) continue;
      if (mine) {
        // This process's own pack: no more appends to it, and the ones under way end first.
        mine.finished = true;
        if (this.current === mine) this.current = undefined;
        await Promise.allSettled([...mine.writes]);
        if (mine.dirty) await this.syncSettled();
      }
      await this.movePack(name);
      if (mine) await this.release(mine);
      await this.closeReader(name);
      await unlink(path).catch((err: unknown) => {
        if (errno(err) !== 'ENOENT') throw this.failure('remove pack', path, err);
      });
    }
  }

  /** Copies a pack's live chunks to the current pack and moves their rows there, durably. */
  private async movePack(name: string): Promise<void> {
    const moved: { key: Buffer; from: Row; to: { pack: string; offset: number } }[] = [];
    for (const row of this.sql.inPack.all(name)) {
      const hash = row.hash.toString('hex');
      let bytes: Buffer;
      try {
        bytes = (await this.readChunk(row.hash, hash)).bytes;
      } catch (err) {
        if (err instanceof ChunkNotFoundError) continue;
        throw err;
      }
      // A damaged copy is not carried over: the chunk is then missing, and fetched again.
      if (bytes.length !== row.length || chunkHash(bytes) !== hash) {
        this.sql.dropAt.run(row.hash, row.pack, row.offset);
        continue;
      }
      moved.push({ key: row.hash, from: row, to: await this.append(row.hash, bytes, false) });
    }
    if (this.fsync)
      for (const target of new Set(moved.map((m) => m.to.pack)))
        await this.own.get(target)?.handle.datasync();
    this.synced(() => {
      for (const m of moved) this.sql.move.run(m.to.pack, m.to.offset, m.key, m.from.pack, m.from.offset);
    });
  }

  private async listPacks(): Promise<string[]> {
    return (await this.list(this.packsDir)).filter((n) => PACK_NAME.test(n)).sort();
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return [];
      throw this.failure('list', dir, err);
    }
  }

  private async sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).size;
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.failure('read', path, err);
    }
  }

  private failure(action: string, path: string, err: unknown): TrosynError {
    return storeFailure(this.dir, action, path, err);
  }
}
