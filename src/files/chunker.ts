/**
 * The content-defined chunker: FastCDC (Xia et al., USENIX ATC 2016, and the 2020
 * IEEE TPDS version). A file is cut where the gear hash of its last 60 bytes matches
 * a mask, so an edit moves only the cut points near it and the chunks before and
 * after stay the same bytes, with the same SHA-256, as before: those are the chunks
 * a peer already has.
 *
 * From the paper: the gear hash (gear.ts); cut-point skipping, where the first
 * `minSize` bytes of a chunk are not hashed at all; and normalized chunking, a
 * stricter mask below `avgSize` and a looser one above it, which keeps chunk sizes
 * near the average. The 2020 paper's "rolling two bytes at a time" gives the same
 * cut points by construction, but in JavaScript it runs at less than half the speed
 * of one byte at a time over 32-bit words (`npm run bench -- chunker`), so the scan
 * does the latter.
 */
import { createHash } from 'node:crypto';
import { type ChunkerOptions, type ChunkerParams, resolveChunkerOptions } from './chunker-options.js';
import { findCut, newGearState } from './gear.js';

export { type ChunkerOptions, ChunkerOptionsError, DEFAULT_CHUNKER_OPTIONS } from './chunker-options.js';

/** One chunk of a stream. */
export interface Chunk {
  /** Where the chunk starts in the stream, in bytes from its first byte. */
  offset: number;
  /**
   * Its length in bytes: more than `minSize` and at most `maxSize`, except the last
   * chunk of a stream, which may be shorter (never empty).
   */
  length: number;
  /** The SHA-256 of the chunk's bytes, in lowercase hex: its name in the chunk store. */
  hash: string;
  /**
   * The chunk's bytes: a view into the piece that was pushed when the chunk lies
   * within one piece, a copy when it spans several. A view shares the piece's
   * memory, so a caller must not reuse a piece's buffer after pushing it.
   */
  data: Uint8Array;
}

/**
 * Finds where chunks end, piece by piece, without keeping any bytes: the hash state
 * and the length of the chunk so far are all it needs.
 */
export class CutFinder {
  readonly #params: ChunkerParams;
  readonly #state = newGearState();
  /** Bytes of the current chunk already passed over, in earlier pieces or this one. */
  #seen = 0;

  /** Checks the options (throws ChunkerOptionsError) and starts at a chunk boundary. */
  constructor(options?: ChunkerOptions) {
    this.#params = resolveChunkerOptions(options);
  }

  /** How many bytes of the current chunk have been passed over and not yet cut. */
  get pending(): number {
    return this.#seen;
  }

  /**
   * Goes on through `bytes` from `from` and returns the index just past the end of
   * the current chunk, or -1 if the chunk goes on past `bytes` (the next call picks
   * up where this one stopped). After a cut, the next call starts a new chunk.
   */
  next(bytes: Uint8Array, from: number): number {
    const { minSize, avgSize, maxSize, maskS, maskL } = this.#params;
    const n = bytes.length;
    let i = from;
    let seen = this.#seen;
    if (seen < minSize) {
      // Cut-point skipping: no chunk ends before minSize, so its bytes need no hash.
      const skip = Math.min(minSize - seen, n - i);
      i += skip;
      seen += skip;
      if (seen < minSize) return this.#stop(seen);
    }
    if (seen < avgSize) {
      const stop = Math.min(n, i + (avgSize - seen));
      const end = findCut(bytes, i, stop, maskS, this.#state);
      if (end >= 0) return this.#cut(end);
      seen += stop - i;
      i = stop;
      if (seen < avgSize) return this.#stop(seen);
    }
    const stop = Math.min(n, i + (maxSize - seen));
    const end = findCut(bytes, i, stop, maskL, this.#state);
    if (end >= 0) return this.#cut(end);
    seen += stop - i;
    return seen === maxSize ? this.#cut(stop) : this.#stop(seen);
  }

  /** Forgets the current chunk: the next byte starts a new one. */
  reset(): void {
    this.#seen = 0;
    this.#state.fill(0);
  }

  #cut(end: number): number {
    this.reset();
    return end;
  }

  #stop(seen: number): number {
    this.#seen = seen;
    return -1;
  }
}

