import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isTrosynError, type TrosynError } from '../errors.js';
import { type Clock, systemClock, type Timer } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { SyncChangesMessage, SyncMessage, SyncStartMessage } from '../protocol/messages.js';
import type { DeviceId, PeerCursor, RejectedRevision, Revision, Seq } from '../store/types.js';
import { V1_PEER_LOG } from '../protocol/constants.js';
import type { MessageChannel } from './channel.js';
import { ChangeLogRolledBackError, SyncGapError, SyncProtocolError } from './errors.js';
import type { FanOut, SharedChanges } from './fan-out.js';
import type { ChangeEvent, LogStart, Replica } from './replica.js';

export interface SyncSessionOptions {
  replica: Replica;
  channel: MessageChannel<SyncMessage>;
  /** The device at the other end (authenticated by the transport). */
  peer: DeviceId;
  /** Send this replica's changes to the peer. Default true. */
  send?: boolean;
  /** Apply the peer's changes here. Default true. */
  receive?: boolean;
  /** Keep streaming new changes after catching up. Default true. */
  live?: boolean;
  /** Most revisions per batch. Default 1000. */
  batchSize?: number;
  /** Body bytes per batch before it is cut. Default 1 MiB. */
  batchBytes?: number;
  /** Batches sent but not yet acknowledged; bounds memory on both sides. Default 4. */
  window?: number;
  /**
   * In live mode, how long (ms) to hold a batch that carries no revisions (only a
   * cursor move past the peer's own changes) so that bursts share one. Default 250.
   */
  cursorFlushMs?: number;
  /** Read scope: only collections this accepts are sent. */
  readable?: (collection: string) => boolean;
  /**
   * Share the reading and encoding of batches with the sessions of other peers
   * (the hub's fan-out): `scope` names the read scope, and sessions with the same
   * `scope` must have the same `readable`.
   */
  share?: { fanOut: FanOut; scope: string };
  /**
   * A limit on the peer's writes (the hub's per-device write limit): called with each
   * batch of revisions the peer sends (not one that only moves its cursor), before it is applied, it returns how long (ms) to hold that
   * batch first; 0 applies it at once. A held batch stays unacknowledged and the
   * carrier reads no further messages meanwhile, so the peer, its window full, sends
   * slower and packs more into each batch: nothing is refused or lost. The hold is a
   * timer on `clock` (other sessions go on) and ends early if the session closes.
   */
  throttle?: (batch: { revisions: number }) => number;
  /** Write scope: a revision this refuses is rejected alone, with the returned error. */
  admit?: (revision: Revision) => TrosynError | undefined | Promise<TrosynError | undefined>;
  /**
   * Send from this position even when the peer's cursor is further on (e.g. 0 after
   * its read scope widened, so it gets older revisions it may now read). The peer
   * skips what it already has.
   */
  resendFrom?: number;
  /**
   * The protocol version the connection negotiated. Version 1 peers (release 0.1.0)
   * know no change log identities: their `sync.open` carries bare positions, they
   * send no `sync.start`, and their batches carry no `log` or `check`.
   * @default the newest this build speaks
   */
  version?: number;
  logger?: Logger;
  /** The cursor flush's timer runs on it. Default: the system clock. */
  clock?: Clock;
}

export interface SyncSessionStats {
  /** Revisions sent to the peer. */
  sent: number;
  /** Revisions received from the peer and applied here. */
  applied: number;
  /** Revisions received that were already here. */
  duplicates: number;
  /** Revisions of ours the peer refused, and of the peer's we refused. */
  refusedByPeer: number;
  refusedHere: number;
  /** Last position of our change log the peer acknowledged, and of the peer's we applied. */
  ackedUpTo: number;
  appliedUpTo: number;
  /** The peer's latest sequence number when the session opened. */
  peerLatest: number;
  /**
   * Why this node sends its change log from 0 although the peer had a cursor: the
   * cursor was for an older log of this node, or this store was found rolled back.
   */
  restart?: LogStart['restart'];
}

type Events = {
  /** Both directions have caught up (emitted each time the session becomes idle again). */
  'caught-up': [];
  /** A batch was applied or acknowledged. */
  progress: [SyncSessionStats];
  /** The peer refused some of our revisions (e.g. outside its write scope). */
  refused: [RejectedRevision[]];
  /** This side refused some of the peer's revisions (e.g. outside the peer's write scope). */
  rejected: [RejectedRevision[]];
  /** This node sends its change log from 0 although the peer had a cursor (see SyncSessionStats.restart). */
  restart: [NonNullable<LogStart['restart']>];
  closed: [Error | undefined];
};

