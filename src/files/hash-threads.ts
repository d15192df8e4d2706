/**
 * Two hashing threads for a large put: one computes the SHA-256 of the whole
 * content, the other the SHA-256 of each chunk, while the calling thread reads the
 * bytes and finds where chunks end. The three passes over the bytes (cut points,
 * chunk hashes, whole hash) cost about the same; on the calling thread alone they
 * are the whole of a put's time, spread over threads they overlap.
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
/** The threads end after this long without a put (ms). */
const IDLE_MS = 10_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const slots = workerData.slots.map((s) => Buffer.from(s));
const role = workerData.role;
let whole;
let chunk;
let size = 0;
parentPort.on('message', (m) => {
  if (m.type === 'begin') {
    whole = role === 'whole' ? createHash('sha256') : undefined;
    chunk = role === 'chunks' ? createHash('sha256') : undefined;
    size = 0;
    return;
  }
  if (m.type === 'piece') {
    const piece = slots[m.slot].subarray(0, m.length);
    size += m.length;
    const hashes = [];
    if (whole) whole.update(piece);
    if (chunk) {
      let from = 0;
      for (const cut of m.cuts) {
        chunk.update(piece.subarray(from, cut));
        hashes.push(chunk.digest('hex'));
        chunk = createHash('sha256');
        from = cut;
      }
      if (from < m.length) chunk.update(piece.subarray(from));
    }
    parentPort.postMessage({ type: 'piece', seq: m.seq, hashes });
    return;
  }
  if (m.type === 'end') {
    const out = { type: 'end', size };
    if (whole) out.sha256 = whole.digest('hex');
    if (chunk && m.last) out.last = chunk.digest('hex');
    whole = chunk = undefined;
    parentPort.postMessage(out);
  }
});
`;

type Role = 'whole' | 'chunks';

interface PieceReply {
  type: 'piece';
  seq: number;
  hashes: string[];
}
interface EndReply {
  type: 'end';
  size: number;
  sha256?: string;
  last?: string;
}
type Reply = PieceReply | EndReply;

/** One hashing thread and the replies it owes, in the order it owes them. */
class HashThread {
  readonly worker: Worker;
  private readonly owed: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(role: Role, slots: SharedArrayBuffer[]) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { role, slots } });
    this.worker.on('message', (reply: Reply) => this.owed.shift()?.resolve(reply));
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

  tell(message: { type: 'begin' }): void {
    this.worker.postMessage(message);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const o of this.owed.splice(0)) o.reject(this.failure);
  }
}

/** What the threads give back for one piece: the hashes of the chunks it ends. */
export interface HashedPiece {
  hashes: string[];
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
   * Hashes the first `length` bytes of a filled slot, in order after every slot
   * submitted before it; `cuts` are where chunks end within it (ascending, at most
   * `length`). Resolves with the hashes of the chunks those cuts end.
   */
  submit(index: number, length: number, cuts: number[]): Promise<HashedPiece>;
  /** The caller is done with a slot's bytes: it is refilled once the threads are too. */
  release(index: number): void;
  /** Ends the content; `last` when bytes after the last cut make one more chunk. */
  end(last: boolean): Promise<HashedWhole>;
  /** Gives the threads back (after end, or to abandon the put). */
  close(): void;
}

/** The threads and their slots, started when first needed. */
class HashThreads {
  private threads: { whole: HashThread; chunks: HashThread } | undefined;
  private readonly slots = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_BYTES));
  private busy = false;
  private idle: NodeJS.Timeout | undefined;
  /** Puts that have used the threads, and times the threads were started. */
  runs = 0;
  starts = 0;

  /** Takes the threads for one put, or undefined when another put has them. */
  begin(): HashRun | undefined {
    if (this.busy) return undefined;
    clearTimeout(this.idle);
    if (!this.threads || this.threads.whole.failed || this.threads.chunks.failed) {
      this.stop();
      this.threads = {
        whole: new HashThread('whole', this.slots),
        chunks: new HashThread('chunks', this.slots),
      };
      this.starts++;
    }
    this.busy = true;
    this.runs++;
    const { whole, chunks } = this.threads;
    whole.worker.ref();
    chunks.worker.ref();
    whole.tell({ type: 'begin' });
    chunks.tell({ type: 'begin' });
    return this.run(whole, chunks);
  }

  private run(whole: HashThread, chunks: HashThread): HashRun {
    const views = this.slots.map((s) => Buffer.from(s));
    /** Holds on each slot: the caller's, and one per thread while it hashes the slot. */
    const holds = new Array<number>(SLOTS).fill(0);
    const free: number[] = views.map((_, i) => i);
    const waiting: ((index: number) => void)[] = [];
    let seq = 0;
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
      submit: async (index, length, cuts) => {
        (holds[index] as number) += 2;
        const message = { type: 'piece' as const, seq: seq++, slot: index, length, cuts };
        const done = [whole.ask(message), chunks.ask(message)].map((p) =>
          p.finally(() => {
            if (!closed) drop(index);
          }),
        );
        const [, reply] = await Promise.all(done);
        return { hashes: (reply as PieceReply).hashes };
      },
      release: (index) => drop(index),
      end: async (last) => {
        const [w, c] = (await Promise.all([
          whole.ask({ type: 'end', last: false } as { type: 'end' }),
          chunks.ask({ type: 'end', last } as { type: 'end' }),
        ])) as [EndReply, EndReply];
        ended = true;
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

/** The process's hashing threads for one put, or undefined while another put has them. */
export function beginHashRun(): HashRun | undefined {
  shared ??= new HashThreads();
  return shared.begin();
}

/** How many puts have used the hashing threads, and how often they were started: for tests. */
export function hashThreadUse(): { runs: number; starts: number } {
  return { runs: shared?.runs ?? 0, starts: shared?.starts ?? 0 };
}
