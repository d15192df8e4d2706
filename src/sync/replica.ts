import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isTrosynError, type TrosynError } from '../errors.js';
import { type Clock, LifecycleGuard, type Startable, systemClock, type Timer } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { StorageAdapter } from '../store/adapter.js';
import { samePosition } from '../store/checkpoint.js';
import type {
  AppliedRevision,
  ChangeBatch,
  ChangeLogInfo,
  ConflictRecord,
  DeviceId,
  IncomingRevision,
  JsonObject,
  PeerCursor,
  PeerLog,
  RecordView,
  Reducer,
  RejectedRevision,
  RetentionPolicy,
  RevId,
  Revision,
  Seq,
  StoredRevision,
  StoreStats,
} from '../store/types.js';
import { isJsonObject, jsonEqual, setField } from './canonical.js';
import { type ConflictResolver, type ConflictStrategy, mergeFields, toResolver } from './conflict.js';
import {
  AmbiguousRevisionError,
  ClockSkewError,
  InvalidOptionError,
  LocalOnlyCollectionError,
  NoConflictError,
  NotStartedError,
  RecordNotFoundError,
  RevisionNotFoundError,
  RevisionPrunedError,
  SyncGapError,
} from './errors.js';
import { HybridClock, hlcTime } from './hlc.js';
import { EMPTY_POLICY, parseSyncPolicy, policyRetention, type SyncPolicy } from './policy.js';
import { assertCollectionName, assertRecordId, isDeviceId, newRecordId } from './ids.js';
import { createReducer, settleHeads } from './reducer.js';
import { V1_PEER_LOG } from '../protocol/constants.js';
import { MAX_REJECTED_FIELD } from '../protocol/messages.js';
import { createRevision, encodeBody, verifyRevision } from './revision.js';
import { incrementVector, joinVectors } from './version-vector.js';

/** Per-collection settings. Every replica of a collection must use the same strategy. */
export interface CollectionOptions {
  /** How concurrent writes settle: 'lww' (default), 'hub-wins', 'merge', 'manual', or a ConflictResolver. */
  conflict?: ConflictStrategy;
  /** Never offered to peers and refused from them (e.g. personal AI memory). Default false. */
  localOnly?: boolean;
}

export interface ReplicaOptions {
  /** Where this node keeps its data; the replica starts and stops it. */
  store: StorageAdapter;
  /** This node's device ID (SHA-256 of its certificate). A store belongs to one device. */
  deviceId: DeviceId;
  /** A hub's revisions carry the hub mark that the `hub-wins` strategy prefers. Default 'child'. */
  role?: 'hub' | 'child';
  /** Settings by collection name; unnamed collections use `defaultCollection`. */
  collections?: Record<string, CollectionOptions>;
  /** Settings for collections not named in `collections`. Default `{ conflict: 'lww' }`. */
  defaultCollection?: CollectionOptions;
  /** Largest record body in bytes of canonical JSON. Default 1 MiB. Must match across replicas. */
  maxRecordBytes?: number;
  /**
   * How far (ms) a received revision's clock may run ahead of this node's before it
   * is refused with CLOCK_SKEW. Default 24 hours; keeps one bad clock from dragging
   * every replica's timestamps into the future.
   */
  maxClockSkewMs?: number;
  /** History retention applied by `prune()`. Default: keep everything. */
  retention?: RetentionPolicy;
  /** Run `prune()` this often (ms) while started, and once at start. Default: only when called. */
  pruneEveryMs?: number;
  /**
   * Every this many ms, look for writes other processes made to the same store (the
   * CLI, a second program) and report them as change events, so sync sessions push
   * them at once. Default: off; the hub and child agents turn it on.
   */
  watchExternalWritesMs?: number;
  /** Time and timers: revision timestamps, retention, the pruning and watching intervals. Default: the system clock. */
  clock?: Clock;
  logger?: Logger;
}

export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
/** Where a store keeps the hub's collection policy. */
const POLICY_META = 'sync_policy';
/** With wake-ups from the store, the looks on the clock come at most this often (ms). */
const WAKEUP_SAFETY_MS = 2000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 24 * 60 * 60 * 1000;

/** A change to a record's current state, as subscribers see it. */
export interface ChangeEvent {
  collection: string;
  id: string;
  rev: RevId;
  seq: Seq;
  deleted: boolean;
  body: JsonObject | null;
  conflict: RecordView['conflict'];
  /** 'local' for writes made through this replica; otherwise the peer it came from. */
  origin: 'local' | DeviceId;
}

export interface WriteResult {
  collection: string;
  id: string;
  rev: RevId;
  seq: Seq;
  record: RecordView;
}

