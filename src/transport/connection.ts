import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { isErrorCode } from '../error-codes.js';
import { isTrosynError, TrosynError } from '../errors.js';
import { type ClockOffset, measureOffset } from './clock-offset.js';
import { scavenger } from '../scavenge.js';
import { Slabs } from '../slabs.js';
import { type Clock, systemClock, type Timer } from '../lifecycle.js';
import { type FrameCache, MessageCodec } from '../protocol/codec.js';
import type { CompressionCodec } from '../protocol/compression.js';
import { type Frame, FrameDecoder } from '../protocol/frame.js';
import type { Message } from '../protocol/messages.js';
import type { DeviceId } from '../store/types.js';
import {
  ConnectionClosedError,
  fromSocketError,
  HeartbeatTimeoutError,
  RequestTimeoutError,
  TransportError,
  UnknownMethodError,
} from './errors.js';

export interface ConnectionOptions {
  /** The authenticated socket (TLS in production). */
  socket: Socket;
  /**
   * Set when the socket was made with `onread` into a reused buffer: the
   * connection reads through it, copying what it keeps, instead of 'data' events.
   */
  reads?: { attach(sink: (bytes: Buffer) => void): void };
  /** The device at the other end, from its certificate. */
  peer: DeviceId;
  /** Largest frame accepted or sent. */
  maxFrameBytes: number;
  /** Inbound messages waiting for the handler before reading pauses. Default 8. */
  maxQueuedMessages?: number;
  /** Default time a request waits for its response. Default 30 s. */
  requestTimeoutMs?: number;
  logger: Logger;
  /** Time and timers: heartbeats, request time limits, the handshake's limit. Default: the system clock. */
  clock?: Clock;
}

/** Handles one request; its result (or TrosynError) becomes the response. */
export type RequestHandler = (params: unknown, method: string) => Promise<unknown> | unknown;

export interface ConnectionStats {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  connectedAt: number;
  lastReceivedAt: number;
  /** Inbound messages waiting for the handler now. */
  queued: number;
  /** Most inbound messages that ever waited at once. */
  maxQueued: number;
}

type Events = {
  close: [Error | undefined];
  /** A new measurement of the peer's clock (a `pong` that carried the peer's time). */
  clock: [ClockOffset];
};

/**
 * One framed, message-oriented connection to an authenticated peer.
 *
 * Inbound messages are handled one at a time in arrival order; while too many wait,
 * the socket stops reading, so a fast sender is slowed by TCP rather than by this
 * process's memory. `send` resolves once the socket has room again (backpressure
 * on the writer). Heartbeats and responses are handled as they arrive, never
 * queued behind slow work. Any protocol violation sends an `error` message with a
 * stable code and closes this connection only.
 *
 * When the peer ends the connection (its `error` message, its end of the stream, a
 * reset), the messages it sent before still reach the handler, in order, and only
 * then does `close` fire: as a socket delivers its data before its end.
 */
/** A chunk frame's payload waiting in the inbound queue with the messages. */
interface QueuedChunk {
  type: 'chunk';
  payload: Buffer;
  /** Gives the payload's memory back (see ChunkHandler). */
  done: () => void;
}

/**
 * Handles one chunk frame's payload. The payload may lie in memory that is used
 * again for later frames: call `done` once nothing reads it any more (a store's
 * put of it has settled). Not calling it is safe, only slower.
 */
export type ChunkHandler = (payload: Buffer, done: () => void) => void | Promise<void>;

/** Chunk frames up to this long (the largest chunk by default, 256 KiB, and its head) use the slabs. */
const MAX_SLAB_CHUNK_FRAME = 256 * 1024 + 64;

/**
 * The bodies of received chunk frames, in slabs every connection of the process
 * shares and uses again once their chunks are stored. A body in a buffer of its
 * own, one per chunk, was a file's worth of allocation outside V8's heap that set
 * off a full collection every few megabytes received (see src/slabs.ts).
 */
const chunkBodies = new Slabs(1024 * 1024, 4, MAX_SLAB_CHUNK_FRAME);

const NOTHING = (): void => undefined;