/**
 * One sync exchange with one peer over a message channel: each side announces its
 * cursor for the other, then streams the change log from there in acknowledged
 * batches. Resumes from cursors after any interruption; re-delivered batches are
 * no-ops. The same class runs on hub and child.
 */
export class SyncSession extends EventEmitter<Events> {
  readonly peer: DeviceId;
  private readonly replica: Replica;
  private readonly channel: MessageChannel<SyncMessage>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly o: Required<
    Pick<
      SyncSessionOptions,
      'send' | 'receive' | 'live' | 'batchSize' | 'batchBytes' | 'window' | 'cursorFlushMs'
    >
  >;
  private readonly readable: SyncSessionOptions['readable'];
  private readonly share: SyncSessionOptions['share'];
  private readonly admit: SyncSessionOptions['admit'];
  private readonly throttle: SyncSessionOptions['throttle'];
  /** The peer's batch held back by `throttle` now, if any. */
  private holding: { timer: Timer; release: () => void } | undefined;
  private readonly resendFrom: number | undefined;
  /** Speaking protocol version 1 with this peer. */
  private readonly v1: boolean;
  private readonly stats: SyncSessionStats = {
    sent: 0,
    applied: 0,
    duplicates: 0,
    refusedByPeer: 0,
    refusedHere: 0,
    ackedUpTo: 0,
    appliedUpTo: 0,
    peerLatest: 0,
  };
  private opened = false;
  private closed = false;
  private peerWantsChanges = false;
  /** Where this side sends its log from, decided on the peer's `sync.open`. */
  private logStart: LogStart | undefined;
  /** The peer's change log identity, from its `sync.start`. */
  private peerLog: string | undefined;
  private sentUpTo = 0;
  /**
   * The highest position of the log this session knows of (the log's end when it
   * began sending, then each change it hears of): a batch must reach it to be the last.
   */
  private heardUpTo = 0;
  /**
   * The last read found the end of the log (or a cursor move is waiting for its
   * flush) and no change came since: an acknowledgement then needs no new read.
   */
  private drained = false;
  private inflight = 0;
  private pumping = false;
  private wake = false;
  private outboundIdle = false;
  private inboundIdle = false;
  private caughtUp = false;
  private flushTimer: Timer | undefined;
  /** Open, start and changes are handled one at a time, in the order they came. */
  private inbox: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private caughtUpWaiters: Array<() => void> = [];

  constructor(options: SyncSessionOptions) {
    super();
    this.replica = options.replica;
    this.channel = options.channel;
    this.peer = options.peer;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.readable = options.readable;
    this.share = options.share;
    this.admit = options.admit;
    this.throttle = options.throttle;
    this.resendFrom = options.resendFrom;
    this.v1 = options.version === 1;
    this.o = {
      send: options.send ?? true,
      receive: options.receive ?? true,
      live: options.live ?? true,
      batchSize: options.batchSize ?? 1000,
      batchBytes: options.batchBytes ?? 1024 * 1024,
      window: options.window ?? 4,
      cursorFlushMs: options.cursorFlushMs ?? 250,
    };
  }

  /** Opens the session: installs handlers and tells the peer how far this side has applied its log. */
  async start(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    this.channel.onMessage((m) => this.onMessage(m));
    this.channel.onClose((cause) => {
      // A carrier that reads the peer's `error` itself (over TLS the connection
      // closes on it) hands it over as the cause: the peer's word that this log was
      // replaced counts as much as the message. Our own refusal has the same code.
      if (
        (cause as { code?: unknown } | undefined)?.code === 'CHANGE_LOG_ROLLED_BACK' &&
        !(cause instanceof ChangeLogRolledBackError)
      )
        this.takeNewLog((cause as { details?: Record<string, unknown> }).details).catch((err: unknown) =>
          this.logger.warn({ peer: this.peer, err }, 'could not give the change log a new identity'),
        );
      this.onClosed(cause);
    });
    this.inboundIdle = !this.o.receive;
    const cursor: PeerCursor = await this.replica.cursorFor(this.peer);
    this.logger.debug({ cursor: cursor.seq, protocol: this.v1 ? 1 : 2 }, 'sync session opened');
    if (this.v1) {
      // A cursor without a log was written by version 1 (a migration kept its position).
      const seq = cursor.log === V1_PEER_LOG || cursor.log === '' ? cursor.seq : 0;
      await this.channel.send({
        type: 'sync.open',
        cursor: seq,
        latest: await this.replica.latestSeq(),
        ...(this.o.receive ? {} : { receive: false }),
      });
      return;
    }
    await this.channel.send({
      type: 'sync.open',
      cursor,
      ...(this.o.receive ? {} : { receive: false }),
    });
  }

