import { EventEmitter, once } from 'node:events';
import { connect } from 'node:tls';
import type { Logger } from 'pino';
import { isTrosynError } from '../errors.js';
import { type Clock, type Startable, systemClock, type Timer } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { Connection } from './connection.js';
import {
  fromSocketError,
  HubIdentityMismatchError,
  isTlsHandshakeError,
  NotATrosynHubError,
  TransportError,
} from './errors.js';
import { clientHandshake, type HandshakeResult, type LocalPeer } from './handshake.js';
import type { DeviceIdentity } from './identity.js';
import { ReusedReads } from './reads.js';
import { formatAddress, peerDeviceId, tlsOptions } from './tls.js';

export interface HubAddress {
  host: string;
  port: number;
}

export interface ConnectOptions {
  identity: DeviceIdentity;
  local: LocalPeer;
  /**
   * The hub's device ID. A server presenting another certificate is refused before
   * anything is sent. Undefined only for the pairing exchange, which proves the
   * hub's identity by other means.
   */
  hubId: DeviceId | undefined;
  maxFrameBytes?: number;
  /** TCP + TLS + handshake must finish within this. Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
  clock?: Clock;
}

export interface HubConnection {
  conn: Connection;
  hubId: DeviceId;
  address: HubAddress;
  handshake: HandshakeResult;
}

/** One connection attempt: TLS 1.3, pin check, handshake. */
export async function connectToHub(address: HubAddress, options: ConnectOptions): Promise<HubConnection> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const reads = new ReusedReads();
  const socket = connect({
    ...tlsOptions(options.identity),
    // Node's tls.connect takes net's `onread` (since 15.1); its types do not say so.
    ...({ onread: reads.onread } as object),
    host: address.host,
    port: address.port,
    // Certificates are pinned by device ID, not checked against host names.
    checkServerIdentity: () => undefined,
  });
  // Small frames go at once, not after the hub's delayed ACK (see the server).
  socket.setNoDelay(true);
  const where = formatAddress(address.host, address.port);
  const clock = options.clock ?? systemClock;
  const timer = clock.setTimeout(
    () =>
      socket.destroy(
        new TransportError('CONNECT_TIMEOUT', `no TLS session with ${where} within ${timeoutMs} ms`),
      ),
    timeoutMs,
  );
  const abort = () => socket.destroy(new TransportError('ABORTED', 'connection attempt cancelled'));
  options.signal?.addEventListener('abort', abort, { once: true });
  try {
    await once(socket, 'secureConnect');
    const hubId = peerDeviceId(socket);
    if (!hubId) throw new TransportError('NO_SERVER_CERTIFICATE', `${where} presented no certificate`);
    if (options.hubId !== undefined && hubId !== options.hubId) {
      socket.destroy();
      throw new HubIdentityMismatchError(options.hubId, hubId, where);
    }
    const conn = new Connection({
      socket,
      reads,
      peer: hubId,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      logger,
      clock,
    });
    const handshake = await clientHandshake(conn, options.local, timeoutMs);
    return { conn, hubId, address, handshake };
  } catch (err) {
    socket.destroy();
    if (isTrosynError(err)) throw err;
    // Every hub speaks TLS 1.3; a TLS failure means something else answers there.
    if (isTlsHandshakeError(err))
      throw new NotATrosynHubError(where, `its TLS handshake failed: ${(err as Error).message}`, err);
    throw fromSocketError(err, where, true);
  } finally {
    timer.cancel();
    options.signal?.removeEventListener('abort', abort);
  }
}

export interface TransportClientOptions extends Omit<ConnectOptions, 'signal' | 'hubId'> {
  hubId: DeviceId;
  /** Where to look for the hub, best first; asked again before every round of attempts. */
  addresses: () => HubAddress[] | Promise<HubAddress[]>;
  /** Runs over each established connection; the connection's end ends the session. */
  onConnected: (hub: HubConnection) => void | Promise<void>;
  backoff?: BackoffOptions;
  /** A session that lasted this long (ms) resets the backoff. Default 10 s. */
  healthyAfterMs?: number;
  /** Stop retrying after an error with one of these codes (e.g. DEVICE_REVOKED). */
  fatalCodes?: readonly string[];
}

export interface ClientStatus {
  state: 'stopped' | 'connecting' | 'connected' | 'waiting' | 'failed';
  address?: HubAddress;
  connectedSince?: number;
  /** The last failed attempt or session, kept after a reconnect; `at` says when. */
  lastError?: { code: string; message: string; at: number };
  attempts: number;
  nextAttemptAt?: number;
}

