/**
 * Chunks between two nodes over one connection: each side asks the other for the
 * chunks it lacks (`files.want`, a list of hashes) and gets them as chunk frames,
 * each checked against its hash before it is stored. Asking is answered at once and
 * the chunks follow in the background, so serving never holds up the connection's
 * other messages (two nodes fetching from each other at once cannot wait on each
 * other). See PROTOCOL.md, "File content".
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { isTrosynError, TrosynError } from '../errors.js';
import { type Clock, systemClock, type Timer } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import { Slabs } from '../slabs.js';
import type { ChunkStore } from './chunk-store.js';

/** What the exchange needs of a connection. The transport gives it (chunk-link.ts there). */
export interface ChunkLink {
  request(method: string, params: unknown): Promise<unknown>;
  handle(method: string, handler: (params: unknown) => unknown): void;
  /**
   * Sends a chunk frame whose payload is `head` then `body`. `sent` is called once
   * the link no longer reads `body` (written, or the link gone), so its memory can
   * carry another chunk; maybe never, if the link cannot tell.
   */
  sendChunk(head: Buffer, body?: Buffer, options?: { compress?: boolean; sent?: () => void }): Promise<void>;
  /**
   * Sets the handler of chunk frames. Its payload may lie in memory the link uses
   * again: the handler calls `done` once nothing reads the payload any more.
   */
  onChunk(handler: (payload: Buffer, done: () => void) => Promise<void>): void;
  /** Ends the connection, telling the peer why. */
  close(error: Error): void;
  readonly closed: boolean;
}

/** Hashes one `files.want` may name. */
export const WANT_BATCH = 64;
/** `files.want` requests one side keeps unanswered: about 8 MiB of chunks in flight. */
export const WANT_WINDOW = 2;

/** A fetch gives up when none of the chunks it asked for arrives this long. */
const DEFAULT_STALL_MS = 60_000;

/** Chunks read ahead while one is sent. */
const READ_AHEAD = 16;

/**
 * Chunks sent unchecked that are remembered, to check when the peer reports one
 * damaged: more than the requests it can have unanswered (WANT_WINDOW of WANT_BATCH).
 */
const SERVED_KEPT = WANT_BATCH * WANT_WINDOW * 2;

/** Received chunks being written at once. */
const STORES_IN_FLIGHT = 32;

/**
 * Chunk frames nobody asked for that a link drops before it closes: a peer that
 * sends more is told off with UNEXPECTED_MESSAGE. Frames answering a request this
 * side gave up on (it timed out, say) are expected and not counted.
 */
export const UNSOLICITED_LIMIT = WANT_BATCH;

/** Hashes given up on that are remembered, to know their late frames from unsolicited ones. */
const ABANDONED_KEPT = WANT_BATCH * WANT_WINDOW * 4;

const CHUNK = 0x01;
const ABSENT = 0x02;

const wantParams = z.object({
  hashes: z
    .array(z.string().regex(/^[0-9a-f]{64}$/))
    .min(1)
    .max(WANT_BATCH),
});

/** The peer sent a chunk whose bytes do not hash to its name, or too many nobody asked for. */
export class ChunkRefusedError extends TrosynError {
  constructor(code: 'CHUNK_HASH_MISMATCH' | 'UNEXPECTED_MESSAGE', hash: string) {
    super(
      code,
      code === 'CHUNK_HASH_MISMATCH'
        ? `chunk ${hash.slice(0, 12)} from the peer does not hash to its name; it is fetched again`
        : `the peer sent more than ${UNSOLICITED_LIMIT} chunks that were not asked for (the last ${hash.slice(0, 12)})`,
      { hash },
    );
  }
}

/**
 * Chunks of a file version that the peer it is fetched from does not have (it
 * answered ABSENT): the version stays incomplete and is asked for again later.
 */
export class ContentAbsentError extends TrosynError {
  constructor(name: string, absent: number) {
    super(
      'FILE_CONTENT_ABSENT',
      `the device ${JSON.stringify(name)} is fetched from does not have ${absent} of its chunks yet; they are asked for again later`,
      { name, absent },
    );
  }
}

/** A peer took a `files.want` and then sent none of its chunks for `stallMs`. */
export class FetchStalledError extends TrosynError {
  constructor(stallMs: number, waiting: number) {
    super(
      'FILE_FETCH_STALLED',
      `the peer sent none of the ${waiting} chunks asked for in ${Math.round(stallMs / 1000)} s; they are asked for again later`,
      { stallMs, waiting },
    );
  }
}

/** Options of a {@link ChunkExchange}. */
export interface ChunkExchangeOptions {
  logger?: Logger;
  /** A fetch fails with FILE_FETCH_STALLED when no chunk it asked for arrives this long. Default 60 s. */
  stallMs?: number;
  clock?: Clock;
}

