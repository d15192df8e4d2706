import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { connectToHub } from '../../src/transport/client.js';
import type { ChunkHandler, Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { childPeer, startServer } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A hub and a connected child; `from` sends chunk frames, the other end handles
 * them. The child's socket reads into one reused buffer, the hub's gives a buffer
 * per read: both ways are tried.
 */
async function pair(from: 'child' | 'hub', onChunk: ChunkHandler) {
  const child = await createIdentity('peer');
  let atHub: (conn: Connection) => void = () => undefined;
  const hubSide = new Promise<Connection>((resolve) => (atHub = resolve));
  const { server, identity } = await startServer([child.deviceId], {
    onConnection: (conn) => {
      if (from === 'child') conn.setChunkHandler(onChunk);
      atHub(conn);
    },
  });
  const hub = await connectToHub(
    { host: '127.0.0.1', port: server.port },
    { identity: child, local: childPeer, hubId: identity.deviceId },
  );
  if (from === 'hub') hub.conn.setChunkHandler(onChunk);
  const atHubConn = await hubSide;
  const sender = from === 'child' ? hub.conn : atHubConn;
  const receiver = from === 'child' ? atHubConn : hub.conn;
  return {
    sender,
    receiver,
    stop: async () => {
      hub.conn.close();
      await server.stop();
    },
  };
}

for (const from of ['child', 'hub'] as const)
  describe(`chunk frames received, sent by the ${from}`, () => {
    it('arrive whole and in order; once handled, their memory carries later frames', async () => {
      const sent = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 7919) % (256 * 1024))));
      const seen: string[] = [];
      const memory = new Set<ArrayBufferLike>();
      let all: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (all = resolve));
      const { sender, receiver, stop } = await pair(from, async (payload, done) => {
        seen.push(sha(payload));
        memory.add(payload.buffer);
        // Handled a little later, as a store's put is: the frames behind it queue meanwhile.
        await new Promise((r) => setImmediate(r));
        done();
        if (seen.length === sent.length) all();
      });
      // Random bytes do not compress: every frame goes as it is.
      for (const bytes of sent) await sender.sendChunk(Buffer.from([1]), bytes, { compress: false });
      await arrived;
      assert.deepEqual(
        seen,
        sent.map((b) => sha(Buffer.concat([Buffer.from([1]), b]))),
      );
      // 300 frames of 38 MB in all, handled one at a time: a few slabs of 1 MiB carried
      // them (and the pool Node cuts small buffers from, for the smallest ones).
      assert.ok(memory.size < 30, `${memory.size} buffers held 300 frames`);
      // The reader paused while frames waited: at most its limit queued (8, and one
      // more in the read under way), however fast they came.
      assert.ok(receiver.getStats().maxQueued <= 9, `${receiver.getStats().maxQueued} frames queued at most`);
      await stop();
    });

    it('`sent` comes for every frame once the socket is done with its body: changing it then changes nothing', async () => {
      const sent = Array.from({ length: 200 }, () => randomBytes(64 * 1024));
      const seen: string[] = [];
      let all: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (all = resolve));
      const { sender, stop } = await pair(from, (payload, done) => {
        seen.push(sha(payload));
        done();
        if (seen.length === sent.length) all();
      });
      let told = 0;
      for (const bytes of sent) {
        const body = Buffer.from(bytes);
        await sender.sendChunk(Buffer.from([3]), body, {
          compress: false,
          sent: () => {
            told++;
            body.fill(0xee);
          },
        });
      }
      await arrived;
      assert.equal(told, sent.length);
      assert.deepEqual(
        seen,
        sent.map((b) => sha(Buffer.concat([Buffer.from([3]), b]))),
      );
      await stop();
    });

    it('a handler that keeps its payloads and never says it is done still gets every byte right', async () => {
      const sent = Array.from({ length: 60 }, (_, i) => randomBytes(i % 2 ? 100 * 1024 : 300));
      const kept: Buffer[] = [];
      let all: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (all = resolve));
      const { sender, stop } = await pair(from, (payload) => {
        kept.push(payload);
        if (kept.length === sent.length) all();
      });
      for (const bytes of sent) await sender.sendChunk(Buffer.from([2]), bytes, { compress: false });
      await arrived;
      kept.forEach((payload, i) => assert.deepEqual(payload.subarray(1), sent[i], `frame ${i}`));
      await stop();
    });
  });
