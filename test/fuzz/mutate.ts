/**
 * Seeded mutations of an input, which is the list of writes a peer makes to its
 * socket (each usually one frame). Byte-level changes (bit flips, interesting
 * values, truncation, length-field edits, inserted and deleted bytes) reach the
 * framing; JSON-aware ones keep a message well framed and change one value in
 * it, which reaches the schemas and the handlers behind them; splices and
 * reorderings combine what the corpus has already reached.
 */
import { compress } from '../../src/protocol/compression.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { FRAME_HEADER_BYTES, FrameKind, encodeFrame } from '../../src/protocol/frame.js';
import type { Rand } from './random.js';

export type Input = Buffer[];

/** Bounds of a mutated input: writes, and bytes in one write. */
export const MAX_WRITES = 24;
export const MAX_WRITE_BYTES = 256 * 1024;

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xfe, 0xff, 0x22, 0x7b, 0x7d, 0x5c];

/** A frame carrying `value` as JSON, uncompressed. */
export function messageFrame(value: unknown): Buffer {
  return encodeFrame(FrameKind.Message, Buffer.from(JSON.stringify(value)));
}

/** The JSON in a whole, uncompressed message frame, or undefined. */
export function frameJson(write: Buffer): unknown {
  if (write.length < FRAME_HEADER_BYTES || write[4] !== FrameKind.Message || write[5] !== 0) return undefined;
  if (write.readUInt32BE(0) !== write.length - 4) return undefined;
  try {
    return JSON.parse(write.toString('utf8', FRAME_HEADER_BYTES)) as unknown;
  } catch {
    return undefined;
  }
}

type Mutation = (input: Input, r: Rand, ctx: MutationContext) => Input;

export interface MutationContext {
  /** Other inputs to splice from. */
  corpus: readonly Input[];
  /** Strings worth trying in JSON values (method names, the harness's tokens). */
  dictionary: readonly string[];
}

function at(input: Input, r: Rand): number {
  return r.int(input.length);
}

function replace(input: Input, i: number, write: Buffer): Input {
  const copy = input.slice();
  copy[i] = write;
  return copy;
}

const byteMutations: Mutation[] = [
  // One bit flipped.
  (input, r) => {
    const i = at(input, r);
    const w = Buffer.from(input[i] as Buffer);
    if (w.length === 0) return input;
    const p = r.int(w.length);
    w[p] = (w[p] as number) ^ (1 << r.int(8));
    return replace(input, i, w);
  },
  // One byte set to an interesting or a random value.
  (input, r) => {
    const i = at(input, r);
    const w = Buffer.from(input[i] as Buffer);
    if (w.length === 0) return input;
    w[r.int(w.length)] = r.next() < 0.6 ? r.pick(INTERESTING_BYTES) : r.int(256);
    return replace(input, i, w);
  },
  // Cut short.
  (input, r) => {
    const i = at(input, r);
    const w = input[i] as Buffer;
    return replace(input, i, w.subarray(0, r.int(w.length)));
  },
  // Bytes inserted (random, or copied from elsewhere in the write).
  (input, r) => {
    const i = at(input, r);
    const w = input[i] as Buffer;
    const p = r.int(w.length + 1);
    const n = 1 + r.int(16);
    const insert = r.next() < 0.5 || w.length === 0 ? r.bytes(n) : w.subarray(r.int(w.length)).subarray(0, n);
    return replace(input, i, Buffer.concat([w.subarray(0, p), insert, w.subarray(p)]));
  },
  // Bytes deleted.
  (input, r) => {
    const i = at(input, r);
    const w = input[i] as Buffer;
    if (w.length === 0) return input;
    const p = r.int(w.length);
    return replace(input, i, Buffer.concat([w.subarray(0, p), w.subarray(p + 1 + r.int(16))]));
  },
  // The length field: off by a little, zero, tiny, at or past the limit, huge.
  (input, r) => {
    const i = at(input, r);
    const w = Buffer.from(input[i] as Buffer);
    if (w.length < 4) return input;
    const actual = w.length - 4;
    w.writeUInt32BE(
      r.pick([
        actual - 1,
        actual + 1,
        actual + 1 + r.int(64),
        Math.max(0, actual - 1 - r.int(64)),
        0,
        1,
        2,
        DEFAULT_MAX_FRAME_BYTES,
        DEFAULT_MAX_FRAME_BYTES + 1,
        0xffff_ffff,
        r.int(2 ** 32),
      ]) >>> 0,
    );
    return replace(input, i, w);
  },
  // The kind or flags byte.
  (input, r) => {
    const i = at(input, r);
    const w = Buffer.from(input[i] as Buffer);
    if (w.length < FRAME_HEADER_BYTES) return input;
    w[4 + r.int(2)] = r.pick([0, 1, 2, 3, 4, 0x41, 0x80, 0xff]);
    return replace(input, i, w);
  },
];

