import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { type Clock, type Startable, type Timer, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { Seq } from '../store/types.js';
import type { Replica } from '../sync/replica.js';
import type { ChunkExchange } from './chunk-exchange.js';
import type { ContentIndex, PendingVersion } from './content-index.js';
import { asFileBody } from './file-body.js';
import type { FileStore, MissingContent } from './file-store.js';

/** Where the content of the file versions this node holds stands. */
export interface ContentProgress {
  /** Versions whose content is not all here yet. */
  pending: number;
  /** Bytes of their content here, and in all. */
  bytesHere: number;
  bytesTotal: number;
  /** A look at the change log or a fetch is under way (its figures may grow). */
  busy: boolean;
}

export interface ContentSyncOptions {
  replica: Replica;
  files: FileStore;
  index: ContentIndex;
  /** True for the collections whose records are file versions. */
  isFileCollection: (collection: string) => boolean;
  /** A child fetches every version from its hub; the hub fetches a version from its author. */
  role: 'hub' | 'child';
  /** Waits between tries for content a peer did not have yet (it may still be arriving there). */
  retryMs?: number;
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
  private scanning: Promise<void> = Promise.resolve();
  private working = false;
  private again = false;
  private retry: Timer | undefined;
  private started = false;
  private received = 0;
  private lastBytesHere = -1;
  private retryDelay = 0;
  private progress: Omit<ContentProgress, 'busy'> = { pending: 0, bytesHere: 0, bytesTotal: 0 };

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
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe?.();
    this.retry?.cancel();
    await this.scanning.catch(() => undefined);
    await this.o.index.stop();
  }

  /** Bytes of content this node has fetched from its peers since it started. */
  bytesReceived(): number {
    return this.received;
  }

  /** Where content stands now. */
  status(): ContentProgress {
    return { ...this.progress, busy: this.working };
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

  /** Resolves when the log has been read and a round of fetching is over. */
  async settled(): Promise<void> {
    await this.scanning;
  }

  private kick(): void {
    if (!this.started) return;
    if (this.working) {
      this.again = true;
      return;
    }
    this.working = true;
    this.scanning = this.round()
      .catch((err: unknown) => this.logger.warn({ err }, 'file content sync failed'))
      .finally(() => {
        this.working = false;
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

  /** Notes the file versions the change log gained since the last look. */
  private async scan(): Promise<void> {
    const { replica, index } = this.o;
    let since = index.scannedSeq() as Seq;
    for (let guard = 0; guard < 100_000; guard++) {
      const batch = await replica.changesSince({ since, limit: 1000, maxBytes: 8 * 1024 * 1024 });
      const found: PendingVersion[] = [];
      for (const r of batch.revisions) {
        if (r.deleted || !this.o.isFileCollection(r.collection)) continue;
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
    const work: Array<{ v: PendingVersion; missing: MissingContent }> = [];
    for (const v of index.pending()) work.push({ v, missing: await files.missing(v.body) });
    const progress = { pending: work.length, bytesHere: 0, bytesTotal: 0 };
    for (const w of work) {
      progress.bytesHere += w.missing.bytesHere;
      progress.bytesTotal += w.missing.bytesTotal;
    }
    this.setProgress(progress);
    for (const { v, missing: before } of work) {
      if (!this.started) return;
      let missing = before;
      const peer = this.peerFor(v);
      if (peer && missing.manifest.length > 0) {
        await this.fetchFrom(peer, missing.manifest);
        missing = await files.missing(v.body);
        // The manifest told what the content is: count what of it is already here.
        progress.bytesHere += missing.bytesHere;
        this.setProgress(progress);
      }
      if (peer && missing.chunks.length > 0) {
        const lengths = new Map(missing.chunks.map((c) => [c.hash, c.length]));
        await this.fetchFrom(
          peer,
          missing.chunks.map((c) => c.hash),
          (hash) => {
            progress.bytesHere += lengths.get(hash) ?? 0;
            this.setProgress(progress);
          },
        );
        missing = await files.missing(v.body);
      }
      if (missing.manifest.length === 0 && missing.chunks.length === 0) {
        await files.chunks.flush();
        index.done(v.rev);
        progress.pending--;
        this.setProgress(progress);
      }
    }
    // Content a peer did not have may reach it later: look again in a while, less
    // often while rounds bring nothing (a new peer or record looks at once).
    const moved = progress.bytesHere !== this.lastBytesHere || progress.pending < work.length;
    this.lastBytesHere = progress.bytesHere;
    const base = this.o.retryMs ?? 2000;
    this.retryDelay = moved ? base : Math.min(Math.max(this.retryDelay, base) * 2, base * 30);
    this.retry?.cancel();
    this.retry =
      progress.pending > 0 && this.peers.size > 0
        ? this.clock.setTimeout(() => this.kick(), this.retryDelay)
        : undefined;
  }

  private async fetchFrom(
    peer: ChunkExchange,
    hashes: readonly string[],
    onStored?: (hash: string) => void,
  ): Promise<void> {
    const before = peer.bytesIn;
    try {
      await peer.fetch(hashes, onStored);
    } finally {
      this.received += peer.bytesIn - before;
    }
  }

  private setProgress(p: Omit<ContentProgress, 'busy'>): void {
    this.progress = { ...p };
    this.emit('progress', this.status());
  }

  private peerFor(v: PendingVersion): ChunkExchange | undefined {
    if (this.o.role === 'hub') return this.peers.get(v.author);
    const [hub] = this.peers.values();
    return hub;
  }
}
