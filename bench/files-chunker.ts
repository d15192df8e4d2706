/**
 * The chunker, measured on this machine in one run (`npm run bench -- chunker`):
 *
 * - throughput per core of chunking plus SHA-256 of every chunk, against plain
 *   SHA-256 (node:crypto) of the same bytes: the goal is at least half. Beside it,
 *   finding the cut points alone, and chunking a stream pushed in 64 KiB pieces (a
 *   file's read stream by default) and in 1 MiB pieces;
 * - the scan itself against the alternatives it was chosen over, on the same bytes
 *   and giving the same hash: the 2020 paper's "two bytes at a time", and BigInt;
 * - for each candidate (min, avg, max, normalization): the chunk sizes (mean, spread,
 *   how many were cut at max) and throughput on a 64 MiB random file, and the bytes
 *   of chunks that differ after inserting 1 MiB at 37% and 1,000,000 bytes at 90% of
 *   it, against the bytes inserted. The defaults are chosen from these figures.
 *
 * Rounds alternate between the figure and its baseline; medians are compared. Times
 * are the thread's time on a CPU, not wall time, so that other processes on a
 * shared machine do not count. MB = 10^6 bytes, MiB = 2^20 bytes.
 */
import { createCipheriv, createHash } from 'node:crypto';
import {
  Chunker,
  type ChunkerOptions,
  chunkBuffer,
  cutPoints,
  DEFAULT_CHUNKER_OPTIONS,
} from '../src/files/chunker.js';
import { findCut, gearMask, newGearState } from '../src/files/gear.js';
import { bigintScan, scanTwoBytesAtATime } from './files-chunker-kernels.js';
import { median, round, sourceVersion } from './common.js';
import { timed } from './proc.js';

const QUICK = process.argv.includes('--quick');
const KiB = 1024;
const MiB = 1024 * KiB;
const FILE_BYTES = (QUICK ? 16 : 64) * MiB;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5));
const BIGINT_BYTES = 4 * MiB;
const TARGET = 0.5;
const DEDUPE_GOAL = 2 * MiB;
/** Small insertions (1 to 100 bytes) at random places in the first SMALL_EDIT_SPAN bytes. */
const SMALL_EDITS = QUICK ? 10 : 30;
const SMALL_EDIT_SPAN = 16 * MiB;

const CANDIDATES: Array<Required<ChunkerOptions>> = [
  { minSize: 8 * KiB, avgSize: 32 * KiB, maxSize: 128 * KiB, normalization: 2 },
  { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 0 },
  { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 1 },
  { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 2 },
  { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 3 },
  { minSize: 32 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 2 },
  { minSize: 32 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 3 },
  { minSize: 48 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 2 },
  { minSize: 48 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB, normalization: 3 },
  { minSize: 32 * KiB, avgSize: 128 * KiB, maxSize: 512 * KiB, normalization: 2 },
  { minSize: 96 * KiB, avgSize: 128 * KiB, maxSize: 512 * KiB, normalization: 3 },
];

export async function run(): Promise<Record<string, unknown>> {
  const file = seededBytes('chunker bench file', FILE_BYTES);
  console.log(`input: ${FILE_BYTES / MiB} MiB of random bytes, ${ROUNDS} rounds, one core`);

  const throughput = measureThroughput(file);
  const kernels = compareKernels(file);
  const candidates = CANDIDATES.map((options) => measureCandidate(file, options));
  printCandidates(candidates);

  return {
    ...sourceVersion(),
    fileBytes: FILE_BYTES,
    rounds: ROUNDS,
    defaults: DEFAULT_CHUNKER_OPTIONS,
    throughput,
    kernels,
    candidates,
  };
}

