import type { FrameCache } from '../protocol/codec.js';
import type { ChangeBatch, PeerLog, Seq } from '../store/types.js';
import { InvalidOptionError } from './errors.js';
import type { Replica } from './replica.js';

export interface FanOutOptions {
  replica: Replica;
  /**
   * Bytes of batches and their encoded frames kept, over all read scopes: an
   * estimate (twice the revisions' body bytes, plus the frames). Default 16 MiB.
   */
  maxBytes?: number;
  /** Batches kept per read scope: the few positions its peers are at. Default 4. */
  perScope?: number;
}

/** A read of the change log for one peer, as SyncSession makes it. */
export interface SharedChangesRequest {
  since: Seq;
  /** The peer and its current log: what came from that log is left out. */
  peer: PeerLog;
  limit: number;
  maxBytes: number;
  /** Names the read scope: requests with the same scope must pass the same `collections`. */
  scope: string;
  collections?: (collection: string) => boolean;
}

export interface SharedChanges {
  batch: ChangeBatch;
  /**
   * For a batch shared with other peers: the frames of its message in one shape
   * (`shape` names it: the protocol version and the log it is sent under), encoded
   * once for all the peers that get it. Undefined for a batch read for this peer alone.
   */
  frames?: (shape: string) => FrameCache;
}

export interface FanOutStats {
  /** Reads of the change log made to be shared. */
  reads: number;
  /** Batches served from a shared read. */
  shared: number;
  /** Batches read for one peer alone: its own revisions are in the shared one, or no sharing. */
  own: number;
  /** Batches held now, and their estimated bytes. */
  entries: number;
  bytes: number;
  /** Batches dropped to stay within the bounds. */
  evicted: number;
}

/** One shared read: the batch, where its revisions came from, and its frames by message shape. */
class Entry {
  readonly frames = new Map<string, Map<string, Buffer>>();
  bytes: number;
  dropped = false;

  constructor(
    readonly scope: string,
    readonly batch: ChangeBatch,
    private readonly grew: (entry: Entry, bytes: number) => void,
  ) {
    this.bytes = 2 * (batch.origin?.bodyBytes ?? 0);
  }

  /**
   * True when this batch, read with nothing left out, is exactly what `peer` would
   * get with its own log left out: none of its revisions came from that log and,
   * when the batch was cut short, the revision that cut it did not either (else the
   * peer's own read would have gone on past it).
   */
  fits(peer: PeerLog): boolean {
    const origin = this.batch.origin;
    if (!origin) return false;
    if (origin.logs.some((l) => sameLog(l, peer))) return false;
    if (!this.batch.more) return true;
    return origin.next === null || (origin.next !== undefined && !sameLog(origin.next, peer));
  }

  framesOf(shape: string): FrameCache {
    let frames = this.frames.get(shape);
    if (!frames) {
      frames = new Map();
      this.frames.set(shape, frames);
    }
    const map = frames;
    return {
      get: (key) => map.get(key),
      set: (key, frame) => {
        if (map.has(key)) return;
        map.set(key, frame);
        this.grew(this, frame.length);
      },
    };
  }
}

function sameLog(a: PeerLog, b: PeerLog): boolean {
  return a.device === b.device && a.log === b.log;
}

/**
 * Fan-out of the hub's change log: peers in one read scope at the same position
 * ask for the same batch, so it is read once, and its message encoded once per
 * codec, for all of them. A bounded set of recent batches per scope; a peer that
 * is elsewhere in the log (catching up, lagging) misses it and reads the log as
 * before, and a peer whose own revisions are in a batch reads its own (they are
 * left out of what it is sent). Emptied whenever the collection policy changes.
 * Start it to use it; a stopped FanOut reads every batch per peer.
 */