export class Connection extends EventEmitter<Events> {
  readonly peer: DeviceId;
  readonly remoteAddress: string;
  /** The clock this connection's timers run on; the handshake's time limit uses it too. */
  readonly clock: Clock;
  private readonly socket: Socket;
  private readonly codec: MessageCodec;
  private readonly decoder: FrameDecoder;
  private readonly logger: Logger;
  private readonly maxQueued: number;
  private readonly requestTimeoutMs: number;
  /** Messages and chunks waiting for their handler, in the order they came. */
  private readonly queue: Array<Message | QueuedChunk> = [];
  /** Frames received but not decoded yet (see decodeBacklog). */
  private readonly backlog: Frame[] = [];
  private draining = false;
  private handler: ((message: Message) => void | Promise<void>) | undefined;
  /**
   * Whether frames are decoded. `held` until the handshake waits for its first
   * message (`first`), and again from that message until the handshake is done and
   * the connection `open`: while held, frames wait undecoded and reading pauses, so
   * nothing the peer sends is answered before the handshake has judged its first
   * message (see onFirstMessage and open).
   */
  private input: 'held' | 'first' | 'open' = 'held';
  /** The handshake's wait for its first message. */
  private firstHandler: ((message: Message) => void) | undefined;
  private chunkHandler: ChunkHandler | undefined;
  private readonly requestHandlers = new Map<string, RequestHandler>();
  /** Requests waiting for their response; settling one removes its timer and abort listener. */
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** The one wait for the socket to drain, shared by every sender held back (see whenWritable). */
  private writable: Promise<void> | undefined;
  private nextRequestId = 1;
  private heartbeat: Timer | undefined;
  /** The check at the moment the silence limit is reached, when that falls between two heartbeats. */
  private silenceCheck: Timer | undefined;
  /** Cuts a socket whose peer does not take our goodbye (see close). */
  private goodbye: Timer | undefined;
  /**
   * Set when the connection stops sending: at once on a local close; on the peer's
   * end while what it sent before is still being handled.
   */
  private closedWith: { cause: Error | undefined } | undefined;
  /** `close` has been emitted: nothing more is delivered. */
  private finished = false;
  /**
   * An `error` message went out through `send` (the sync session's, before it
   * closes): the close sends no second one, as the protocol allows one error.
   */
  private errorSent = false;
  private readonly stats: ConnectionStats;
  private peerClockOffset: ClockOffset | undefined;

