/**
 * The chunk store's seam: file content kept as chunks named by the SHA-256 of their
 * bytes, shared by every file and every version, so identical chunks are stored once.
 *
 * What every implementation promises: a chunk is absent or complete and verified
 * (a crash, a refused hash or a full disk never leaves part of one that counts); it
 * is durable once a `flush()` begun after its `put()` has resolved; reads never serve
 * bytes that do not hash to the name; garbage collection never removes a chunk put
 * while it runs. `PackChunkStore` (chunk-store-pack.ts, the default) and
 * `DiskChunkStore` (chunk-store-disk.ts, a file a chunk) are the implementations on a
 * local filesystem, each with the argument for why its writes are crash-safe;
 * `testing/chunk-store-suite.ts` is the acceptance suite.
 */
import { createHash } from 'node:crypto';
import type { Startable } from '../lifecycle.js';
import { InvalidChunkHashError, notStarted } from './chunk-store-errors.js';

/** How many chunks a store holds and how many bytes they take. */
export interface ChunkStoreStats {
  chunks: number;
  bytes: number;
}

/** What a garbage collection removed and kept. */
export interface GcReport {
  /** Chunks removed. */
  removed: number;
  /** Bytes those chunks held. */
  bytes: number;
  /** Chunks kept: referenced, written or touched during the grace period, or being written. */
  kept: number;
}

