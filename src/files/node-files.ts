import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { TrosynError } from '../errors.js';
import type { RecordView } from '../store/types.js';
import { RecordNotFoundError } from '../sync/errors.js';
import type { HistoryEntry, Replica, WriteResult } from '../sync/replica.js';
import { asFileBody, type FileBody, NotAFileError } from './file-body.js';
import type { FileStore } from './file-store.js';

/** The collection files go to unless another is named. */
export const DEFAULT_FILES_COLLECTION = 'files';

/**
 * When a child fetches a files collection's content: `eager`, as each version's
 * record arrives; `on-demand`, when the version is opened. The hub always fetches
 * eagerly: it is where children fetch from.
 */
export type FileTransferPolicy = 'eager' | 'on-demand';

/** A path that cannot be read as a file (a directory, missing, unreadable). */
export class FileUnreadableError extends TrosynError {
  constructor(path: string, reason: string) {
    super('FILE_UNREADABLE', `cannot read ${path}: ${reason}`, { path });
  }
}

/** The file changed while it was read: no version is recorded from mixed content. */
export class FileChangedError extends TrosynError {
  constructor(path: string) {
    super(
      'FILE_CHANGED_WHILE_READING',
      `${path} changed while it was read; nothing was recorded, try again`,
      {
        path,
      },
    );
  }
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

  /** Records a file from a path: its content stored first, then its version. */
  async putPath(
    path: string,
    options: { name?: string; collection?: string; type?: string } = {},
  ): Promise<FileVersion> {
    let before;
    try {
      before = await stat(path);
    } catch (err) {
      throw new FileUnreadableError(path, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    if (!before.isFile()) throw new FileUnreadableError(path, 'it is not a regular file');
    let body: FileBody;
    try {
      body = await this.store.put(createReadStream(path, { highWaterMark: 1 << 20 }), {
        name: options.name ?? basename(path),
        type: options.type ?? TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
        modifiedAt: Math.floor(before.mtimeMs),
      });
    } catch (err) {
      if (err instanceof TrosynError) throw err;
      throw new FileUnreadableError(path, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    const after = await stat(path);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || body.size !== after.size)
      throw new FileChangedError(path);
    return this.record(options.collection ?? DEFAULT_FILES_COLLECTION, body);
  }

  /** Records a file from a stream (the library and the local API). */
  async putStream(
    source: AsyncIterable<Uint8Array>,
    meta: { name: string; type?: string; modifiedAt?: number; collection?: string },
  ): Promise<FileVersion> {
    const body = await this.store.put(source, {
      name: meta.name,
      type: meta.type ?? TYPES[extname(meta.name).toLowerCase()] ?? 'application/octet-stream',
      modifiedAt: meta.modifiedAt ?? Date.now(),
    });
    return this.record(meta.collection ?? DEFAULT_FILES_COLLECTION, body);
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
   * FILE_CONTENT_MISSING.
   */
  async *read(
    version: FileVersion | FileBody,
    range?: { start?: number; end?: number },
  ): AsyncGenerator<Buffer> {
    if (this.fetcher && 'rev' in version && !(await this.store.isComplete(version)))
      await this.fetcher(version);
    yield* this.store.read(version, range);
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
