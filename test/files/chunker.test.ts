/**
 * The chunker's promises: the same bytes give the same chunks however they arrive;
 * sizes stay in bounds and the chunks cover the input exactly; an edit changes only
 * the chunks around it; and the cut points of a fixed input never change (a changed
 * gear table, mask or rule would lose deduplication against every chunk already
 * stored, so it must not pass unnoticed).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isTrosynError } from '../../src/errors.js';
import { seededBytes } from '../helpers.js';
import {
  type Chunk,
  Chunker,
  type ChunkerOptions,
  ChunkerOptionsError,
  chunkBuffer,
  chunkStream,
  cutPoints,
  DEFAULT_CHUNKER_OPTIONS,
} from '../../src/files/chunker.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small sizes, so that a few MiB give hundreds of chunks and every rule is exercised often. */
const SMALL: ChunkerOptions = { minSize: 256, avgSize: 1024, maxSize: 4096 };

/** A small seeded generator of integers in [0, n), for split points and edit positions. */
function seededInts(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

/** Cuts `bytes` into pieces at random points, many tiny or empty, each copied to a random, often unaligned, offset of its own buffer. */
function randomPieces(bytes: Uint8Array, seed: number): Uint8Array[] {
  const next = seededInts(seed);
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = [0, 1, 3, next(64), next(4 * KiB), next(300 * KiB)][next(6)] as number;
    const piece = bytes.subarray(at, at + size);
    const pad = next(8);
    const own = new Uint8Array(pad + piece.length);
    own.set(piece, pad);
    pieces.push(own.subarray(pad));
    at += piece.length;
  }
  return pieces;
}

const summary = (chunks: Chunk[]) => chunks.map(({ offset, length, hash }) => ({ offset, length, hash }));

/** Every promise about one chunking of `input`, checked from scratch. */
function assertWellFormed(input: Uint8Array, chunks: Chunk[], options: ChunkerOptions = {}) {
  const { minSize, maxSize } = { ...DEFAULT_CHUNKER_OPTIONS, ...options };
  let offset = 0;
  chunks.forEach((c, i) => {
    assert.equal(c.offset, offset, `chunk ${i} starts where the previous one ended`);
    assert.equal(c.data.length, c.length);
    assert.ok(c.length >= 1 && c.length <= maxSize, `chunk ${i}: ${c.length} bytes`);
    if (i < chunks.length - 1) assert.ok(c.length > minSize, `chunk ${i} is not the last: ${c.length} bytes`);
    assert.ok(
      Buffer.from(c.data).equals(input.subarray(offset, offset + c.length)),
      `chunk ${i} holds its bytes`,
    );
    assert.equal(c.hash, createHash('sha256').update(c.data).digest('hex'));
    offset += c.length;
  });
  assert.equal(offset, input.length, 'the chunks cover the input');
}

