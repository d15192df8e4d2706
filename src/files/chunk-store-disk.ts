/**
 * The chunk store on a local filesystem (the `ChunkStore` seam is in chunk-store.ts).
 *
 * A chunk is the file `<dir>/<h0h1>/<hash>`: one level of 256 fan-out directories
 * by the hash's first byte, created owner-only (directories 0700, files 0600). One
 * level, not two: a flush fsyncs every directory it touched, and with two levels a
 * 1 GiB file (16k chunks) touches some 14k directories instead of 256. Even 1.6
 * million chunks (100 GB) is 6k entries a directory, which ext4's and xfs's hashed
 * directories handle without effort.
 *
 * ## Why a crash never leaves a half chunk that counts
 *
 * A chunk counts only under its final name, and a file gets that name only through
 * `rename(2)` of a temporary file in the same directory, after its bytes were
 * written in full and `fdatasync`ed:
 *
 * 1. The hash is checked before the first byte is written, so no file is ever
 *    created under a name its bytes do not match.
 * 2. The temporary (`<hash>.<pid>.<random>.tmp`) never counts: `has`, `get`, `stats`
 *    and GC see only names of exactly 64 hex characters, and `start()` deletes the
 *    temporaries of writers that are gone.
 * 3. Rename within one filesystem is atomic on POSIX filesystems: after any crash the
 *    final name refers to nothing or to the whole inode.
 * 4. The data is durable before the rename is issued, so the rename cannot reach the
 *    disk ahead of the data. Without that fdatasync, ext4's delayed allocation (and
 *    xfs likewise) may commit the new directory entry before the data blocks, and a
 *    power cut leaves a zero-length or short file under the final name; ext4's
 *    `auto_da_alloc` heuristic covers only renames that replace an existing file,
 *    never a chunk's new name.
 * 5. The directory fsync makes the rename itself durable. Until it runs, a power cut
 *    can lose the new entry: the chunk is then absent (and fetched again), never half.
 *    That is why durability is a point of its own, `flush()`, and a chunk counts as
 *    durably stored only once a `flush()` that began after its `put()` resolved has
 *    resolved. A process crash (SIGKILL) loses nothing the kernel accepted; only a
 *    machine crash or power cut needs the fsyncs.
 *
 * What it costs: one `fdatasync` per chunk written (on ext4 a journal commit and a
 * disk cache flush; concurrent puts share commits) and, at each flush, one fsync per
 * directory touched (at most 257). Measured with 64 KiB chunks on a fresh ext4 image
 * on a virtio disk, the machine shared with other work (`npm run bench --
 * chunk-store`, two runs): without fsync 110-125 MB/s; durable after every chunk (an
 * fsync of the directory too, each time) 8-16 MB/s, a 1 GiB file in 56-93 s; puts
 * then one flush 20-33 MB/s, and with 8 puts in flight 62-65 MB/s, the 1 GiB file
 * in 30-40 s. So the directory fsync is batched into `flush()`: a caller keeps several
 * puts in flight and flushes once per file, before it commits the record that
 * references the chunks.
 *
 * It assumes a filesystem that keeps POSIX rename atomicity and honours fsync (ext4,
 * xfs, btrfs, APFS; not every network or FUSE filesystem) on a disk that honours
 * cache flushes. On Windows a directory cannot be fsynced from Node; NTFS journals
 * the rename, so only the moment the rename becomes durable is left to the system.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { TrosynError } from '../errors.js';
import { LifecycleGuard } from '../lifecycle.js';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkNotFoundError,
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
  type ChunkStore,
  type ChunkStoreStats,
  type GcOptions,
  type GcReport,
  type GetOptions,
  isChunkHash,
  type IsReferenced,
  type PutOptions,
} from './chunk-store.js';

/** Options of {@link DiskChunkStore}. */
export interface DiskChunkStoreOptions {
  /** The store's directory; a node passes `<dataDir>/chunks`. Created (0700) at start. */
  dir: string;
  /**
   * Sync each chunk's data before it gets its name, and directories at `flush()`.
   * Default true. False is for tests and benchmarks only: a process crash still never
   * leaves a half chunk, but a power cut may.
   */
  fsync?: boolean;
  /** Verify each chunk's hash on `get()` unless the call says otherwise. Default true. */
  verifyOnRead?: boolean;
}