/** One revision in a record's history. */
export interface HistoryEntry {
  rev: RevId;
  author: DeviceId;
  hlc: string;
  /** Wall-clock ms of the write, from its HLC. */
  time: number;
  bodyHash: string;
  deleted: boolean;
  /** null for tombstones and for revisions whose body retention dropped. */
  body: JsonObject | null;
  pruned: boolean;
  parents: RevId[];
  /** Still a head: not superseded (a conflict's losers stay heads until resolved). */
  head: boolean;
  /** The revision the record currently resolves to. */
  current: boolean;
  seq: Seq;
}

export interface ApplyReport {
  applied: number;
  duplicates: number;
  rejected: RejectedRevision[];
  /** The cursor for the peer after this batch. */
  cursor: Seq;
}

export interface ChangesRequest {
  since: Seq;
  /** The peer (and its current change log) the changes are for: what came from that log is left out. */
  peer?: PeerLog;
  /** Most revisions per batch. Default 1000. */
  limit?: number;
  /** Batch body bytes before it is cut. Default 1 MiB. */
  maxBytes?: number;
  /** Only collections this accepts (read scope). */
  collections?: (collection: string) => boolean;
  /** Only these collections, left out inside the store (see ChangesQuery.collectionIn). */
  collectionIn?: readonly string[];
  /** Also say where the revisions came from, if the store can (see ChangesQuery.origin). */
  origin?: boolean;
}

/** A batch of a peer's change log as received: `log` names that log. */
export interface ReceivedBatch extends ChangeBatch {
  log: string;
}

/**
 * Where this node sends its change log to a peer from, decided from the peer's
 * cursor for it (see `openFor`).
 */
export interface LogStart {
  /** This node's change log identity, which the batches are sent under. */
  log: string;
  /** Its latest position now. */
  latest: Seq;
  /** The position the peer gets changes after. */
  from: Seq;
  /**
   * Why the peer's cursor was not used: it is for another (older) log of this node,
   * or this log no longer holds what the peer saw there (the store was rolled back
   * to an older copy), which gave the log a new identity.
   */
  restart?: 'other-log' | 'rolled-back' | 'unverified';
}

export interface ApplyOptions {
  /** Per-revision admission check (write scope): return an error to refuse that revision alone. */
  admit?: (revision: Revision) => TrosynError | undefined | Promise<TrosynError | undefined>;
}

export type WriteOp =
  | { op: 'put'; collection: string; id: string; body: JsonObject }
  | { op: 'delete'; collection: string; id: string };

type Events = { change: [ChangeEvent]; policy: [SyncPolicy] };

/**
 * One node's replica: the library API (collections, history, revert, conflicts)
 * and the sync primitives (`changesSince`, `applyChanges`) that sessions use.
 */
export class Replica implements Startable {
  readonly deviceId: DeviceId;
  readonly role: 'hub' | 'child';
  private readonly store: StorageAdapter;
  private readonly options: ReplicaOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly hlc: HybridClock;
  private readonly resolvers = new Map<string, ConflictResolver>();
  private readonly defaultResolver: ConflictResolver;
  /** The hub's collection policy as this store keeps it; its strategies override the options'. */
  private policy: SyncPolicy = EMPTY_POLICY;
  /** The policy's stored text, to notice another process changing it. */
  private policyText: string | undefined;
  private policyResolvers = new Map<string, ConflictResolver>();
  /** The policy makes some collection local-only: batches then leave those out. */
  private policyHasLocalOnly = false;
  private readonly reducer: Reducer;
  private readonly maxRecordBytes: number;
  private readonly maxSkewMs: number;
  private readonly events = new EventEmitter<Events>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs start and stop one at a time: a second start while one runs waits for it. */
  private readonly lifecycle = new LifecycleGuard();
  /** Open for use (set part-way through start, so that start's own first prune may run). */
  private started = false;
  /** Sequence numbers up to here are checked for writes by other processes. */
  private checkedSeq = 0;
  /** Revisions this process applied above `checkedSeq` (rev -> seq): its own, already reported. */
  private readonly ownRevs = new Map<string, number>();
  /**
   * Cursor moves from batches that carried no revisions (only the peer's own
   * changes, skipped): kept here and written within a second instead of one
   * transaction each. Losing one in a crash only makes the peer resend nothing.
   */
  private readonly lazyCursors = new Map<DeviceId, PeerCursor>();
  private lazyFlush: Timer | undefined;
  /** The store's data version at the last look: unchanged means no other process wrote. */
  private dataVersion = -1;
  private watcher: Timer | undefined;
  /** Ends the store's wake-ups on other processes' commits, where it has them. */
  private stopWakeups: (() => void) | undefined;
  /** A look for other processes' writes is queued: wake-ups meanwhile add none. */
  private lookQueued = false;
  private pruner: Timer | undefined;