/** Chunking + SHA-256 against SHA-256 alone, with the defaults. */
function measureThroughput(file: Buffer) {
  const streamIn = (pieceBytes: number) => () => {
    const chunker = new Chunker();
    for (let at = 0; at < file.length; at += pieceBytes) chunker.push(file.subarray(at, at + pieceBytes));
    chunker.end();
  };
  const runs = {
    sha: () => createHash('sha256').update(file).digest('hex'),
    chunked: () => chunkBuffer(file),
    cutsOnly: () => cutPoints(file),
    streamed64KiB: streamIn(64 * KiB),
    streamed1MiB: streamIn(MiB),
  };
  const ms: Record<keyof typeof runs, number[]> = {
    sha: [],
    chunked: [],
    cutsOnly: [],
    streamed64KiB: [],
    streamed1MiB: [],
  };
  // One round unmeasured, so that no figure includes compiling the code it runs.
  for (const work of Object.values(runs)) work();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, work] of Object.entries(runs)) ms[name as keyof typeof runs].push(timed(work));
  }
  const mbps = (name: keyof typeof runs) => round(FILE_BYTES / 1e3 / median(ms[name]), 0);
  const ratio = (name: keyof typeof runs) => round(median(ms.sha) / median(ms[name]));
  const figures = {
    sha256MBps: mbps('sha'),
    chunkAndHashMBps: mbps('chunked'),
    ratio: ratio('chunked'),
    target: TARGET,
    streamed64KiBPiecesMBps: mbps('streamed64KiB'),
    streamed64KiBPiecesRatio: ratio('streamed64KiB'),
    streamed1MiBPiecesMBps: mbps('streamed1MiB'),
    streamed1MiBPiecesRatio: ratio('streamed1MiB'),
    cutPointsOnlyMBps: mbps('cutsOnly'),
    shaMsPerRound: ms.sha.map(Math.round),
    chunkMsPerRound: ms.chunked.map(Math.round),
  };
  console.log('\nthroughput per core (on-CPU time), default options');
  line('SHA-256 of the whole input', `${figures.sha256MBps} MB/s`, 'baseline 1.00');
  line(
    'chunk + SHA-256 each chunk',
    `${figures.chunkAndHashMBps} MB/s`,
    `${figures.ratio} (goal >= ${TARGET})`,
  );
  line(
    '  the same, pushed in 64 KiB pieces',
    `${figures.streamed64KiBPiecesMBps} MB/s`,
    ratio('streamed64KiB'),
  );
  line('  the same, pushed in 1 MiB pieces', `${figures.streamed1MiBPiecesMBps} MB/s`, ratio('streamed1MiB'));
  line('  cut points alone, no hashing', `${figures.cutPointsOnlyMBps} MB/s`, ratio('cutsOnly'));
  return figures;
}

/**
 * The scan as shipped against the 2020 "two bytes at a time" form and against
 * BigInt, each run over the same bytes with a mask that never matches here, so each
 * hashes every byte; all must end with the same hash.
 */
function compareKernels(file: Buffer) {
  const mask = gearMask(30);
  const shipped: number[] = [];
  const pairs: number[] = [];
  let shippedFp = 0n;
  let pairsFp = 0n;
  const words = new Int32Array(file.buffer, file.byteOffset, file.length >>> 2);
  for (let r = 0; r < ROUNDS; r++) {
    const state = newGearState();
    shipped.push(timed(() => assertNoCut(findCut(file, 0, words.length * 4, mask, state))));
    shippedFp = ((BigInt(state[0] as number) & 0xffffffffn) << 30n) | BigInt(state[1] as number);
    const pairState = new Int32Array(2);
    pairs.push(timed(() => assertNoCut(scanTwoBytesAtATime(words, mask, pairState))));
    pairsFp = ((BigInt(pairState[0] as number) & 0xffffffffn) << 29n) | BigInt(pairState[1] as number);
  }
  if ((shippedFp & ((1n << 61n) - 1n)) !== pairsFp) throw new Error('the two-byte scan hashed differently');

  const sample = file.subarray(0, BIGINT_BYTES);
  const sampleState = newGearState();
  assertNoCut(findCut(sample, 0, sample.length, mask, sampleState));
  let bigFp = 0n;
  const bigMs = timed(() => (bigFp = bigintScan(sample)));
  const expected =
    ((BigInt(sampleState[0] as number) & 0xffffffffn) << 30n) | BigInt(sampleState[1] as number);
  if ((bigFp & ((1n << 62n) - 1n)) !== expected) throw new Error('the BigInt scan hashed differently');

  const mbps = (bytes: number, ms: number) => round(bytes / 1e3 / ms, 0);
  const figures = {
    shippedMBps: mbps(words.length * 4, median(shipped)),
    twoBytesAtATimeMBps: mbps(words.length * 4, median(pairs)),
    bigintMBps: mbps(BIGINT_BYTES, bigMs),
  };
  console.log('\nthe gear scan alone, every byte hashed');
  line('one byte a step, 4 bytes a load', `${figures.shippedMBps} MB/s`, 'baseline 1.00 (shipped)');
  line(
    'two bytes a step (2020 paper)',
    `${figures.twoBytesAtATimeMBps} MB/s`,
    round(median(shipped) / median(pairs)),
  );
  line(
    'BigInt, one byte a step',
    `${figures.bigintMBps} MB/s`,
    round(figures.bigintMBps / figures.shippedMBps, 4),
  );
  return figures;
}