/** Options of {@link ChunkStore.gc}. */
export interface GcOptions {
  /**
   * Keep every chunk written or put again within this many milliseconds before the
   * collection started, referenced or not. Default one hour. A chunk is put before
   * the record that references it is committed; the grace period keeps it across that
   * gap even when the caller's `isReferenced` cannot see transfers in progress. 0
   * removes every unreferenced chunk written before the collection started.
   */
  graceMs?: number;
  /** Stops the collection between two chunks; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@link ChunkStore.put}. */
export interface PutOptions {
  /**
   * The caller has just computed the SHA-256 of these very bytes (the chunker did,
   * or a received chunk was checked): the store does not hash them again.
   */
  verified?: boolean;
  /**
   * The caller keeps `bytes` as they are until the put settles, as a file's put
   * keeps its read slots and a fetch its received frames: the store may write them
   * from where they are. Without it a store copies them first, so that a caller
   * changing its buffer too early cannot store bytes under a name they do not match.
   */
  unchanged?: boolean;
}

/** Options of {@link ChunkStore.get}. */
export interface GetOptions {
  /** Hash the bytes read and compare them with the name (default: the store's `verifyOnRead`). */
  verify?: boolean;
}

/** Whether a chunk is still needed: referenced by a kept revision, or by a transfer in progress. */
export type IsReferenced = (hash: string) => boolean | Promise<boolean>;

/** Where a chunk's bytes are in a file. */
export interface ChunkLocation {
  /** The file. */
  path: string;
  /** The offset of the chunk's bytes in it. */
  offset: number;
  length: number;
}

/** Where the chunk of a chunk list's entry is stored (ChunkStore.locateList). */
export interface ListPlace extends ChunkLocation {
  /** The entry's index in the list. */
  entry: number;
}

/**
 * A content-addressed store of chunks, each named by the lowercase hex SHA-256 of its
 * bytes. Every method rejects with `NOT_STARTED` before `start()` and after `stop()`,
 * with `INVALID_CHUNK_HASH` for a name that is not a SHA-256 in hex, and with
 * `CHUNK_STORE_FULL` or `CHUNK_STORE_FAILED` when the storage refuses.
 */
export interface ChunkStore extends Startable {
  /**
   * Stores `bytes` under `hash` once their SHA-256 is checked: resolves true when the
   * chunk was written, false when it was already stored (then nothing is rewritten).
   * The chunk is complete and readable when this resolves, and durable after the next
   * `flush()`. Rejects with `CHUNK_HASH_MISMATCH` (nothing stored) when the bytes do
   * not hash to `hash`, and `CHUNK_STORE_FULL` when the disk is full (nothing of the
   * chunk kept; a later put can succeed). The store may read `bytes` until the
   * returned promise settles: the caller must not change them before.
   */
  put(hash: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean>;
  /**
   * The durability point: when it resolves, every chunk whose `put()` resolved before
   * this call survives a power cut.
   */
  flush(): Promise<void>;
  /**
   * Optional: where the stored chunks of an encoded chunk list (manifest.ts, whose
   * entries the list's own chunks have verified) lie in files, as they are (not
   * compressed or wrapped): one place per entry whose chunk is stored, in the list's
   * order, with the stored length (which may differ from the entry's). For a put that
   * compares a chunk's new bytes with a stored chunk's in place rather than hashing
   * them (see FileStore.put): the bytes at a location never change while its file
   * exists.
   */
  locateList?(list: Buffer): Promise<ListPlace[]>;
  /**
   * Optional: which of the `count` entries of an encoded chunk list from entry `from`
   * have chunks not stored, as entry indices in the list's order: a version's
   * thousands of entries, nearly all here, looked up from the list's bytes as they
   * are, where `missing` takes them as hex strings.
   */
  absentInList?(list: Buffer, from: number, count: number): Promise<number[]>;
  /**
   * Optional, with `locateList`: marks stored chunks put again, as a `put` of their
   * bytes would (a collection keeps them like a chunk just put), for a caller that
   * found its bytes equal to a chunk's at its location and so knows them stored. In
   * one index write for all of them, where a `put` each costs one apiece. Resolves,
   * in the order given, true for each chunk marked, false for one not stored (a
   * collection removed it meanwhile) or stored with another length: the caller then
   * puts that one's bytes.
   */
  putAgain?(chunks: readonly { hash: string; length: number }[]): Promise<boolean[]>;
  /** True when the chunk is stored. */
  has(hash: string): Promise<boolean>;
  /** The hashes of `hashes` that are not stored, in the order given, each once. */
  missing(hashes: readonly string[]): Promise<string[]>;
  /**
   * The chunk's bytes. Rejects with `CHUNK_NOT_FOUND` when it is absent, and with
   * `CHUNK_CORRUPT` when the bytes on disk no longer hash to the name: the damaged
   * chunk is then removed, so it reads as missing and can be fetched again.
   */
  get(hash: string, options?: GetOptions): Promise<Buffer>;
  /**
   * Optional: reads `hashes` to pass them on at once (serving a peer), calling `each`
   * for every one of them in the order given: with its bytes, checked as `get` checks
   * them, or with undefined when it is not here (or found damaged, and then removed,
   * as `get` does). The bytes are lent: they are valid only until the promise `each`
   * returned settles, after which the store reuses its buffers; a caller that keeps
   * them copies them. Neighbouring chunks are read with one call into buffers the
   * store keeps, so serving a large file allocates no buffer a chunk. `verify: false`
   * skips the check for a caller whose receiver checks every chunk anyway. Rejects as
   * `get` does for a store failure, and with what `each` rejects with (nothing more is
   * read).
   */
  lend?(
    hashes: readonly string[],
    each: (hash: string, bytes: Buffer | undefined) => Promise<void>,
    options?: GetOptions,
  ): Promise<void>;
  /** Removes the chunk; resolves false when it was not stored. */
  delete(hash: string): Promise<boolean>;
  /** Counts the chunks and their bytes (reads every entry: O(chunks)). */
  stats(): Promise<ChunkStoreStats>;
  /**
   * Removes every chunk that `isReferenced` says is not needed, except chunks written
   * or put again after the collection started (or within `graceMs` before it) and
   * chunks being written: a transfer's chunk is never removed under it. One
   * collection runs at a time.
   */
  gc(isReferenced: IsReferenced, options?: GcOptions): Promise<GcReport>;
}

/**
 * The bytes a store writes for a put: `bytes` themselves when the caller keeps them
 * unchanged until the put settles (PutOptions.unchanged), else a copy of its own.
 */
export function bytesToWrite(bytes: Uint8Array, options: PutOptions): Buffer {
  return options.unchanged
    ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : Buffer.from(bytes);
}

/** The SHA-256 of `bytes` in lowercase hex: a chunk's name. */
export function chunkHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** True when `hash` is a chunk name: 64 lowercase hex characters. */
export function isChunkHash(hash: unknown): hash is string {
  return typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash);
}

/**
 * The public operations of a chunk store in progress: each is refused before it
 * starts when the store is not open (NOT_STARTED) or the hash is not a chunk name
 * (INVALID_CHUNK_HASH), and tracked until it settles, so `stop()` can wait for them.
 */
export class ChunkOperations {
  private readonly running = new Set<Promise<unknown>>();

  /** Runs `fn` when `open` and `hash` (if given) is well formed; otherwise rejects without running it. */
  run<T>(open: boolean, hash: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!open) return Promise.reject(notStarted());
    if (hash !== undefined && !isChunkHash(hash)) return Promise.reject(new InvalidChunkHashError(hash));
    const op = fn();
    this.running.add(op);
    void op.then(
      () => this.running.delete(op),
      () => this.running.delete(op),
    );
    return op;
  }

  /** Resolves once every operation started so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
