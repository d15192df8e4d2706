/**
 * Two threads for a large put: one computes the SHA-256 of the whole content, the
 * other finds where chunks end (the chunker) and the SHA-256 of each chunk, while
 * the calling thread reads the bytes and stores the chunks. The passes over the
 * bytes (cut points, chunk hashes, whole hash) are most of a put's time; spread
 * over threads they overlap. A chunk that equals a chunk of the file's current
 * version (most of them, after an edit) is compared with it in place instead of
 * hashed, which costs a fraction of SHA-256. The chunk compared with is the one
 * after the last found equal, when its length fits (an edit leaves the chunks in
 * order), else the first of the same length. Where a chunk starts, the bytes of
 * the one expected next are compared before the chunker looks for a cut: equal,
 * they are a chunk where that one ended (the chunker decides from a chunk's own
 * bytes only), and the chunker never passes over them. An edit's put then runs the
 * chunker over little more than the edited bytes. (A version cut with other chunker
 * settings lends its cuts to the stretches left unchanged: still a true chunk list
 * of the content, each chunk compared byte for byte.)
 *
 * The bytes are not copied to the threads: the calling thread fills slots of
 * shared memory (a ring of SLOTS pieces of SLOT_BYTES), and the threads read the
 * slots in place. A slot is refilled only once both threads are done with it and
 * the caller has released it.
 *
 * Only one put uses the threads at a time (a second put at once hashes on its own
 * thread, as a small put always does). The threads start with the first large put
 * and end after IDLE_MS without one, so an agent that puts no large file holds none.
 */
import { Worker } from 'node:worker_threads';

/** Bytes of one slot: a piece of the content the threads hash at a time. */
export const SLOT_BYTES = 1 << 20;
/** Slots in the ring: how far the reading may run ahead of the hashing. */
export const SLOTS = 8;
/**
 * Comparing a chunk with a stored one reads the stored bytes: from the page cache at
 * several GB/s, from a disk perhaps more slowly than hashing the new bytes would
 * take (SHA-256 runs at 1.5-2 GB/s a core). Once a put has read `judgeAfterBytes`
 * at less than `minReadBytesPerNs` (0.5: 500 MB/s, wall time, low enough that a
 * thread descheduled now and then still passes), the rest of it is hashed.
 */
export const COMPARE_READS = { judgeAfterBytes: 32 * 1024 * 1024, minReadBytesPerNs: 0.5 };