/**
 * Copies of chunks being sent, until the link has written them: slabs every link of
 * the process shares (src/slabs.ts). Chunks up to 256 KiB, the largest by default.
 */
const outgoing = new Slabs(1024 * 1024, 4, 256 * 1024);

/** Stops a lend part-way: the link ended, nothing more is sent. */
class LinkEnded extends Error {}

/** How one fetch ended for each hash asked for. */
export type FetchResult = Map<string, 'stored' | 'absent'>;

interface Waiting {
  resolve(state: 'stored' | 'absent'): void;
  reject(err: Error): void;
}

/**
 * One connection's chunk exchange, both ways: serves the peer's `files.want` from
 * this node's store, and fetches chunks from the peer into it.
 */
export class ChunkExchange {
  private readonly waiting = new Map<string, Waiting[]>();
  private serving: Promise<void> = Promise.resolve();
  private readonly storing = new Set<Promise<void>>();
  /** Why the link ended: every fetch from then on fails with it. */
  private ended: Error | undefined;
  /** Hashes whose fetch gave up before they arrived (its request failed), oldest first. */
  private readonly abandoned = new Set<string>();
  /** Chunks sent unchecked over this link, the last SERVED_KEPT of them (see abort). */
  private readonly served = new Set<string>();
  /** Bytes of chunks received and stored over this link. */
  bytesIn = 0;
  bytesOut = 0;
  /** Chunk frames received that no fetch was waiting for: dropped, never stored. */
  dropped = 0;
  private unsolicited = 0;
  /** When a chunk this side asked for last arrived (or was answered absent). */
  private lastArrival = 0;
  private readonly logger: Logger;
  private readonly stallMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly link: ChunkLink,
    private readonly store: ChunkStore,
    options: ChunkExchangeOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    this.clock = options.clock ?? systemClock;
    link.handle('files.want', (params) => this.onWant(params));
    link.onChunk((payload, done) => this.onChunk(payload, done));
  }

  /**
   * Fetches `hashes` from the peer into the store: each ends `stored` (checked and
   * written) or `absent` (the peer does not have it). At most WANT_WINDOW requests
   * of WANT_BATCH hashes are unanswered at a time.
   */
  async fetch(hashes: readonly string[], onStored?: (hash: string) => void): Promise<FetchResult> {
    const unique = [...new Set(hashes)];
    const result: FetchResult = new Map();
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += WANT_BATCH) batches.push(unique.slice(i, i + WANT_BATCH));
    let next = 0;
    let failed = false;
    const worker = async () => {
      // The first failure (a lost link, a full disk) ends the fetch: no more is asked for.
      while (next < batches.length && !failed) {
        const batch = batches[next++] as string[];
        // A chunk stored since the caller looked (another fetch, a read on demand,
        // brought it) is not asked for again.
        const lacking = new Set(await this.store.missing(batch));
        if (this.ended) throw this.ended;
        // From here to the request nothing waits, so `waiting` cannot change under it.
        // A hash another fetch already asked for is waited for, not asked again:
        // the peer would send it twice, and the second copy would be unexpected.
        const ask = batch.filter((hash) => lacking.has(hash) && !this.waiting.has(hash));
        const arrivals = batch.map((hash) =>
          (lacking.has(hash) || this.waiting.has(hash)
            ? this.expect(hash)
            : Promise.resolve<'stored' | 'absent'>('stored')
          ).then((state) => {
            if (state === 'stored') onStored?.(hash);
            return state;
          }),
        );
        // Failed together below if the request fails; never left unhandled.
        for (const a of arrivals) a.catch(() => undefined);
        try {
          if (ask.length > 0) await this.link.request('files.want', { hashes: ask });
        } catch (err) {
          failed = true;
          // Waits left behind would hold these hashes "in flight" for every later
          // fetch; the peer may still serve them (a request that timed out), and
          // those late frames are then dropped quietly.
          for (const hash of ask) {
            this.fail(hash, err as Error);
            this.abandon(hash);
          }
          throw err;
        }
        // A chunk that failed to store fails the fetch; the rest of the batch still
        // arrives (the peer serves what was asked) and is stored or fails alone.
        // A peer that took the request and then sends nothing fails it too.
        const states = await this.withinStall(Promise.all(arrivals), ask).catch((err: unknown) => {
          failed = true;
          throw err;
        });
        batch.forEach((hash, i) => result.set(hash, states[i] as 'stored' | 'absent'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(WANT_WINDOW, batches.length) }, worker));
    return result;
  }

  /**
   * `arrivals`, or FILE_FETCH_STALLED once no chunk this side asked for has arrived
   * for stallMs: the hashes of `asked` still waited for are then given up on (late
   * frames for them are dropped quietly).
   */
  private withinStall<T>(arrivals: Promise<T>, asked: readonly string[]): Promise<T> {
    this.lastArrival = this.clock.now();
    return new Promise<T>((resolve, reject) => {
      let timer: Timer | undefined;
      const check = () => {
        const quiet = this.clock.now() - this.lastArrival;
        if (quiet < this.stallMs) {
          timer = this.clock.setTimeout(check, this.stallMs - quiet);
          return;
        }
        const left = asked.filter((hash) => this.waiting.has(hash));
        const err = new FetchStalledError(this.stallMs, left.length);
        this.logger.warn({ waiting: left.length, stallMs: this.stallMs }, 'a peer stopped sending chunks');
        for (const hash of left) {
          this.fail(hash, err);
          this.abandon(hash);
        }
        reject(err);
      };
      timer = this.clock.setTimeout(check, this.stallMs);
      arrivals.then(
        (value) => {
          timer?.cancel();
          resolve(value);
        },
        (err: unknown) => {
          timer?.cancel();
          reject(err as Error);
        },
      );
    });
  }

  /**
   * Fails every fetch still waiting (the connection ended). When the peer ended it
   * because a chunk this side sent did not match its hash, the chunks sent last
   * (served unchecked, see serveLent) are checked here: a damaged one is removed, so
   * it is absent to the peer's next fetch and fetched again here, never sent again.
   */
  abort(cause: Error): void {
    if (isTrosynError(cause, 'CHUNK_HASH_MISMATCH') && !(cause instanceof ChunkRefusedError))
      this.checkServed();
    this.ended = cause;
    for (const list of this.waiting.values()) for (const w of list) w.reject(cause);
    this.waiting.clear();
  }

  /** Checks the chunks sent last; a damaged one is removed by the store's check. */
  private checkServed(): void {
    const sent = [...this.served];
    this.served.clear();
    this.logger.warn(
      { chunks: sent.length },
      'the peer found a chunk sent to it damaged; checking the ones sent last',
    );
    void (async () => {
      for (const hash of sent)
        await this.store.get(hash, { verify: true }).catch((err: unknown) => {
          if (isTrosynError(err, 'CHUNK_CORRUPT')) this.logger.warn({ hash }, 'a damaged chunk was removed');
        });
    })();
  }

  private expect(hash: string): Promise<'stored' | 'absent'> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(hash) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(hash, list);
    });
  }

  private settle(hash: string, state: 'stored' | 'absent'): void {
    this.lastArrival = this.clock.now();
    const list = this.waiting.get(hash);
    this.waiting.delete(hash);
    for (const w of list ?? []) w.resolve(state);
  }

  private async onChunk(payload: Buffer, done: () => void): Promise<void> {
    // The payload is given back at once, unless a put of it is under way.
    let storing: Promise<unknown> | undefined;
    try {
      storing = this.take(payload);
    } finally {
      if (storing) void storing.finally(done);
      else done();
    }
    if (storing && this.storing.size >= STORES_IN_FLIGHT) await Promise.race(this.storing);
  }

  /** Checks one chunk frame; returns the put of its chunk when it starts one. */
  private take(payload: Buffer): Promise<void> | undefined {
    const kind = payload[0];
    const hash = payload.toString('hex', 1, 33);
    if (payload.length < 33 || (kind !== CHUNK && kind !== ABSENT)) {
      this.link.close(
        new TrosynError(
          'UNEXPECTED_MESSAGE',
          `a chunk frame of kind ${kind ?? 'none'} and ${payload.length} bytes`,
        ),
      );
      return undefined;
    }
    if (!this.waiting.has(hash)) {
      // Never stored, not even hashed: a late answer to a request given up on is
      // expected; other frames nobody asked for are dropped, and a peer that keeps
      // sending them is told off. The link goes on serving what is asked for.
      this.dropped++;
      if (this.abandoned.delete(hash)) return undefined;
      this.unsolicited++;
      this.logger.warn({ hash, unsolicited: this.unsolicited }, 'a peer sent a chunk nobody asked for');
      if (this.unsolicited > UNSOLICITED_LIMIT)
        this.link.close(new ChunkRefusedError('UNEXPECTED_MESSAGE', hash));
      return undefined;
    }
    if (kind === ABSENT) {
      this.settle(hash, 'absent');
      return undefined;
    }
    const bytes = payload.subarray(33);
    if (createHash('sha256').update(bytes).digest('hex') !== hash) {
      const err = new ChunkRefusedError('CHUNK_HASH_MISMATCH', hash);
      this.logger.warn({ hash }, 'a peer sent a chunk that does not match its hash');
      this.link.close(err);
      this.abort(err);
      return undefined;
    }
    // Several puts in flight, so their writes and index commits overlap; the next
    // frame is read once fewer than STORES_IN_FLIGHT are pending.
    // The payload is given back only once this put settles (see onChunk): the store need not copy it.
    const put: Promise<void> = this.store.put(hash, bytes, { verified: true, unchanged: true }).then(
      () => {
        this.storing.delete(put);
        this.bytesIn += bytes.length;
        this.settle(hash, 'stored');
      },
      (err: unknown) => {
        this.storing.delete(put);
        this.fail(hash, err as Error);
      },
    );
    this.storing.add(put);
    return put;
  }

  /**
   * Serves chunks the store lends: read with their neighbours into buffers the store
   * reuses, each copied as it is sent (the socket may still hold it after the store
   * takes its buffer back) into a slab region given back once written. A large
   * buffer held until its last chunk is sent lives long enough to reach V8's old
   * generation, and a file's worth of those kept it marking; a fresh copy of each
   * chunk was a file's worth of young garbage.
   */
  private async serveLent(hashes: readonly string[], lend: NonNullable<ChunkStore['lend']>): Promise<void> {
    // Not hashed here: the peer checks every chunk before it counts, and says when
    // one does not match (see abort), which is when this side checks what it sent.
    await lend(
      hashes,
      async (hash, bytes) => {
        if (this.link.closed) throw new LinkEnded();
        if (bytes !== undefined) {
          this.served.delete(hash);
          this.served.add(hash);
          if (this.served.size > SERVED_KEPT) this.served.delete(this.served.values().next().value as string);
        }
        if (bytes === undefined) return this.sendOne(hash, undefined);
        const copy = outgoing.copy(bytes);
        await this.sendOne(hash, copy.bytes, copy.release);
      },
      { verify: false },
    ).catch((err: unknown) => {
      if (!(err instanceof LinkEnded)) throw err;
    });
  }

  private abandon(hash: string): void {
    this.abandoned.delete(hash);
    this.abandoned.add(hash);
    if (this.abandoned.size > ABANDONED_KEPT) {
      const [oldest] = this.abandoned;
      if (oldest !== undefined) this.abandoned.delete(oldest);
    }
  }

  private fail(hash: string, err: Error): void {
    const list = this.waiting.get(hash);
    this.waiting.delete(hash);
    for (const w of list ?? []) w.reject(err);
  }

  private onWant(params: unknown): { queued: number } {
    const parsed = wantParams.safeParse(params);
    if (!parsed.success)
      throw new TrosynError(
        'INVALID_MESSAGE',
        `invalid files.want: ${parsed.error.issues[0]?.message ?? ''}`,
      );
    const { hashes } = parsed.data;
    // Served one request after another, in the background: the answer goes at once.
    this.serving = this.serving
      .then(() => this.serve(hashes))
      .catch((err: unknown) => {
        if (!this.link.closed) this.logger.warn({ err }, 'serving chunks failed');
      });
    return { queued: hashes.length };
  }

  private async serve(hashes: readonly string[]): Promise<void> {
    if (this.store.lend) return this.serveLent(hashes, this.store.lend.bind(this.store));
    // The next few chunks are read while one is sent: a read waits for the disk (or
    // the thread pool), a send for the socket, and neither need wait for the other.
    const read = (hash: string): Promise<{ bytes?: Buffer; error?: unknown }> =>
      this.store.get(hash).then(
        (bytes) => ({ bytes }),
        // Not here, or found damaged here and removed: to the peer it is absent.
        (error: unknown) => (error instanceof TrosynError ? {} : { error }),
      );
    const ahead: Promise<{ bytes?: Buffer; error?: unknown }>[] = [];
    for (let i = 0; i < hashes.length; i++) {
      while (ahead.length < READ_AHEAD && i + ahead.length < hashes.length)
        ahead.push(read(hashes[i + ahead.length] as string));
      const { bytes, error } = await (ahead.shift() as Promise<{ bytes?: Buffer; error?: unknown }>);
      if (error !== undefined) throw error;
      if (this.link.closed) return;
      await this.sendOne(hashes[i] as string, bytes);
    }
  }

  /** Sends one chunk asked for: its bytes, or that it is not here. `sent`: see ChunkLink.sendChunk. */
  private async sendOne(hash: string, bytes: Buffer | undefined, sent?: () => void): Promise<void> {
    const id = Buffer.from(hash, 'hex');
    if (bytes === undefined) {
      await this.link.sendChunk(Buffer.concat([Buffer.of(ABSENT), id]), undefined, { compress: false });
      return;
    }
    await this.link.sendChunk(Buffer.concat([Buffer.of(CHUNK), id]), bytes, sent && { sent });
    this.bytesOut += bytes.length;
  }
}
