/**
 * The hub's per-address connection limit counts attempts that fail or stay
 * unauthenticated, not healthy connections: many devices behind one address (NAT)
 * connect and reconnect freely, while a flood of bad attempts from one address is
 * dropped before any TLS work. The server's clock is fake: no attempt is refilled
 * unless a test moves it, so every count is exact. Attempts that never start TLS
 * are ended by Node's own TLS handshake limit, in real time: the tests wait for the
 * refusals it causes, never for a duration.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { Authenticator } from '../../src/transport/authenticator.js';
import { connectToHub, type HubConnection } from '../../src/transport/client.js';
import { createIdentity, type DeviceIdentity } from '../../src/transport/identity.js';
import { FakeClock } from '../helpers.js';
import { allClosed, childPeer, startServer } from './helpers.js';

/** The hub's default: a burst of 30, 120 a minute. */
const HUB_DEFAULT = { burst: 30, perMinute: 120 };

/** Runs `task` over `items`, `width` at a time (devices do not all connect in the same instant). */
async function inWaves<T, R>(items: T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width)
    results.push(...(await Promise.all(items.slice(i, i + width).map(task))));
  return results;
}

/** One TCP connection that closes however the hub ends it; resolves once closed. */
async function rawAttempt(port: number, send?: string): Promise<void> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  socket.resume();
  const closed = once(socket, 'close');
  socket.once('connect', () => {
    if (send !== undefined) socket.write(send);
  });
  await closed;
}

/** A TLS client without a certificate; resolves once the hub closes it. */
async function noCertificateAttempt(port: number): Promise<void> {
  const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
  socket.on('error', () => undefined);
  socket.resume();
  await once(socket, 'close');
}

function countCodes(rejected: Array<{ code: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rejected) counts[r.code] = (counts[r.code] ?? 0) + 1;
  return counts;
}

describe('connection attempts per address', () => {
  it('100 devices behind one address connect, drop and reconnect under the hub default limit', async () => {
    const devices = await inWaves(
      Array.from({ length: 100 }, (_, i) => i),
      10,
      (i) => createIdentity(`nat-${i}`),
    );
    const { server, identity, connections, rejected, untilConnections } = await startServer(
      devices.map((d) => d.deviceId),
      { attemptLimit: HUB_DEFAULT, clock: new FakeClock() },
    );
    const connect = (device: DeviceIdentity) =>
      connectToHub(
        { host: '127.0.0.1', port: server.port },
        { identity: device, local: childPeer, hubId: identity.deviceId },
      );
    // Two rounds: 200 connections from 127.0.0.1, far past the burst of 30, with no refill.
    const rounds: number[] = [];
    for (let round = 0; round < 2; round++) {
      const hubs = await inWaves(devices, 10, connect);
      await untilConnections(100 * (round + 1));
      rounds.push(new Set(server.list().map((c) => c.peer)).size);
      const open = server.list();
      for (const hub of hubs as HubConnection[]) hub.conn.close();
      await allClosed(open);
      assert.equal(server.list().length, 0, 'every connection closed');
    }
    await server.stop();
    assert.deepEqual(rounds, [100, 100], 'all 100 devices connected in both rounds');
    assert.equal(connections.length, 200);
    assert.deepEqual(rejected, []);
  });

  it('a flood of bad attempts from one address is dropped before TLS once its attempts are spent', async () => {
    const known = await createIdentity('known');
    const stranger = await createIdentity('stranger');
    const clock = new FakeClock();
    const { server, identity, rejected, untilRejected } = await startServer([known.deviceId], {
      attemptLimit: HUB_DEFAULT,
      handshakeTimeoutMs: 150,
      clock,
    });
    const port = server.port;
    const strangerAttempt = () =>
      connectToHub(
        { host: '127.0.0.1', port },
        { identity: stranger, local: childPeer, hubId: identity.deviceId },
      ).then(
        (hub) => hub.conn.close(),
        () => undefined,
      );
    // 30 bad attempts of every kind spend the burst.
    for (let i = 0; i < 10; i++) await rawAttempt(port, 'GET / HTTP/1.1\r\nHost: hub\r\n\r\n');
    await Promise.all(Array.from({ length: 5 }, () => rawAttempt(port)));
    for (let i = 0; i < 5; i++) await noCertificateAttempt(port);
    for (let i = 0; i < 10; i++) await strangerAttempt();
    await untilRejected(30);
    const spent = countCodes(rejected);

    // The flood goes on: each attempt is dropped when TCP connects, before TLS.
    for (let i = 0; i < 20; i++) await strangerAttempt();
    await untilRejected(50);
    const flood = countCodes(rejected.slice(30));

    // A known device behind the same address waits too, until attempts refill.
    await assert.rejects(
      connectToHub(
        { host: '127.0.0.1', port },
        { identity: known, local: childPeer, hubId: identity.deviceId },
      ),
    );
    clock.advance(499); // not yet one whole attempt at 120 a minute
    await assert.rejects(
      connectToHub(
        { host: '127.0.0.1', port },
        { identity: known, local: childPeer, hubId: identity.deviceId },
      ),
    );
    clock.advance(501); // a second in all: two attempts
    const hub = await connectToHub(
      { host: '127.0.0.1', port },
      { identity: known, local: childPeer, hubId: identity.deviceId },
    );
    hub.conn.close();
    await server.stop();

    assert.deepEqual(spent, {
      TLS_HANDSHAKE_FAILED: 10,
      HANDSHAKE_TIMEOUT: 5,
      NO_CLIENT_CERTIFICATE: 5,
      DEVICE_NOT_ALLOWED: 10,
    });
    assert.deepEqual(flood, { RATE_LIMITED: 20 });
    assert.equal(rejected.at(-1)?.code, 'RATE_LIMITED', 'the known device was dropped with the flood');
  });

  it('pairing sessions count as attempts: a stranger allowed to pair cannot reconnect without limit', async () => {
    const stranger = await createIdentity('would-pair');
    const pairingOnly: Authenticator = { authenticate: () => ({ allow: 'pairing' }) };
    const accesses: string[] = [];
    const { server, identity, rejected } = await startServer([], {
      authenticator: pairingOnly,
      attemptLimit: { burst: 5, perMinute: 1 },
      clock: new FakeClock(),
      onConnection: (conn, peer) => {
        accesses.push(peer.access);
        conn.close();
      },
    });
    let failed = 0;
    for (let i = 0; i < 8; i++) {
      await connectToHub(
        { host: '127.0.0.1', port: server.port },
        { identity: stranger, local: childPeer, hubId: identity.deviceId },
      ).then(
        (hub) => hub.conn.close(),
        () => failed++,
      );
    }
    await server.stop();
    assert.deepEqual(accesses, ['pairing', 'pairing', 'pairing', 'pairing', 'pairing']);
    assert.equal(failed, 3);
    assert.deepEqual(countCodes(rejected), { RATE_LIMITED: 3 });
  });

  it('an address has at most a burst of handshakes in progress at once', async () => {
    const { server, rejected, untilRejected } = await startServer([], {
      attemptLimit: HUB_DEFAULT,
      handshakeTimeoutMs: 500,
      clock: new FakeClock(),
    });
    // 100 TCP connections at once that never start TLS.
    await Promise.all(Array.from({ length: 100 }, () => rawAttempt(server.port)));
    await untilRejected(100);
    await server.stop();
    assert.deepEqual(countCodes(rejected), { RATE_LIMITED: 70, HANDSHAKE_TIMEOUT: 30 });
  });
});
