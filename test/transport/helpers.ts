import type { Clock } from '../../src/lifecycle.js';
import type { DeviceId } from '../../src/store/types.js';
import { type Authenticator, StaticAuthenticator } from '../../src/transport/authenticator.js';
import type { Connection } from '../../src/transport/connection.js';
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
  const connections: Array<{ conn: Connection; peer: PeerInfo }> = [];
  const rejected: Array<{ address: string; code: string }> = [];
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
    connections,
    rejected,
    address: { host: options.host ?? '127.0.0.1', port: server.port },
  };
}
