/**
 * A connection whose socket dies while a send waits for room: the send fails and
 * the connection closes, so the node behind it reconnects, rather than waiting
 * for a `drain` that a dead socket never emits.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { connectToHub } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { eventually } from '../helpers.js';
import { childPeer, paddedBatch, socketOf, startServer } from './helpers.js';

describe('a peer that goes away while a send waits for room', () => {
  it('fails the send and closes the connection', async () => {
    const child = await createIdentity('reset-reader');
    let serverConn: Connection | undefined;
    let sendError: unknown;
    // Random, so compression cannot shrink it: the socket's buffer really fills.
    const pad = randomBytes(256 * 1024).toString('base64');
    const { server, identity } = await startServer([child.deviceId], {
      onConnection: (conn) => {
        serverConn = conn;
        conn.setHandler(async () => {
          try {
            // Writes until the send waits for room, as a session sending to a slow child does.
            for (let i = 0; i < 1000; i++) await conn.send(paddedBatch(i, pad));
          } catch (err) {
            sendError = err;
            throw err;
          }
        });
      },
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId },
    );
    const reader = socketOf(hub.conn) as TLSSocket;
    // The child stops reading, then asks for what the server sends.
    reader.pause();
    await hub.conn.send({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } });
    await eventually(() => serverConn !== undefined && socketOf(serverConn).writableNeedDrain, 10_000);
    const closed = once(serverConn as Connection, 'close');
    // Gone without reading what waits: no drain will ever come.
    reader.destroy();
    const outcome = await Promise.race([
      closed.then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 5 s'), 5000)),
    ]);
    assert.equal(outcome, 'closed');
    assert.equal((sendError as { code?: string } | undefined)?.code, 'CONNECTION_CLOSED');
    await server.stop();
  });
});