  /** Ends the session and closes its channel. */
  async stop(cause?: Error): Promise<void> {
    this.channel.close(cause);
    this.onClosed(cause);
  }

  isClosed(): boolean {
    return this.closed;
  }

  isCaughtUp(): boolean {
    return this.caughtUp;
  }

  getStats(): Readonly<SyncSessionStats> {
    return { ...this.stats };
  }

  /** The change log identities in use: this node's (as sent) and the peer's, once known. */
  logs(): { mine: string | undefined; peer: string | undefined } {
    return { mine: this.logStart?.log, peer: this.peerLog };
  }

  /** Resolves once both directions have caught up (immediately if they have). */
  whenCaughtUp(): Promise<void> {
    if (this.caughtUp) return Promise.resolve();
    if (this.closed)
      return Promise.reject(
        new SyncProtocolError('SESSION_CLOSED', 'the sync session closed before catching up'),
      );
    return new Promise((resolve, reject) => {
      this.caughtUpWaiters.push(resolve);
      this.once('closed', (cause) =>
        reject(
          cause ?? new SyncProtocolError('SESSION_CLOSED', 'the sync session closed before catching up'),
        ),
      );
    });
  }

  /**
   * Returns the handling of `sync.open`, `sync.start` and `sync.changes`, so the
   * carrier can hold back reading until it is done.
   */
  private onMessage(message: SyncMessage): void | Promise<void> {
    if (this.closed) return;
    switch (message.type) {
      case 'sync.open': {
        const { cursor } = message;
        if ((typeof cursor === 'number') !== this.v1)
          return this.serial(async () => {
            throw new SyncProtocolError(
              'INVALID_MESSAGE',
              `sync.open in the shape of protocol version ${typeof cursor === 'number' ? 1 : 2} on a version ${this.v1 ? 1 : 2} connection`,
            );
          });
        return this.serial(() =>
          typeof cursor === 'number'
            ? this.onOpenV1(cursor, message.latest ?? 0, message.receive !== false)
            : this.onOpen(cursor as PeerCursor, message.receive !== false),
        );
      }
      case 'sync.start':
        if (this.v1)
          return this.serial(async () => {
            throw new SyncProtocolError('UNEXPECTED_MESSAGE', 'sync.start is not part of protocol version 1');
          });
        return this.serial(() => this.onStart(message));
      case 'sync.changes':
        return this.serial(() => this.onChanges(message));
      case 'sync.ack':
        // One ack per batch: before this side has sent one (before the peer's
        // sync.start, say), or once all are acknowledged, an ack has nothing to answer.
        if (this.inflight === 0) {
          this.sendError(new SyncProtocolError('UNEXPECTED_MESSAGE', 'sync.ack with no batch awaiting one'));
          return;
        }
        this.onAck(message.upTo, message.rejected);
        return;
      case 'error':
        if (message.code === 'CHANGE_LOG_ROLLED_BACK' && this.logStart) {
          return this.takeNewLog(message.details).then(
            () =>
              this.fail(new SyncProtocolError(message.code, `peer closed the session: ${message.message}`)),
            (err: unknown) => this.fail(err),
          );
        }
        this.fail(new SyncProtocolError(message.code, `peer closed the session: ${message.message}`));
        return;
      default:
        this.sendError(
          new SyncProtocolError(
            'UNEXPECTED_MESSAGE',
            `unexpected message type ${(message as { type: unknown }).type}`,
          ),
        );
    }
  }