const frameMutations: Mutation[] = [
  // A write dropped, doubled, or moved.
  (input, r) => {
    if (input.length < 2) return input;
    const copy = input.slice();
    copy.splice(at(input, r), 1);
    return copy;
  },
  (input, r) => {
    const copy = input.slice();
    const i = at(input, r);
    copy.splice(i, 0, input[i] as Buffer);
    return copy;
  },
  (input, r) => {
    const copy = input.slice();
    const [a, b] = [at(input, r), at(input, r)];
    [copy[a], copy[b]] = [copy[b] as Buffer, copy[a] as Buffer];
    return copy;
  },
  // A write split in two, or two writes joined: the stream is the same, its pieces differ.
  (input, r) => {
    const i = at(input, r);
    const w = input[i] as Buffer;
    if (w.length < 2) return input;
    const p = 1 + r.int(w.length - 1);
    const copy = input.slice();
    copy.splice(i, 1, w.subarray(0, p), w.subarray(p));
    return copy;
  },
  (input, r) => {
    if (input.length < 2) return input;
    const i = r.int(input.length - 1);
    const copy = input.slice();
    copy.splice(i, 2, Buffer.concat([input[i] as Buffer, input[i + 1] as Buffer]));
    return copy;
  },
  // A splice: the head of this input, the tail of another, or a write of another put in.
  (input, r, ctx) => {
    const other = r.pick(ctx.corpus);
    if (!other || other.length === 0) return input;
    if (r.next() < 0.5) return [...input.slice(0, 1 + at(input, r)), ...other.slice(r.int(other.length))];
    return replace(input, at(input, r), other[r.int(other.length)] as Buffer);
  },
  // A message frame compressed (properly) with zstd or brotli.
  (input, r) => {
    const i = at(input, r);
    const w = input[i] as Buffer;
    if (w.length < FRAME_HEADER_BYTES || w[5] !== 0 || w.readUInt32BE(0) !== w.length - 4) return input;
    const kind = w[4] === FrameKind.Chunk ? FrameKind.Chunk : FrameKind.Message;
    const codec = r.pick(['zstd', 'br'] as const);
    return replace(input, i, encodeFrame(kind, compress(codec, w.subarray(FRAME_HEADER_BYTES)), codec));
  },
];

/** Lengths just past the protocol's string limits (64, 128, 256, 1024, 4096). */
const LIMITS_PASSED = [65, 129, 257, 1025, 4097];

/** A string just longer than one of the limits: this one repeated, or filler. */
function longString(v: unknown, r: Rand): string {
  const unit = typeof v === 'string' && v.length > 0 ? v : 'A';
  return unit.repeat(Math.ceil(4097 / unit.length)).slice(0, r.pick(LIMITS_PASSED));
}

/** A value of another type, or a near miss of this one. */
function mutateValue(v: unknown, r: Rand, ctx: MutationContext): unknown {
  switch (r.int(12)) {
    case 0:
      return null;
    case 1:
      return r.pick([0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1.5, 1e308]);
    case 2:
      return r.pick([true, false]);
    case 3:
      return r.pick([
        '',
        'x',
        'A'.repeat(1 + r.int(300)),
        '\u0000',
        '\ud800',
        '==',
        'AAAA',
        longString(v, r),
      ]);
    case 4:
      return r.next() < 0.5 ? [] : [v];
    case 5:
      return r.next() < 0.5 ? {} : { v };
    case 6:
    case 7:
      return r.pick(ctx.dictionary);
    default:
      if (typeof v === 'number') return r.pick([v + 1, v - 1, -v, v * 2 ** 16, 0]);
      if (typeof v === 'string') {
        if (v.length === 0) return r.pick(ctx.dictionary);
        const p = r.int(v.length);
        return r.next() < 0.5 ? v.slice(0, p) + v.slice(p + 1) : v.slice(0, p) + v[p] + v.slice(p);
      }
      if (Array.isArray(v)) return r.next() < 0.5 ? v.slice(1) : [...v, ...v];
      return v;
  }
}

/** Paths to every value in a JSON tree, at most `limit` of them. */
function paths(
  v: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (out.length > 200) return out;
  out.push(prefix);
  if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) paths(x, [...prefix, k], out);
  return out;
}

const jsonMutation: Mutation = (input, r, ctx) => {
  const candidates = input.flatMap((w, i) => (frameJson(w) !== undefined ? [i] : []));
  if (candidates.length === 0) return input;
  const i = r.pick(candidates);
  const root = frameJson(input[i] as Buffer);
  const path = r.pick(paths(root));
  if (path.length === 0) return replace(input, i, messageFrame(mutateValue(root, r, ctx)));
  let parent = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const key = path[path.length - 1] as string | number;
  const roll = r.next();
  if (roll < 0.15 && !Array.isArray(parent)) delete parent[key];
  else if (roll < 0.25 && !Array.isArray(parent)) parent[r.pick(ctx.dictionary)] = parent[key];
  else parent[key] = mutateValue(parent[key], r, ctx);
  return replace(input, i, messageFrame(root));
};

/**
 * A mutant of `input`: one to four mutations stacked, JSON-aware ones about a
 * third of the time. Never empty, never beyond MAX_WRITES writes of MAX_WRITE_BYTES.
 */
export function mutate(input: Input, r: Rand, ctx: MutationContext): Input {
  let out = input.length > 0 ? input : [Buffer.alloc(0)];
  for (let n = 1 + r.int(4); n > 0; n--) {
    const roll = r.next();
    const m = roll < 0.35 ? jsonMutation : roll < 0.75 ? r.pick(byteMutations) : r.pick(frameMutations);
    out = m(out, r, ctx);
    if (out.length === 0) out = [Buffer.alloc(0)];
  }
  return out
    .slice(0, MAX_WRITES)
    .map((w) => (w.length > MAX_WRITE_BYTES ? w.subarray(0, MAX_WRITE_BYTES) : w));
}