interface CandidateFigures {
  options: Required<ChunkerOptions>;
  isDefault: boolean;
  chunks: number;
  meanBytes: number;
  stdDevBytes: number;
  p5Bytes: number;
  p95Bytes: number;
  cutAtMaxShare: number;
  chunkAndHashMBps: number;
  ratioToSha256: number;
  insert1MiBAt37: { insertedBytes: number; newChunkBytes: number; newChunks: number };
  insert1e6At90: { insertedBytes: number; newChunkBytes: number; newChunks: number };
  smallEdits: { edits: number; meanNewChunkBytes: number; mostNewChunks: number };
}

function measureCandidate(file: Buffer, options: Required<ChunkerOptions>): CandidateFigures {
  const sha: number[] = [];
  const chunked: number[] = [];
  let original: ReturnType<typeof chunkBuffer> = [];
  chunked.push(timed(() => (original = chunkBuffer(file, options))));
  sha.push(timed(() => createHash('sha256').update(file).digest('hex')));
  const known = new Set(original.map((c) => c.hash));
  const insertion = (at: number, bytes: number) => {
    const inserted = seededBytes(`inserted ${bytes}`, bytes);
    const edited = Buffer.concat([file.subarray(0, at), inserted, file.subarray(at)]);
    let chunks: ReturnType<typeof chunkBuffer> = [];
    chunked.push(timed(() => (chunks = chunkBuffer(edited, options))));
    sha.push(timed(() => createHash('sha256').update(edited).digest('hex')));
    const fresh = chunks.filter((c) => !known.has(c.hash));
    return {
      insertedBytes: bytes,
      newChunkBytes: fresh.reduce((n, c) => n + c.length, 0),
      newChunks: fresh.length,
    };
  };
  const insert1MiBAt37 = insertion(Math.floor(file.length * 0.37), MiB);
  const insert1e6At90 = insertion(Math.floor(file.length * 0.9), 1_000_000);

  const sizes = original.slice(0, -1).map((c) => c.length);
  const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  const sorted = [...sizes].sort((a, b) => a - b);
  return {
    options,
    isDefault: sameOptions(options, DEFAULT_CHUNKER_OPTIONS),
    chunks: original.length,
    meanBytes: Math.round(mean),
    stdDevBytes: Math.round(Math.sqrt(sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / sizes.length)),
    p5Bytes: sorted[Math.floor(sorted.length * 0.05)] as number,
    p95Bytes: sorted[Math.floor(sorted.length * 0.95)] as number,
    cutAtMaxShare: round(sizes.filter((s) => s === options.maxSize).length / sizes.length),
    chunkAndHashMBps: round((file.length + MiB) / 1e3 / median(chunked), 0),
    ratioToSha256: round(median(sha) / median(chunked)),
    insert1MiBAt37,
    insert1e6At90,
    smallEdits: measureSmallEdits(file.subarray(0, SMALL_EDIT_SPAN), options),
  };
}

/**
 * What a typical small edit costs: the bytes of the chunks that are new after
 * inserting 1 to 100 bytes at a random place. About one chunk when the cut points
 * re-synchronise at once; more when an edit sets off a run of moved cuts.
 */