  /**
   * The peer knows the log this session sent from as one replaced before
   * (CHANGE_LOG_ROLLED_BACK): this store was rolled back, and the log takes a new
   * identity if it still has that one. Only if the peer shows a position of the
   * newer log that this store gave it (`details.newer`, checked by its issue mark):
   * a peer cannot make a node replace its log, and every peer start over, by
   * saying so. One that shows none is told nothing and keeps being refused by it.
   */
  private async takeNewLog(details: Record<string, unknown> | undefined): Promise<void> {
    const log = this.logStart?.log;
    if (log === undefined) return;
    const newer = details?.newer as { log?: unknown; seq?: unknown; check?: unknown } | undefined;
    const shown =
      typeof newer?.log === 'string' &&
      newer.log !== log &&
      Number.isSafeInteger(newer.seq) &&
      typeof newer.check === 'string' &&
      (await this.replica.gaveCursor({ log: newer.log, seq: newer.seq as Seq, check: newer.check }));
    if (!shown) {
      this.logger.warn(
        { peer: this.peer, log },
        'the peer says this change log was replaced before, but shows no position of a newer one that this store gave: the log keeps its identity',
      );
      return;
    }
    const info = await this.replica.rotateChangeLog(log);
    if (info.id !== log) this.emit('restart', 'rolled-back');
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    this.inbox = this.inbox.then(async () => {
      if (this.closed) return;
      try {
        await fn();
      } catch (err) {
        if (isTrosynError(err)) this.sendError(err);
        else this.fail(err);
      }
    });
    return this.inbox;
  }

  /** The peer's cursor for this node's log: decide where to send from, and say so. */
  private async onOpen(cursor: PeerCursor, peerReceives: boolean): Promise<void> {
    if (this.logStart) throw new SyncProtocolError('UNEXPECTED_MESSAGE', 'sync.open sent twice');
    const start = await this.replica.openFor(
      this.peer,
      cursor as PeerCursor,
      this.resendFrom === undefined ? {} : { resendFrom: this.resendFrom },
    );
    if (this.closed) return;
    this.logStart = start;
    if (start.restart) {
      this.stats.restart = start.restart;
      this.logger.info(
        { peer: this.peer, reason: start.restart, cursor: cursor.seq },
        'the peer gets this change log from its beginning',
      );
      this.emit('restart', start.restart);
    }
    this.peerWantsChanges = this.o.send && peerReceives;
    this.sentUpTo = start.from;
    this.stats.ackedUpTo = start.from;
    await this.channel.send({ type: 'sync.start', log: start.log, latest: start.latest, from: start.from });
    this.beginSending();
  }

  /**
   * Version 1: the peer's bare position in this log and its latest. It sends no
   * `sync.start`: it sends its log from where this side's `sync.open` said, and its
   * log is known by V1_PEER_LOG.
   */
  private async onOpenV1(seq: number, latest: number, peerReceives: boolean): Promise<void> {
    if (this.logStart) throw new SyncProtocolError('UNEXPECTED_MESSAGE', 'sync.open sent twice');
    const start = await this.replica.openForV1(
      this.peer,
      seq,
      this.resendFrom === undefined ? {} : { resendFrom: this.resendFrom },
    );
    if (this.closed) return;
    this.logStart = start;
    this.peerWantsChanges = this.o.send && peerReceives;
    this.sentUpTo = start.from;
    this.stats.ackedUpTo = start.from;
    this.peerLog = V1_PEER_LOG;
    this.stats.peerLatest = latest;
    if (this.o.receive) {
      const mine = await this.replica.cursorFor(this.peer);
      const at = mine.log === V1_PEER_LOG ? mine.seq : 0;
      this.stats.appliedUpTo = at;
      if (latest <= at) this.inboundIdle = true;
    }
    this.beginSending();
    this.checkCaughtUp();
  }

  /** The peer's log identity, latest position and where it sends from. */
  private async onStart(message: SyncStartMessage): Promise<void> {
    if (!this.logStart || this.peerLog !== undefined)
      throw new SyncProtocolError('UNEXPECTED_MESSAGE', 'sync.start out of turn');
    // A log the peer had replaced by another comes back only from an older copy of its store.
    if (await this.replica.isRetiredLog(this.peer, message.log)) {
      // Our cursor for the peer's newer log is the proof it can check.
      const newer = await this.replica.cursorFor(this.peer);
      throw new ChangeLogRolledBackError(
        message.log,
        newer.log !== message.log && newer.seq > 0 ? newer : undefined,
      );
    }
    this.peerLog = message.log;
    this.stats.peerLatest = message.latest;
    if (this.o.receive) {
      const mine = await this.replica.cursorFor(this.peer);
      const at = mine.log === message.log ? mine.seq : 0;
      if (message.from > at) throw new SyncGapError(message.from, at);
      this.stats.appliedUpTo = message.from;
      if (message.latest <= message.from) this.inboundIdle = true;
    }
    this.beginSending();
    this.checkCaughtUp();
  }