/**
 * The streaming chunker: push the pieces of a stream as they come (any sizes), take
 * the chunks each piece completes, and call `end()` for the last one. It holds at
 * most the current, unfinished chunk (less than `maxSize` bytes, as views of the
 * pieces it came in), whatever the length of the stream.
 */
export class Chunker {
  readonly #cuts: CutFinder;
  /** The current chunk's bytes so far: views of the pieces they came in. */
  #parts: Uint8Array[] = [];
  /** Where the current chunk starts in the stream. */
  #offset = 0;

  /** Checks the options (throws ChunkerOptionsError). */
  constructor(options?: ChunkerOptions) {
    this.#cuts = new CutFinder(options);
  }

  /** Bytes of the unfinished chunk held between pushes: always less than `maxSize`. */
  get held(): number {
    return this.#cuts.pending;
  }

  /** Takes the next piece of the stream; returns the chunks it completes, in order. */
  push(bytes: Uint8Array): Chunk[] {
    const chunks: Chunk[] = [];
    let start = 0;
    for (let end = this.#cuts.next(bytes, 0); end >= 0; end = this.#cuts.next(bytes, start)) {
      this.#parts.push(bytes.subarray(start, end));
      chunks.push(this.#emit());
      start = end;
    }
    if (start < bytes.length) this.#parts.push(bytes.subarray(start));
    return chunks;
  }

  /**
   * Ends the stream: returns its last chunk (none if the stream was empty or ended
   * on a cut). The chunker is then ready for a new stream, from offset 0.
   */
  end(): Chunk[] {
    const last = this.#parts.length > 0 ? [this.#emit()] : [];
    this.#cuts.reset();
    this.#offset = 0;
    return last;
  }

  #emit(): Chunk {
    const parts = this.#parts;
    const hash = createHash('sha256');
    let length = 0;
    for (const part of parts) {
      hash.update(part);
      length += part.length;
    }
    const data = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, length);
    const chunk = { offset: this.#offset, length, hash: hash.digest('hex'), data };
    this.#offset += length;
    this.#parts = [];
    return chunk;
  }
}

/** Options of {@link chunkStream}: the chunker's, and a signal to stop reading. */
export interface ChunkStreamOptions extends ChunkerOptions {
  /** Aborting it stops the chunking, with the signal's reason, before the next chunk. */
  signal?: AbortSignal;
}

/**
 * Chunks a stream of bytes (a file's read stream, say) as it is read, yielding each
 * chunk as soon as it is complete. Only the current chunk is held, so memory stays
 * flat whatever the size of the stream. Breaking out of the loop stops reading.
 *
 * Pieces larger than chunks are cheaper: a chunk within one piece is a view of it,
 * while one spread over several is copied. Reading a file with `highWaterMark: 1 <<
 * 20` rather than the 64 KiB default saves that copy for most chunks.
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ChunkStreamOptions = {},
): AsyncGenerator<Chunk, void, undefined> {
  const { signal, ...sizes } = options;
  const chunker = new Chunker(sizes);
  signal?.throwIfAborted();
  for await (const piece of source) {
    signal?.throwIfAborted();
    if (!(piece instanceof Uint8Array)) {
      // A Node stream with an encoding set yields strings; chunking them would
      // depend on the encoding, not on the content.
      throw new TypeError(`chunkStream reads bytes, but the source gave a ${typeof piece}`);
    }
    for (const chunk of chunker.push(piece)) {
      yield chunk;
      signal?.throwIfAborted();
    }
  }
  yield* chunker.end();
}

/** Chunks bytes already in memory; each chunk's `data` is a view of `bytes`. */
export function chunkBuffer(bytes: Uint8Array, options?: ChunkerOptions): Chunk[] {
  const chunker = new Chunker(options);
  return [...chunker.push(bytes), ...chunker.end()];
}

/**
 * The chunk boundaries of `bytes` alone, without hashing: the end offset of each
 * chunk, the last being `bytes.length` (none for empty input). The same cuts as
 * {@link chunkBuffer}.
 */
export function cutPoints(bytes: Uint8Array, options?: ChunkerOptions): number[] {
  const cuts = new CutFinder(options);
  const ends: number[] = [];
  let start = 0;
  for (let end = cuts.next(bytes, 0); end >= 0; end = cuts.next(bytes, start)) {
    ends.push(end);
    start = end;
  }
  if (start < bytes.length) ends.push(bytes.length);
  return ends;
}