function measureSmallEdits(span: Buffer, options: Required<ChunkerOptions>) {
  const spans = (ends: number[]) => ends.map((end, i): [number, number] => [ends[i - 1] ?? 0, end]);
  const known = new Set(spans(cutPoints(span, options)).map(([a, b]) => `${a}-${b}`));
  const next = seededInts(SMALL_EDITS);
  let newBytes = 0;
  let mostNewChunks = 0;
  for (let k = 0; k < SMALL_EDITS; k++) {
    const at = next(span.length);
    const inserted = seededBytes(`small edit ${k}`, 1 + next(100));
    const edited = Buffer.concat([span.subarray(0, at), inserted, span.subarray(at)]);
    const shift = inserted.length;
    const fresh = spans(cutPoints(edited, options)).filter(([a, b]) =>
      b <= at ? !known.has(`${a}-${b}`) : a < at + shift || !known.has(`${a - shift}-${b - shift}`),
    );
    newBytes += fresh.reduce((n, [a, b]) => n + b - a, 0);
    mostNewChunks = Math.max(mostNewChunks, fresh.length);
  }
  return { edits: SMALL_EDITS, meanNewChunkBytes: Math.round(newBytes / SMALL_EDITS), mostNewChunks };
}

function printCandidates(candidates: CandidateFigures[]) {
  const kib = (n: number) => `${Math.round(n / 1024)}K`;
  console.log(
    '\ncandidates on the same input; "new" = bytes of chunks the original lacks, beside the bytes inserted',
  );
  console.log(
    [
      'min/avg/max   norm',
      'chunks',
      'mean',
      'sd',
      'p5-p95',
      'at max',
      'MB/s (vs SHA)',
      'new, 1 MiB @37%',
      'new, 1e6 B @90%',
      'small edit: new (most chunks)',
    ].join(' | '),
  );
  for (const c of candidates) {
    const { minSize, avgSize, maxSize, normalization } = c.options;
    const edit = (e: CandidateFigures['insert1MiBAt37']) =>
      `${e.newChunkBytes.toLocaleString()} (${round(e.newChunkBytes / e.insertedBytes, 2)}x, ${e.newChunks} chunks)`;
    console.log(
      [
        `${kib(minSize)}/${kib(avgSize)}/${kib(maxSize)}`.padEnd(13) +
          ` ${normalization}${c.isDefault ? '*' : ' '}  `,
        String(c.chunks).padStart(6),
        kib(c.meanBytes).padStart(4),
        kib(c.stdDevBytes).padStart(4),
        `${kib(c.p5Bytes)}-${kib(c.p95Bytes)}`.padStart(9),
        `${Math.round(c.cutAtMaxShare * 100)}%`.padStart(6),
        `${c.chunkAndHashMBps} (${c.ratioToSha256})`.padStart(13),
        edit(c.insert1MiBAt37),
        edit(c.insert1e6At90),
        `${kib(c.smallEdits.meanNewChunkBytes)} (${c.smallEdits.mostNewChunks})`,
      ].join(' | '),
    );
  }
  console.log(`* the defaults; goal for each insertion: at most ${DEDUPE_GOAL / MiB} MiB of new chunks`);
  console.log(
    `small edit: mean bytes of new chunks after inserting 1-100 bytes (${SMALL_EDITS} places in ${SMALL_EDIT_SPAN / MiB} MiB), and the most new chunks one edit made`,
  );
}

// --- helpers ----------------------------------------------------------------------

function assertNoCut(end: number): void {
  if (end >= 0) throw new Error(`the bench input matched the never-matching mask at ${end}`);
}

/** A small seeded generator of integers in [0, n). */
function seededInts(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

/** `length` pseudo-random bytes fixed by `seed`: the AES-128-CTR keystream of a key derived from it. */
function seededBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function sameOptions(a: Required<ChunkerOptions>, b: Required<ChunkerOptions>): boolean {
  return (
    a.minSize === b.minSize &&
    a.avgSize === b.avgSize &&
    a.maxSize === b.maxSize &&
    a.normalization === b.normalization
  );
}

function line(label: string, value: string, versus: string | number) {
  console.log(`  ${label.padEnd(34)} ${value.padStart(12)}   ${versus}`);
}
