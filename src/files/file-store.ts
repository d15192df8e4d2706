import { createHash } from 'node:crypto';
import { isTrosynError, TrosynError } from '../errors.js';
import type { ChunkStore } from './chunk-store.js';
import { chunkStream } from './chunker.js';
import { type FileBody, assertFileName } from './file-body.js';
import {
  decodeManifest,
  encodeManifest,
  type ManifestEntry,
  ManifestInvalidError,
  manifestChunks,
} from './manifest.js';

/** A file version whose content is not all here yet (still arriving, or on demand). */
export class ContentMissingError extends TrosynError {
  constructor(name: string, missing: number) {
    super(
      'FILE_CONTENT_MISSING',
      `the content of ${JSON.stringify(name)} is not all on this device yet (${missing} chunks missing); it arrives while the agent syncs`,
      { name, missing },
    );
  }
}

/** The content read back does not hash to the version's SHA-256. */
export class ContentCorruptError extends TrosynError {
  constructor(name: string) {
    super('FILE_CONTENT_CORRUPT', `the content of ${JSON.stringify(name)} does not match its SHA-256`, {
      name,
    });
  }
}

/** What a file version's content still lacks here. */
export interface MissingContent {
  /** Chunks of the chunk list not here: until they are, the content chunks are unknown. */
  manifest: string[];
  /** Content chunks not here (empty while the list itself is incomplete). */
  chunks: ManifestEntry[];
  /** Bytes of content here, and in all. */
  bytesHere: number;
  bytesTotal: number;
  /**
   * The chunk list is here but does not describe the version (it does not decode,
   * or its entries do not add up to the version's size and chunk count): nothing
   * fetched can complete this version, and reading it fails with this error.
   */
  invalid?: ManifestInvalidError;
}

/** Chunk puts one `put` keeps going at once. */
const PUTS_IN_FLIGHT = 32;

/**
 * File content over a chunk store: a stream in, a file version out (its chunks and
 * chunk list stored, durably, before the version is returned); a version in, its
 * bytes out, verified.
 */
export class FileStore {
  constructor(readonly chunks: ChunkStore) {}

  /**
   * Stores a stream's bytes as chunks and returns the file version describing them.
   * Memory stays flat whatever the size. The chunks are durable when this resolves,
   * so a record naming them can be committed next.
   */
  async put(
    source: AsyncIterable<Uint8Array>,
    meta: {
      name: string;
      type?: string;
      modifiedAt: number;
      /**
       * The whole content's SHA-256, computed elsewhere over the same bytes (a thread
       * reading the same file: `sha256OfFileInWorker`); the put then does not hash
       * the whole content itself.
       */
      sha256?: Promise<string>;
    },
    signal?: AbortSignal,
  ): Promise<FileBody> {
    assertFileName(meta.name);
    const type = meta.type ?? 'application/octet-stream';
    if (typeof type !== 'string' || type.length > 255)
      throw new TrosynError('INVALID_OPTION', 'a file type is a media type of at most 255 characters', {
        option: 'type',
      });
    if (!Number.isSafeInteger(meta.modifiedAt) || meta.modifiedAt < 0)
      throw new TrosynError(
        'INVALID_OPTION',
        `modifiedAt is a whole number of ms since 1970, not ${String(meta.modifiedAt)}`,
        { option: 'modifiedAt' },
      );
    const inline = meta.sha256 ? undefined : createHash('sha256');
    const entries: ManifestEntry[] = [];
    let size = 0;
    const hashed = async function* () {
      for await (const piece of source) {
        // A Node stream with an encoding set gives strings: their bytes would depend on it.
        if (!(piece instanceof Uint8Array))
          throw new TypeError(`a file's content is read as bytes, but the source gave a ${typeof piece}`);
        inline?.update(piece);
        size += piece.length;
        yield piece;
      }
    };
    // Several puts in flight: the store's writes overlap with the next chunk's hashing.
    const inFlight = new Set<Promise<unknown>>();
    let failed: unknown;
    try {
      for await (const chunk of chunkStream(hashed(), signal ? { signal } : {})) {
        if (failed !== undefined) break;
        // The chunker has just hashed these bytes: the store need not again.
        const put: Promise<void> = this.chunks.put(chunk.hash, chunk.data, { verified: true }).then(
          () => {
            inFlight.delete(put);
          },
          (err: unknown) => {
            failed ??= err;
            inFlight.delete(put);
          },
        );
        inFlight.add(put);
        entries.push({ hash: chunk.hash, length: chunk.length });
        if (inFlight.size >= PUTS_IN_FLIGHT) await Promise.race(inFlight);
      }
    } finally {
      // A source that fails part-way fails the put only once no chunk write is
      // still running (none is left to finish after the caller moved on).
      await Promise.all(inFlight);
    }
    if (failed !== undefined) throw failed;
    const sha256 = inline ? inline.digest('hex') : await (meta.sha256 as Promise<string>);
    const manifest: string[] = [];
    for (const c of manifestChunks(encodeManifest(entries))) {
      await this.chunks.put(c.hash, c.data);
      manifest.push(c.hash);
    }
    await this.chunks.flush();
    return {
      name: meta.name,
      size,
      type,
      modifiedAt: meta.modifiedAt,
      sha256,
      chunkCount: entries.length,
      manifest,
    };
  }

