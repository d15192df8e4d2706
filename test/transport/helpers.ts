import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Clock } from '../../src/lifecycle.js';
import type { DeviceId } from '../../src/store/types.js';
import { type Authenticator, StaticAuthenticator } from '../../src/transport/authenticator.js';
import type { Connection } from '../../src/transport/connection.js';
import type { Message } from '../../src/protocol/messages.js';
import { createIdentity, type DeviceIdentity } from '../../src/transport/identity.js';
import type { RateLimit } from '../../src/transport/rate-limit.js';
import { type PeerInfo, TransportServer } from '../../src/transport/server.js';

export const hubPeer = { name: 'test-hub', role: 'hub' as const, appVersion: '0.0.0', heartbeatMs: 15_000 };
export const childPeer = {
  name: 'test-child',
  role: 'child' as const,
  appVersion: '0.0.0',
  heartbeatMs: 15_000,
};

/**
 * Batch `i` of a made-up change log, carrying `pad` (random text, so compression
 * cannot shrink it and the bytes really fill the socket).
 */
export function paddedBatch(i: number, pad: string): Message {
  return {
    type: 'sync.changes',
    log: 'c'.repeat(32),
    since: i,
    upTo: i + 1,
    check: '',
    more: true,
    revisions: [{ pad } as never],
  };
}

/** A list that can be waited on: `until(n)` resolves once it holds `n` entries. */
function watchedList<T>() {
  const items: T[] = [];
  const waiters = new Set<{ n: number; resolve: () => void }>();
  return {
    items,
    push(item: T): void {
      items.push(item);
      for (const w of waiters) {
        if (items.length < w.n) continue;
        waiters.delete(w);
        w.resolve();
      }
    },
    until(n: number): Promise<void> {
      if (items.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.add({ n, resolve }));
    },
  };
}

/** A TLS server on a free loopback port that allows `allowed` and records its connections. */
export async function startServer(
  allowed: DeviceId[],
  options: {
    host?: string;
    heartbeatMs?: number;
    handshakeTimeoutMs?: number;
    attemptLimit?: RateLimit;
    clock?: Clock;
    authenticator?: Authenticator;
    identity?: DeviceIdentity;
    onConnection?: (conn: Connection, peer: PeerInfo) => void;
  } = {},
) {
  const identity = options.identity ?? (await createIdentity('test-hub'));
  const connections = watchedList<{ conn: Connection; peer: PeerInfo }>();
  const rejected = watchedList<{ address: string; code: string }>();
  const server = new TransportServer({
    identity,
    local: { ...hubPeer, heartbeatMs: options.heartbeatMs ?? 15_000 },
    authenticator: options.authenticator ?? new StaticAuthenticator(allowed),
    host: options.host ?? '127.0.0.1',
    port: 0,
    ...(options.handshakeTimeoutMs !== undefined && { handshakeTimeoutMs: options.handshakeTimeoutMs }),
    ...(options.attemptLimit && { attemptLimit: options.attemptLimit }),
    ...(options.clock && { clock: options.clock }),
    onConnection: (conn, peer) => {
      connections.push({ conn, peer });
      options.onConnection?.(conn, peer);
    },
  });
  server.on('rejected', (r) => rejected.push(r));
  await server.start();
  return {
    server,
    identity,
    connections: connections.items,
    rejected: rejected.items,
    /** Resolves once the server has handed on `n` connections in all. */
    untilConnections: (n: number) => connections.until(n),
    /** Resolves once the server has refused `n` connections in all. */
    untilRejected: (n: number) => rejected.until(n),
    address: { host: options.host ?? '127.0.0.1', port: server.port },
  };
}

/** The socket under a connection (tests only: to pause it, or to watch it read). */
export function socketOf(conn: Connection): Socket {
  return (conn as unknown as { socket: Socket }).socket;
}

/**
 * Resolves once `conn` has read `count` frames more than `base`, or rejects if it
 * closes first. Looks at the connection's count every millisecond (a client's
 * socket reads into a reused buffer and emits no data events to listen to).
 */
export function framesRead(conn: Connection, count: number, base = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearInterval(timer);
      conn.off('close', closed);
    };
    const check = () => {
      if (conn.getStats().framesIn - base < count) return;
      done();
      resolve();
    };
    const closed = (cause: Error | undefined) => {
      done();
      reject(new Error(`the connection closed (${String(cause)}) before reading ${count} frames`));
    };
    const timer = setInterval(check, 1);
    conn.on('close', closed);
    check();
  });
}

/** Resolves once every one of `conns`, all open now, has emitted `close`. */
export async function allClosed(conns: readonly Connection[]): Promise<void> {
  await Promise.all(conns.map((c) => once(c, 'close')));
}
