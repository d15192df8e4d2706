import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isTrosynError, TrosynError } from '../errors.js';
import { type Clock, type Startable, type Timer, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { Seq } from '../store/types.js';
import type { Replica } from '../sync/replica.js';
import { type ChunkExchange, ContentAbsentError, type FetchResult } from './chunk-exchange.js';
import type { ContentIndex, PendingVersion } from './content-index.js';
import { asFileBody } from './file-body.js';
import type { FileStore, MissingContent } from './file-store.js';
import type { FileTransferPolicy, FileVersion } from './node-files.js';

/** A version's content is not here and cannot be fetched now. */
export class ContentUnavailableError extends TrosynError {
  constructor(name: string, why: string) {
    super('FILE_CONTENT_UNAVAILABLE', `the content of ${name} is not on this device and ${why}`, { name });
  }
}

/** One file version whose content is arriving. */
export interface FileProgress {
  collection: string;
  name: string;
  rev: string;
  /** Bytes of its content here, and in all (0 until its chunk list is here). */
  bytesHere: number;
  bytesTotal: number;
}

/** Where the content of the file versions this node holds stands. */
export interface ContentProgress {
  /** Versions whose content is not all here yet. */
  pending: number;
  /** Bytes of their content here, and in all. */
  bytesHere: number;
  bytesTotal: number;
  /** A look at the change log or a fetch is under way (its figures may grow). */
  busy: boolean;
  /** The first PROGRESS_FILES of those versions, each with its bytes. */
  files: FileProgress[];
  /** Why the last fetch stopped early (a full disk, a lost connection), until one goes through. */
  error?: { code: string; message: string };
}

/** The content exchanged with one connected peer. */
export interface PeerTransfer {
  peer: string;
  bytesIn: number;
  bytesOut: number;
  /** Pending versions this node fetches from that peer. */
  waiting: number;
}

/** Versions listed one by one in the progress. */
export const PROGRESS_FILES = 20;
/** Progress events come at most this often while chunks arrive. */
const PROGRESS_EVERY_MS = 250;
/** Chunks arriving through another process start a look at pending versions at most this often. */
const ARRIVAL_MS = 1000;

export interface ContentSyncOptions {
  replica: Replica;
  files: FileStore;
  index: ContentIndex;
  /** The files collections and their transfer policies; other collections hold no files. */
  policies: Readonly<Record<string, FileTransferPolicy>>;
  /** A child fetches every version from its hub; the hub fetches a version from its author. */
  role: 'hub' | 'child';
  /** Waits between tries for content a peer did not have yet (it may still be arriving there). */
  retryMs?: number;
  /**
   * Subscribes to word that chunks arrived through another process sharing the chunk
   * store (hub processes on one database); returns the unsubscribe function. Pending
   * versions are then looked at again (at most every ARRIVAL_MS), so content another
   * process fetched counts here too.
   */
  onArrival?: (listener: () => void) => () => void;
  logger?: Logger;
  clock?: Clock;
}

type Events = { progress: [ContentProgress] };

/**
 * Brings the content of every file version this node holds: it reads the change
 * log for file versions (its own writes are complete at once; received ones are
 * noted as pending), and fetches what is missing from each connected peer that
 * should have it: a child from its hub, the hub from the version's author. A
 * transfer cut at any point resumes from the chunks already stored.
 */
export class ContentSync extends EventEmitter<Events> implements Startable {
  private readonly o: ContentSyncOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly peers = new Map<string, ChunkExchange>();
  private unsubscribe: (() => void) | undefined;
  private unsubscribeArrivals: (() => void) | undefined;
  private arrival: Timer | undefined;
  private scanning: Promise<void> = Promise.resolve();
  private working = false;
  private again = false;
  /** A round is started but has not begun reading: changes told before it begins need no round of their own. */
  private queued = false;
  private retry: Timer | undefined;
  private started = false;
  private received = 0;
  /** Bytes of received versions that did not travel: their chunks were here already. */
  private deduplicated = 0;
  /** Bytes fetched so far for each pending version, by this process. */
  private readonly fetchedFor = new Map<string, number>();
  private retryDelay = 0;
  private pendingFiles: FileProgress[] = [];
  private readonly authors = new Map<string, string>();
  private lastError: Error | undefined;
  private reportedAt = 0;

  constructor(options: ContentSyncOptions) {
    super();
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.o.index.start();
    this.started = true;
    this.unsubscribe = this.o.replica.subscribe(() => this.kick());
    this.unsubscribeArrivals = this.o.onArrival?.(() => this.arrived());
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribeArrivals?.();
    this.arrival?.cancel();
    this.arrival = undefined;
    this.retry?.cancel();
    await this.scanning.catch(() => undefined);
    await this.o.index.stop();
  }

  /** Bytes of content this node has fetched from its peers since it started. */
  bytesReceived(): number {
    return this.received;
  }

  /**
   * Bytes of the versions received from peers since this node started that were not
   * fetched because this node held their chunks already (a copy, a rename, the
   * unchanged part of an edit). A version whose fetch began before a restart counts
   * what it fetched before as held.
   */
  bytesDeduplicated(): number {
    return this.deduplicated;
  }

  /** Where content stands now. */
  status(): ContentProgress {
    const err = this.lastError;
    return {
      ...this.totals(),
      busy: this.working,
      files: this.pendingFiles.slice(0, PROGRESS_FILES).map((f) => ({ ...f })),
      ...(err && {
        error: { code: (err as { code?: string }).code ?? 'INTERNAL_ERROR', message: err.message },
      }),
    };
  }

  /**
   * Per connected peer: bytes of content fetched from it and served to it over its
   * current connection, and (on the hub) how many pending versions wait on it, their author.
   */
  transfers(): PeerTransfer[] {
    return [...this.peers].map(([peer, exchange]) => ({
      peer,
      bytesIn: exchange.bytesIn,
      bytesOut: exchange.bytesOut,
      waiting:
        this.o.role === 'hub'
          ? this.pendingFiles.filter((f) => this.authors.get(f.rev) === peer).length
          : this.pendingFiles.length,
    }));
  }

  /** A connected peer to fetch from (see `role`). Returns the detach function. */
  attach(peer: string, exchange: ChunkExchange): () => void {
    this.peers.set(peer, exchange);
    this.retryDelay = 0;
    this.kick();
    return () => {
      if (this.peers.get(peer) === exchange) this.peers.delete(peer);
    };
  }

  /**
   * Fetches a version's content now, from the peer that should have it (a child's
   * hub, the hub's author of the version): for reading an on-demand version. Fails
   * with FILE_CONTENT_UNAVAILABLE when that peer is not connected or lacks it.
   */
  async fetchNow(version: FileVersion, author = ''): Promise<void> {
    const { files } = this.o;
    let missing = await files.missing(version);
    if (missing.manifest.length === 0 && missing.chunks.length === 0) return;
    const peer = this.peerFor({ author });
    const who = this.o.role === 'child' ? 'the hub' : 'the device that wrote it';
    if (!peer) throw new ContentUnavailableError(version.name, `${who} is not connected`);
    // A link that ends under the fetch (the peer went away) is the same answer as no link.
    const fetch = (hashes: readonly string[]) =>
      this.fetchFrom(peer, hashes).catch((err: unknown) => {
        if (isTrosynError(err) && err.code === 'CONNECTION_CLOSED')
          throw new ContentUnavailableError(version.name, `${who} disconnected (${err.message})`);
        throw err;
      });
    if (missing.manifest.length > 0) {
      await fetch(missing.manifest);
      missing = await files.missing(version);
    }
    if (missing.chunks.length > 0) {
      for await (const page of files.missingPages(version)) await fetch(page.map((c) => c.hash));
      missing = await files.missing(version);
    }
    if (missing.manifest.length > 0 || missing.chunks.length > 0)
      throw new ContentUnavailableError(version.name, `${who} does not have all of it yet`);
    await files.chunks.flush();
  }

  /** Tries what is still missing now instead of waiting out the retry delay (e.g. after disk space was freed). */
  retryNow(): void {
    this.retryDelay = 0;
    this.retry?.cancel();
    this.retry = undefined;
    this.kick();
  }

  /** Resolves when the log has been read and a round of fetching is over. */
  async settled(): Promise<void> {
    await this.scanning;
  }

  /** Chunks arrived through another process: a look soon, one for a burst of them. */
  private arrived(): void {
    if (!this.started || this.arrival) return;
    this.arrival = this.clock.setTimeout(() => {
      this.arrival = undefined;
      this.kick();
    }, ARRIVAL_MS);
  }

  private kick(): void {
    if (!this.started) return;
    // A round about to start reads this change too: an apply's changes, told one by one, make one round.
    if (this.queued) return;
    if (this.working) {
      this.again = true;
      return;
    }
    this.working = true;
    this.queued = true;
    this.scanning = Promise.resolve()
      .then(() => {
        this.queued = false;
        return this.started ? this.round() : undefined;
      })
      .catch((err: unknown) => this.logger.warn({ err }, 'file content sync failed'))
      .finally(() => {
        this.working = false;
        if (this.started) this.emit('progress', this.status());
        if (this.again && this.started) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async round(): Promise<void> {
    await this.scan();
    await this.fetchPending();
  }

  /**
   * The collections whose every version's content is fetched, sorted: the hub
   * fetches all; a child leaves on-demand ones until a version is read.
   */
  private fetched(): string[] {
    return Object.entries(this.o.policies)
      .filter(([, policy]) => this.o.role === 'hub' || policy === 'eager')
      .map(([name]) => name)
      .sort();
  }

  /** Notes the file versions the change log gained since the last look. */
  private async scan(): Promise<void> {
    const { replica, index } = this.o;
    const fetched = new Set(this.fetched());
    // Read from the start again when the change log is another one (the store was
    // lost or restored) or when more collections are fetched than when it was read.
    const key = JSON.stringify({ log: (await replica.changeLog()).id, fetched: this.fetched() });
    if (index.scanKey() !== key) index.restartScan(key);
    let since = index.scannedSeq() as Seq;
    for (let guard = 0; guard < 100_000; guard++) {
      // Only the fetched collections are read: an initial sync of many records reads none of them again.
      const batch = await replica.changesSince({
        since,
        limit: 1000,
        maxBytes: 8 * 1024 * 1024,
        collectionIn: [...fetched],
      });
      const found: PendingVersion[] = [];
      for (const r of batch.revisions) {
        if (r.deleted || !fetched.has(r.collection)) continue;
        const body = asFileBody(r.body);
        if (body) found.push({ collection: r.collection, id: r.id, rev: r.rev, author: r.author, body });
      }
      index.addScanned(found, batch.upTo);
      since = batch.upTo;
      if (!batch.more) break;
    }
  }

  /** Fetches what each pending version lacks from a peer that should have it. */
  private async fetchPending(): Promise<void> {
    const { files, index } = this.o;
    // First where each stands, so progress counts every pending version from the start.
    const work: Array<{ v: PendingVersion; missing: MissingContent; file: FileProgress }> = [];
    const before = this.totals();
    try {
      for (const v of index.pending()) {
        const missing = await files.missing(v.body);
        const file = {
          collection: v.collection,
          name: v.body.name,
          rev: v.rev,
          bytesHere: missing.bytesHere,
          bytesTotal: missing.bytesTotal,
        };
        work.push({ v, missing, file });
      }
    } catch (err) {
      // The chunk store could not be read: say so, and look again later.
      this.lastError = err as Error;
      this.logger.warn({ err }, 'looking at what file content is missing failed');
      this.report(true);
      this.scheduleRetry(false, this.pendingFiles.length);
      return;
    }
    this.authors.clear();
    for (const { v } of work) this.authors.set(v.rev, v.author);
    this.pendingFiles = work.map((w) => w.file);
    this.lastError = undefined;
    this.report(true);
    for (const { v, missing: first, file } of work) {
      if (!this.started) return;
      let missing = first;
      const peer = this.peerFor(v);
      let absent = 0;
      try {
        if (peer && missing.manifest.length > 0) {
          absent += countAbsent(await this.fetchFrom(peer, missing.manifest));
          missing = await files.missing(v.body);
          // The manifest told what the content is: count what of it is already here.
          file.bytesHere = missing.bytesHere;
          this.report();
        }
        if (peer && missing.chunks.length > 0) {
          // A page at a time, so memory stays flat whatever the file's size; what a
          // page brought is made durable while the next one arrives.
          let flushed: Promise<void> = Promise.resolve();
          // All that is missing was listed (an edit's few new chunks): fetched from that
          // list, without reading the version's thousands of entries again.
          const pages =
            missing.chunks.length === missing.chunksMissing
              ? [[...new Map(missing.chunks.map((c) => [c.hash, c])).values()]]
              : files.missingPages(v.body);
          for await (const page of pages) {
            const lengths = new Map(page.map((c) => [c.hash, c.length]));
            absent += countAbsent(
              await this.fetchFrom(
                peer,
                page.map((c) => c.hash),
                (hash) => {
                  const length = lengths.get(hash) ?? 0;
                  file.bytesHere += length;
                  this.fetchedFor.set(v.rev, (this.fetchedFor.get(v.rev) ?? 0) + length);
                  this.report();
                },
              ),
            );
            await flushed;
            flushed = files.chunks.flush();
            flushed.catch(() => undefined);
          }
          await flushed;
          missing = await files.missing(v.body);
        }
      } catch (err) {
        // The peer went away (its next connection resumes), or this store refused
        // (a full disk): nothing half-stored counts; the round ends and is tried again.
        this.lastError = err as Error;
        this.logger.warn({ err, rev: v.rev, name: v.body.name }, 'fetching file content stopped');
        break;
      }
      if (missing.invalid) {
        // Its chunk list does not describe it: it can never be whole. It leaves the
        // pending list (reading it says FILE_MANIFEST_INVALID) and holds up nothing.
        this.lastError = missing.invalid;
        this.logger.warn(
          { err: missing.invalid, rev: v.rev, name: v.body.name },
          'a file version cannot be fetched',
        );
      } else if (absent > 0 && (missing.manifest.length > 0 || missing.chunks.length > 0)) {
        // The peer does not have it (yet): asked for again on the next round.
        this.lastError = new ContentAbsentError(v.body.name, absent);
        continue;
      }
      if (missing.manifest.length === 0 && missing.chunks.length === 0) {
        await files.chunks.flush();
        index.done(v.rev);
        if (v.author !== this.o.replica.deviceId)
          this.deduplicated += Math.max(0, file.bytesTotal - (this.fetchedFor.get(v.rev) ?? 0));
        this.fetchedFor.delete(v.rev);
        this.pendingFiles = this.pendingFiles.filter((f) => f !== file);
        this.report(true);
      }
    }
    this.report(true);
    // Content a peer did not have may reach it later, and a full disk may get room:
    // look again in a while, less often while rounds bring nothing (a new peer or
    // record looks at once).
    const after = this.totals();
    this.scheduleRetry(after.bytesHere > before.bytesHere || after.pending < before.pending, after.pending);
  }

  /** Looks again in a while: soon after a round that moved, less often while rounds bring nothing. */
  private scheduleRetry(moved: boolean, pending: number): void {
    const base = this.o.retryMs ?? 2000;
    this.retryDelay = moved ? base : Math.min(Math.max(this.retryDelay, base) * 2, base * 30);
    this.retry?.cancel();
    this.retry =
      pending > 0 && this.peers.size > 0
        ? this.clock.setTimeout(() => this.kick(), this.retryDelay)
        : undefined;
  }

  private totals(): { pending: number; bytesHere: number; bytesTotal: number } {
    let bytesHere = 0;
    let bytesTotal = 0;
    for (const f of this.pendingFiles) {
      bytesHere += f.bytesHere;
      bytesTotal += f.bytesTotal;
    }
    return { pending: this.pendingFiles.length, bytesHere, bytesTotal };
  }

  /** Emits `progress`: at once when `now`, else at most every PROGRESS_EVERY_MS. */
  private report(now = false): void {
    const t = this.clock.now();
    if (!now && t - this.reportedAt < PROGRESS_EVERY_MS) return;
    this.reportedAt = t;
    this.emit('progress', this.status());
  }

  private async fetchFrom(
    peer: ChunkExchange,
    hashes: readonly string[],
    onStored?: (hash: string) => void,
  ): Promise<FetchResult> {
    const before = peer.bytesIn;
    try {
      return await peer.fetch(hashes, onStored);
    } finally {
      this.received += peer.bytesIn - before;
    }
  }

  private peerFor(v: { author: string }): ChunkExchange | undefined {
    if (this.o.role === 'hub') return this.peers.get(v.author);
    const [hub] = this.peers.values();
    return hub;
  }
}

function countAbsent(result: FetchResult): number {
  let n = 0;
  for (const state of result.values()) if (state === 'absent') n++;
  return n;
}
