/**
 * The named errors of the chunk store (src/files/chunk-store.ts). Each code is in
 * the one table, src/error-codes.ts, under "Files".
 */
import { TrosynError } from '../errors.js';

function reasonOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** A chunk hash is not 64 lowercase hexadecimal characters (a SHA-256 digest). */
export class InvalidChunkHashError extends TrosynError {
  constructor(hash: unknown) {
    const shown = typeof hash === 'string' ? JSON.stringify(hash.slice(0, 80)) : typeof hash;
    super('INVALID_CHUNK_HASH', `not a chunk hash: ${shown} (expected 64 lowercase hex characters)`);
  }
}

/** Bytes offered under a hash that is not their SHA-256; nothing was stored. */
export class ChunkHashMismatchError extends TrosynError {
  constructor(expected: string, actual: string) {
    super(
      'CHUNK_HASH_MISMATCH',
      `chunk bytes hash to ${actual}, not to the name given, ${expected}; nothing was stored`,
      { expected, actual },
    );
  }
}

/** The store has no chunk with that hash. */
export class ChunkNotFoundError extends TrosynError {
  constructor(hash: string) {
    super('CHUNK_NOT_FOUND', `no chunk ${hash} in the chunk store`, { hash });
  }
}

/**
 * A stored chunk's bytes no longer hash to its name (bit rot, a damaged disk, or a
 * file changed by hand). The chunk has been removed, so it is absent now and can be
 * fetched again.
 */
export class ChunkCorruptError extends TrosynError {
  constructor(hash: string, actual: string) {
    super(
      'CHUNK_CORRUPT',
      `chunk ${hash} on disk hashes to ${actual}: it was damaged and has been removed, so it can be fetched again`,
      { hash, actual },
    );
  }
}

/**
 * The filesystem holding the chunk store is full (ENOSPC) or the user's disk quota
 * is used up (EDQUOT). Nothing of the chunk was kept; chunks stored before are intact.
 */
export class ChunkStoreFullError extends TrosynError {
  constructor(dir: string, cause: unknown) {
    super(
      'CHUNK_STORE_FULL',
      `no space left for chunks in ${dir} (${reasonOf(cause)}); nothing of this chunk was kept, and it can be stored again once space is freed`,
      { dir },
      { cause },
    );
  }
}

/**
 * Reading or writing the chunk directory failed for another reason than a full disk:
 * missing permission, a read-only filesystem, an I/O error.
 */
export class ChunkStoreIoError extends TrosynError {
  constructor(action: string, path: string, cause: unknown) {
    super(
      'CHUNK_STORE_FAILED',
      `chunk store: cannot ${action} ${path}: ${reasonOf(cause)}`,
      { path },
      {
        cause,
      },
    );
  }
}

/** Every chunk store method before start() or after stop(). */
export function notStarted(): TrosynError {
  return new TrosynError(
    'NOT_STARTED',
    'the chunk store is not started (call start() first, or it was stopped)',
  );
}

/** The `code` of a Node system error (ENOENT, ENOSPC...), if it is one. */
export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * A failure of the store in `dir` to `action` `path`: CHUNK_STORE_FULL for a full disk
 * or quota, CHUNK_STORE_FAILED for anything else; a TrosynError stays as it is.
 */
export function storeFailure(dir: string, action: string, path: string, err: unknown): TrosynError {
  if (err instanceof TrosynError) return err;
  const code = errno(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ChunkStoreFullError(dir, err);
  return new ChunkStoreIoError(action, path, err);
}

/** True when a process `pid` exists (a writer whose leftovers must be left alone). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}
