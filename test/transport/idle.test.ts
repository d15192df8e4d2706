/**
 * An idle, healthy connection must stay up for as long as heartbeats flow, while
 * the time limits that guard the hub and the child still drop what they are meant
 * to drop: a silent peer after three missed heartbeats, a client stuck before TLS
 * or before `hello`, a request never answered, a hub that never finishes TLS.
 *
 * Heartbeats and every limit of ours run on a fake clock: a test moves it, then
 * waits for the real socket event that follows (a frame read, a close). Node's own
 * TLS handshake limit runs in real time; the tests that rely on it wait for the
 * event it causes, never for a duration.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { Authenticator } from '../../src/transport/authenticator.js';
import { connectToHub, type HubAddress, TransportClient } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { FakeClock } from '../helpers.js';
import { childPeer, framesRead, socketOf, startServer } from './helpers.js';

// Node's TLS handshake limit (real time) is well below the heartbeat interval, as in
// production (10 s against 15 s): a timer left over from the handshake would fire
// while the connection idles.
const HANDSHAKE_MS = 150;
const HEARTBEAT_MS = 15_000;

/** Lets promise callbacks and ready I/O run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const codeOf = (cause: unknown) => (cause as { code?: string } | undefined)?.code;

describe('idle connections and time limits', () => {
  it(
    'a hub and a child left idle for several heartbeat intervals keep one connection',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const child = await createIdentity('idle-child');
      let serverCloses = 0;
      const { server, identity, connections, untilConnections, untilRejected } = await startServer(
        [child.deviceId],
        {
          clock,
          handshakeTimeoutMs: HANDSHAKE_MS,
          heartbeatMs: HEARTBEAT_MS,
          onConnection: (conn) => conn.once('close', () => serverCloses++),
        },
      );
      const address: HubAddress = { host: '127.0.0.1', port: server.port };
      const client = new TransportClient({
        identity: child,
        local: childPeer,
        hubId: identity.deviceId,
        addresses: () => [address],
        onConnected: () => undefined,
        backoff: { initialMs: 10, maxMs: 50 },
        clock,
      });
      let clientConnects = 0;
      let clientCloses = 0;
      client.on('connected', () => clientConnects++);
      client.on('disconnected', () => clientCloses++);
      const connected = once(client, 'connected') as Promise<[{ conn: Connection }]>;
      await client.start();
      const [{ conn: atChild }] = await connected;
      await untilConnections(1);
      const atHub = connections[0]?.conn as Connection;

      // Each interval both sides ping and answer the other's ping: two frames reach
      // each side. Six intervals, twice the three a silent peer is allowed.
      const round = async () => {
        const reads = [
          framesRead(atHub, 2, atHub.getStats().framesIn),
          framesRead(atChild, 2, atChild.getStats().framesIn),
        ];
        clock.advance(HEARTBEAT_MS);
        await Promise.all(reads);
      };
      for (let i = 0; i < 6; i++) await round();

      // Node's TLS handshake limit runs in real time. A socket that never starts TLS,
      // opened after this connection's handshake, is dropped by it: once that has
      // happened, this connection has idled for longer than the limit too.
      const probe = netConnect(address);
      probe.on('error', () => undefined);
      await untilRejected(1);
      probe.destroy();
      await round();

      const counts = { hubConnects: connections.length, serverCloses, clientConnects, clientCloses };
      await client.stop();
      await server.stop();
      assert.deepEqual(
        counts,
        { hubConnects: 1, serverCloses: 0, clientConnects: 1, clientCloses: 0 },
        'one connection, never dropped, while only heartbeats flowed',
      );
    },
  );

  it(
    'a peer that goes silent is dropped once three heartbeat intervals have passed, not before and not a heartbeat later',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const child = await createIdentity('silent-child');
      const closes: Array<string | undefined> = [];
      const { server, identity } = await startServer([child.deviceId], {
        clock,
        heartbeatMs: HEARTBEAT_MS,
        onConnection: (conn) => conn.once('close', (cause) => closes.push(codeOf(cause))),
      });
      const hub = await connectToHub(
        { host: '127.0.0.1', port: server.port },
        { identity: child, local: childPeer, hubId: identity.deviceId },
      );
      // Go silent: no heartbeat of its own (none was started) and no reading, so no pong.
      const socket = socketOf(hub.conn);
      socket.removeAllListeners('data');
      socket.pause();
      for (let i = 0; i < 3; i++) clock.advance(HEARTBEAT_MS);
      await settle();
      assert.deepEqual(closes, [], 'three silent intervals are allowed');
      // Dropped just after the third interval of silence, not at the next heartbeat
      // (up to a fourth interval later).
      clock.advance(2);
      assert.deepEqual(closes, ['HEARTBEAT_TIMEOUT']);
      socket.destroy();
      await server.stop();
    },
  );

  it(
    'a client that opens TCP and never starts TLS is dropped after the handshake time limit',
    { timeout: 30_000 },
    async () => {
      // Node's own TLS limit, in real time: the test waits for the close it causes.
      const { server, rejected, untilRejected } = await startServer([], { handshakeTimeoutMs: HANDSHAKE_MS });
      const socket = netConnect({ host: '127.0.0.1', port: server.port });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      socket.resume();
      await once(socket, 'close');
      await untilRejected(1);
      await server.stop();
      assert.deepEqual(
        rejected.map((r) => r.code),
        ['HANDSHAKE_TIMEOUT'],
      );
    },
  );

  it(
    'a client that finishes TLS but never sends hello is dropped with HANDSHAKE_TIMEOUT at the limit',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const limit = 5000;
      const child = await createIdentity('mute-child');
      let checked: () => void = () => undefined;
      const authenticated = new Promise<void>((resolve) => {
        checked = resolve;
      });
      const authenticator: Authenticator = {
        authenticate: () => {
          checked();
          return { allow: 'sync' };
        },
      };
      const { server, rejected, connections, untilRejected } = await startServer([], {
        clock,
        authenticator,
        handshakeTimeoutMs: limit,
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
      const closed = once(socket, 'close');
      // The wait for hello starts right after the device is checked.
      await authenticated;
      await settle();
      clock.advance(limit - 1);
      await settle();
      assert.equal(rejected.length, 0, 'still within the limit');
      clock.advance(1);
      await untilRejected(1);
      await closed;
      await server.stop();
      assert.deepEqual(
        rejected.map((r) => r.code),
        ['HANDSHAKE_TIMEOUT'],
      );
      assert.equal(connections.length, 0);
      assert.ok(Buffer.concat(chunks).includes('HANDSHAKE_TIMEOUT'), 'the client is told why');
    },
  );

  it(
    'a request never answered fails with REQUEST_TIMEOUT at its limit, and leaves no timer',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const child = await createIdentity('asking-child');
      let asked: () => void = () => undefined;
      const received = new Promise<void>((resolve) => {
        asked = resolve;
      });
      const { server, identity } = await startServer([child.deviceId], {
        // The hub takes the request and never answers it.
        onConnection: (conn) =>
          conn.handle('slow', () => {
            asked();
            return new Promise(() => undefined);
          }),
      });
      const hub = await connectToHub(
        { host: '127.0.0.1', port: server.port },
        { identity: child, local: childPeer, hubId: identity.deviceId, clock },
      );
      const before = clock.pending();
      let outcome: string | undefined;
      const answer = hub.conn.request('slow', undefined, { timeoutMs: 2000 }).then(
        () => 'answered',
        (err: unknown) => codeOf(err) ?? String(err),
      );
      void answer.then((o) => {
        outcome = o;
      });
      await received;
      clock.advance(1999);
      await settle();
      assert.equal(outcome, undefined, 'still waiting within the limit');
      clock.advance(1);
      assert.equal(await answer, 'REQUEST_TIMEOUT');
      assert.equal(clock.pending(), before, 'the request left no timer behind');
      hub.conn.close();
      await server.stop();
    },
  );

  it(
    'connecting gives up with CONNECT_TIMEOUT when the hub never finishes TLS',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const child = await createIdentity('waiting-child');
      // Accepts TCP and says nothing: no TLS ever starts.
      const held: Socket[] = [];
      const mute = createNetServer((socket) => held.push(socket));
      mute.listen(0, '127.0.0.1');
      await once(mute, 'listening');
      const accepted = once(mute, 'connection');
      const port = (mute.address() as { port: number }).port;
      let outcome: string | undefined;
      const attempt = connectToHub(
        { host: '127.0.0.1', port },
        { identity: child, local: childPeer, hubId: undefined, timeoutMs: 10_000, clock },
      ).then(
        () => 'connected',
        (err: unknown) => codeOf(err) ?? String(err),
      );
      void attempt.then((o) => {
        outcome = o;
      });
      await accepted;
      clock.advance(9_999);
      await settle();
      assert.equal(outcome, undefined, 'still connecting within the limit');
      clock.advance(1);
      assert.equal(await attempt, 'CONNECT_TIMEOUT');
      assert.equal(clock.pending(), 0, 'the attempt left no timer behind');
      for (const s of held) s.destroy();
      await new Promise((resolve) => mute.close(resolve));
    },
  );
});