  /** Sends once both are known: where to start (the peer's open) and what to leave out (its start). */
  private beginSending(): void {
    if (!this.logStart || this.peerLog === undefined || this.closed) return;
    if (this.peerWantsChanges) {
      if (this.o.live) this.unsubscribe = this.replica.subscribe((e) => this.onLocalChange(e));
      // What the log held before this session heard of any change: a shared batch
      // read earlier may end short of it, and must not pass for the end of the log.
      this.replica.latestSeq().then(
        (latest) => {
          if (latest > this.heardUpTo) this.heardUpTo = latest;
          void this.pump();
        },
        (err: unknown) => this.fail(err),
      );
    } else {
      this.outboundIdle = true;
      this.checkCaughtUp();
    }
  }

  private onLocalChange(e: ChangeEvent): void {
    if (e.seq > this.heardUpTo) this.heardUpTo = e.seq;
    // The log has grown since the last read found its end: the next acknowledgement
    // reads on (a pump woken now may find the window full and leave it to that).
    this.drained = false;
    if (e.origin === this.peer) {
      // The peer's own change echoed in our log: only the cursor moves; send it lazily.
      this.scheduleFlush();
      return;
    }
    this.outboundIdle = false;
    this.caughtUp = false;
    void this.pump();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = this.clock.setTimeout(() => {
      this.flushTimer = undefined;
      void this.pump(true);
    }, this.o.cursorFlushMs);
  }

  private async pump(flushCursor = false): Promise<void> {
    if (this.pumping) {
      this.wake = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.wake = false;
        while (!this.closed && this.inflight < this.o.window) {
          this.drained = false;
          const { batch, frames } = await this.read();
          if (this.closed) return;
          if (batch.upTo <= this.sentUpTo) {
            this.drained = true;
            break;
          }
          // A batch of nothing but a cursor move waits in live mode, to share one message with others.
          if (batch.revisions.length === 0 && this.outboundIdle && !flushCursor) {
            this.scheduleFlush();
            this.drained = true;
            break;
          }
          const message: SyncChangesMessage = {
            type: 'sync.changes',
            ...(!this.v1 && { log: (this.logStart as LogStart).log, check: batch.check }),
            since: batch.since,
            upTo: batch.upTo,
            more: batch.more,
            revisions: batch.revisions,
          };
          this.sentUpTo = batch.upTo;
          this.inflight++;
          this.stats.sent += batch.revisions.length;
          // A shared batch goes out as the same bytes to every peer of its scope.
          const shared = frames?.(this.v1 ? 'v1' : `v2:${(this.logStart as LogStart).log}`);
          if (shared && this.channel.sendShared) await this.channel.sendShared(message, shared);
          else await this.channel.send(message);
          // A shared batch may have been read before the change that woke this session: go on to it.
          if (!batch.more && batch.upTo >= this.heardUpTo) {
            this.drained = true;
            break;
          }
        }
      } while (this.wake && !this.closed);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
    if (this.inflight === 0) await this.checkOutboundIdle();
  }

  /** The next batch for the peer: shared with its scope when the hub fans out, else read for it alone. */
  private read(): Promise<SharedChanges> {
    const request = {
      since: this.sentUpTo as Seq,
      peer: { device: this.peer, log: this.peerLog as string },
      limit: this.o.batchSize,
      maxBytes: this.o.batchBytes,
      ...(this.readable && { collections: this.readable }),
    };
    if (this.share) return this.share.fanOut.changesSince({ ...request, scope: this.share.scope });
    return this.replica.changesSince(request).then((batch) => ({ batch }));
  }

  private onAck(upTo: number, rejected: RejectedRevision[]): void {
    this.inflight = Math.max(0, this.inflight - 1);
    if (upTo > this.stats.ackedUpTo) this.stats.ackedUpTo = upTo;
    if (rejected.length > 0) {
      this.stats.refusedByPeer += rejected.length;
      this.emit('refused', rejected);
    }
    this.emit('progress', this.getStats());
    // Read on only if the last read left something (the window was full); a new change starts its own.
    if (!this.drained) void this.pump();
    else if (this.inflight === 0 && !this.pumping) void this.checkOutboundIdle();
  }

