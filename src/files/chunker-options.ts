import { TrosynError } from '../errors.js';
import { gearMask } from './gear.js';

/**
 * How the chunker sizes chunks. Every device must chunk with the same settings for
 * identical content to give identical chunks, so a deployment keeps the defaults
 * unless it changes them everywhere at once.
 */
export interface ChunkerOptions {
  /**
   * The smallest chunk, in bytes (the last chunk of a stream may be smaller). The
   * chunker does not hash a chunk's first `minSize` bytes at all ("cut-point
   * skipping"), so a larger minimum chunks faster, at the price of slightly longer
   * chunks and a cut point now and then skipped past after an edit. Default 48 KiB;
   * at least 64.
   */
  minSize?: number;
  /**
   * The chunk length at which the chunker switches from its strict mask to its
   * loose one: a power of two, from 256 B to 16 MiB. The mean chunk is longer than
   * this (80 KiB with the defaults). Default 64 KiB.
   */
  avgSize?: number;
  /**
   * The largest chunk, in bytes: a chunk with no cut point by then is cut here, and
   * the chunker holds at most about this much of a stream. At most 64 MiB. Default
   * 256 KiB.
   */
  maxSize?: number;
  /**
   * Normalized chunking (FastCDC 2016, section 3.5): the strict mask has this many
   * bits more than `log2(avgSize)` and the loose one this many fewer, which pulls
   * chunk sizes towards `avgSize`. 0 to 3; default 2.
   */
  normalization?: number;
}

/**
 * The defaults of every chunker option, chosen by `npm run bench -- chunker` on 64
 * MiB of random bytes (bench/results/chunker.json). The scan costs more than the
 * SHA-256 of the chunks, so the minimum is the lever: with 48 KiB the scan reads
 * only 40% of the bytes, and chunking plus SHA-256 ran at 0.47 of SHA-256 alone
 * against 0.37 with 16 KiB, for the same bytes sent after a 1 MiB insertion and
 * about 91 KiB of new chunks per small edit against 87 KiB. Level 3 was as fast but
 * after one insertion set off runs of 20 to 50 moved chunks; level 2 did not.
 * Smaller averages mean twice the chunks to track; larger ones cost more per edit.
 */
export const DEFAULT_CHUNKER_OPTIONS: Readonly<Required<ChunkerOptions>> = Object.freeze({
  minSize: 48 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
  normalization: 2,
});

/** Options checked and turned into what the cut finder runs on. */
export interface ChunkerParams {
  /** Bytes skipped unhashed at the start of each chunk. */
  readonly minSize: number;
  /** Chunk length at which the loose mask takes over from the strict one. */
  readonly avgSize: number;
  /** Longest chunk; cut here if no cut point came first. */
  readonly maxSize: number;
  /** The strict mask, used below `avgSize` (see gearMask). */
  readonly maskS: number;
  /** The loose mask, used from `avgSize` to `maxSize`. */
  readonly maskL: number;
}

const MIN_MIN_SIZE = 64;
const MIN_AVG_SIZE = 256;
const MAX_AVG_SIZE = 16 * 1024 * 1024;
const MAX_MAX_SIZE = 64 * 1024 * 1024;

/** A chunker option out of range, or options that contradict each other. */
export class ChunkerOptionsError extends TrosynError {
  constructor(option: keyof ChunkerOptions, value: unknown, rule: string) {
    super('INVALID_CHUNKER_OPTIONS', `chunker option ${option} = ${String(value)}: ${rule}`, {
      option,
      value,
    });
  }
}

/** Fills in the defaults, checks the options, and derives the two masks. */
export function resolveChunkerOptions(options: ChunkerOptions = {}): ChunkerParams {
  const { minSize, avgSize, maxSize, normalization } = {
    ...DEFAULT_CHUNKER_OPTIONS,
    ...definedOnly(options),
  };
  if (!Number.isSafeInteger(minSize) || minSize < MIN_MIN_SIZE)
    throw new ChunkerOptionsError(
      'minSize',
      minSize,
      `must be a whole number of bytes, at least ${MIN_MIN_SIZE}`,
    );
  if (
    !Number.isSafeInteger(avgSize) ||
    avgSize < MIN_AVG_SIZE ||
    avgSize > MAX_AVG_SIZE ||
    !isPowerOfTwo(avgSize)
  )
    throw new ChunkerOptionsError(
      'avgSize',
      avgSize,
      `must be a power of two from ${MIN_AVG_SIZE} to ${MAX_AVG_SIZE} bytes`,
    );
  if (!Number.isSafeInteger(maxSize) || maxSize > MAX_MAX_SIZE)
    throw new ChunkerOptionsError(
      'maxSize',
      maxSize,
      `must be a whole number of bytes, at most ${MAX_MAX_SIZE}`,
    );
  if (!Number.isInteger(normalization) || normalization < 0 || normalization > 3)
    throw new ChunkerOptionsError('normalization', normalization, 'must be 0, 1, 2 or 3');
  if (minSize >= avgSize)
    throw new ChunkerOptionsError('minSize', minSize, `must be less than avgSize (${avgSize})`);
  if (maxSize <= avgSize)
    throw new ChunkerOptionsError('maxSize', maxSize, `must be more than avgSize (${avgSize})`);
  const bits = Math.log2(avgSize);
  return {
    minSize,
    avgSize,
    maxSize,
    maskS: gearMask(bits + normalization),
    maskL: gearMask(bits - normalization),
  };
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(Math.log2(n));
}

/** `{ minSize: undefined }` means the default, as if the key were absent. */
function definedOnly(options: ChunkerOptions): ChunkerOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
