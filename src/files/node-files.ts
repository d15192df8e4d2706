import { createHash } from 'node:crypto';
import { type BigIntStats, constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { TrosynError } from '../errors.js';
import type { RecordView } from '../store/types.js';
import { RecordNotFoundError } from '../sync/errors.js';
import type { HistoryEntry, Replica, WriteResult } from '../sync/replica.js';
import { asFileBody, assertFileName, type FileBody, NotAFileError } from './file-body.js';
import { DEFAULT_FILES_COLLECTION } from './defaults.js';
import type { FileStore } from './file-store.js';

export { DEFAULT_FILES_COLLECTION };

/**
 * When a child fetches a files collection's content: `eager`, as each version's
 * record arrives; `on-demand`, when the version is opened. The hub always fetches
 * eagerly: it is where children fetch from.
 */
export type FileTransferPolicy = 'eager' | 'on-demand';

/** A path that cannot be read as a file (a directory, missing, unreadable). */
export class FileUnreadableError extends TrosynError {
  constructor(path: string, reason: string, cause?: string) {
    super('FILE_UNREADABLE', `cannot read ${path}: ${reason}`, { path, ...(cause && { cause }) });
  }
}

/** The file changed while it was read: no version is recorded from mixed content. */
export class FileChangedError extends TrosynError {
  constructor(path: string, what: string) {
    super(
      'FILE_CHANGED_WHILE_READING',
      `${path} changed while it was read (${what}); nothing was recorded, try again once it is written`,
      { path },
    );
  }
}

/** Why a path could not be opened or read, for people. */
function unreadable(path: string, err: unknown): FileUnreadableError {
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    ENOENT: 'no such file',
    ENOTDIR: 'a folder on its path is a file',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    ELOOP: 'too many symbolic links (a link that points back to itself?)',
    ENAMETOOLONG: 'the path is too long',
    EISDIR: 'it is a folder, not a file',
    ENXIO: 'it is a socket or a device that is not there, not a file',
    EIO: 'the disk or device reported an I/O error',
    EMFILE: 'too many open files',
  };
  const reason = (code && why[code]) ?? (err as Error).message ?? String(err);
  return new FileUnreadableError(path, code ? `${reason} (${code})` : reason, code);
}

