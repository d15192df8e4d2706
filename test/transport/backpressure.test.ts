import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connectToHub } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { childPeer, paddedBatch, startServer } from './helpers.js';

describe('backpressure', () => {
  it('a slow reader slows the writer: the writer buffers little and the reader queues at most its limit', async () => {
    const child = await createIdentity('writer');
    const messages = 120; // 30 MiB in all: far more than any socket buffer holds
    let serverConn: Connection | undefined;
    let handled = 0;
    let allHandled: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      allHandled = resolve;
    });
    const { server, identity } = await startServer([child.deviceId], {
      onConnection: (conn) => {
        serverConn = conn;
        conn.setHandler(async () => {
          // Slow work, as applying a large batch is: the reader falls behind the writer.
          await new Promise((r) => setTimeout(r, 15));
          if (++handled === messages) allHandled();
        });
      },
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId },
    );
    const socket = (hub.conn as unknown as { socket: Socket }).socket;
    // Random, so compression cannot shrink it: the 30 MiB really cross the socket.
    const payload = randomBytes(192 * 1024).toString('base64');
    let maxBuffered = 0;
    for (let i = 0; i < messages; i++) {
      await hub.conn.send(paddedBatch(i, payload));
      maxBuffered = Math.max(maxBuffered, socket.writableLength);
    }
    await done;
    const stats = serverConn?.getStats();
    assert.ok(stats, 'the server saw the connection');
    // The reader pauses at 8 queued messages; one more may already be in the chunk being read.
    assert.ok(stats.maxQueued <= 9, `reader queued at most its limit (saw ${stats.maxQueued})`);
    // The writer waited for 'drain' instead of buffering the 30 MiB it was asked to send.
    assert.ok(maxBuffered < 4 * 1024 * 1024, `writer buffered ${maxBuffered} bytes at most`);
    hub.conn.close();
    await server.stop();
  });
});