  constructor(options: ReplicaOptions) {
    if (!isDeviceId(options.deviceId)) {
      throw new InvalidOptionError(
        'deviceId',
        'must be 64 lowercase hex characters (SHA-256 of the certificate)',
      );
    }
    this.options = options;
    this.store = options.store;
    this.deviceId = options.deviceId;
    this.role = options.role ?? 'child';
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.hlc = new HybridClock(this.clock);
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.maxSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    if (!(this.maxRecordBytes > 0))
      throw new InvalidOptionError('maxRecordBytes', 'must be a positive number of bytes');
    for (const [name, c] of Object.entries(options.collections ?? {})) {
      assertCollectionName(name, true);
      this.resolvers.set(name, toResolver(c.conflict, name));
    }
    this.defaultResolver = toResolver(options.defaultCollection?.conflict, '*');
    this.reducer = createReducer((c) => this.resolverFor(c));
    this.events.setMaxListeners(0);
  }

  isStarted(): boolean {
    return this.started;
  }

  start(): Promise<void> {
    return this.lifecycle.start(() => this.open());
  }

  /** Flushes pending cursors, stops the timers and the store; waits for a start in progress first. */
  stop(): Promise<void> {
    return this.lifecycle.stop(() => this.close());
  }

  private async open(): Promise<void> {
    await this.store.start();
    const owner = await this.store.getMeta('device_id');
    if (owner === undefined) {
      await this.store.setMeta('device_id', this.deviceId);
    } else if (owner !== this.deviceId) {
      await this.store.stop();
      throw new InvalidOptionError('deviceId', `this store belongs to device ${owner}, not ${this.deviceId}`);
    }
    await this.loadPolicy(await this.store.getMeta(POLICY_META));
    // Never issue a timestamp below one already in the log, even if the wall clock stepped back.
    const latest = await this.store.changesSince({
      since: Math.max(0, (await this.store.latestSeq()) - 1000) as Seq,
      limit: 1000,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    for (const r of latest.revisions) this.hlc.observe(r.hlc);
    this.checkedSeq = await this.store.latestSeq();
    this.dataVersion = (await this.store.dataVersion?.()) ?? -1;
    this.ownRevs.clear();
    this.started = true;
    const pruneEvery = this.options.pruneEveryMs;
    if (pruneEvery !== undefined && pruneEvery > 0) {
      // Each run takes the retention in force then: the hub's policy may set or change it.
      const prune = () => {
        this.prune().then(
          (n) => n > 0 && this.logger.info({ dropped: n }, 'history retention dropped old revision bodies'),
          (err: unknown) => this.logger.warn({ err }, 'history retention failed'),
        );
      };
      prune();
      this.pruner = this.clock.setInterval(prune, pruneEvery);
    }
    const every = this.options.watchExternalWritesMs;
    if (every !== undefined && every > 0) {
      const look = () => {
        if (this.lookQueued) return;
        this.lookQueued = true;
        this.exclusive(() => {
          this.lookQueued = false;
          return this.reportExternalWrites();
        }).catch((err: unknown) => this.logger.warn({ err }, 'checking for external writes failed'));
      };
      // A store that wakes this replica on other processes' commits is looked at
      // then, and on the clock only as a safety net (a lost wake-up connection).
      this.stopWakeups = this.store.onCommit?.(look);
      this.watcher = this.clock.setInterval(
        look,
        this.stopWakeups ? Math.max(every, WAKEUP_SAFETY_MS) : every,
      );
    }
  }

  private async close(): Promise<void> {
    await this.exclusive(() => this.flushLazyCursors()).catch((err: unknown) =>
      this.logger.warn({ err }, 'saving cursors failed'),
    );
    this.started = false;
    this.lazyFlush?.cancel();
    this.lazyFlush = undefined;
    this.watcher?.cancel();
    this.watcher = undefined;
    this.stopWakeups?.();
    this.stopWakeups = undefined;
    this.pruner?.cancel();
    this.pruner = undefined;
    await this.queue.catch(() => undefined);
    await this.store.stop();
  }

  /** Settings of a collection: its conflict strategy (the policy's, else the options'). */
  resolverFor(collection: string): ConflictResolver {
    return this.policyResolvers.get(collection) ?? this.resolvers.get(collection) ?? this.defaultResolver;
  }

  /** Local-only by the policy, or by this node's own options (a node may add local-only collections). */
  isLocalOnly(collection: string): boolean {
    if (Object.hasOwn(this.policy.collections, collection) && this.policy.collections[collection]?.localOnly)
      return true;
    return (this.options.collections?.[collection] ?? this.options.defaultCollection)?.localOnly === true;
  }

  /** History retention in force: the policy's, else the options'. */
  retention(): RetentionPolicy | undefined {
    return policyRetention(this.policy) ?? this.options.retention;
  }

  // --- the hub's collection policy ---------------------------------------------------

  /** The collection policy this store keeps (EMPTY_POLICY, version 0, before any). */
  getPolicy(): SyncPolicy {
    this.assertStarted();
    return this.policy;
  }

  /**
   * Adopts a collection policy: keeps it in the store, applies its strategies,
   * local-only flags and retention from now on, and settles again, under the new
   * strategy, the conflicted records of every collection whose strategy changed
   * (the same heads give the same verdict on every node). Returns how many records
   * changed state. Listeners of `onPolicy` hear of it.
   */
  async setPolicy(policy: SyncPolicy): Promise<{ resettled: number }> {
    this.assertStarted();
    const checked = parseSyncPolicy(policy);
    return this.exclusive(async () => {
      const text = JSON.stringify(checked);
      if (text === this.policyText) return { resettled: 0 };
      const resettled = await this.adoptPolicy(checked, text);
      await this.store.setMeta(POLICY_META, text);
      return { resettled };
    });
  }

  /** Calls `listener` with each policy adopted, by this process or found written by another. */
  onPolicy(listener: (policy: SyncPolicy) => void): () => void {
    this.events.on('policy', listener);
    return () => this.events.off('policy', listener);
  }

  /** Applies a stored policy at start (nothing to settle: the store was settled when it was adopted). */
  private async loadPolicy(text: string | undefined): Promise<void> {
    if (text === undefined || text === this.policyText) return;
    try {
      this.usePolicy(parseSyncPolicy(JSON.parse(text)), text);
    } catch (err) {
      this.logger.error({ err }, 'the stored collection policy is unreadable; keeping the one in force');
    }
  }

  private usePolicy(policy: SyncPolicy, text: string): void {
    const resolvers = new Map<string, ConflictResolver>();
    for (const [name, c] of Object.entries(policy.collections))
      if (c.conflict) resolvers.set(name, toResolver(c.conflict, name));
    this.policy = policy;
    this.policyText = text;
    this.policyResolvers = resolvers;
    this.policyHasLocalOnly = Object.values(policy.collections).some((c) => c.localOnly === true);
  }

  /** Swaps the policy in and settles again the collections whose strategy it changes. */
  private async adoptPolicy(policy: SyncPolicy, text: string): Promise<number> {
    const names = new Set([...Object.keys(this.policy.collections), ...Object.keys(policy.collections)]);
    const before = new Map([...names].map((c) => [c, this.resolverFor(c).name]));
    this.usePolicy(policy, text);
    let resettled = 0;
    for (const collection of [...names].sort()) {
      const resolver = this.resolverFor(collection);
      if (resolver.name === before.get(collection)) continue;
      const changed = await this.store.resettle(
        collection,
        (heads) => settleHeads(resolver, heads, collection, heads[0]?.id ?? ''),
        this.clock.now(),
      );
      resettled += changed.length;
      if (changed.length > 0)
        this.logger.info(
          { collection, strategy: resolver.name, records: changed.length },
          'conflicts settled again',
        );
      for (const record of changed) this.events.emit('change', { ...record, origin: 'local' });
    }
    this.events.emit('policy', policy);
    return resettled;
  }

  /** Calls `listener` after every committed change to a record's state. Returns an unsubscribe function. */
  subscribe(listener: (event: ChangeEvent) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  // --- records -------------------------------------------------------------

  /** Creates or replaces a record. */
  async put(collection: string, id: string, body: JsonObject): Promise<WriteResult> {
    const [result] = await this.writeMany([{ op: 'put', collection, id, body }]);
    return result as WriteResult;
  }

  /** Creates a record with a fresh ULID id. */
  async create(collection: string, body: JsonObject): Promise<WriteResult> {
    return this.put(collection, newRecordId(), body);
  }

  /** Deletes a record (writes a tombstone, which syncs like any write). */
  async delete(collection: string, id: string): Promise<WriteResult> {
    const [result] = await this.writeMany([{ op: 'delete', collection, id }]);
    return result as WriteResult;
  }

  /**
   * Several writes in one transaction: all are durable together or none is. A
   * validation error in any write fails the whole call before anything is stored.
   */
  async writeMany(
    ops: readonly WriteOp[],
    options: { allowReserved?: boolean } = {},
  ): Promise<WriteResult[]> {
    this.assertStarted();
    for (const op of ops) {
      assertCollectionName(op.collection, options.allowReserved);
      assertRecordId(op.id);
      // A put never deletes: only an explicit delete writes a tombstone.
      if (op.op === 'put' && !isJsonObject(op.body)) encodeBody(op.body, this.maxRecordBytes);
    }
    return this.exclusive(async () => {
      const revisions: IncomingRevision[] = [];
      const pending = new Map<string, StoredRevision[]>();
      for (const op of ops) {
        const key = `${op.collection}\u0000${op.id}`;
        const heads = pending.get(key) ?? (await this.store.heads(op.collection, op.id));
        const revision = this.buildLocalRevision(
          op.collection,
          op.id,
          op.op === 'put' ? op.body : null,
          heads,
        );
        revisions.push({ revision, local: this.isLocalOnly(op.collection) });
        // A later op on the same record in this call supersedes this one.
        pending.set(key, [{ ...revision, seq: 0 as Seq, head: true, local: false, source: undefined }]);
      }
      const result = await this.store.apply({
        revisions,
        reduce: this.reducer,
        now: this.clock.now(),
      });
      this.emit(result.applied, 'local');
      return result.applied.map((a) => {
        if (!a.record) throw new Error(`local write ${a.revision.rev} did not become a head`);
        return {
          collection: a.revision.collection,
          id: a.revision.id,
          rev: a.revision.rev,
          seq: a.seq,
          record: a.record,
        };
      });
    });
  }

  async get(collection: string, id: string): Promise<RecordView | undefined> {
    this.assertStarted();
    const record = await this.store.getRecord(collection, id);
    return record && !record.deleted ? record : undefined;
  }

  /** Records of a collection in id order; page with `after` (the last id of the previous page). */
  async list(
    collection: string,
    query: { after?: string; limit?: number; includeDeleted?: boolean } = {},
  ): Promise<RecordView[]> {
    this.assertStarted();
    return this.store.listRecords(collection, {
      ...query,
      limit: Math.min(Math.max(query.limit ?? 100, 1), 10_000),
    });
  }

  async collections(): Promise<string[]> {
    this.assertStarted();
    return this.store.listCollections();
  }

  // --- history, revert, conflicts --------------------------------------------

  /** Every known revision of a record, oldest first. */
  async history(collection: string, id: string): Promise<HistoryEntry[]> {
    this.assertStarted();
    const [revisions, record] = await Promise.all([
      this.store.history(collection, id),
      this.store.getRecord(collection, id),
    ]);
    return revisions.map((r) => ({
      rev: r.rev,
      author: r.author,
      hlc: r.hlc,
      time: hlcTime(r.hlc),
      bodyHash: r.bodyHash,
      deleted: r.deleted,
      body: r.body,
      pruned: r.pruned === true,
      parents: r.parents,
      head: r.head,
      current: record?.rev === r.rev,
      seq: r.seq,
    }));
  }

  /** Writes an old revision's content as a new revision (a tombstone deletes). Accepts a unique rev prefix. */
  async revert(collection: string, id: string, rev: string): Promise<WriteResult> {
    this.assertStarted();
    const target = await this.findRevision(collection, id, rev);
    if (target.pruned) throw new RevisionPrunedError(target.rev);
    return target.deleted ? this.delete(collection, id) : this.put(collection, id, target.body as JsonObject);
  }

  async conflicts(
    filter: { status?: ConflictRecord['status']; collection?: string } = {},
  ): Promise<ConflictRecord[]> {
    this.assertStarted();
    return this.store.listConflicts(filter);
  }

  /**
   * Settles a conflict with a write that supersedes every head: either one of the
   * heads' content (`{ rev }`, a unique prefix is enough) or a new body (null deletes).
   */
  async resolve(
    collection: string,
    id: string,
    choice: { rev: string } | { body: JsonObject | null },
  ): Promise<WriteResult> {
    this.assertStarted();
    const heads = await this.store.heads(collection, id);
    if (heads.length < 2) throw new NoConflictError(collection, id);
    if ('rev' in choice) {
      const target = await this.findRevision(collection, id, choice.rev);
      return target.deleted
        ? this.delete(collection, id)
        : this.put(collection, id, target.body as JsonObject);
    }
    return choice.body === null ? this.delete(collection, id) : this.put(collection, id, choice.body);
  }

  private async findRevision(collection: string, id: string, rev: string): Promise<StoredRevision> {
    const all = await this.store.history(collection, id);
    if (all.length === 0) throw new RecordNotFoundError(collection, id);
    const matches = all.filter((r) => r.rev.startsWith(rev.toLowerCase()));
    if (matches.length > 1) throw new AmbiguousRevisionError(rev, matches.length);
    const found = matches[0];
    if (!found || rev.length < 4) throw new RevisionNotFoundError(collection, id, rev);
    return found;
  }

  /** Drops revision bodies the retention policy no longer keeps (never a head). */
  async prune(policy: RetentionPolicy | undefined = this.retention()): Promise<number> {
    this.assertStarted();
    if (!policy) return 0;
    return this.exclusive(() => this.store.prune(policy, this.clock.now()));
  }

  async stats(): Promise<StoreStats> {
    this.assertStarted();
    return this.store.stats();
  }

  // --- sync primitives ---------------------------------------------------------

  async latestSeq(): Promise<Seq> {
    this.assertStarted();
    return this.store.latestSeq();
  }

  /**
   * How many revisions after `since` would go to `peer` (its outbox): not
   * local-only, and not received from that peer's current change log.
   */
  async pendingSince(since: Seq, peer?: PeerLog): Promise<number> {
    this.assertStarted();
    return this.store.countChanges(since, peer);
  }

  /** A small persistent note of this replica (e.g. a peer's last acknowledgement). */
  async getNote(key: string): Promise<string | undefined> {
    this.assertStarted();
    return this.store.getMeta(`note:${key}`);
  }

  async setNote(key: string, value: string): Promise<void> {
    this.assertStarted();
    await this.store.setMeta(`note:${key}`, value);
  }

  /** This replica's change log identity. */
  async changeLog(): Promise<ChangeLogInfo> {
    this.assertStarted();
    return this.store.changeLog();
  }

  /**
   * True when `peer` announces a change log it had already replaced by another: its
   * store was restored from an older copy (see ChangeLogRolledBackError).
   */
  async isRetiredLog(peer: DeviceId, log: string): Promise<boolean> {
    this.assertStarted();
    return this.store.isRetiredLog({ device: peer, log });
  }

  /**
   * Gives this replica's change log a new identity, if it still has `current` (a
   * peer found it rolled back): every peer's cursor for it then restarts from 0.
   */
  async rotateChangeLog(current: string): Promise<ChangeLogInfo> {
    this.assertStarted();
    return this.exclusive(async () => {
      const log = await this.store.changeLog();
      if (log.id !== current) return log;
      this.logger.warn({ log: current }, 'a peer found this store rolled back to an older copy');
      return this.store.rotateChangeLog(this.clock.now());
    });
  }

  /** True when `cursor` is a position of this node's log `cursor.log` that this store gave a peer (its issue mark). */
  async gaveCursor(cursor: PeerCursor): Promise<boolean> {
    this.assertStarted();
    return this.store.issued(cursor.log, cursor.seq, cursor.check);
  }

  /** How far this replica has applied `peer`'s change log (which log, which position). */
  async cursorFor(peer: DeviceId): Promise<PeerCursor> {
    this.assertStarted();
    return this.currentCursor(peer);
  }

  private async currentCursor(peer: DeviceId): Promise<PeerCursor> {
    const stored = await this.store.getCursor(peer);
    const lazy = this.lazyCursors.get(peer);
    if (!lazy) return stored;
    return lazy.log !== stored.log || lazy.seq > stored.seq ? lazy : stored;
  }

  /**
   * Decides where to send this replica's change log to `peer` from, given the
   * peer's cursor for it. The cursor is used only if it names this log, does not
   * point past its end, and its checkpoint token matches the revision at that
   * position. Otherwise the peer restarts from 0 and skips what it already holds by
   * hash. A cursor that names this log but does not match it means this store was
   * rolled back (restored from an older copy) and reused positions the peer has
   * seen: the log gets a new identity, so every peer restarts.
   */
  async openFor(
    peer: DeviceId,
    theirs: PeerCursor,
    options: { resendFrom?: number } = {},
  ): Promise<LogStart> {
    this.assertStarted();
    return this.exclusive(async () => {
      let log = await this.store.changeLog();
      const latest = await this.store.latestSeq();
      let from = 0 as Seq;
      let restart: LogStart['restart'];
      if (theirs.seq > 0) {
        if (theirs.log !== log.id) {
          restart = 'other-log';
        } else if (
          theirs.seq <= latest &&
          samePosition(await this.store.checkpoint(theirs.seq), theirs.check)
        ) {
          from = theirs.seq;
        } else if (await this.store.issued(log.id, theirs.seq, theirs.check)) {
          restart = 'rolled-back';
          this.logger.warn(
            { peer, cursor: theirs.seq, latest },
            'a peer has seen positions of this change log that it no longer holds: the store was rolled back; the log gets a new identity',
          );
          log = await this.store.rotateChangeLog(this.clock.now());
        } else {
          // Not a position this log handed out (made up, or from before tokens carried
          // their issue mark): no reason to believe this store lost anything, nor to
          // make every peer start over. This peer alone gets the log from its start.
          restart = 'unverified';
          this.logger.warn(
            { peer, cursor: theirs.seq, latest },
            'a peer presented a position of this change log that it cannot have been given; it gets the log from the start',
          );
        }
      }
      if (options.resendFrom !== undefined && options.resendFrom < from) from = options.resendFrom as Seq;
      return { log: log.id, latest, from, ...(restart && { restart }) };
    });
  }

  /**
   * Protocol version 1 (no log identities): where to send this log to `peer` from,
   * given the bare position it asked for (0 when past this log's end). Its cursor
   * for the peer's log is kept under V1_PEER_LOG; a cursor that a migration left
   * without a log (written by version 1) is taken as that one.
   */
  async openForV1(peer: DeviceId, seq: number, options: { resendFrom?: number } = {}): Promise<LogStart> {
    this.assertStarted();
    return this.exclusive(async () => {
      const log = await this.store.changeLog();
      const latest = await this.store.latestSeq();
      let from = (seq <= latest ? seq : 0) as Seq;
      if (options.resendFrom !== undefined && options.resendFrom < from) from = options.resendFrom as Seq;
      const mine = await this.currentCursor(peer);
      if (mine.log === '' && mine.seq > 0)
        await this.store.setCursor(peer, { log: V1_PEER_LOG, seq: mine.seq, check: '' });
      return { log: log.id, latest, from };
    });
  }

  /** Writes the lazy cursor moves a second from now on the clock, unless already due. */
  private scheduleCursorFlush(): void {
    if (this.lazyFlush) return;
    this.lazyFlush = this.clock.setTimeout(() => {
      this.lazyFlush = undefined;
      this.exclusive(() => this.flushLazyCursors()).catch((err: unknown) => {
        // Kept in memory: the next try writes them (a full disk clears, a lock ends).
        this.logger.warn({ err, pending: this.lazyCursors.size }, 'saving cursors failed; trying again');
        if (this.started) this.scheduleCursorFlush();
      });
    }, 1000);
  }

  private async flushLazyCursors(): Promise<void> {
    this.lazyFlush?.cancel();
    this.lazyFlush = undefined;
    const pending = [...this.lazyCursors];
    if (pending.length === 0) return;
    // One transaction for them all: a hub with many children moves many cursors at once.
    // They leave memory only once written: dropped on a failed write, the stored
    // (older) cursor would come back and the peer's next batch would be a gap.
    await this.store.setCursors(pending);
    for (const [peer, cursor] of pending)
      if (this.lazyCursors.get(peer) === cursor) this.lazyCursors.delete(peer);
  }

  /**
   * The change log after `since`, for a peer: local-only revisions and those
   * received from the peer's current log left out; `check` is the checkpoint of `upTo`.
   */
  async changesSince(request: ChangesRequest): Promise<ChangeBatch> {
    this.assertStarted();
    // A collection made local-only since it was written: what it already logged stays here too.
    const readable = request.collections;
    const collections = this.policyHasLocalOnly
      ? (c: string) => !this.isLocalOnly(c) && (readable?.(c) ?? true)
      : readable;
    return this.store.changesSince({
      since: request.since,
      limit: request.limit ?? 1000,
      maxBytes: request.maxBytes ?? 1024 * 1024,
      ...(request.peer !== undefined && { excludeSource: request.peer }),
      ...(collections !== undefined && { collections }),
      ...(request.collectionIn !== undefined && { collectionIn: request.collectionIn }),
      ...(request.origin && { origin: true }),
    });
  }

  /**
   * Applies a batch of `peer`'s change log `batch.log` and moves the cursor for it
   * to `batch.upTo`, in one transaction. Each invalid revision is refused alone
   * (reported in `rejected`); the rest apply. A batch that starts after the cursor
   * is refused whole (SYNC_GAP); a cursor for another log of the peer counts as 0.
   * Re-delivery of a batch changes nothing.
   */
  async applyChanges(peer: DeviceId, batch: ReceivedBatch, options: ApplyOptions = {}): Promise<ApplyReport> {
    this.assertStarted();
    return this.exclusive(async () => {
      const current = await this.currentCursor(peer);
      const at = current.log === batch.log ? current.seq : 0;
      if (batch.since > at) throw new SyncGapError(batch.since, at);
      const cursor: PeerCursor =
        batch.upTo >= at || current.log !== batch.log
          ? { log: batch.log, seq: batch.upTo, check: batch.check }
          : current;
      if (batch.revisions.length === 0) {
        this.lazyCursors.set(peer, cursor);
        this.scheduleCursorFlush();
        return { applied: 0, duplicates: 0, rejected: [], cursor: cursor.seq };
      }
      const rejected: RejectedRevision[] = [];
      const incoming: IncomingRevision[] = [];
      let held = 0;
      const now = this.clock.now();
      for (const raw of batch.revisions) {
        try {
          const { revision, bodyText } = verifyRevision(raw, this.maxRecordBytes);
          if (this.isLocalOnly(revision.collection)) throw new LocalOnlyCollectionError(revision.collection);
          const ahead = hlcTime(revision.hlc) - now;
          if (ahead > this.maxSkewMs) throw new ClockSkewError(revision.rev, ahead, this.maxSkewMs);
          // No await without a check to wait for: it would cost a turn of the microtask queue per revision.
          const refusal = options.admit === undefined ? undefined : await options.admit(revision);
          if (refusal) {
            // A peer may offer back a revision this node already holds (after its
            // own store was recreated): that is a duplicate, not a refused write.
            if (await this.store.getRevision(revision.collection, revision.id, revision.rev)) {
              held++;
              continue;
            }
            throw refusal;
          }
          incoming.push(
            bodyText === undefined ? { revision, local: false } : { revision, local: false, bodyText },
          );
        } catch (err) {
          if (!isTrosynError(err)) throw err;
          const r = (raw ?? {}) as Partial<Revision>;
          // The peer's own strings, cut to what a sync.ack may carry.
          const cut = (v: unknown) => String(v).slice(0, MAX_REJECTED_FIELD);
          rejected.push({
            rev: cut(r.rev),
            collection: cut(r.collection),
            id: cut(r.id),
            code: err.code,
            message: cut(err.message),
          });
        }
      }
      const result = await this.store.apply({
        revisions: incoming,
        source: { device: peer, log: batch.log },
        cursor,
        reduce: this.reducer,
        now,
      });
      this.lazyCursors.delete(peer);
      for (const { revision } of result.applied) this.hlc.observe(revision.hlc);
      rejected.push(...result.rejected);
      if (rejected.length > 0)
        this.logger.warn({ peer, rejected: rejected.length, first: rejected[0] }, 'revisions refused');
      this.emit(result.applied, peer);
      return {
        applied: result.applied.length,
        duplicates: result.duplicates + held,
        rejected,
        cursor: cursor.seq,
      };
    });
  }

  // --- internals -----------------------------------------------------------------

  private buildLocalRevision(
    collection: string,
    id: string,
    body: JsonObject | null,
    heads: readonly StoredRevision[],
  ): Revision {
    const hlc = this.hlc.now();
    const live = heads.filter((h) => !h.deleted);
    let fields: Record<string, string> | undefined;
    if (body !== null && this.resolverFor(collection).name === 'merge') {
      // Keep each unchanged field's clock, so a concurrent change elsewhere still wins over it.
      const { body: before, clocks } = live.length > 0 ? mergeFields(live) : { body: {}, clocks: {} };
      fields = {};
      for (const name of new Set([...Object.keys(body), ...Object.keys(clocks)])) {
        const had = Object.hasOwn(before, name);
        const has = Object.hasOwn(body, name);
        const unchanged = had === has && (!has || jsonEqual(before[name], body[name]));
        const clock = Object.hasOwn(clocks, name) ? clocks[name] : undefined;
        setField(fields, name, unchanged && clock !== undefined ? clock : hlc);
      }
    }
    return createRevision({
      collection,
      id,
      parents: heads.map((h) => h.rev),
      vv: incrementVector(joinVectors(heads.map((h) => h.vv)), this.deviceId),
      hlc,
      author: this.deviceId,
      hub: this.role === 'hub',
      body,
      ...(fields !== undefined && { fields }),
      maxBodyBytes: this.maxRecordBytes,
    });
  }

  /** Reports records changed by other processes since the last look, as local changes. */
  private async reportExternalWrites(): Promise<void> {
    if (!this.started) return;
    // Without the capability every look reads the log: own writes are told apart below.
    const version = this.store.dataVersion ? await this.store.dataVersion() : Number.NaN;
    if (version === this.dataVersion) {
      // Nothing committed by anyone else: everything up to here is this process's own.
      this.checkedSeq = await this.store.latestSeq();
      this.ownRevs.clear();
      return;
    }
    this.dataVersion = version;
    // Another process (the CLI) may have changed the policy.
    const policyText = await this.store.getMeta(POLICY_META);
    if (policyText !== undefined && policyText !== this.policyText) {
      try {
        await this.adoptPolicy(parseSyncPolicy(JSON.parse(policyText)), policyText);
      } catch (err) {
        this.policyText = policyText;
        this.logger.error(
          { err },
          'the collection policy another process stored is unreadable; keeping the one in force',
        );
      }
    }
    const latest = await this.store.latestSeq();
    if (latest <= this.checkedSeq) return;
    let since = this.checkedSeq as Seq;
    const changed = new Map<string, { collection: string; id: string }>();
    for (let guard = 0; guard < 1000; guard++) {
      const batch = await this.store.changesSince({ since, limit: 1000, maxBytes: 8 * 1024 * 1024 });
      for (const r of batch.revisions) {
        if (this.ownRevs.has(r.rev)) continue;
        changed.set(`${r.collection}\u0000${r.id}`, { collection: r.collection, id: r.id });
      }
      since = batch.upTo;
      if (!batch.more) break;
    }
    this.checkedSeq = latest;
    for (const [rev, seq] of this.ownRevs) if (seq <= latest) this.ownRevs.delete(rev);
    for (const k of changed.values()) {
      const record = await this.store.getRecord(k.collection, k.id);
      if (!record) continue;
      this.events.emit('change', {
        collection: record.collection,
        id: record.id,
        rev: record.rev,
        seq: record.seq,
        deleted: record.deleted,
        body: record.body,
        conflict: record.conflict,
        origin: 'local',
      });
    }
  }

  private emit(applied: readonly AppliedRevision[], origin: 'local' | DeviceId): void {
    for (const a of applied) {
      if (this.watcher && a.seq > this.checkedSeq) this.ownRevs.set(a.revision.rev, a.seq);
      if (!a.record) continue;
      const event: ChangeEvent = {
        collection: a.record.collection,
        id: a.record.id,
        rev: a.record.rev,
        seq: a.seq,
        deleted: a.record.deleted,
        body: a.record.body,
        conflict: a.record.conflict,
        origin,
      };
      try {
        this.events.emit('change', event);
      } catch (err) {
        this.logger.error({ err }, 'change listener threw');
      }
    }
  }

  /** Runs store work one call at a time, so a write's heads cannot change under it. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertStarted(): void {
    if (!this.started) throw new NotStartedError('the replica');
  }
}