type Events = {
  connected: [HubConnection];
  disconnected: [Error | undefined];
  'attempt-failed': [HubAddress, Error];
};

/**
 * Keeps one connection to the hub: tries its addresses in order, runs a session on
 * the first that answers with the pinned certificate, and after any failure or
 * disconnect waits with exponential backoff and full jitter before trying again.
 */
export class TransportClient extends EventEmitter<Events> implements Startable {
  private readonly options: TransportClientOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private current: HubConnection | undefined;
  private state: ClientStatus = { state: 'stopped', attempts: 0 };
  private wake: (() => void) | undefined;

  constructor(options: TransportClientOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'transport');
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff);
  }

  isStarted(): boolean {
    return this.abort !== undefined;
  }

  status(): ClientStatus {
    return { ...this.state, attempts: this.backoff.attempts };
  }

  async start(): Promise<void> {
    if (this.abort) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    const abort = this.abort;
    if (!abort) return;
    this.abort = undefined;
    abort.abort();
    this.current?.conn.close();
    this.wake?.();
    await this.loop;
    this.state = { state: 'stopped', attempts: 0 };
  }

  /** Skips the remaining wait and tries to connect now (e.g. "sync now"). */
  retryNow(): void {
    this.wake?.();
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.state = { ...this.state, state: 'connecting' };
      let candidates: HubAddress[] = [];
      try {
        candidates = await this.options.addresses();
      } catch (err) {
        this.logger.warn({ err }, 'no hub address');
      }
      for (const address of candidates) {
        if (signal.aborted) return;
        let hub: HubConnection;
        try {
          hub = await connectToHub(address, { ...this.options, hubId: this.options.hubId, signal });
        } catch (err) {
          this.fail(address, err as Error);
          if (this.isFatal(err)) return;
          continue;
        }
        await this.session(hub);
        if (this.isFatal(this.state.lastError)) return;
        break;
      }
      if (signal.aborted) return;
      const delay = this.backoff.next();
      this.state = { ...this.state, state: 'waiting', nextAttemptAt: this.clock.now() + delay };
      await this.waitFor(delay, signal);
    }
  }

  private async session(hub: HubConnection): Promise<void> {
    const since = this.clock.now();
    this.current = hub;
    // The last failure stays (its `at` says when): a session that fails again soon
    // after each reconnect must not read as healthy between two failures.
    this.state = {
      state: 'connected',
      address: hub.address,
      connectedSince: since,
      attempts: this.backoff.attempts,
      ...(this.state.lastError && { lastError: this.state.lastError }),
    };
    this.logger.info({ address: formatAddress(hub.address.host, hub.address.port) }, 'connected to hub');
    hub.conn.startHeartbeat(hub.handshake.heartbeatMs);
    const closed = once(hub.conn, 'close').then(([cause]) => cause as Error | undefined);
    this.emit('connected', hub);
    try {
      await this.options.onConnected(hub);
    } catch (err) {
      hub.conn.close(err as Error);
    }
    const cause = await closed;
    this.current = undefined;
    if (this.clock.now() - since >= (this.options.healthyAfterMs ?? 10_000)) this.backoff.reset();
    if (cause && isTrosynError(cause)) {
      this.state.lastError = { code: cause.code, message: cause.message, at: this.clock.now() };
    }
    this.state.state = this.isFatal(cause) ? 'failed' : 'connecting';
    delete this.state.connectedSince;
    this.logger.info({ code: (cause as { code?: string } | undefined)?.code }, 'disconnected from hub');
    this.emit('disconnected', cause);
  }

  private fail(address: HubAddress, err: Error): void {
    const code = isTrosynError(err) ? err.code : 'CONNECT_FAILED';
    this.state = { ...this.state, lastError: { code, message: err.message, at: this.clock.now() } };
    if (this.isFatal(err)) this.state.state = 'failed';
    this.logger.warn(
      { address: formatAddress(address.host, address.port), code, err: err.message },
      'hub connection failed',
    );
    this.emit('attempt-failed', address, err);
  }

  private isFatal(err: unknown): boolean {
    const code = (err as { code?: string } | undefined)?.code;
    return code !== undefined && (this.options.fatalCodes ?? []).includes(code);
  }

  /** Waits `ms` on the clock, or less when woken by stop() or retryNow(). */
  private async waitFor(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    let onAbort: () => void = () => undefined;
    let timer: Timer | undefined;
    await new Promise<void>((resolve) => {
      onAbort = resolve;
      this.wake = resolve;
      timer = this.clock.setTimeout(resolve, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    timer?.cancel();
    signal.removeEventListener('abort', onAbort);
    this.wake = undefined;
  }
}