  constructor(options: ConnectionOptions) {
    super();
    this.socket = options.socket;
    this.peer = options.peer;
    this.remoteAddress = `${options.socket.remoteAddress ?? '?'}:${options.socket.remotePort ?? '?'}`;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.maxQueued = options.maxQueuedMessages ?? 8;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.codec = new MessageCodec({ maxFrameBytes: options.maxFrameBytes });
    this.decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes,
      allocate: (bytes) => chunkBodies.take(bytes),
      inputReused: options.reads !== undefined,
    });
    const now = this.clock.now();
    this.stats = {
      bytesIn: 0,
      bytesOut: 0,
      framesIn: 0,
      framesOut: 0,
      connectedAt: now,
      lastReceivedAt: now,
      queued: 0,
      maxQueued: 0,
    };
    if (options.reads) options.reads.attach((bytes) => this.onData(bytes, true));
    else this.socket.on('data', (chunk: Buffer) => this.onData(chunk, false));
    // Node's socket errors (ECONNRESET, EPIPE, ...) become named codes here, the one
    // place every connection's failures pass through.
    this.socket.on('error', (err) => this.peerEnded(fromSocketError(err, this.remoteAddress, false)));
    this.socket.on('end', () => {
      this.socket.end();
      this.peerEnded(new ConnectionClosedError());
    });
    this.socket.on('close', () => {
      this.goodbye?.cancel();
      this.peerEnded(new ConnectionClosedError());
    });
  }

  /** No more messages can be sent (the connection closed, or is delivering the peer's last ones). */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Once `close` has been emitted: the cause it carried. Undefined while the connection is open. */
  get ended(): { cause: Error | undefined } | undefined {
    return this.finished ? this.closedWith : undefined;
  }

  /** Read through a method so that a check after an `await` is not narrowed away by the one before it. */
  private stopped(): { cause: Error | undefined } | undefined {
    return this.closedWith;
  }

  getStats(): Readonly<ConnectionStats> {
    return { ...this.stats, queued: this.queue.length };
  }

  /** The peer's clock against ours, as last measured (the handshake, then every ping answered with the peer's time). */
  peerClock(): ClockOffset | undefined {
    return this.peerClockOffset && { ...this.peerClockOffset };
  }

  /** Keeps a measurement of the peer's clock made elsewhere (the client's handshake) and reports it. */
  notePeerClock(offset: ClockOffset): void {
    this.peerClockOffset = { ...offset };
    this.emit('clock', { ...offset });
  }

  /**
   * Sends one `ping` now, outside the heartbeat's rhythm: its `pong` measures the
   * peer's clock at once, where the peer puts its time in pongs.
   */
  ping(): void {
    if (this.closedWith) return;
    this.send({ type: 'ping', t: Math.round(this.clock.now()) }).catch(() => undefined);
  }

  /** Compression for frames sent from now on (set once the handshake has chosen a codec). */
  setCompression(codec: CompressionCodec): void {
    this.codec.setCompression(codec);
  }

  /** Sets the handler of ordinary messages (everything but heartbeats, requests and responses). */
  setHandler(handler: ((message: Message) => void | Promise<void>) | undefined): void {
    this.handler = handler;
    if (handler) void this.drain();
  }

  /**
   * Hands the connection's first message to `handler`, whatever its type but
   * `error` (an `error` closes as always): the handshake's wait for `hello` or
   * `welcome`, before which nothing else is allowed. A `ping` or a `request` sent
   * first is then not answered here but refused by the handshake, and so is one
   * that arrived before the wait began (while the hub checked the certificate).
   * `undefined` ends the wait.
   */
  onFirstMessage(handler: ((message: Message) => void) | undefined): void {
    if (this.input === 'open') return;
    this.firstHandler = handler;
    this.input = handler ? 'first' : 'held';
    if (handler) this.decodeBacklog();
  }

  /**
   * Ends the handshake: what the peer sent after its first message is handled from
   * now on, by the handlers set meanwhile (a request sent right after `hello` is
   * answered by the method it names, not refused as unknown).
   */
  open(): void {
    this.input = 'open';
    this.firstHandler = undefined;
    this.decodeBacklog();
  }

  /**
   * Sets the handler of chunk frames (file content). Until one is set, a chunk
   * frame is a protocol violation: nothing asked for it.
   */
  setChunkHandler(handler: ChunkHandler | undefined): void {
    this.chunkHandler = handler;
    if (handler) void this.drain();
  }

  /**
   * Sends one chunk frame whose payload is `head` then `body` (the body is not
   * copied unless compressed); resolves when the socket can take more.
   * `compress: false` for content known not to shrink; otherwise it is compressed
   * only if that pays.
   */
  async sendChunk(
    head: Buffer,
    body?: Buffer,
    options: { compress?: boolean; sent?: () => void } = {},
  ): Promise<void> {
    if (this.closedWith) {
      options.sent?.();
      throw new ConnectionClosedError(this.closedWith.cause);
    }
    const parts = this.codec.encodeChunkParts(head, body, options);
    // The socket's callback for the last part comes once every part is written (or
    // the socket is gone): `sent` says the body is no longer read.
    const { sent } = options;
    if (parts.length === 1) return this.write(parts[0] as Buffer, sent);
    // One frame in several buffers, corked so the socket takes them as one write;
    // write() counts the frame and waits for room after its last part.
    this.socket.cork();
    for (const part of parts.slice(0, -1)) {
      this.stats.bytesOut += part.length;
      if (part !== body) scavenger.moved(part.length);
      this.socket.write(part);
    }
    const last = parts[parts.length - 1] as Buffer;
    const written = this.write(last, sent, last !== body);
    this.socket.uncork();
    await written;
  }

  /** Offers a request method to the peer; `'*'` answers every method without a handler of its own. */
  handle(method: string, handler: RequestHandler): void {
    this.requestHandlers.set(method, handler);
  }

  /** Sends one message; resolves when the socket can take more (backpressure). */
  async send(message: Message): Promise<void> {
    if (this.closedWith) throw new ConnectionClosedError(this.closedWith.cause);
    if (message.type === 'error') this.errorSent = true;
    await this.write(this.codec.encode(message));
  }

  /**
   * Sends one message as `send` does, its frame taken from `frames` when another
   * connection with the same codec settings encoded it already (fan-out of one
   * batch to many peers).
   */
  async sendCached(message: Message, frames: FrameCache): Promise<void> {
    if (this.closedWith) throw new ConnectionClosedError(this.closedWith.cause);
    await this.write(this.codec.encodeCached(message, frames));
  }

  /** Writes one frame (or its last part); `garbage`: a buffer dropped once written (see scavenge.ts). */
  private async write(frame: Buffer, written?: () => void, garbage = true): Promise<void> {
    this.stats.bytesOut += frame.length;
    if (garbage) scavenger.moved(frame.length);
    this.stats.framesOut++;
    if (!this.socket.write(frame, written)) {
      await this.whenWritable();
      // Re-read after the wait: the connection may have closed meanwhile.
      const stopped = this.stopped();
      if (stopped) throw new ConnectionClosedError(stopped.cause);
    }
  }

  /**
   * Resolves when the socket drains, or it or the connection ends. Every sender held back
   * shares one wait: a wait per sender would add a listener per pong, response or
   * write queued behind a slow reader, without bound.
   */
  private whenWritable(): Promise<void> {
    // A socket that is gone never drains: its close ends the wait too. The
    // connection's own close may not come before it, when the peer's end waits
    // for the handler that is waiting here.
    if (this.socket.destroyed) return Promise.resolve();
    this.writable ??= new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.off('close', done);
        this.writable = undefined;
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
      this.on('close', done);
    });
    return this.writable;
  }

  /** Sends a request and waits for its response (or a timeout, or the connection closing). */
  async request(
    method: string,
    params?: unknown,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const id = this.nextRequestId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const { signal } = options;
    const result = new Promise<unknown>((resolve, reject) => {
      // However the request ends, it leaves no timer, map entry or abort listener
      // behind: a caller may reuse one signal for every request of a long session.
      const settle = () => {
        timer.cancel();
        this.pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        settle();
        reject(
          signal?.reason instanceof Error
            ? signal.reason
            : new TransportError('ABORTED', `request ${method} cancelled`),
        );
      };
      const timer = this.clock.setTimeout(() => {
        settle();
        reject(new RequestTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          settle();
          resolve(value);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await this.send({ type: 'request', id, method, ...(params !== undefined && { params }) });
    } catch (err) {
      this.pending.get(id)?.reject(err as Error);
    }
    return result;
  }

  /**
   * Pings every `intervalMs`; a peer silent for three intervals is dead and the
   * connection closes with HEARTBEAT_TIMEOUT. Any frame counts as a sign of life.
   */
  startHeartbeat(intervalMs: number): void {
    if (this.heartbeat || this.closedWith) return;
    const limit = 3 * intervalMs;
    this.heartbeat = this.clock.setInterval(() => {
      const silent = this.clock.now() - this.stats.lastReceivedAt;
      if (silent > limit) {
        this.close(new HeartbeatTimeoutError(silent));
        return;
      }
      // The limit falls before the next tick: check at the limit itself, so a dead
      // peer is noticed three intervals after its last frame, not up to four.
      if (silent + intervalMs > limit) this.checkSilenceIn(limit - silent + 1, limit);
      this.send({ type: 'ping', t: Math.round(this.clock.now()) }).catch(() => undefined);
    }, intervalMs);
  }

  private checkSilenceIn(ms: number, limit: number): void {
    this.silenceCheck?.cancel();
    this.silenceCheck = this.clock.setTimeout(() => {
      this.silenceCheck = undefined;
      const silent = this.clock.now() - this.stats.lastReceivedAt;
      if (silent > limit) this.close(new HeartbeatTimeoutError(silent));
    }, ms);
  }

  /**
   * Closes the connection. With a TrosynError the peer first gets an `error`
   * message carrying its code, unless one was sent already; queued outbound data
   * is flushed before the close.
   */
  close(error?: Error): void {
    if (this.finished) return;
    // Closed by the peer and still delivering what it sent: stop delivering, keep its cause.
    if (this.closedWith) {
      this.finish(this.closedWith.cause);
      return;
    }
    this.closedWith = { cause: error };
    if (error && isTrosynError(error) && !(error instanceof PeerError) && !this.errorSent) {
      try {
        const frame = this.codec.encode({
          type: 'error',
          code: error.code,
          message: error.message.slice(0, 1024),
        });
        this.socket.write(frame);
      } catch {
        // The error message itself could not be encoded; closing is what matters.
      }
    }
    this.socket.end();
    // A peer that never reads would hold the socket open; give the goodbye a moment, then cut.
    this.goodbye = this.clock.setTimeout(() => this.socket.destroy(), 2000);
    this.finish(error);
  }

  /**
   * The peer ended the connection. Nothing more can be sent or answered, but the
   * messages it sent before its end still go to the handler, in order; `close`
   * fires once they have (at once when there is no handler to give them to).
   */
  private peerEnded(cause: Error): void {
    if (this.finished) return;
    if (!this.closedWith) this.closedWith = { cause };
    this.stopHeartbeat();
    this.rejectPending();
    if (this.handler && (this.queue.length > 0 || this.backlog.length > 0 || this.draining)) {
      void this.drain();
      return;
    }
    this.finish(this.closedWith.cause);
  }

  /** Bytes read; `reused` when they lie in a buffer the next read overwrites (not garbage). */
  private onData(chunk: Buffer, reused: boolean): void {
    if (this.closedWith) return;
    this.stats.bytesIn += chunk.length;
    if (!reused) scavenger.moved(chunk.length);
    this.stats.lastReceivedAt = this.clock.now();
    try {
      for (const frame of this.decoder.push(chunk)) {
        this.stats.framesIn++;
        this.backlog.push(frame);
      }
    } catch (err) {
      this.badInput(err);
      return;
    }
    this.decodeBacklog();
  }

  /**
   * Decodes waiting frames only while the message queue has room. Frames are kept
   * as received (compressed, small) until then: one TCP chunk can carry hundreds
   * of compressed frames, and inflating them all at once would let a peer expand a
   * few kilobytes into gigabytes. Reading pauses while frames wait.
   */
  private decodeBacklog(): void {
    while (this.backlog.length > 0 && this.queue.length < this.maxQueued && !this.finished) {
      if (this.input === 'held') break;
      const frame = this.backlog.shift() as Frame;
      let decoded: ReturnType<MessageCodec['decode']>;
      try {
        decoded = this.codec.decode(frame);
        if (decoded.kind === 'chunk' && !this.chunkHandler)
          throw new TransportError('UNEXPECTED_MESSAGE', 'a chunk frame arrived where none was asked for');
      } catch (err) {
        this.badInput(err);
        return;
      }
      if (decoded.kind === 'chunk') {
        // A compressed frame was inflated into a buffer of its own: its body is done with.
        const done = decoded.bytes === frame.payload ? (frame.release ?? NOTHING) : NOTHING;
        if (decoded.bytes !== frame.payload) frame.release?.();
        this.enqueue({ type: 'chunk', payload: decoded.bytes, done });
      } else this.dispatch(decoded.message);
    }
    if (this.closedWith) return;
    const full = this.backlog.length > 0 || this.queue.length >= this.maxQueued;
    if (full && !this.socket.isPaused()) this.socket.pause();
    else if (!full && this.socket.isPaused()) this.socket.resume();
  }

  private badInput(err: unknown): void {
    this.logger.warn(
      {
        peer: this.peer,
        address: this.remoteAddress,
        code: isTrosynError(err) ? err.code : 'BAD_FRAME',
        err: (err as Error).message,
      },
      'bad input from peer',
    );
    this.close(isTrosynError(err) ? err : new TransportError('BAD_FRAME', String(err)));
  }

  private dispatch(message: Message): void {
    const first = this.firstHandler;
    if (this.input === 'first' && first && message.type !== 'error') {
      this.input = 'held';
      this.firstHandler = undefined;
      first(message);
      return;
    }
    switch (message.type) {
      case 'ping':
        // A peer that sends pings but does not read would have its pongs pile up in
        // this process's memory; while the socket is full a pong is skipped (any
        // frame that gets through later shows this side is alive).
        if (!this.socket.writableNeedDrain)
          this.send({ type: 'pong', t: message.t, time: Math.round(this.clock.now()) }).catch(
            () => undefined,
          );
        return;
      case 'pong':
        // Our ping's `t` is our clock as we sent it: with the peer's time, one round trip.
        if (message.time !== undefined)
          this.notePeerClock(measureOffset(message.t, message.time, this.clock.now()));
        return;
      case 'response': {
        const waiting = this.pending.get(message.re);
        if (!waiting) return;
        if (message.ok) waiting.resolve(message.result);
        else
          waiting.reject(
            new PeerError(
              message.error?.code ?? 'REQUEST_FAILED',
              message.error?.message ?? 'request failed',
              message.error?.details,
            ),
          );
        return;
      }
      case 'error': {
        const cause = new PeerError(message.code, message.message, message.details);
        // The stream's end can be seen before this message is decoded (it waited in
        // the backlog); the peer's own word is the better cause.
        if (this.closedWith?.cause instanceof ConnectionClosedError) this.closedWith = { cause };
        // Nothing the peer sends after its error counts; what it sent before still does.
        this.backlog.length = 0;
        if (!this.socket.writableEnded) this.socket.end();
        this.peerEnded(cause);
        return;
      }
      default:
        this.enqueue(message);
    }
  }

  private enqueue(item: Message | QueuedChunk): void {
    this.queue.push(item);
    if (this.queue.length > this.stats.maxQueued) this.stats.maxQueued = this.queue.length;
    void this.drain();
  }

  /**
   * Works through the inbound queue in order. Requests are always answered;
   * ordinary messages wait (with reading paused once too many are queued) until a
   * handler is set.
   */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.finished) {
        const next = this.queue[0] as Message | QueuedChunk;
        if (next.type === 'chunk' ? !this.chunkHandler : next.type !== 'request' && !this.handler) break;
        this.queue.shift();
        this.decodeBacklog();
        if (next.type === 'request') {
          // A request that came before the peer's end can no longer be answered.
          if (!this.closedWith) await this.answer(next.id, next.method, next.params);
        } else if (next.type === 'chunk') await this.chunkHandler?.(next.payload, next.done);
        else await this.handler?.(next);
      }
    } catch (err) {
      this.logger.error({ peer: this.peer, err }, 'message handler failed');
      this.close(
        isTrosynError(err) ? err : new TransportError('INTERNAL_ERROR', 'the message could not be handled'),
      );
    } finally {
      this.draining = false;
    }
    this.decodeBacklog();
    // The peer has ended and what it sent before has been handled (or cannot be): report the close.
    if (this.closedWith && !this.finished && (this.queue.length === 0 || !this.handler))
      this.finish(this.closedWith.cause);
  }

  private async answer(id: number, method: string, params: unknown): Promise<void> {
    const handler = this.requestHandlers.get(method) ?? this.requestHandlers.get('*');
    try {
      if (!handler) throw new UnknownMethodError(method);
      const result = await handler(params, method);
      await this.send({ type: 'response', re: id, ok: true, ...(result !== undefined && { result }) });
    } catch (err) {
      if (this.closedWith) return;
      const e = isTrosynError(err)
        ? err
        : new TransportError('INTERNAL_ERROR', 'the request failed on the peer');
      if (!isTrosynError(err)) this.logger.error({ peer: this.peer, method, err }, 'request handler failed');
      await this.send({ type: 'response', re: id, ok: false, error: e.toJSON() }).catch(() => undefined);
    }
  }

  /** Releases everything once, however the connection ended, and emits `close` once. */
  private finish(cause: Error | undefined): void {
    if (!this.closedWith) this.closedWith = { cause };
    if (this.finished) return;
    this.finished = true;
    this.stopHeartbeat();
    this.rejectPending();
    this.queue.length = 0;
    this.backlog.length = 0;
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
    this.emit('close', this.closedWith.cause);
  }

  private stopHeartbeat(): void {
    this.heartbeat?.cancel();
    this.heartbeat = undefined;
    this.silenceCheck?.cancel();
    this.silenceCheck = undefined;
  }

  private rejectPending(): void {
    const cause = this.closedWith?.cause;
    for (const waiting of [...this.pending.values()]) waiting.reject(new ConnectionClosedError(cause));
  }
}

/** An error the peer reported (its `error` message, or a failed response). */
export class PeerError extends TrosynError {
  /** The peer's code when this build knows it; otherwise PEER_ERROR, with the code in `details.peerCode`. */
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    const known = isErrorCode(code);
    super(known ? code : 'PEER_ERROR', message, known ? details : { ...details, peerCode: code });
  }
}