/** The threads end after this long without a put (ms). */
const IDLE_MS = 10_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
const slots = workerData.slots.map((s) => Buffer.from(s));
const role = workerData.role;
let CutFinder;
let whole;
let chunk;
let cuts;
let like;
// The likely chunk after the last one found equal: the first to compare with.
let nextLike = 0;
// A likely chunk just found not to be the one starting here: not compared again.
let notHere;
// Bytes passed to the chunker (the rest were chunks found where they were expected).
let scanned = 0;
// Views of the bytes of the chunk being cut, not hashed yet (see piece).
let open = [];
let size = 0;
// Files of stored chunks compared in place, open for this put.
const files = new Map();
let scratch = Buffer.alloc(0);
let readNs = 0;
let readBytes = 0;
let slowReads = false;
function closeFiles() {
  for (const fd of files.values()) if (fd !== undefined) closeSync(fd);
  files.clear();
}
// True when the file at 'path' holds the chunk made of 'parts' (its bytes in one
// piece, or two when it spans pieces) at 'offset'; false when it does not, or cannot
// be read (the file removed by a compaction, say): then the chunk is hashed.
function storedEqual(path, offset, parts, length) {
  let fd = files.get(path);
  if (!files.has(path)) {
    try { fd = openSync(path, 'r'); } catch { fd = undefined; }
    files.set(path, fd);
  }
  if (fd === undefined) return false;
  if (scratch.length < length) scratch = Buffer.alloc(length);
  const t0 = process.hrtime.bigint();
  try {
    if (readSync(fd, scratch, 0, length, offset) !== length) return false;
  } catch {
    return false;
  }
  // Stored bytes not in the page cache come from the disk, which may be slower than
  // hashing the new ones: once the reads have been, comparing stops for this put.
  readNs += Number(process.hrtime.bigint() - t0);
  readBytes += length;
  if (readBytes >= workerData.judgeAfterBytes && readBytes < readNs * workerData.minReadBytesPerNs)
    slowReads = true;
  let at = 0;
  for (const part of parts) {
    if (!scratch.subarray(at, at + part.length).equals(part)) return false;
    at += part.length;
  }
  return true;
}
// The likely version's chunks by length (the first of each length): index into the table.
function likeTable(t) {
  const byLength = new Map();
  for (let i = t.lengths.length - 1; i >= 0; i--) byLength.set(t.lengths[i], i);
  return { ...t, byLength, hashes: Buffer.from(t.hashes) };
}
function begin(m) {
  size = 0;
  closeFiles();
  if (role === 'whole') {
    whole = createHash('sha256');
    return;
  }
  chunk = createHash('sha256');
  cuts = new CutFinder();
  open = [];
  like = m.like ? likeTable(m.like) : undefined;
  nextLike = 0;
  notHere = undefined;
  scanned = 0;
  readNs = readBytes = 0;
  slowReads = false;
}
function piece(m) {
  const bytes = slots[m.slot].subarray(0, m.length);
  size += m.length;
  if (whole) {
    whole.update(bytes);
    return { type: 'piece', seq: m.seq, ends: [], hashes: [], compared: [] };
  }
  const ends = [];
  const hashes = [];
  const compared = [];
  let from = 0;
  for (;;) {
    // A chunk starting here that holds the bytes of the likely chunk expected next is
    // cut where that one was: the chunker starts afresh at each cut and decides from
    // the chunk's own bytes only, so on the same bytes it cuts at the same place.
    const k = expected(bytes.length - from);
    if (k !== undefined) {
      const length = like.lengths[k];
      if (likeEqual(k, [bytes.subarray(from, from + length)], length)) {
        hashes.push(like.hashes.toString('hex', k * 32, k * 32 + 32));
        compared.push(true);
        from += length;
        ends.push(from);
        continue;
      }
      notHere = k;
    }
    const end = cuts.next(bytes, from);
    scanned += (end < 0 ? bytes.length : end) - from;
    if (end < 0) break;
    open.push(bytes.subarray(from, end));
    const [hash, equal] = close();
    hashes.push(hash);
    compared.push(equal);
    ends.push(end);
    from = end;
  }
  // The rest begins the next chunk: kept as a view, its slot held by the caller
  // until that chunk is stored, so it can still be compared (or hashed) then.
  if (from < m.length) open.push(bytes.subarray(from));
  return { type: 'piece', seq: m.seq, ends, hashes, compared, slowReads };
}
// The likely chunk expected to start here, when a chunk starts here and that one
// lies within the 'left' bytes of this piece: the one after the last found equal,
// unless it ended its version (cut there by the end, not by the chunker) or was
// just found not to be this one.
function expected(left) {
  if (!like || slowReads || cuts.pending > 0 || open.length > 0) return undefined;
  const k = nextLike;
  if (k >= like.lengths.length || k === like.eof || k === notHere || like.lengths[k] > left) return undefined;
  return k;
}
// The likely chunk 'i' if it holds the bytes of 'parts' ('length' of them): then it
// is the one the next chunk is compared with first.
function likeEqual(i, parts, length) {
  if (i === undefined || like.lengths[i] !== length) return false;
  if (!storedEqual(like.packs[like.packOf[i]], like.offsets[i], parts, length)) return false;
  nextLike = i + 1;
  return true;
}
// The hash of the chunk made of the open parts, and whether it was found by
// comparing them with a stored chunk of the likely version rather than by hashing.
function close() {
  const parts = open;
  open = [];
  let length = 0;
  for (const part of parts) length += part.length;
  const skip = notHere;
  notHere = undefined;
  if (like && !slowReads) {
    const next = nextLike < like.lengths.length && nextLike !== skip ? nextLike : undefined;
    const first = like.byLength.get(length);
    const i = likeEqual(next, parts, length)
      ? next
      : first !== next && first !== skip && likeEqual(first, parts, length)
        ? first
        : undefined;
    if (i !== undefined) return [like.hashes.toString('hex', i * 32, i * 32 + 32), true];
  }
  for (const part of parts) chunk.update(part);
  const hash = chunk.digest('hex');
  chunk = createHash('sha256');
  return [hash, false];
}
function end() {
  const out = { type: 'end', size, scanned };
  if (whole) out.sha256 = whole.digest('hex');
  if (chunk && cuts.pending > 0) out.last = close()[0];
  whole = chunk = cuts = like = undefined;
  open = [];
  closeFiles();
  return out;
}
// The chunking thread loads the chunker first, and says whether it could.
async function load() {
  if (role !== 'chunks') return;
  if (workerData.tsx) (await import(workerData.tsx)).register();
  CutFinder = (await import(workerData.chunker)).CutFinder;
}
load().then(
  () => {
    parentPort.postMessage({ type: 'ready' });
    parentPort.on('message', (m) => {
      if (m.type === 'begin') begin(m);
      else parentPort.postMessage(m.type === 'piece' ? piece(m) : end());
    });
  },
  (err) => parentPort.postMessage({ type: 'failed', message: String(err && err.message || err) }),
);
`;

type Role = 'whole' | 'chunks';

interface PieceReply {
  type: 'piece';
  seq: number;
  ends: number[];
  hashes: string[];
  compared: boolean[];
  slowReads: boolean;
}
interface EndReply {
  type: 'end';
  size: number;
  /** Bytes the chunking thread passed to the chunker. */
  scanned?: number;
  sha256?: string;
  last?: string;
}
type Reply = PieceReply | EndReply;

/**
 * Where the chunking thread loads the chunker from: the compiled module beside this
 * one, or, when this runs from the TypeScript sources (the tests, through tsx), the
 * source with tsx registered in the thread first (a worker does not inherit it).
 */
export function chunkerModule(): { chunker: string; tsx?: string } {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return { chunker: new URL('./chunker.js', here).href };
  return { chunker: new URL('./chunker.ts', here).href, tsx: import.meta.resolve('tsx/esm/api') };
}

/** One hashing thread and the replies it owes, in the order it owes them. */
class HashThread {
  readonly worker: Worker;
  private readonly owed: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  /** Settles once the thread is ready; rejects when it could not load the chunker. */
  readonly ready: Promise<void>;

  constructor(
    role: Role,
    slots: SharedArrayBuffer[],
    modules: { chunker: string; tsx?: string },
    reads: typeof COMPARE_READS,
  ) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { role, slots, ...modules, ...reads },
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.once('message', (m: { type: 'ready' } | { type: 'failed'; message: string }) => {
        if (m.type === 'ready') resolve();
        else reject(new Error(`the chunking thread cannot load the chunker: ${m.message}`));
        this.worker.on('message', (reply: Reply) => this.owed.shift()?.resolve(reply));
      });
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`a hashing thread ended (exit code ${code})`)));
    });
    this.ready.catch(() => undefined);
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`a hashing thread ended (exit code ${code})`)));
    this.worker.unref();
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Sends a message and returns its reply (a 'begin' has none). */
  ask(message: object & { type: 'piece' | 'end' }): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      this.owed.push({ resolve, reject });
      this.worker.postMessage(message);
    });
  }

  tell(message: { type: 'begin'; like?: LikelyTable }): void {
    this.worker.postMessage(message);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const o of this.owed.splice(0)) o.reject(this.failure);
  }
}

/** What the threads give back for one piece: the chunks that end in it. */
export interface HashedPiece {
  /** Where each ends in the piece, ascending. */
  ends: number[];
  /** The SHA-256 of each. */
  hashes: string[];
  /**
   * Whether each was found equal, in place, to a stored chunk of the likely version
   * (and given its hash without hashing): a chunk that is stored, unless a
   * collection removed it since.
   */
  compared: boolean[];
}

/**
 * Stored chunks that chunks of the content may equal (those of the file's current
 * version), as columns: the i-th has `lengths[i]` bytes, its SHA-256 at
 * `hashes[32 i]`, and its bytes at `offsets[i]` in the file `packs[packOf[i]]`
 * (ChunkStore.locateList), in the version's order. The chunking thread compares a
 * chunk with the one after the last found equal, or else the first of its length,
 * in place, and gives that hash without hashing when they are equal.
 */
export interface LikelyTable {
  /**
   * The chunk that ended its version (cut there by the end of the content, not by
   * the chunker), if it is in the table: never expected to end where it did.
   */
  eof: number;
  lengths: Uint32Array;
  offsets: Float64Array;
  packOf: Uint32Array;
  packs: string[];
  hashes: Uint8Array;
}

/** The end of a put: the whole content's hash and the last chunk's, if one was open. */
export interface HashedWhole {
  sha256: string;
  size: number;
  last?: string;
}

/** One put's use of the threads: fill a slot, submit it, release it, end. */
export interface HashRun {
  /** A free slot to fill (waits until one is free). */
  slot(): Promise<{ index: number; bytes: Buffer }>;
  /**
   * Cuts and hashes the first `length` bytes of a filled slot, in order after every
   * slot submitted before it. Resolves with the chunks that end in it.
   */
  submit(index: number, length: number): Promise<HashedPiece>;
  /** The caller is done with a slot's bytes: it is refilled once the threads are too. */
  release(index: number): void;
  /** Ends the content (the bytes after the last cut are its last chunk). */
  end(): Promise<HashedWhole>;
  /** Gives the threads back (after end, or to abandon the put). */
  close(): void;
}

/** The threads and their slots, started when first needed. */
export class HashThreads {
  private threads: { whole: HashThread; chunks: HashThread } | undefined;
  /** Why threads cannot be used in this process, once found. */
  unavailable: Error | undefined;
  private readonly slots = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_BYTES));
  private busy = false;
  private idle: NodeJS.Timeout | undefined;
  /** Puts that have used the threads, times the threads were started, and chunks compared rather than hashed. */
  runs = 0;
  starts = 0;
  reused = 0;

  /** Puts that stopped comparing because the stored bytes came too slowly. */
  slowPuts = 0;

  /** Bytes the chunker passed over: the rest were chunks found where the likely version had them. */
  scanned = 0;

  /**
   * `modules`: where the chunking thread loads the chunker from (see chunkerModule);
   * `reads`: when comparing gives way to hashing (COMPARE_READS).
   */
  constructor(
    private readonly modules = chunkerModule(),
    private readonly reads = COMPARE_READS,
  ) {}

  /**
   * Starts the threads now, if none are running, for a put about to begin: they load
   * while the put does its own first work (finding the chunks to compare with).
   */
  warm(): void {
    if (this.busy || this.unavailable) return;
    clearTimeout(this.idle);
    this.startThreads();
    // Left alone, they stop after IDLE_MS, as after a put.
    this.idle = setTimeout(() => this.stop(), IDLE_MS);
    this.idle.unref();
  }

  /** Takes the threads for one put, or undefined when another put has them or they cannot be used. */
  async begin(like?: LikelyTable): Promise<HashRun | undefined> {
    if (this.busy || this.unavailable) return undefined;
    this.busy = true;
    clearTimeout(this.idle);
    this.startThreads();
    const { whole, chunks } = this.threads as { whole: HashThread; chunks: HashThread };
    // Held from here: the process must not end while the put waits for the threads.
    whole.worker.ref();
    chunks.worker.ref();
    try {
      await Promise.all([whole.ready, chunks.ready]);
    } catch (err) {
      // The chunker cannot be loaded in a thread (an application bundled so that the
      // module is not beside this one, say): large puts hash on their own thread.
      this.unavailable = err as Error;
      this.busy = false;
      this.stop();
      process.emitWarning(`large file puts hash on one thread: ${(err as Error).message}`);
      return undefined;
    }
    this.runs++;
    whole.tell({ type: 'begin' });
    chunks.tell({ type: 'begin', ...(like && { like }) });
    return this.run(whole, chunks);
  }

  private startThreads(): void {
    if (this.threads && !this.threads.whole.failed && !this.threads.chunks.failed) return;
    this.stop();
    this.threads = {
      whole: new HashThread('whole', this.slots, this.modules, this.reads),
      chunks: new HashThread('chunks', this.slots, this.modules, this.reads),
    };
    this.starts++;
  }

  private run(whole: HashThread, chunks: HashThread): HashRun {
    const views = this.slots.map((s) => Buffer.from(s));
    /** Holds on each slot: the caller's, and one per thread while it hashes the slot. */
    const holds = new Array<number>(SLOTS).fill(0);
    const free: number[] = views.map((_, i) => i);
    const waiting: ((index: number) => void)[] = [];
    let seq = 0;
    let slow = false;
    let closed = false;
    let ended = false;
    const drop = (index: number) => {
      if (--(holds[index] as number) > 0) return;
      const next = waiting.shift();
      if (next) next(index);
      else free.push(index);
    };
    const take = (index: number) => {
      holds[index] = 1;
      return { index, bytes: views[index] as Buffer };
    };
    return {
      slot: () => {
        const index = free.shift();
        if (index !== undefined) return Promise.resolve(take(index));
        return new Promise((resolve) => waiting.push((i) => resolve(take(i))));
      },
      submit: async (index, length) => {
        (holds[index] as number) += 2;
        const message = { type: 'piece' as const, seq: seq++, slot: index, length };
        const done = [whole.ask(message), chunks.ask(message)].map((p) =>
          p.finally(() => {
            if (!closed) drop(index);
          }),
        );
        const [, reply] = (await Promise.all(done)) as [Reply, PieceReply];
        for (const equal of reply.compared) if (equal) this.reused++;
        if (reply.slowReads && !slow) {
          slow = true;
          this.slowPuts++;
        }
        return { ends: reply.ends, hashes: reply.hashes, compared: reply.compared };
      },
      release: (index) => drop(index),
      end: async () => {
        const [w, c] = (await Promise.all([
          whole.ask({ type: 'end' } as { type: 'end' }),
          chunks.ask({ type: 'end' } as { type: 'end' }),
        ])) as [EndReply, EndReply];
        ended = true;
        this.scanned += c.scanned ?? 0;
        return { sha256: w.sha256 as string, size: w.size, ...(c.last !== undefined && { last: c.last }) };
      },
      close: () => {
        if (closed) return;
        closed = true;
        whole.worker.unref();
        chunks.worker.unref();
        this.busy = false;
        // A put abandoned part-way leaves the threads mid-content: new ones start next time.
        if (!ended) return this.stop();
        this.idle = setTimeout(() => this.stop(), IDLE_MS);
        this.idle.unref();
      },
    };
  }

  private stop(): void {
    if (!this.threads) return;
    void this.threads.whole.worker.terminate();
    void this.threads.chunks.worker.terminate();
    this.threads = undefined;
  }
}

let shared: HashThreads | undefined;

/**
 * The process's hashing threads for one put, or undefined while another put has
 * them; `like`, chunks the content may share, compared rather than hashed.
 */
export function beginHashRun(like?: LikelyTable): Promise<HashRun | undefined> {
  shared ??= new HashThreads();
  return shared.begin(like);
}

/** Starts the process's hashing threads ahead of a put (see HashThreads.warm). */
export function warmHashThreads(): void {
  shared ??= new HashThreads();
  shared.warm();
}

/**
 * How many puts have used the hashing threads, how often they were started, and how
 * many chunks were found equal to a stored one rather than hashed: for tests.
 */
export function hashThreadUse(): { runs: number; starts: number; reused: number; scanned: number } {
  return {
    runs: shared?.runs ?? 0,
    starts: shared?.starts ?? 0,
    reused: shared?.reused ?? 0,
    scanned: shared?.scanned ?? 0,
  };
}