const CHUNK_NAME = /^[0-9a-f]{64}$/;
const FAN_OUT_NAME = /^[0-9a-f]{2}$/;
/** A temporary (`tmp`) or a chunk set aside by GC (`gc`): `<hash>.<pid>.<random>.<kind>`. */
const SCRATCH_NAME = /^([0-9a-f]{64})\.(\d+)\.[0-9a-f]+\.(tmp|gc)$/;
const GC_MARK = 'gc-mark';
const DEFAULT_GRACE_MS = 60 * 60_000;
/** Concurrent stat or fsync calls: enough to keep libuv's thread pool busy, no more. */
const PARALLEL = 8;
/** Directories cannot be opened for fsync on Windows; NTFS journals renames itself. */
const CAN_SYNC_DIRS = process.platform !== 'win32';

function assertHash(hash: unknown): asserts hash is string {
  if (!isChunkHash(hash)) throw new InvalidChunkHashError(hash);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  // write(2) may write less than asked (a nearly full disk does exactly that); each
  // round writes at least one byte or throws, so the loop ends.
  for (let offset = 0; offset < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    if (bytesWritten <= 0) throw new Error('write(2) wrote nothing');
    offset += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs `fn` on every item, at most `limit` at a time. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The chunk store on a local filesystem; see the top of this file for its layout and crash safety. */
export class DiskChunkStore implements ChunkStore {
  /** The store's directory. */
  readonly dir: string;
  private readonly fsync: boolean;
  private readonly verifyOnRead: boolean;
  private readonly guard = new LifecycleGuard();
  private open = false;
  /** Operations in progress, which stop() waits for. */
  private readonly operations = new ChunkOperations();
  /** Per-hash queues: a put, delete, rot removal or GC removal of one chunk runs alone. */
  private readonly locks = new Map<string, Promise<void>>();
  /** Fan-out directories known to exist. */
  private readonly knownDirs = new Set<string>();
  /** Directories with entries added since the last flush. */
  private readonly dirtyDirs = new Set<string>();
  private flushing: Promise<void> = Promise.resolve();
  private collecting: Promise<unknown> = Promise.resolve();

  constructor(options: DiskChunkStoreOptions) {
    this.dir = options.dir;
    this.fsync = options.fsync ?? true;
    this.verifyOnRead = options.verifyOnRead ?? true;
  }

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  start(): Promise<void> {
    return this.guard.start(async () => {
      try {
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        // The directory may exist already, made by someone with a looser umask.
        await chmod(this.dir, 0o700);
      } catch (err) {
        throw this.failure('create the chunk directory', this.dir, err);
      }
      this.knownDirs.clear();
      await this.sweep();
      this.open = true;
    });
  }

  stop(): Promise<void> {
    return this.guard.stop(async () => {
      this.open = false;
      await this.operations.settled();
      await this.syncDirty();
    });
  }

  put(hash: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    return this.run(hash, async () => {
      // A copy of our own: bytes the caller changes after the check (a reused
      // receive buffer) must not end up under a name they no longer match.
      const own = bytesToWrite(bytes, options);
      const actual = options.verified ? hash : chunkHash(own);
      if (actual !== hash) throw new ChunkHashMismatchError(hash, actual);
      return this.exclusive(hash, () => this.write(hash, own));
    });
  }

  flush(): Promise<void> {
    return this.run(undefined, () => this.syncDirty());
  }

  has(hash: string): Promise<boolean> {
    return this.run(hash, () => this.exists(hash));
  }

  missing(hashes: readonly string[]): Promise<string[]> {
    return this.run(undefined, async () => {
      const unique = [...new Set(hashes)];
      for (const hash of unique) assertHash(hash);
      const absent = new Set<string>();
      await eachLimit(unique, PARALLEL, async (hash) => {
        if (!(await this.exists(hash))) absent.add(hash);
      });
      return unique.filter((hash) => absent.has(hash));
    });
  }

  get(hash: string, options: GetOptions = {}): Promise<Buffer> {
    return this.run(hash, async () => {
      const bytes = await this.read(hash);
      if (!(options.verify ?? this.verifyOnRead) || chunkHash(bytes) === hash) return bytes;
      // Re-read under the chunk's lock before removing it: a put may have replaced a
      // damaged copy with a good one since the read above.
      return this.exclusive(hash, async () => {
        const again = await this.read(hash);
        const actual = chunkHash(again);
        if (actual === hash) return again;
        await this.unlinkIfPresent(this.pathOf(hash));
        throw new ChunkCorruptError(hash, actual);
      });
    });
  }

  delete(hash: string): Promise<boolean> {
    return this.run(hash, () => this.exclusive(hash, () => this.unlinkIfPresent(this.pathOf(hash))));
  }

  stats(): Promise<ChunkStoreStats> {
    return this.run(undefined, async () => {
      const totals = { chunks: 0, bytes: 0 };
      for (const fanOut of await this.fanOutDirs()) {
        const names = (await this.list(fanOut)).filter((name) => CHUNK_NAME.test(name));
        await eachLimit(names, PARALLEL, async (name) => {
          const size = await this.sizeOf(join(fanOut, name));
          if (size === undefined) return;
          totals.chunks++;
          totals.bytes += size;
        });
      }
      return totals;
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

  private pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }

  /** Runs a public operation: checks the store is open and the hash well formed, and lets stop() wait for it. */
  private run<T>(hash: string | undefined, fn: () => Promise<T>): Promise<T> {
    return this.operations.run(this.open, hash, fn);
  }

  /** Runs `fn` after every earlier exclusive operation on `hash` has finished. */
  private exclusive<T>(hash: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.locks.get(hash) ?? Promise.resolve()).then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(hash, tail);
    void tail.then(() => {
      if (this.locks.get(hash) === tail) this.locks.delete(hash);
    });
    return result;
  }

  private async write(hash: string, bytes: Uint8Array): Promise<boolean> {
    const path = this.pathOf(hash);
    if (await this.touch(path, bytes.length)) return false;
    const fanOut = await this.fanOutDir(hash);
    const temp = join(fanOut, `${hash}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    let handle: FileHandle | undefined;
    try {
      handle = await open(temp, 'wx', 0o600);
      await writeAll(handle, bytes);
      if (this.fsync) await handle.datasync();
      await handle.close();
      handle = undefined;
      await rename(temp, path);
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      // The fan-out directory may have been removed under the store: make it again next time.
      if (errno(err) === 'ENOENT') this.knownDirs.delete(fanOut);
      throw this.failure('write chunk', path, err);
    }
    this.dirtyDirs.add(fanOut);
    return true;
  }

  /**
   * True when the chunk is already stored with the expected size; then its times are
   * set to now, which tells a garbage collection running in another process (the
   * CLI) that it was put again. A copy of another size is damaged: it is rewritten.
   */
  private async touch(path: string, size: number): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(path, now, now);
      return (await stat(path)).size === size;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw this.failure('update', path, err);
    }
  }

  private async fanOutDir(hash: string): Promise<string> {
    const dir = join(this.dir, hash.slice(0, 2));
    if (this.knownDirs.has(dir)) return dir;
    try {
      await mkdir(dir, { mode: 0o700 });
      // The new directory's entry is in the store's directory: sync that too.
      this.dirtyDirs.add(this.dir);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw this.failure('create directory', dir, err);
    }
    this.knownDirs.add(dir);
    return dir;
  }

  private syncDirty(): Promise<void> {
    // One flush at a time: a flush that snapshots while another is still syncing a
    // directory must not resolve before that directory is synced.
    const run = this.flushing.then(async () => {
      const dirs = [...this.dirtyDirs];
      this.dirtyDirs.clear();
      if (!this.fsync || !CAN_SYNC_DIRS) return;
      try {
        await eachLimit(dirs, PARALLEL, syncDir);
      } catch (err) {
        for (const dir of dirs) this.dirtyDirs.add(dir);
        throw this.failure('sync directory', this.dir, err);
      }
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async exists(hash: string): Promise<boolean> {
    return (await this.sizeOf(this.pathOf(hash))) !== undefined;
  }

  private async sizeOf(path: string): Promise<number | undefined> {
    try {
      const s = await stat(path);
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.failure('read', path, err);
    }
  }

  private async read(hash: string): Promise<Buffer> {
    const path = this.pathOf(hash);
    try {
      return await readFile(path);
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new ChunkNotFoundError(hash);
      throw this.failure('read chunk', path, err);
    }
  }

  private async unlinkIfPresent(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw this.failure('remove', path, err);
    }
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      if (errno(err) === 'ENOENT') return [];
      throw this.failure('list', dir, err);
    }
  }

  private async fanOutDirs(): Promise<string[]> {
    return (await this.list(this.dir))
      .filter((name) => FAN_OUT_NAME.test(name))
      .sort()
      .map((name) => join(this.dir, name));
  }

  /**
   * Deletes the temporaries of writers that are gone (a crash mid-put), and puts back
   * the chunks a garbage collection had set aside when it was stopped: it may have
   * been about to restore them. A live writer's files (the CLI putting a file while
   * the agent starts) are left alone.
   */
  private async sweep(): Promise<void> {
    for (const fanOut of await this.fanOutDirs()) {
      for (const name of await this.list(fanOut)) {
        const scratch = SCRATCH_NAME.exec(name);
        if (!scratch) continue;
        const [, hash, pid, kind] = scratch as unknown as [string, string, string, string];
        if (Number(pid) === process.pid || processAlive(Number(pid))) continue;
        const path = join(fanOut, name);
        try {
          if (kind === 'gc') await rename(path, join(fanOut, hash));
          else await unlink(path);
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw this.failure('clean up', path, err);
        }
      }
    }
  }

  private async collect(isReferenced: IsReferenced, options: GcOptions): Promise<GcReport> {
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    const report: GcReport = { removed: 0, bytes: 0, kept: 0 };
    // The start of the collection in the filesystem's own time, the clock every
    // chunk's times come from. Rounded down to the millisecond: a put that sets a
    // chunk's times from Date.now() just after the mark must not fall below it.
    const mark = join(this.dir, GC_MARK);
    let cutoff: number;
    try {
      await writeFile(mark, `${process.pid}\n`, { mode: 0o600 });
      cutoff = Math.floor((await stat(mark)).mtimeMs) - graceMs;
    } catch (err) {
      throw this.failure('write', mark, err);
    }
    try {
      for (const fanOut of await this.fanOutDirs()) {
        for (const hash of await this.list(fanOut)) {
          options.signal?.throwIfAborted();
          if (!this.open) throw notStarted();
          if (!CHUNK_NAME.test(hash)) continue;
          const freed = await this.collectOne(hash, cutoff, isReferenced);
          if (freed === undefined) report.kept++;
          else {
            report.removed++;
            report.bytes += freed;
          }
        }
      }
      return report;
    } finally {
      await unlink(mark).catch(() => undefined);
    }
  }

  /** Removes one chunk if nothing needs it; resolves the bytes freed, or undefined when kept. */
  private async collectOne(hash: string, cutoff: number, isReferenced: IsReferenced) {
    const path = this.pathOf(hash);
    let changed: number;
    try {
      const s = await stat(path);
      // ctime too: a rename into place sets it, and the data may predate the collection.
      changed = Math.max(s.mtimeMs, s.ctimeMs);
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.failure('read', path, err);
    }
    // A chunk being put in this process holds its lock: it is being written.
    if (changed >= cutoff || this.locks.has(hash) || (await isReferenced(hash))) return undefined;
    return this.exclusive(hash, async () => {
      // Set the chunk aside, then look again: a put in another process that found it
      // present has set its mtime to now, and gets it back. A put after the rename
      // finds it absent and writes it anew.
      const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.gc`;
      try {
        await rename(path, aside);
      } catch (err) {
        if (errno(err) === 'ENOENT') return undefined;
        throw this.failure('remove', path, err);
      }
      try {
        const s = await stat(aside);
        if (s.mtimeMs >= cutoff) {
          await rename(aside, path);
          return undefined;
        }
        await unlink(aside);
        return s.size;
      } catch (err) {
        throw this.failure('remove', path, err);
      }
    });
  }

  private failure(action: string, path: string, err: unknown): TrosynError {
    return storeFailure(this.dir, action, path, err);
  }
}
