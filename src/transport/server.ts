import { EventEmitter, once } from 'node:events';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { isTrosynError } from '../errors.js';
import { type Clock, LifecycleGuard, type Startable, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_SYNC_PORT } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import type { Authenticator } from './authenticator.js';
import { Connection, PeerError } from './connection.js';
import { isProtocolError } from '../observability/metrics.js';
import { shortDeviceId } from './device-id.js';
import { DeviceNotAllowedError, NoClientCertificateError, TransportError } from './errors.js';
import { type HandshakeResult, type LocalPeer, serverHandshake } from './handshake.js';
import type { DeviceIdentity } from './identity.js';
import { type RateLimit, RateLimiter } from './rate-limit.js';
import { SummarizedLog } from '../observability/summarized-log.js';
import { formatAddress, peerDeviceId, tlsOptions } from './tls.js';

export interface TransportServerOptions {
  identity: DeviceIdentity;
  local: LocalPeer;
  authenticator: Authenticator;
  /** Address to listen on. Default '::' (every IPv6 and IPv4 address, dual stack). */
  host?: string;
  /** TCP port. Default 17700; 0 picks a free port. */
  port?: number;
  /** Largest frame accepted. Default 16 MiB. */
  maxFrameBytes?: number;
  /**
   * Time a client has for each step of joining: the TLS handshake, then sending
   * `hello` (so at most twice this in all). Default 10 s. The wait for `hello` runs
   * on `clock`; the TLS step is Node's own `handshakeTimeout`, which runs in real
   * time whatever the clock.
   */
  handshakeTimeoutMs?: number;
  /**
   * Connection attempts per source address that do not end in an authenticated
   * sync session. Each TCP connection reserves one attempt before TLS starts, and
   * an address with none left is dropped at once, before any TLS work. A known
   * device that completes the handshake gets its attempt back, so healthy
   * reconnects of many devices behind one address (NAT, a terminal server) never
   * use the limit up; TLS failures, missing or unknown certificates, pairing
   * sessions, failed or timed-out handshakes keep theirs spent, and so does a
   * device whose connection the hub ends for breaking the protocol (garbage frames). The burst also
   * caps the handshakes one address has in progress at once. Default: no limit.
   */
  attemptLimit?: RateLimit;
  /** Called for every connection that passed authentication and the handshake. */
  onConnection: (conn: Connection, peer: PeerInfo) => void;
  logger?: Logger;
  clock?: Clock;
}

/** An authenticated peer on an open connection. */
export interface PeerInfo {
  deviceId: DeviceId;
  /** Source IP (IPv4-mapped IPv6 addresses shown as plain IPv4). */
  address: string;
  access: 'sync' | 'pairing';
  handshake: HandshakeResult;
}

/** Connections refused from one address with one code, as logged. */
interface Refusal {
  address: string;
  code: string;
  deviceId?: DeviceId;
  count: number;
}

/** After its first line, the refusals of an address and code are logged this often (ms), as a count. */
const REFUSAL_LOG_EVERY_MS = 60_000;

/** Codes of a limit the hub enforces on a connection: logged as warnings. */
/** How long a peer has to complete the TLS handshake, unless the options say otherwise (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

const LIMIT_CODES: ReadonlySet<string> = new Set(['RATE_LIMITED', 'HANDSHAKE_TIMEOUT']);

type Events = {
  /** A connection failed before it was handed on (TLS error, no certificate, refused, bad handshake). */
  rejected: [{ address: string; code: string; deviceId?: DeviceId }];
};

/** `::ffff:10.0.0.5` -> `10.0.0.5`. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '?';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The TLS 1.3 server of the sync service. Every client must present a certificate;
 * its device ID goes to the Authenticator before any message is read, and only
 * then does the handshake run. Plaintext and TLS 1.2 clients fail in the TLS
 * handshake and never reach the application.
 */
export class TransportServer extends EventEmitter<Events> implements Startable {
  private readonly options: TransportServerOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private server: Server | undefined;
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly attempts: RateLimiter | undefined;
  /** Refusals logged by address and code: the first at once, then a count a minute (see refused). */
  private readonly refusals: SummarizedLog<Refusal>;
  private readonly lifecycle = new LifecycleGuard();

