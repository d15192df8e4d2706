import { createHash } from 'node:crypto';
import { isTrosynError, TrosynError } from '../errors.js';
import { scavenger } from '../scavenge.js';
import type { ChunkStore } from './chunk-store.js';
import { chunkStream } from './chunker.js';
import { beginHashRun, warmHashThreads, type HashRun, type LikelyTable, SLOT_BYTES } from './hash-threads.js';
import { type FileBody, assertFileName } from './file-body.js';
import {
  decodeManifest,
  MANIFEST_ENTRY_BYTES,
  ManifestBuilder,
  type ManifestEntry,
  manifestEntries,
  manifestEntry,
  ManifestInvalidError,
  manifestChunks,
  manifestTotals,
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
  /**
   * Content chunks not here, the first MISSING_LISTED of them in file order (empty
   * while the list itself is incomplete); `missingPages` gives them all.
   */
  chunks: ManifestEntry[];
  /** How many content chunks are not here. */
  chunksMissing: number;
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

/**
 * Chunks `missing` lists at most, and `missingPages` gives a page at a time: what a
 * version lacks is found a window at a time, so the memory it takes stays the same
 * whatever the file's size (a 4 GiB file has about 65,000 chunks).
 */
export const MISSING_LISTED = 2048;

/** Entries of a chunk list looked up in the chunk store at a time. */
const LOOKUP_WINDOW = 1000;

/** Chunk puts one `put` keeps going at once. */
const PUTS_IN_FLIGHT = 32;

/** Content up to this size is hashed on the calling thread; past it, on hashing threads. */
const THREADED_FROM = 8 * 1024 * 1024;

/**
 * Starts the hashing threads ahead of a put of `size` bytes, if it will use them:
 * they take a tenth of a second to load, which a caller about to open its stores
 * (the CLI's `files put`) can spend on that instead of waiting for them later.
 */
export function warmForPut(size: number): void {
  if (size > THREADED_FROM) warmHashThreads();
}

/** Bytes of a chunk in a slot of the hashing threads' shared memory. */
interface Part {
  slot: number;
  start: number;
  end: number;
}

function viewOf(views: Map<number, Buffer>, p: Part): Buffer {
  return (views.get(p.slot) as Buffer).subarray(p.start, p.end);
}

/** A piece of a source, checked to be bytes. */
function bytesOf(piece: unknown): Uint8Array {
  // A Node stream with an encoding set gives strings: their bytes would depend on it.
  if (!(piece instanceof Uint8Array))
    throw new TypeError(`a file's content is read as bytes, but the source gave a ${typeof piece}`);
  return piece;
}

/** Buffers a source's recent pieces lay in (see FreshPieces). */
const RECENT_BUFFERS = 8;

/**
 * Tells the pieces of a source that are garbage once used (a stream's fresh
 * buffers) from those that are not (a file read through a ring of buffers, see
 * node-files.ts): only the first count toward the young collections (scavenge.ts).
 * An edit of a large file read through the ring stores few new chunks, and then
 * collects nearly nothing, where it collected every 4 MiB read (a fifth of its
 * main thread's time, measured on a 1 GiB file).
 */
class FreshPieces {
  private readonly recent: ArrayBufferLike[] = [];

  isFresh(piece: Uint8Array): boolean {
    if (this.recent.includes(piece.buffer)) return false;
    this.recent.push(piece.buffer);
    if (this.recent.length > RECENT_BUFFERS) this.recent.shift();
    return true;
  }
}

/**
 * The chunks of a version that new content likely shares (the file's current
 * version, for a put of its next one), and where the store keeps their bytes, for
 * the chunking thread to compare with (see LikelyTable): an edit leaves most chunks
 * as they were. Undefined when there is nothing to compare with: no version, a
 * store that cannot say where its bytes lie, or the version's list not here.
 */
export async function likelyTable(
  chunks: ChunkStore,
  version: FileBody | undefined,
  list: (body: FileBody) => Promise<Buffer>,
): Promise<LikelyTable | undefined> {
  if (!version || !chunks.locateList) return undefined;
  let encoded: Buffer;
  try {
    encoded = await list(version);
  } catch {
    // Its list not here, or damaged: the put hashes every chunk, as without one.
    return undefined;
  }
  const places = await chunks.locateList(encoded);
  const packs = new Map<string, number>();
  const table = {
    lengths: new Uint32Array(places.length),
    offsets: new Float64Array(places.length),
    packOf: new Uint32Array(places.length),
    hashes: new Uint8Array(places.length * 32),
  };
  // A chunk the file holds twice is listed once: its place is taken the first time.
  const taken = new Map<number, Set<number>>();
  const last = encoded.length / MANIFEST_ENTRY_BYTES - 1;
  let n = 0;
  let eof = -1;
  for (const at of places) {
    const entry = at.entry * MANIFEST_ENTRY_BYTES;
    // One of another length is not this one.
    if (at.length !== encoded.readUInt32BE(entry + 32)) continue;
    let pack = packs.get(at.path);
    if (pack === undefined) packs.set(at.path, (pack = packs.size));
    let offsets = taken.get(pack);
    if (!offsets) taken.set(pack, (offsets = new Set()));
    if (offsets.has(at.offset)) continue;
    offsets.add(at.offset);
    table.lengths[n] = at.length;
    table.offsets[n] = at.offset;
    table.packOf[n] = pack;
    table.hashes.set(encoded.subarray(entry, entry + 32), n * 32);
    if (at.entry === last) eof = n;
    n++;
  }
  return {
    eof,
    lengths: table.lengths.subarray(0, n),
    offsets: table.offsets.subarray(0, n),
    packOf: table.packOf.subarray(0, n),
    hashes: table.hashes.subarray(0, n * 32),
    packs: [...packs.keys()],
  };
}

/**
 * Chunk puts kept going at once (up to PUTS_IN_FLIGHT), so the store's writes
 * overlap with the next chunk's hashing. The first failure is kept; `settle` waits
 * for every put still running (none is left to finish after the caller moved on).
 */
class PutsInFlight {
  private readonly running = new Set<Promise<unknown>>();
  failed: unknown;

  constructor(private readonly chunks: ChunkStore) {}

  /**
   * Starts a put of verified bytes; waits while PUTS_IN_FLIGHT are running.
   * `settled` runs once the store is done with the bytes (stored, or failed).
   */
  async put(hash: string, bytes: Uint8Array, settled?: () => void, unchanged = false): Promise<void> {
    const put: Promise<void> = this.chunks.put(hash, bytes, { verified: true, unchanged }).then(
      () => {
        this.running.delete(put);
        settled?.();
      },
      (err: unknown) => {
        this.failed ??= err;
        this.running.delete(put);
        settled?.();
      },
    );
    this.running.add(put);
    if (this.running.size >= PUTS_IN_FLIGHT) await Promise.race(this.running);
  }

  /**
   * Marks chunks found equal to stored ones (by the hashing threads) put again, in
   * one write of the store's (ChunkStore.putAgain), kept going like a put; a chunk
   * found gone meanwhile is put from its bytes. `settled` runs for each once the
   * store is done with its bytes.
   */
  async again(
    chunks: { hash: string; length: number; bytes: () => Uint8Array; settled: () => void }[],
  ): Promise<void> {
    const putAgain = this.chunks.putAgain?.bind(this.chunks);
    const work: Promise<void> = (async () => {
      let kept: boolean[] = [];
      try {
        if (putAgain) kept = await putAgain(chunks.map(({ hash, length }) => ({ hash, length })));
      } catch (err) {
        this.failed ??= err;
      }
      for (const [i, c] of chunks.entries()) {
        if (kept[i] === true || this.failed !== undefined) c.settled();
        else await this.put(c.hash, c.bytes(), c.settled, true);
      }
    })().finally(() => this.running.delete(work));
    this.running.add(work);
    if (this.running.size >= PUTS_IN_FLIGHT) await Promise.race(this.running);
  }

  async settle(): Promise<void> {
    await Promise.all(this.running);
    if (this.failed !== undefined) throw this.failed;
  }
}

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
   *
   * Content past THREADED_FROM bytes is cut and hashed on two threads beside this
   * one (see hash-threads.ts) while this one reads and stores: the passes over the
   * bytes overlap. Smaller content, or a put while another has the threads, is cut
   * and hashed here.
   *
   * `like` is a version the content likely shares chunks with (the file's current
   * version): a chunk whose bytes equal a stored chunk of it is given that chunk's
   * hash without hashing it (comparing costs a fraction of SHA-256). The stored
   * bytes were checked against that hash when stored, so equal bytes have it; a
   * stored chunk damaged since differs from the new bytes, which are then hashed.
   */
  async put(
    source: AsyncIterable<Uint8Array>,
    meta: { name: string; type?: string; modifiedAt: number },
    signal?: AbortSignal,
    like?: FileBody,
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
    // The first THREADED_FROM bytes are held (copied: a reader may reuse its buffers)
    // until it is known whether the content is larger.
    const pieces = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes <= THREADED_FROM) {
      signal?.throwIfAborted();
      const next = await pieces.next();
      if (next.done) {
        ended = true;
        break;
      }
      const piece = bytesOf(next.value);
      head.push(Buffer.from(piece));
      headBytes += piece.length;
    }
    const fresh = new FreshPieces();
    const rest = async function* (): AsyncGenerator<Uint8Array> {
      yield* head;
      if (ended) return;
      for (let next = await pieces.next(); !next.done; next = await pieces.next()) {
        const piece = bytesOf(next.value);
        if (fresh.isFresh(piece)) scavenger.moved(piece.length);
        yield piece;
      }
    };
    if (!ended) warmHashThreads();
    const run = ended
      ? undefined
      : await beginHashRun(await likelyTable(this.chunks, like, (body) => this.describingList(body)));
    let content: { entries: ManifestBuilder; size: number; sha256: string };
    try {
      content = run ? await this.putThreaded(run, rest(), signal) : await this.putHere(rest(), signal);
    } finally {
      run?.close();
      // A source left part-way is closed (a file's reader ends its reads).
      if (!ended) await pieces.return?.(undefined);
    }
    const { entries, size, sha256 } = content;
    const manifest: string[] = [];
    for (const c of manifestChunks(entries.encode())) {
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
      chunkCount: entries.count,
      manifest,
    };
  }

  /** Chunks, stores and hashes content on this thread alone. */
  private async putHere(
    source: AsyncIterable<Uint8Array>,
    signal: AbortSignal | undefined,
  ): Promise<{ entries: ManifestBuilder; size: number; sha256: string }> {
    const whole = createHash('sha256');
    const entries = new ManifestBuilder();
    let size = 0;
    const hashed = async function* () {
      for await (const piece of source) {
        whole.update(piece);
        size += piece.length;
        yield piece;
      }
    };
    const puts = new PutsInFlight(this.chunks);
    try {
      for await (const chunk of chunkStream(hashed(), signal ? { signal } : {})) {
        if (puts.failed) break;
        entries.push(chunk.hash, chunk.length);
        // The chunker has just hashed these bytes: the store need not again.
        await puts.put(chunk.hash, chunk.data);
      }
    } finally {
      await puts.settle();
    }
    return { entries, size, sha256: whole.digest('hex') };
  }

  /**
   * Stores content while two threads cut and hash it: this thread fills a slot of
   * shared memory and hands it over; where chunks end and their hashes come back in
   * order, and each chunk is put straight from the slot.
   */
  private async putThreaded(
    run: HashRun,
    source: AsyncIterable<Uint8Array>,
    signal: AbortSignal | undefined,
  ): Promise<{ entries: ManifestBuilder; size: number; sha256: string }> {
    const entries = new ManifestBuilder();
    const puts = new PutsInFlight(this.chunks);
    const views = new Map<number, Buffer>();
    /** Parts of chunks not yet put, per slot: a slot is released when none is left. */
    const parts = new Map<number, number>();
    let open: Part[] = [];
    let size = 0;
    // Pieces are put in the order they were cut; a failure stops the reading.
    let stored: Promise<void> = Promise.resolve();
    let broken: ((err: unknown) => void) | undefined;
    const stop = new Promise<never>((_, reject) => (broken = reject));
    stop.catch(() => undefined);
    const unhold = (slot: number) => {
      const left = (parts.get(slot) ?? 0) - 1;
      if (left > 0) parts.set(slot, left);
      else {
        parts.delete(slot);
        run.release(slot);
      }
    };
    const bytesOf = (chunk: Part[]) =>
      chunk.length === 1
        ? viewOf(views, chunk[0] as Part)
        : Buffer.concat(chunk.map((p) => viewOf(views, p)));
    const settled = (chunk: Part[]) => () => {
      for (const p of chunk) unhold(p.slot);
    };
    const store = async (chunk: Part[], hash: string) => {
      const bytes = bytesOf(chunk);
      entries.push(hash, bytes.length);
      // A store may read the bytes after an await (a chunk found again, then gone to a
      // collection, is written after all): the slot is refilled only once the put is done.
      await puts.put(hash, bytes, settled(chunk), true);
    };
    /** The chunks that end in a slot, as the threads cut them: the caller's hold on it passes to their parts. */
    const cut = (slot: number, length: number, ends: number[]): Part[][] => {
      const done: Part[][] = [];
      let from = 0;
      for (const end of ends) {
        open.push({ slot, start: from, end });
        done.push(open);
        open = [];
        from = end;
      }
      if (from < length) open.push({ slot, start: from, end: length });
      const held = done.reduce((n, c) => n + c.filter((p) => p.slot === slot).length, 0);
      const stillOpen = open.some((p) => p.slot === slot) ? 1 : 0;
      if (held + stillOpen === 0) run.release(slot);
      else parts.set(slot, held + stillOpen);
      return done;
    };
    const submit = (slot: number, length: number) => {
      const hashed = run.submit(slot, length);
      hashed.catch(() => undefined);
      stored = stored.then(async () => {
        if (puts.failed) throw puts.failed;
        const { ends, hashes, compared } = await hashed;
        const done = cut(slot, length, ends);
        // Chunks found equal to stored ones are marked put again together, the rest put one by one.
        const again: Parameters<PutsInFlight['again']>[0] = [];
        for (let i = 0; i < done.length; i++) {
          const chunk = done[i] as Part[];
          const hash = hashes[i] as string;
          if (!compared[i]) {
            await store(chunk, hash);
            continue;
          }
          const length = chunk.reduce((n, p) => n + p.end - p.start, 0);
          entries.push(hash, length);
          again.push({ hash, length, bytes: () => bytesOf(chunk), settled: settled(chunk) });
        }
        if (again.length > 0) await puts.again(again);
      });
      stored.catch((err: unknown) => broken?.(err));
    };
    try {
      let slot = await Promise.race([run.slot(), stop]);
      views.set(slot.index, slot.bytes);
      let filled = 0;
      for await (const piece of source) {
        signal?.throwIfAborted();
        size += piece.length;
        let at = 0;
        while (at < piece.length) {
          const n = Math.min(piece.length - at, SLOT_BYTES - filled);
          slot.bytes.set(piece.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled < SLOT_BYTES) continue;
          submit(slot.index, filled);
          slot = await Promise.race([run.slot(), stop]);
          views.set(slot.index, slot.bytes);
          filled = 0;
        }
      }
      if (filled > 0) submit(slot.index, filled);
      else run.release(slot.index);
      await stored;
      const end = await run.end();
      if (end.size !== size) throw new Error(`the hashing threads hashed ${end.size} bytes of ${size}`);
      if (open.length > 0) {
        if (end.last === undefined) throw new Error('the hashing threads gave no hash for the last chunk');
        await store(open, end.last);
      }
      open = [];
      return { entries, size, sha256: end.sha256 };
    } finally {
      await stored.catch(() => undefined);
      await puts.settle();
    }
  }

  /**
   * What the version's chunk list names, as it is, whether or not it describes the
   * version (see `entries`): for keeping every chunk a list names. Fails with
   * FILE_MANIFEST_INVALID only when the list does not decode.
   */
  async listed(body: FileBody): Promise<ManifestEntry[]> {
    return decodeManifest(await this.encodedList(body));
  }

  /** The version's chunk list as kept (MANIFEST_ENTRY_BYTES an entry), not decoded. */
  private async encodedList(body: FileBody): Promise<Buffer> {
    const missing = await this.chunks.missing(body.manifest);
    if (missing.length > 0) throw new ContentMissingError(body.name, missing.length + body.chunkCount);
    const parts = await Promise.all(body.manifest.map((h) => this.chunks.get(h)));
    return Buffer.concat(parts);
  }

  /** The version's chunk list, not decoded, checked as `entries` checks it. */
  private async describingList(body: FileBody): Promise<Buffer> {
    const list = await this.encodedList(body);
    const { count, size } = manifestTotals(list);
    if (count !== body.chunkCount)
      throw new ManifestInvalidError(
        `${JSON.stringify(body.name)} has ${body.chunkCount} chunks, its list names ${count}`,
      );
    if (size !== body.size)
      throw new ManifestInvalidError(
        `${JSON.stringify(body.name)} has ${body.size} bytes, its list's chunks ${size}`,
      );
    return list;
  }

  /**
   * The version's chunk list (its chunks must be here). A list that does not
   * describe the version (its entries do not add up to the version's chunk count
   * and size) fails with FILE_MANIFEST_INVALID: read by it, the bytes would not be
   * the version's.
   */
  async entries(body: FileBody): Promise<ManifestEntry[]> {
    return decodeManifest(await this.describingList(body));
  }

  /**
   * The entries of `list` whose chunks are not stored, in the list's order (a chunk
   * the file holds twice is there twice), a window of LOOKUP_WINDOW entries at a time.
   */
  private async *absentEntries(list: Buffer): AsyncGenerator<ManifestEntry[]> {
    const count = list.length / MANIFEST_ENTRY_BYTES;
    const absentInList = this.chunks.absentInList?.bind(this.chunks);
    for (let at = 0; at < count; at += LOOKUP_WINDOW) {
      if (absentInList) {
        yield (await absentInList(list, at, LOOKUP_WINDOW)).map((i) => manifestEntry(list, i));
        continue;
      }
      const entries = manifestEntries(list, at, LOOKUP_WINDOW);
      const absent = new Set(await this.chunks.missing(entries.map((e) => e.hash)));
      yield entries.filter((e) => absent.has(e.hash));
    }
  }

  /**
   * What is missing here of a version's content. A chunk list that is here but does
   * not describe the version is reported as `invalid`, not thrown: one bad version
   * must not stop a caller going through many.
   */
  async missing(body: FileBody): Promise<MissingContent> {
    const manifest = await this.chunks.missing(body.manifest);
    if (manifest.length > 0)
      return { manifest, chunks: [], chunksMissing: 0, bytesHere: 0, bytesTotal: body.size };
    let list: Buffer;
    try {
      list = await this.describingList(body);
    } catch (err) {
      if (err instanceof ManifestInvalidError)
        return {
          manifest: [],
          chunks: [],
          chunksMissing: 0,
          bytesHere: 0,
          bytesTotal: body.size,
          invalid: err,
        };
      // A chunk of the list found damaged was removed (CHUNK_CORRUPT), or removed
      // meanwhile: it is missing now, and fetched again like any other.
      if (
        err instanceof ContentMissingError ||
        isTrosynError(err, 'CHUNK_CORRUPT') ||
        isTrosynError(err, 'CHUNK_NOT_FOUND')
      ) {
        const now = await this.chunks.missing(body.manifest);
        if (now.length > 0)
          return { manifest: now, chunks: [], chunksMissing: 0, bytesHere: 0, bytesTotal: body.size };
      }
      throw err;
    }
    const chunks: ManifestEntry[] = [];
    let chunksMissing = 0;
    let missingBytes = 0;
    for await (const absent of this.absentEntries(list))
      for (const e of absent) {
        chunksMissing++;
        missingBytes += e.length;
        if (chunks.length < MISSING_LISTED) chunks.push(e);
      }
    return {
      manifest: [],
      chunks,
      chunksMissing,
      bytesHere: body.size - missingBytes,
      bytesTotal: body.size,
    };
  }

  /**
   * The content chunks of a version not here, in file order, at most `pageSize` a
   * page: for fetching them a page at a time. None when the chunk list is not here
   * or does not describe the version (`missing` says which). A chunk is listed once,
   * even when the file holds it several times.
   */
  async *missingPages(body: FileBody, pageSize = MISSING_LISTED): AsyncGenerator<ManifestEntry[]> {
    let list: Buffer;
    try {
      list = await this.describingList(body);
    } catch (err) {
      if (err instanceof ManifestInvalidError || err instanceof ContentMissingError) return;
      throw err;
    }
    let page: ManifestEntry[] = [];
    const listed = new Set<string>();
    for await (const absent of this.absentEntries(list)) {
      for (const e of absent) {
        if (listed.has(e.hash)) continue;
        listed.add(e.hash);
        page.push(e);
        if (page.length < pageSize) continue;
        yield page;
        page = [];
        listed.clear();
      }
    }
    if (page.length > 0) yield page;
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
   *
   * `checkChunks: false`, for a read in full only, leaves the chunks to the whole
   * check: one pass of SHA-256 over the bytes instead of two. A damaged chunk's bytes
   * are then given like the others and the read fails only at its end, so it is for
   * a caller that uses the bytes only once the read has ended without error (the
   * CLI writes beside the target, then renames). After a failed whole check every
   * chunk is checked, so a damaged one is removed (and can be fetched again) as a
   * checked read would remove it.
   */
  async *read(
    body: FileBody,
    range: { start?: number; end?: number } = {},
    options: { checkChunks?: boolean } = {},
  ): AsyncGenerator<Buffer> {
    const list = await this.describingList(body);
    // Nothing is read unless all of it is here (one look through the list, a window at a time).
    let absent = 0;
    for await (const w of this.absentEntries(list)) absent += new Set(w.map((e) => e.hash)).size;
    if (absent > 0) throw new ContentMissingError(body.name, absent);
    const start = range.start ?? 0;
    const end = Math.min(range.end ?? body.size, body.size);
    const whole = start === 0 && end === body.size ? createHash('sha256') : undefined;
    const checkEach = !whole || options.checkChunks !== false;
    const count = list.length / MANIFEST_ENTRY_BYTES;
    let at = 0;
    for (let i = 0; i < count && at < end; i += LOOKUP_WINDOW) {
      for (const e of manifestEntries(list, i, LOOKUP_WINDOW)) {
        const from = at;
        at += e.length;
        if (at <= start) continue;
        if (from >= end) break;
        const bytes = await this.chunks.get(e.hash, checkEach ? {} : { verify: false });
        // The chunk is what its hash names; a list giving it another length is wrong.
        if (bytes.length !== e.length)
          throw new ManifestInvalidError(
            `${JSON.stringify(body.name)}'s list gives chunk ${e.hash.slice(0, 12)} ${e.length} bytes; it has ${bytes.length}`,
          );
        whole?.update(bytes);
        yield bytes.subarray(Math.max(0, start - from), Math.min(e.length, end - from));
      }
    }
    if (whole && whole.digest('hex') !== body.sha256) {
      if (!checkEach) await this.removeDamaged(list);
      throw new ContentCorruptError(body.name);
    }
  }

  /** Checks every chunk of a list: the store removes those it finds damaged. */
  private async removeDamaged(list: Buffer): Promise<void> {
    const count = list.length / MANIFEST_ENTRY_BYTES;
    for (let i = 0; i < count; i += LOOKUP_WINDOW)
      for (const e of manifestEntries(list, i, LOOKUP_WINDOW))
        await this.chunks.get(e.hash, { verify: true }).catch((err: unknown) => {
          if (!isTrosynError(err, 'CHUNK_CORRUPT') && !isTrosynError(err, 'CHUNK_NOT_FOUND')) throw err;
        });
  }
}