export class FanOut {
  private readonly replica: Replica;
  private readonly maxBytes: number;
  private readonly perScope: number;
  /** By scope, position and bounds; oldest use first. */
  private readonly entries = new Map<string, Promise<Entry | undefined>>();
  /** The settled entries, to count bytes and evict. */
  private readonly held = new Map<string, Entry>();
  private bytes = 0;
  private readonly counts = { reads: 0, shared: 0, own: 0, evicted: 0 };
  /** The store says where revisions came from; false once it is found not to. */
  private capable = true;
  /** Counts the times everything held was dropped: a read from before then is not kept. */
  private generation = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(options: FanOutOptions) {
    this.replica = options.replica;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.perScope = options.perScope ?? 4;
    if (!(this.maxBytes >= 0))
      throw new InvalidOptionError('maxBytes', 'must be a number of bytes, 0 or more');
    if (!Number.isSafeInteger(this.perScope) || this.perScope < 1)
      throw new InvalidOptionError('perScope', 'must be a whole number, 1 or more');
  }

  isStarted(): boolean {
    return this.unsubscribe !== undefined;
  }

  /** Starts sharing; a policy change (local-only collections) empties what is held. */
  start(): void {
    this.unsubscribe ??= this.replica.onPolicy(() => this.clear());
  }

  /** Stops sharing and drops what is held. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.clear();
  }

  stats(): FanOutStats {
    return { ...this.counts, entries: this.held.size, bytes: this.bytes };
  }

  /** The batch `request.peer` gets, shared with its scope's other peers when it can be. */
  async changesSince(request: SharedChangesRequest): Promise<SharedChanges> {
    if (!this.isStarted() || !this.capable) return this.own(request);
    const key = `${request.scope}\u0000${request.since}\u0000${request.limit}\u0000${request.maxBytes}`;
    let pending = this.entries.get(key);
    if (pending) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, pending);
      const held = this.held.get(key);
      if (held) {
        this.held.delete(key);
        this.held.set(key, held);
      }
    } else {
      pending = this.read(key, request);
      this.entries.set(key, pending);
    }
    const entry = await pending;
    if (!entry || !entry.fits(request.peer)) return this.own(request);
    this.counts.shared++;
    return { batch: entry.batch, frames: (shape) => entry.framesOf(shape) };
  }

  private async own(request: SharedChangesRequest): Promise<SharedChanges> {
    this.counts.own++;
    const batch = await this.replica.changesSince({
      since: request.since,
      peer: request.peer,
      limit: request.limit,
      maxBytes: request.maxBytes,
      ...(request.collections && { collections: request.collections }),
    });
    return { batch };
  }

  private async read(key: string, request: SharedChangesRequest): Promise<Entry | undefined> {
    this.counts.reads++;
    const generation = this.generation;
    let batch: ChangeBatch;
    try {
      batch = await this.replica.changesSince({
        since: request.since,
        limit: request.limit,
        maxBytes: request.maxBytes,
        ...(request.collections && { collections: request.collections }),
        origin: true,
      });
    } catch (err) {
      if (generation === this.generation) this.forget(key);
      throw err;
    }
    // Read under a policy since replaced: served to no one.
    if (generation !== this.generation) return undefined;
    if (!batch.origin) this.capable = false;
    // Nothing to share: the end of the log, or a store that does not say where revisions came from.
    if (!batch.origin || batch.upTo <= batch.since) {
      this.forget(key);
      return undefined;
    }
    const entry = new Entry(request.scope, batch, (e, bytes) => {
      if (e.dropped) return;
      e.bytes += bytes;
      this.bytes += bytes;
      this.trim();
    });
    this.held.set(key, entry);
    this.bytes += entry.bytes;
    this.trim(request.scope);
    return entry;
  }

  /** Drops the oldest batches beyond the scope's count and the byte bound. */
  private trim(scope?: string): void {
    if (scope !== undefined) {
      let inScope = 0;
      for (const e of this.held.values()) if (e.scope === scope) inScope++;
      for (const [key, e] of this.held) {
        if (inScope <= this.perScope) break;
        if (e.scope !== scope) continue;
        this.evict(key);
        inScope--;
      }
    }
    for (const key of this.held.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.evict(key);
    }
  }

  private evict(key: string): void {
    this.counts.evicted++;
    this.forget(key);
  }

  private forget(key: string): void {
    this.entries.delete(key);
    const entry = this.held.get(key);
    if (!entry) return;
    this.held.delete(key);
    entry.dropped = true;
    this.bytes -= entry.bytes;
  }

  private clear(): void {
    this.generation++;
    for (const key of [...this.entries.keys()]) this.forget(key);
  }
}