  constructor(options: TransportServerOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'transport');
    this.clock = options.clock ?? systemClock;
    this.attempts = options.attemptLimit && new RateLimiter(options.attemptLimit, { clock: this.clock });
    // Bounded like the attempt limiter's buckets.
    this.refusals = new SummarizedLog<Refusal>({
      clock: this.clock,
      everyMs: REFUSAL_LOG_EVERY_MS,
      maxKeys: 10_000,
      add: (sum, one) => ({ ...sum, count: sum.count + one.count }),
      write: (_key, r) => this.logRefusals(r),
    });
  }

  isStarted(): boolean {
    return this.lifecycle.isStarted();
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Listens; a second call while one runs waits for it instead of listening twice. */
  start(): Promise<void> {
    return this.lifecycle.start(() => this.listen());
  }

  /** Stops listening and closes every connection and socket; waits for a start in progress first. */
  stop(): Promise<void> {
    return this.lifecycle.stop(() => this.close());
  }

  private async listen(): Promise<void> {
    const handshakeTimeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const tls = createTlsServer({
      ...tlsOptions(this.options.identity),
      requestCert: true,
      // Node's own TLS handshake limit (real time, not this.clock): it runs on the TLS
      // socket and is cleared the moment the session is established. An idle timeout
      // on the raw TCP socket would outlive the handshake (the TLS socket's
      // setTimeout(0) does not clear its parent's) and cut every connection that
      // idles between heartbeats.
      handshakeTimeout: handshakeTimeoutMs,
    });
    tls.on('secureConnection', (socket: TLSSocket) => {
      void this.onSecure(socket);
    });
    tls.on('tlsClientError', (err: Error & { code?: string }, socket) => {
      const address = plainAddress(socket.remoteAddress);
      const timedOut = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
      this.logger.debug({ address, err: err.message }, 'TLS handshake failed');
      // Node reports a handshake timeout but leaves the socket open; a client that
      // opened TCP and never finished TLS must not hold it.
      socket.destroy();
      this.refused({ address, code: timedOut ? 'HANDSHAKE_TIMEOUT' : 'TLS_HANDSHAKE_FAILED' });
    });
    // TCP is accepted here and handed to the TLS server only once admitted, so a
    // refused connection costs no TLS state at all and is reported once.
    // Nagle's algorithm off: a session's small frames (an ack, the last batch of a burst)
    // would otherwise wait for the peer's delayed ACK, up to 40 ms each.
    const server = createNetServer({ noDelay: true }, (socket: Socket) => {
      const address = plainAddress(socket.remoteAddress);
      if (this.attempts && !this.attempts.take(address)) {
        socket.destroy();
        this.refused({ address, code: 'RATE_LIMITED' });
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      tls.emit('connection', socket);
    });
    const host = this.options.host ?? '::';
    const port = this.options.port ?? DEFAULT_SYNC_PORT;
    try {
      await listen(server, host, port);
    } catch (err) {
      // A host with IPv6 disabled cannot bind '::'; IPv4 alone still serves the office.
      if (this.options.host === undefined && (err as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') {
        await listen(server, '0.0.0.0', port).catch((err2: unknown) => {
          throw listenFailed(err2, '0.0.0.0', port);
        });
      } else {
        throw listenFailed(err, host, port);
      }
    }
    this.server = server;
    this.refusals.start();
    this.logger.info({ host, port: this.port }, 'sync service listening');
  }

  private async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = once(server, 'close');
    server.close();
    for (const conn of this.connections)
      conn.close(new TransportError('SERVER_SHUTTING_DOWN', 'the hub is shutting down'));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.refusals.stop();
  }

  /** Open, authenticated connections. */
  list(): Connection[] {
    return [...this.connections];
  }

  /** Closes every connection of a device at once (revocation), telling it why. */
  disconnect(deviceId: DeviceId, error: Error): number {
    let n = 0;
    for (const conn of this.connections) {
      if (conn.peer === deviceId) {
        conn.close(error);
        n++;
      }
    }
    return n;
  }

  /**
   * Reports a connection refused before it was handed on, and logs it: the first
   * refusal of an address and code at once, then one line a minute with how many
   * more came (and a last one when the service stops), so a flood of attempts shows
   * in the log, every refusal counted, without flooding it.
   */
  private refused(r: { address: string; code: string; deviceId?: DeviceId }): void {
    this.emit('rejected', r);
    this.refusals.note(`${r.address} ${r.code}`, { ...r, count: 1 });
  }

  private logRefusals(r: Refusal): void {
    const line = {
      address: r.address,
      code: r.code,
      count: r.count,
      ...(r.deviceId && { device: shortDeviceId(r.deviceId) }),
    };
    if (LIMIT_CODES.has(r.code)) this.logger.warn(line, 'connections refused');
    else this.logger.info(line, 'connections refused');
  }

  private async onSecure(socket: TLSSocket): Promise<void> {
    const address = plainAddress(socket.remoteAddress);
    const deviceId = peerDeviceId(socket);
    const conn = new Connection({
      socket,
      peer: deviceId ?? ('0'.repeat(64) as DeviceId),
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      logger: this.logger,
      clock: this.clock,
    });
    const reject = (err: Error & { code?: string }) => {
      conn.close(err);
      this.refused({ address, code: err.code ?? 'REJECTED', ...(deviceId && { deviceId }) });
    };
    if (!deviceId) {
      reject(new NoClientCertificateError(formatAddress(address, socket.remotePort)));
      return;
    }
    let access: 'sync' | 'pairing';
    try {
      const decision = await this.options.authenticator.authenticate({ deviceId, address });
      if ('deny' in decision) {
        this.logger.info(
          { device: shortDeviceId(deviceId), address, code: decision.deny },
          'connection refused',
        );
        reject(new DeviceNotAllowedError(deviceId, decision.deny, decision.reason));
        return;
      }
      access = decision.allow;
    } catch (err) {
      this.logger.error({ err, address }, 'authenticator failed');
      reject(new TransportError('INTERNAL_ERROR', 'the hub could not check this device'));
      return;
    }
    try {
      const handshake = await serverHandshake(
        conn,
        this.options.local,
        this.options.handshakeTimeoutMs ?? 10_000,
      );
      conn.startHeartbeat(handshake.heartbeatMs);
      // A client that sends its time puts it in pongs too: measure its clock now, not a heartbeat later.
      if (handshake.peerTime !== undefined) conn.ping();
      // Only a device allowed to sync has proved it belongs here; a pairing session
      // is still a stranger and keeps its attempt spent.
      if (access === 'sync') {
        this.attempts?.refund(address);
        // Unless it then breaks the protocol (garbage after the hello): the attempt is
        // spent after all, so a paired device cannot reconnect to send garbage without limit.
        conn.once('close', (cause) => {
          if (cause && !(cause instanceof PeerError) && isProtocolError((cause as { code?: string }).code))
            this.attempts?.take(address);
        });
      }
      this.connections.add(conn);
      conn.once('close', () => this.connections.delete(conn));
      this.options.onConnection(conn, { deviceId, address, access, handshake });
      // Only now, with its handlers set, does the connection read what followed the hello.
      conn.open();
    } catch (err) {
      this.logger.debug({ address, err: (err as Error).message }, 'handshake failed');
      reject(isTrosynError(err) ? err : new TransportError('HANDSHAKE_FAILED', String(err)));
    }
  }
}

/** Why the sync service cannot listen, named: a port in use is the usual case. */
function listenFailed(err: unknown, host: string, port: number): TransportError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new TransportError(
      'PORT_IN_USE',
      `the sync port ${port} is in use by another program (another hub?); stop it or choose another port with --port`,
      { host, port },
    );
  }
  const reason =
    code === 'EADDRNOTAVAIL'
      ? `address ${host} is not one of this machine's`
      : code === 'EACCES'
        ? `not allowed to listen on port ${port} (ports below 1024 need privileges)`
        : ((err as Error).message ?? String(err));
  return new TransportError('LISTEN_FAILED', `cannot listen on ${host}:${port}: ${reason}`, { host, port });
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, ipv6Only: false }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