describe('the chunker', () => {
  it('gives the same chunks whatever pieces the bytes arrive in', async () => {
    const input = seededBytes('pieces', 3 * MiB + 17);
    for (const options of [{}, SMALL]) {
      const whole = chunkBuffer(input, options);
      assertWellFormed(input, whole, options);
      assert.ok(whole.length > (options === SMALL ? 1000 : 30), `${whole.length} chunks`);
      for (const seed of [1, 2, 3]) {
        const chunker = new Chunker(options);
        const streamed: Chunk[] = [];
        for (const piece of randomPieces(input, seed)) {
          streamed.push(...chunker.push(piece));
          assert.ok(
            chunker.held < (options.maxSize ?? DEFAULT_CHUNKER_OPTIONS.maxSize),
            'holds less than a chunk',
          );
        }
        streamed.push(...chunker.end());
        assertWellFormed(input, streamed, options);
        assert.deepEqual(summary(streamed), summary(whole), `split with seed ${seed}`);
      }
      const fromStream: Chunk[] = [];
      for await (const c of chunkStream(Readable.from(randomPieces(input, 4)), options)) fromStream.push(c);
      assert.deepEqual(summary(fromStream), summary(whole));
      assert.deepEqual(
        cutPoints(input, options),
        whole.map((c) => c.offset + c.length),
      );
    }
  });

  it('keeps every chunk within [min, max] except a shorter last one, on any content', () => {
    const random = seededBytes('bounds', 2 * MiB);
    const zeros = new Uint8Array(2 * MiB);
    const pattern = Buffer.alloc(2 * MiB, 'an office document, repeated; ');
    const text = Buffer.from(
      Array.from({ length: 40_000 }, (_, i) => `line ${i}: budget ${(i * 7919) % 1000}\n`).join(''),
    );
    for (const options of [{}, SMALL, { minSize: 64, avgSize: 256, maxSize: 300, normalization: 0 }]) {
      for (const input of [
        random,
        zeros,
        pattern,
        text,
        random.subarray(0, 100_000),
        random.subarray(0, 5),
      ]) {
        assertWellFormed(input, chunkBuffer(input, options), options);
      }
    }
    // Zeros have no cut point (their hash settles on a value no mask matches), so every chunk is cut at maxSize.
    for (const options of [{}, SMALL]) {
      const max = options.maxSize ?? DEFAULT_CHUNKER_OPTIONS.maxSize;
      assert.deepEqual(
        cutPoints(zeros, options),
        Array.from({ length: zeros.length / max }, (_, i) => (i + 1) * max),
      );
    }
  });

  it('gives no chunk for no bytes, and one chunk for fewer than minSize', async () => {
    assert.deepEqual(chunkBuffer(new Uint8Array(0)), []);
    const chunker = new Chunker();
    assert.deepEqual(chunker.push(new Uint8Array(0)), []);
    assert.deepEqual(chunker.end(), []);
    const none: Chunk[] = [];
    for await (const c of chunkStream([new Uint8Array(0), new Uint8Array(0)])) none.push(c);
    assert.deepEqual(none, []);
    assert.deepEqual(cutPoints(new Uint8Array(0)), []);

    for (const size of [1, 1000, DEFAULT_CHUNKER_OPTIONS.minSize - 1, DEFAULT_CHUNKER_OPTIONS.minSize]) {
      const input = seededBytes(`small ${size}`, size);
      const chunks = chunkBuffer(input);
      assert.equal(chunks.length, 1, `${size} bytes`);
      assert.deepEqual(summary(chunks), [
        { offset: 0, length: size, hash: createHash('sha256').update(input).digest('hex') },
      ]);
    }
  });

  it('starts a new stream at offset 0 after end()', () => {
    const a = seededBytes('first', 300 * KiB);
    const b = seededBytes('second', 300 * KiB);
    const chunker = new Chunker(SMALL);
    chunker.push(a.subarray(0, 1234));
    chunker.end();
    const again = [...chunker.push(b), ...chunker.end()];
    assert.deepEqual(summary(again), summary(chunkBuffer(b, SMALL)));
  });

  it('stops a stream when its signal aborts, and refuses text', async () => {
    const controller = new AbortController();
    const seen: Chunk[] = [];
    const source = randomPieces(seededBytes('abort', MiB), 5);
    await assert.rejects(async () => {
      for await (const c of chunkStream(source, { ...SMALL, signal: controller.signal })) {
        seen.push(c);
        if (seen.length === 3) controller.abort(new Error('stopped by the test'));
      }
    }, /stopped by the test/);
    assert.equal(seen.length, 3, 'no chunk after the abort');
    await assert.rejects(async () => {
      for await (const _ of chunkStream(Readable.from(['text'], { objectMode: true }) as never)) void _;
    }, TypeError);
  });
});

describe('cut points after an edit', () => {
  /** The chunks of `before` and `after` that are not shared, given that the edit is at `at` and shifts what follows by `shift`. */
  function compare(before: Chunk[], after: Chunk[], at: number, shift: number) {
    let prefix = 0;
    while (prefix < before.length && before[prefix]?.hash === after[prefix]?.hash) prefix++;
    let suffix = 0;
    while (
      suffix < Math.min(before.length, after.length) - prefix &&
      before[before.length - 1 - suffix]?.hash === after[after.length - 1 - suffix]?.hash
    )
      suffix++;
    // Every chunk that ends before the edit is untouched; every chunk after the shared tail starts is shifted, not changed.
    const untouched = before.filter((c) => c.offset + c.length <= at).length;
    assert.ok(prefix >= untouched, `chunks before the edit kept: ${prefix} of ${untouched}`);
    for (let k = 0; k < suffix; k++) {
      const old = before[before.length - 1 - k] as Chunk;
      assert.equal(after[after.length - 1 - k]?.offset, old.offset + shift);
    }
    return { changedAfter: after.length - prefix - suffix, changedBefore: before.length - prefix - suffix };
  }

  /** Each edit: its name, what it does at `at`, how far it moves what follows, and how many new bytes it leaves at `at`. */
  const edits: Array<[string, (input: Buffer, at: number) => Buffer, number, number]> = [
    [
      'an insertion',
      (b, at) => Buffer.concat([b.subarray(0, at), Buffer.from('INSERTED'), b.subarray(at)]),
      8,
      8,
    ],
    ['a deletion', (b, at) => Buffer.concat([b.subarray(0, at), b.subarray(at + 8)]), -8, 0],
    [
      'an overwrite',
      (b, at) => Buffer.concat([b.subarray(0, at), Buffer.from('OVERWRIT'), b.subarray(at + 8)]),
      0,
      8,
    ],
  ];

  for (const [name, edit, shift] of edits) {
    it(`re-synchronises within a few chunks after ${name} in the middle of 4 MiB`, () => {
      const input = seededBytes(`edit ${name}`, 4 * MiB);
      const at = 2 * MiB + 12_345;
      const before = chunkBuffer(input);
      const { changedAfter, changedBefore } = compare(before, chunkBuffer(edit(input, at)), at, shift);
      assert.ok(changedAfter >= 1 && changedAfter <= 3, `${changedAfter} new chunks`);
      assert.ok(changedBefore >= 1 && changedBefore <= 3, `${changedBefore} old chunks replaced`);
    });
  }

  it('re-synchronises after each of 60 edits at random places in 8 MiB', () => {
    const input = seededBytes('many edits', 8 * MiB);
    const before = chunkSpans(cutPoints(input));
    const next = seededInts(60);
    for (let k = 0; k < 60; k++) {
      const [name, edit, shift, written] = edits[k % 3] as (typeof edits)[number];
      const at = next(input.length - 16);
      // A chunk of the edited file is shared if it lies wholly before the edit, or
      // wholly after the bytes the edit wrote and, moved back by the shift, is a
      // chunk of the original.
      const fresh = chunkSpans(cutPoints(edit(input, at))).filter(
        ([start, end]) =>
          !(end <= at
            ? before.has(`${start}-${end}`)
            : start >= at + written && before.has(`${start - shift}-${end - shift}`)),
      );
      assert.ok(fresh.length >= 1 && fresh.length <= 3, `${name} at ${at}: ${fresh.length} new chunks`);
    }
  });
});