  private async checkOutboundIdle(): Promise<void> {
    if (this.closed || !this.peerWantsChanges) return;
    const latest = await this.replica.latestSeq().catch(() => 0);
    if (this.inflight === 0 && this.stats.ackedUpTo >= latest) {
      this.outboundIdle = true;
      if (!this.o.live) this.unsubscribe?.();
      this.checkCaughtUp();
    }
  }

  private async onChanges(message: SyncChangesMessage): Promise<void> {
    if (!this.o.receive)
      throw new SyncProtocolError('UNEXPECTED_MESSAGE', 'this side did not ask for changes');
    const log = this.v1 ? V1_PEER_LOG : message.log;
    const check = this.v1 ? '' : message.check;
    if (log === undefined || check === undefined)
      throw new SyncProtocolError(
        'INVALID_MESSAGE',
        'sync.changes without log and check (protocol version 2)',
      );
    if (log !== this.peerLog) {
      throw new SyncProtocolError(
        'UNEXPECTED_MESSAGE',
        `sync.changes of change log ${log.slice(0, 12)}, but the session opened on ${String(this.peerLog).slice(0, 12)}`,
      );
    }
    // A batch that only moves the peer's cursor (past what it got from here) is no write:
    // holding it would also hold the acknowledgements of this side's batches behind it.
    const holdMs =
      message.revisions.length === 0 ? 0 : (this.throttle?.({ revisions: message.revisions.length }) ?? 0);
    if (holdMs > 0) {
      await this.hold(holdMs);
      if (this.closed) return;
    }
    const report = await this.replica.applyChanges(
      this.peer,
      {
        log,
        since: message.since as Seq,
        upTo: message.upTo as Seq,
        check,
        more: message.more,
        revisions: message.revisions,
      },
      this.admit ? { admit: this.admit } : {},
    );
    this.stats.applied += report.applied;
    this.stats.duplicates += report.duplicates;
    this.stats.refusedHere += report.rejected.length;
    this.stats.appliedUpTo = report.cursor;
    if (report.rejected.length > 0) this.emit('rejected', report.rejected);
    if (this.closed) return;
    await this.channel.send({
      type: 'sync.ack',
      upTo: report.cursor,
      applied: report.applied,
      duplicates: report.duplicates,
      rejected: report.rejected,
    });
    if (!message.more && report.cursor >= this.stats.peerLatest) this.inboundIdle = true;
    this.emit('progress', this.getStats());
    this.checkCaughtUp();
  }

  /** Waits `ms` on the session's clock, or until the session closes. */
  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        this.holding = undefined;
        resolve();
      };
      this.holding = { timer: this.clock.setTimeout(release, ms), release };
    });
  }

  private checkCaughtUp(): void {
    if (this.closed || this.caughtUp || !this.inboundIdle || !this.outboundIdle) return;
    this.caughtUp = true;
    const waiters = this.caughtUpWaiters;
    this.caughtUpWaiters = [];
    for (const w of waiters) w();
    this.emit('caught-up');
  }

  private sendError(err: TrosynError): void {
    this.logger.warn({ peer: this.peer, code: err.code, err: err.message }, 'sync session error');
    this.channel
      .send({
        type: 'error',
        code: err.code,
        message: err.message.slice(0, 1024),
        ...(err.details && { details: { ...err.details } }),
      })
      .catch(() => undefined);
    this.fail(err);
  }

  private fail(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (!this.closed && !isTrosynError(error))
      this.logger.error({ peer: this.peer, err: error }, 'sync session failed');
    this.channel.close(error);
    this.onClosed(error);
  }

  private onClosed(cause?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const { sent, applied, duplicates, refusedByPeer, refusedHere } = this.stats;
    this.logger.debug(
      {
        code: (cause as { code?: string } | undefined)?.code,
        sent,
        applied,
        duplicates,
        refusedByPeer,
        refusedHere,
      },
      'sync session closed',
    );
    this.unsubscribe?.();
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    const held = this.holding;
    held?.timer.cancel();
    held?.release();
    this.emit('closed', cause);
  }
}
