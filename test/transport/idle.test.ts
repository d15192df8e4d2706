/**
 * An idle, healthy connection must stay up for as long as heartbeats flow, while
 * the time limits that guard the hub still drop what they are meant to drop: a
 * silent peer after three missed heartbeats, a client stuck before TLS or before
 * `hello` after the handshake time limit. Intervals are short and configured; the
 * tests count heartbeats and connections, never elapsed time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type HubAddress, TransportClient } from '../../src/transport/client.js';
import { connectToHub } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { eventually } from '../helpers.js';
import { childPeer, startServer } from './helpers.js';

// The handshake limit is well below the heartbeat interval, as in production
// (10 s against 15 s): any timer left over from the handshake would fire while idle.
const HANDSHAKE_MS = 150;
const HEARTBEAT_MS = 400;

describe('idle connections and time limits', () => {
  it('a hub and a child left idle for several heartbeat intervals keep one connection', async () => {
    const child = await createIdentity('idle-child');
    let serverCloses = 0;
    const { server, identity, connections } = await startServer([child.deviceId], {
      handshakeTimeoutMs: HANDSHAKE_MS,
      heartbeatMs: HEARTBEAT_MS,
      onConnection: (conn) => conn.once('close', () => serverCloses++),
    });
    const address: HubAddress = { host: '127.0.0.1', port: server.port };
    const client = new TransportClient({
      identity: child,
      local: childPeer,
      hubId: identity.deviceId,
      addresses: () => [address],
      onConnected: () => undefined,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    let clientConnects = 0;
    let clientCloses = 0;
    client.on('connected', () => clientConnects++);
    client.on('disconnected', () => clientCloses++);
    await client.start();
    await eventually(() => connections.length >= 1, 5000, 'the child connected');
    const first = connections[0]?.conn as Connection;

    // Both sides ping every interval and answer the other's pings: two frames per
    // interval arrive at the hub (the child's ping and its pong). Wait for six
    // intervals' worth, unless the connection dies first.
    const intervals = 6;
    await eventually(
      () => first.closed || first.getStats().framesIn >= 2 * intervals,
      60_000,
      `${intervals} heartbeat intervals on the first connection`,
    );
    const counts = { hubConnects: connections.length, serverCloses, clientConnects, clientCloses };
    await client.stop();
    await server.stop();
    assert.deepEqual(
      counts,
      { hubConnects: 1, serverCloses: 0, clientConnects: 1, clientCloses: 0 },
      'one connection, never dropped, while only heartbeats flowed',
    );
  });

  it('a peer that goes silent is still dropped after three missed heartbeats', async () => {
    const child = await createIdentity('silent-child');
    const closes: Array<string | undefined> = [];
    const { server, identity } = await startServer([child.deviceId], {
      handshakeTimeoutMs: HANDSHAKE_MS,
      heartbeatMs: HEARTBEAT_MS,
      onConnection: (conn) =>
        conn.once('close', (cause) => closes.push((cause as { code?: string } | undefined)?.code)),
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId },
    );
    // Go silent: no heartbeat of its own (none was started) and no reading, so no pong.
    const socket = (hub.conn as unknown as { socket: Socket }).socket;
    socket.removeAllListeners('data');
    socket.pause();
    await eventually(() => closes.length === 1, 30_000, 'the hub drops the silent peer');
    socket.destroy();
    await server.stop();
    assert.deepEqual(closes, ['HEARTBEAT_TIMEOUT']);
  });

  it('a client that opens TCP and never starts TLS is dropped after the handshake time limit', async () => {
    const { server, rejected } = await startServer([], { handshakeTimeoutMs: HANDSHAKE_MS });
    const socket = netConnect({ host: '127.0.0.1', port: server.port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.resume();
    await once(socket, 'close');
    await eventually(() => rejected.length === 1, 5000, 'the refusal is recorded');
    await server.stop();
    assert.deepEqual(
      rejected.map((r) => r.code),
      ['HANDSHAKE_TIMEOUT'],
    );
  });

  it('a client that finishes TLS but never sends hello is dropped with HANDSHAKE_TIMEOUT', async () => {
    const child = await createIdentity('mute-child');
    const { server, rejected, connections } = await startServer([child.deviceId], {
      handshakeTimeoutMs: HANDSHAKE_MS,
    });
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: server.port,
      key: child.keyPem,
      cert: child.certPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'close');
    await eventually(() => rejected.length === 1, 5000, 'the refusal is recorded');
    await server.stop();
    assert.deepEqual(
      rejected.map((r) => r.code),
      ['HANDSHAKE_TIMEOUT'],
    );
    assert.equal(connections.length, 0);
    assert.ok(Buffer.concat(chunks).includes('HANDSHAKE_TIMEOUT'), 'the client is told why');
  });
});