/** What a path that is no regular file is, for people. */
function kindOf(s: BigIntStats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a named pipe (FIFO)';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Bytes read at a time from a file. */
const READ_BYTES = 1 << 20;
/** Read buffers reused in turn (see readAll). */
const READ_RING = 4;

/**
 * A file changed within this long before its reading began may change again
 * without its change time moving (file systems keep coarse times, up to 2 s on
 * some): its content is then read a second time and must hash the same.
 */
const RACY_MS = 2000;
/**
 * The same where the file's times are fine-grained: on Linux and macOS a file
 * system that keeps times to the nanosecond (ext4, XFS, Btrfs, tmpfs, APFS) moves
 * them with the kernel's clock tick, at most 10 ms.
 */
const FINE_RACY_MS = 100;

/**
 * How long after a file's last change (its change time) a put reads it twice. A
 * change time with a part of a second comes from a file system with fine-grained
 * times; one in whole seconds (FAT, ext4 with small inodes) may be coarse, and so
 * may any time on another system (Windows updates some times lazily).
 */
export function racyWindowMs(ctimeNs: bigint, platform: NodeJS.Platform = process.platform): number {
  const fine = (platform === 'linux' || platform === 'darwin') && ctimeNs % 1_000_000_000n !== 0n;
  return fine ? FINE_RACY_MS : RACY_MS;
}

/**
 * An open file's bytes from its start; a read that fails is FILE_UNREADABLE.
 *
 * The pieces come from a ring of READ_RING buffers, each overwritten READ_RING reads
 * later: no garbage for every MiB read (at 1 MiB a read, fresh buffers set off a
 * full garbage collection every few MB). That is safe for `FileStore.put`: the
 * chunker holds at most the unfinished chunk, shorter than a piece, so views of the
 * previous piece only, and a chunk store has what it needs of a put's bytes once
 * put() returns (the ChunkStore contract: bytes changed after the call do not
 * change what is stored). Not for a consumer that keeps pieces.
 */
async function* readAll(handle: FileHandle, path: string): AsyncGenerator<Buffer> {
  const ring = Array.from({ length: READ_RING }, () => Buffer.allocUnsafe(READ_BYTES));
  // The next piece is read while the consumer works on this one.
  const read = (n: number, position: number) =>
    handle.read(ring[n % READ_RING] as Buffer, 0, READ_BYTES, position).then(
      ({ bytesRead, buffer }) => buffer.subarray(0, bytesRead),
      (err: unknown) => {
        throw unreadable(path, err);
      },
    );
  let next = read(0, 0);
  for (let position = 0, n = 0; ; n++) {
    const piece = await next;
    if (piece.length === 0) return;
    position += piece.length;
    next = read(n + 1, position);
    // A read failing after the consumer stopped is nobody's error.
    next.catch(() => undefined);
    yield piece;
  }
}

/** How a file differs between two looks at it, or undefined when it does not. */
function changeBetween(before: BigIntStats, after: BigIntStats): string | undefined {
  if (after.dev !== before.dev || after.ino !== before.ino) return 'it was replaced';
  if (after.size !== before.size) return `its size went from ${before.size} to ${after.size} bytes`;
  if (after.mtimeNs !== before.mtimeNs) return 'it was written';
  if (after.nlink !== before.nlink) return 'it was replaced, moved or deleted';
  if (after.ctimeNs !== before.ctimeNs) return 'it was written, moved, or its times were set';
  return undefined;
}

const TYPES: Record<string, string> = {
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.html': 'text/html',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.zip': 'application/zip',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
};

/** One version of a file as listed. */
export interface FileVersion extends FileBody {
  collection: string;
  rev: string;
}

/**
 * A node's files: each version a record of a files collection whose body
 * describes the content (see file-body.ts), the content kept as chunks. Versions,
 * history, revert and conflicts are the record machinery's; this writes and reads.
 */
export class NodeFiles {
  private fetcher: ((version: FileVersion) => Promise<void>) | undefined;

  constructor(
    readonly replica: Replica,
    readonly store: FileStore,
  ) {}

  /**
   * Records a file from a path: its content stored first, then its version. The
   * file is opened once and read through that handle; a file that changes while it
   * is read (its size, modification or change time move, or it is read again and
   * differs) records nothing: FILE_CHANGED_WHILE_READING. A path that is no
   * regular file, or cannot be opened or read, is FILE_UNREADABLE; a name that
   * cannot be a file's, INVALID_FILE_NAME, before the file is opened.
   */
  async putPath(
    path: string,
    options: {
      name?: string;
      collection?: string;
      type?: string;
      /** Called as the file is read: bytes read so far, and the file's size. */
      onProgress?: (bytesRead: number, size: number) => void;
    } = {},
  ): Promise<FileVersion> {
    const name = options.name ?? basename(path);
    assertFileName(name);
    let handle: FileHandle;
    try {
      // Not blocking: a named pipe opens at once (and is refused below) instead of
      // waiting for a writer. Regular files ignore the flag.
      handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    } catch (err) {
      throw unreadable(path, err);
    }
    let body: FileBody;
    try {
      const stat = async () => {
        try {
          return await handle.stat({ bigint: true });
        } catch (err) {
          throw unreadable(path, err);
        }
      };
      const before = await stat();
      if (!before.isFile()) throw new FileUnreadableError(path, `it is ${kindOf(before)}, not a file`);
      const startedAt = Date.now();
      const size = Number(before.size);
      const report = options.onProgress;
      async function* counted(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
        let read = 0;
        for await (const piece of source) {
          read += piece.length;
          report?.(read, size);
          yield piece;
        }
      }
      const pieces = readAll(handle, path);
      body = await this.store.put(
        report ? counted(pieces) : pieces,
        {
          name,
          type: options.type ?? TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
          modifiedAt: Math.max(0, Math.floor(Number(before.mtimeNs / 1_000_000n))),
        },
        undefined,
        await this.current(options.collection ?? DEFAULT_FILES_COLLECTION, name),
      );
      const changed =
        changeBetween(before, await stat()) ??
        (BigInt(body.size) !== before.size ? `${body.size} bytes read of ${before.size}` : undefined);
      if (changed) throw new FileChangedError(path, changed);
      // Changed just before the read began, the file may have changed again during
      // it within the same tick of the file system's clock: read it again.
      if (startedAt - Number(before.ctimeNs / 1_000_000n) < racyWindowMs(before.ctimeNs)) {
        const again = createHash('sha256');
        let size = 0;
        for await (const piece of readAll(handle, path)) {
          again.update(piece);
          size += piece.length;
        }
        const still = changeBetween(before, await stat());
        if (still) throw new FileChangedError(path, still);
        if (size !== body.size || again.digest('hex') !== body.sha256)
          throw new FileChangedError(path, 'read twice, its content differs');
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
    return this.record(options.collection ?? DEFAULT_FILES_COLLECTION, body);
  }

  /** Records a file from a stream (the library and the local API). */
  async putStream(
    source: AsyncIterable<Uint8Array>,
    meta: { name: string; type?: string; modifiedAt?: number; collection?: string },
  ): Promise<FileVersion> {
    assertFileName(meta.name);
    const collection = meta.collection ?? DEFAULT_FILES_COLLECTION;
    const body = await this.store.put(
      source,
      {
        name: meta.name,
        type: meta.type ?? TYPES[extname(meta.name).toLowerCase()] ?? 'application/octet-stream',
        modifiedAt: meta.modifiedAt ?? Date.now(),
      },
      undefined,
      await this.current(collection, meta.name),
    );
    return this.record(collection, body);
  }

  /** The file's current version, if it has one: what its next version likely shares chunks with. */
  private async current(collection: string, name: string): Promise<FileBody | undefined> {
    const record = await this.replica.get(collection, name);
    return record ? asFileBody(record.body) : undefined;
  }

  private async record(collection: string, body: FileBody): Promise<FileVersion> {
    const written: WriteResult = await this.replica.put(collection, body.name, body);
    return { ...body, collection, rev: written.rev };
  }

  /** The current version, or the one `rev` names (a unique prefix is enough). */
  async version(name: string, options: { collection?: string; rev?: string } = {}): Promise<FileVersion> {
    const collection = options.collection ?? DEFAULT_FILES_COLLECTION;
    if (options.rev === undefined) {
      const record = await this.replica.get(collection, name);
      if (!record) throw new RecordNotFoundError(collection, name);
      return toVersion(record, collection);
    }
    const wanted = options.rev.toLowerCase();
    const match = (await this.replica.history(collection, name)).filter((h) => h.rev.startsWith(wanted));
    const found = match.length === 1 ? match[0] : undefined;
    if (!found || wanted.length < 4) throw new RecordNotFoundError(collection, `${name}@${options.rev}`);
    return toVersion(found, collection);
  }

  /** True when all of a version's content is on this node. */
  isHere(version: FileBody): Promise<boolean> {
    return this.store.isComplete(version);
  }

  /**
   * A version's bytes. Content not all here is fetched first when the node has a
   * fetcher for it (a child's on-demand collections); otherwise the read fails with
   * FILE_CONTENT_MISSING. `checkChunks: false`: see FileStore.read.
   */
  async *read(
    version: FileVersion | FileBody,
    range?: { start?: number; end?: number },
    options?: { checkChunks?: boolean },
  ): AsyncGenerator<Buffer> {
    if (this.fetcher && 'rev' in version && !(await this.store.isComplete(version)))
      await this.fetcher(version);
    yield* this.store.read(version, range, options);
  }

  /** Sets what `read` calls for a version whose content is not here (see `read`). */
  fetchMissingWith(fetcher: ((version: FileVersion) => Promise<void>) | undefined): void {
    this.fetcher = fetcher;
  }

  /** The files of a collection (current versions), in name order. */
  async list(collection = DEFAULT_FILES_COLLECTION): Promise<FileVersion[]> {
    const out: FileVersion[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.replica.list(collection, { limit: 1000, ...(after && { after }) });
      for (const r of page) {
        const body = asFileBody(r.body);
        if (body) out.push({ ...body, collection, rev: r.rev });
      }
      if (page.length < 1000) return out;
      after = page[page.length - 1]?.id;
    }
  }

  /** Every version of a file, oldest first. */
  async history(
    name: string,
    collection = DEFAULT_FILES_COLLECTION,
  ): Promise<Array<HistoryEntry & { file?: FileBody }>> {
    const entries = await this.replica.history(collection, name);
    if (entries.length === 0) throw new RecordNotFoundError(collection, name);
    return entries.map((e) => {
      const file = asFileBody(e.body);
      return file ? { ...e, file } : e;
    });
  }

  /** Makes an old version current again: a new version with its body; no chunk is copied. */
  async revert(name: string, rev: string, collection = DEFAULT_FILES_COLLECTION): Promise<FileVersion> {
    const { collection: _c, rev: _r, ...body } = await this.version(name, { collection, rev });
    return this.record(collection, body);
  }

  /** Deletes a file (a tombstone; its versions stay in history). */
  async remove(name: string, collection = DEFAULT_FILES_COLLECTION): Promise<void> {
    if (!(await this.replica.get(collection, name))) throw new RecordNotFoundError(collection, name);
    await this.replica.delete(collection, name);
  }
}

function toVersion(record: RecordView | HistoryEntry, collection: string): FileVersion {
  const body = asFileBody(record.body);
  if (!body) throw new NotAFileError(collection, 'id' in record ? record.id : record.rev);
  return { ...body, collection, rev: record.rev };
}
