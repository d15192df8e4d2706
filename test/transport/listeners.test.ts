/**
 * Listener hygiene on one long-lived connection: however many sends, pongs and
 * requests wait behind a slow reader, and however many requests share one
 * AbortSignal, the listeners on the connection, its socket and the signal stay
 * bounded, and Node never warns of a leak.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { getEventListeners, once } from 'node:events';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MessageCodec } from '../../src/protocol/codec.js';
import { connectToHub, type HubAddress, TransportClient } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { FakeClock } from '../helpers.js';
import { childPeer, framesRead, socketOf, startServer } from './helpers.js';

const warnings: string[] = [];
const onWarning = (w: Error) => {
  if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
};
before(() => process.on('warning', onWarning));
after(() => process.off('warning', onWarning));
beforeEach(() => {
  warnings.length = 0;
});

/** Listeners a send or request could leave behind, on the connection and on its socket. */
function listenerCounts(conn: Connection) {
  const socket = socketOf(conn);
  return {
    connClose: conn.listenerCount('close'),
    connError: conn.listenerCount('error'),
    socketDrain: socket.listenerCount('drain'),
    socketClose: socket.listenerCount('close'),
    socketError: socket.listenerCount('error'),
  };
}

describe('listeners on a long-lived connection', () => {
  it('sends, pongs and requests held back by a slow reader share one wait', async () => {
    const child = await createIdentity('slow-reader');
    const { server, identity, connections, untilConnections } = await startServer([child.deviceId], {
      onConnection: (conn) => conn.handle('echo', (params) => params),
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId },
    );
    await untilConnections(1);
    const conn = connections[0]?.conn as Connection;
    const baseline = listenerCounts(conn);

    // The child stops reading: the hub's socket fills and its writers are held back.
    const childSocket = socketOf(hub.conn);
    childSocket.pause();
    // Random, so compression cannot shrink it: 400 of these are 25 MiB on the wire,
    // far more than the socket buffers of loopback hold.
    const payload = randomBytes(48 * 1024).toString('base64');
    const sends = Array.from({ length: 400 }, (_, i) =>
      conn.send({ type: 'request', id: 1_000_000 + i, method: 'noop', params: { payload } }),
    );
    const heldBack = listenerCounts(conn);
    // Meanwhile the child sends pings and requests the hub must answer into the full socket.
    const codec = new MessageCodec();
    const framesBefore = conn.getStats().framesIn;
    for (let i = 0; i < 500; i++) childSocket.write(codec.encode({ type: 'ping', t: i }));
    const requests = Array.from({ length: 50 }, () =>
      hub.conn.request('echo', { payload: 'y'.repeat(1024) }, { timeoutMs: 60_000 }),
    );
    // Pings are answered as they are read, never queued, so all 500 are read; the
    // requests are answered one at a time and the rest wait, unread, behind the first.
    await framesRead(conn, 500, framesBefore);
    const stillFull = socketOf(conn).writableNeedDrain;
    const answering = listenerCounts(conn);

    childSocket.resume();
    await Promise.all(sends);
    await Promise.all(requests);
    const afterwards = listenerCounts(conn);
    hub.conn.close();
    await server.stop();

    assert.ok(stillFull, 'the hub socket was still full while it answered');
    for (const [when, counts] of Object.entries({ heldBack, answering })) {
      for (const [name, count] of Object.entries(counts)) {
        const base = baseline[name as keyof typeof baseline];
        assert.ok(count <= base + 1, `${when}: ${count} ${name} listeners (baseline ${base})`);
      }
    }
    assert.deepEqual(afterwards, baseline, 'every wait removed its listeners');
    assert.deepEqual(warnings, []);
  });

  it('requests that share one AbortSignal leave no abort listener behind', async () => {
    const child = await createIdentity('requester');
    const { server, identity } = await startServer([child.deviceId], {
      onConnection: (conn) => conn.handle('echo', (params) => params),
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId },
    );
    const session = new AbortController();
    // Eight at a time (fewer than Node's warning threshold), 480 in all: only
    // listeners left behind by finished requests could add up to a warning.
    for (let round = 0; round < 60; round++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          hub.conn.request('echo', { round, i }, { signal: session.signal, timeoutMs: 30_000 }),
        ),
      );
      assert.equal(results.length, 8);
    }
    const abortListeners = getEventListeners(session.signal, 'abort').length;
    const connListeners = listenerCounts(hub.conn);
    // An aborted request rejects with the signal's reason and cleans up too.
    const cancel = new AbortController();
    const cancelled = hub.conn.request('never', undefined, { signal: cancel.signal, timeoutMs: 30_000 });
    cancel.abort(new Error('stop'));
    await assert.rejects(cancelled, /stop/);
    hub.conn.close();
    await server.stop();
    assert.equal(abortListeners, 0, 'no abort listener outlives its request');
    assert.deepEqual(listenerCounts(hub.conn), connListeners);
    assert.equal(getEventListeners(cancel.signal, 'abort').length, 0);
    assert.deepEqual(warnings, []);
  });

  it('a client that retries many times adds no listeners that stay', async () => {
    const child = await createIdentity('retrier');
    const clock = new FakeClock();
    // The hub does not know this device: every attempt is refused and retried.
    const { server, identity, rejected } = await startServer([]);
    const address: HubAddress = { host: '127.0.0.1', port: server.port };
    const client = new TransportClient({
      identity: child,
      local: childPeer,
      hubId: identity.deviceId,
      addresses: () => [address],
      onConnected: () => undefined,
      backoff: { initialMs: 1, maxMs: 5 },
      clock,
    });
    let failures = 0;
    client.on('attempt-failed', () => failures++);
    // Each failure leaves the client waiting at most 5 ms on its clock: moving the
    // clock that far starts the next attempt.
    let failed = once(client, 'attempt-failed');
    await client.start();
    for (let i = 1; i < 30; i++) {
      await failed;
      failed = once(client, 'attempt-failed');
      clock.advance(5);
    }
    await failed;
    const signal = (client as unknown as { abort: AbortController }).abort.signal;
    const abortListeners = getEventListeners(signal, 'abort').length;
    await client.stop();
    await server.stop();
    assert.ok(rejected.length >= 30);
    // At most the one wait or attempt in progress listens on the client's signal.
    assert.ok(abortListeners <= 1, `${abortListeners} abort listeners after ${failures} retries`);
    assert.deepEqual(warnings, []);
  });
});