/** The `[start, end]` of each chunk given its end offsets, iterable and, as `start-end` strings, a set. */
function chunkSpans(ends: number[]): Array<[number, number]> & { has(span: string): boolean } {
  const spans = ends.map((end, i): [number, number] => [ends[i - 1] ?? 0, end]);
  const keys = new Set(spans.map(([start, end]) => `${start}-${end}`));
  return Object.assign(spans, { has: (span: string) => keys.has(span) });
}

describe('the regression vector', () => {
  // 1 MiB of seededBytes('trosyn-sync chunker regression vector'). These numbers are
  // the chunk boundaries every device has ever computed for that input: if this test
  // fails, the change breaks deduplication against every chunk already stored.
  const input = seededBytes('trosyn-sync chunker regression vector', MiB);

  it('keeps the default options, which are part of where every file is cut', () => {
    assert.deepEqual(DEFAULT_CHUNKER_OPTIONS, {
      minSize: 48 * KiB,
      avgSize: 64 * KiB,
      maxSize: 256 * KiB,
      normalization: 2,
    });
  });

  it('cuts a fixed 1 MiB input at fixed points with the default options', () => {
    assert.equal(
      createHash('sha256').update(input).digest('hex').slice(0, 16),
      '76ee58af30e80df3',
      'the input itself (AES-128-CTR keystream) is unchanged',
    );
    assert.deepEqual(
      cutPoints(input),
      [
        77278, 151999, 234819, 307477, 361796, 435963, 529723, 614074, 684659, 764838, 854748, 935372,
        1011410, 1048576,
      ],
    );
  });

  it('cuts it at fixed points with small chunks too', () => {
    const cuts = cutPoints(input, SMALL);
    assert.equal(cuts.length, 894);
    assert.deepEqual(
      cuts.slice(0, 12),
      [1278, 1924, 3109, 4528, 5976, 7082, 8640, 10025, 11545, 12721, 13777, 14829],
    );
    assert.equal(
      createHash('sha256').update(cuts.join(',')).digest('hex'),
      '3a03f1fb2bbe645ebfc4492470822abb9e265f1b076278c229c6f0322a882879',
    );
  });
});

describe('chunker options', () => {
  it('refuses sizes out of range or out of order, naming the option', () => {
    const bad: Array<[ChunkerOptions, string]> = [
      [{ minSize: 63 }, 'minSize'],
      [{ minSize: 1000.5 }, 'minSize'],
      [{ minSize: Number.NaN }, 'minSize'],
      [{ avgSize: 3000 }, 'avgSize'],
      [{ avgSize: 128, minSize: 64 }, 'avgSize'],
      [{ avgSize: 32 * MiB, maxSize: 64 * MiB }, 'avgSize'],
      [{ maxSize: 65 * MiB }, 'maxSize'],
      [{ minSize: 64 * KiB }, 'minSize'],
      [{ maxSize: 64 * KiB }, 'maxSize'],
      [{ normalization: 4 }, 'normalization'],
      [{ normalization: -1 }, 'normalization'],
      [{ normalization: 1.5 }, 'normalization'],
    ];
    for (const [options, option] of bad) {
      assert.throws(
        () => new Chunker(options),
        (err: unknown) =>
          err instanceof ChunkerOptionsError &&
          isTrosynError(err, 'INVALID_CHUNKER_OPTIONS') &&
          err.details?.option === option &&
          err.message.includes(option),
        JSON.stringify(options),
      );
    }
  });

  it('takes the defaults for options left out or undefined, and any valid sizes', () => {
    const input = seededBytes('defaults', 600 * KiB);
    assert.deepEqual(cutPoints(input, { minSize: undefined }), cutPoints(input));
    assert.deepEqual(cutPoints(input, { ...DEFAULT_CHUNKER_OPTIONS }), cutPoints(input));
    for (const options of [
      { minSize: 64, avgSize: 256, maxSize: 257, normalization: 3 },
      { minSize: MiB, avgSize: 16 * MiB, maxSize: 64 * MiB, normalization: 0 },
    ]) {
      assertWellFormed(input, chunkBuffer(input, options), options);
    }
  });
});