  /**
   * What the version's chunk list names, as it is, whether or not it describes the
   * version (see `entries`): for keeping every chunk a list names. Fails with
   * FILE_MANIFEST_INVALID only when the list does not decode.
   */
  async listed(body: FileBody): Promise<ManifestEntry[]> {
    const missing = await this.chunks.missing(body.manifest);
    if (missing.length > 0) throw new ContentMissingError(body.name, missing.length + body.chunkCount);
    const parts = await Promise.all(body.manifest.map((h) => this.chunks.get(h)));
    return decodeManifest(Buffer.concat(parts));
  }

  /**
   * The version's chunk list (its chunks must be here). A list that does not
   * describe the version (its entries do not add up to the version's chunk count
   * and size) fails with FILE_MANIFEST_INVALID: read by it, the bytes would not be
   * the version's.
   */
  async entries(body: FileBody): Promise<ManifestEntry[]> {
    const entries = await this.listed(body);
    if (entries.length !== body.chunkCount)
      throw new ManifestInvalidError(
        `${JSON.stringify(body.name)} has ${body.chunkCount} chunks, its list names ${entries.length}`,
      );
    const size = entries.reduce((n, e) => n + e.length, 0);
    if (size !== body.size)
      throw new ManifestInvalidError(
        `${JSON.stringify(body.name)} has ${body.size} bytes, its list's chunks ${size}`,
      );
    return entries;
  }

  /**
   * What is missing here of a version's content. A chunk list that is here but does
   * not describe the version is reported as `invalid`, not thrown: one bad version
   * must not stop a caller going through many.
   */
  async missing(body: FileBody): Promise<MissingContent> {
    const manifest = await this.chunks.missing(body.manifest);
    if (manifest.length > 0) return { manifest, chunks: [], bytesHere: 0, bytesTotal: body.size };
    let entries: ManifestEntry[];
    try {
      entries = await this.entries(body);
    } catch (err) {
      if (err instanceof ManifestInvalidError)
        return { manifest: [], chunks: [], bytesHere: 0, bytesTotal: body.size, invalid: err };
      // A chunk of the list found damaged was removed (CHUNK_CORRUPT), or removed
      // meanwhile: it is missing now, and fetched again like any other.
      if (
        err instanceof ContentMissingError ||
        isTrosynError(err, 'CHUNK_CORRUPT') ||
        isTrosynError(err, 'CHUNK_NOT_FOUND')
      ) {
        const now = await this.chunks.missing(body.manifest);
        if (now.length > 0) return { manifest: now, chunks: [], bytesHere: 0, bytesTotal: body.size };
      }
      throw err;
    }
    const absent = new Set(await this.chunks.missing(entries.map((e) => e.hash)));
    const chunks = entries.filter((e) => absent.has(e.hash));
    const missingBytes = chunks.reduce((n, e) => n + e.length, 0);
    return { manifest: [], chunks, bytesHere: body.size - missingBytes, bytesTotal: body.size };
  }

  /** True when all of the version's content is here and its chunk list describes it. */
  async isComplete(body: FileBody): Promise<boolean> {
    const m = await this.missing(body);
    return m.manifest.length === 0 && m.chunks.length === 0 && m.invalid === undefined;
  }

  /**
   * The version's bytes, chunk by chunk, from `start` (inclusive) to `end`
   * (exclusive). The whole content is checked against the version's SHA-256 when
   * read in full; each chunk is checked by the store on read.
   */
  async *read(body: FileBody, range: { start?: number; end?: number } = {}): AsyncGenerator<Buffer> {
    const entries = await this.entries(body);
    const absent = await this.chunks.missing(entries.map((e) => e.hash));
    if (absent.length > 0) throw new ContentMissingError(body.name, absent.length);
    const start = range.start ?? 0;
    const end = Math.min(range.end ?? body.size, body.size);
    const whole = start === 0 && end === body.size ? createHash('sha256') : undefined;
    let at = 0;
    for (const e of entries) {
      const from = at;
      at += e.length;
      if (at <= start) continue;
      if (from >= end) break;
      const bytes = await this.chunks.get(e.hash);
      // The chunk is what its hash names; a list giving it another length is wrong.
      if (bytes.length !== e.length)
        throw new ManifestInvalidError(
          `${JSON.stringify(body.name)}'s list gives chunk ${e.hash.slice(0, 12)} ${e.length} bytes; it has ${bytes.length}`,
        );
      whole?.update(bytes);
      yield bytes.subarray(Math.max(0, start - from), Math.min(e.length, end - from));
    }
    if (whole && whole.digest('hex') !== body.sha256) throw new ContentCorruptError(body.name);
  }
}
