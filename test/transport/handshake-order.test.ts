/**
 * Before the welcome, the only message a client may send is `hello` (PROTOCOL.md,
 * "Handshake", step 5). A request or a ping sent first used to be answered (a
 * `response` UNKNOWN_METHOD, a `pong`) while the hub went on waiting for a hello
 * until its handshake limit, and so were those that arrived while the hub was
 * still checking the certificate; the pairing fuzzer found it with the input below.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pairWithHub } from '../../src/child/pairing.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MessageCodec } from '../../src/protocol/codec.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import type { DeviceId } from '../../src/store/types.js';
import { Connection } from '../../src/transport/connection.js';
import { TransportError } from '../../src/transport/errors.js';
import { createIdentity } from '../../src/transport/identity.js';
import { startTestHub } from '../fixtures/nodes.js';
import { messageFrame } from '../fuzz/mutate.js';
import { FramePeer } from '../fuzz/peer.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

/** The fuzzer's input: pair.start, then hello, pair.exchange and pair.confirm. */
const FOUND = [
  '0000008301007b2274797065223a2272657175657374222c226964223a312c226d6574686f64223a22706169722e7374617274222c22706172616d73223a7b226c6f6f6b7570223a22404c4b40222c226e6f6e6365223a22404e4f4e4345407e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e227d7d',
  '0000009f01007b2274797065223a2268656c6c6f222c2270726f746f636f6c223a2274726f73796e2d73796e63222c2276657273696f6e73223a5b315d2c226e616d65223a2266757a7a6572222c22726f6c65223a226368696c64222c2261707056657273696f6e223a22302e302e30222c22636f6d7072657373696f6e223a5b227a737464222c226272222c226e6f6e65225d2c226665617475726573223a5b5d7d',
  '0000007601007b2274797065223a2272657175657374222c226964223a322c226d6574686f64223a22706169722e65786368616e6765222c22706172616d73223a7b227368617265223a22405348415245407e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e227d7d',
].map((hex) => Buffer.from(hex, 'hex'));

describe('the handshake refuses anything before hello', () => {
  it('a request, a ping or a pong first is UNEXPECTED_MESSAGE and the close, unanswered; the hub serves the next client', async () => {
    const hub = await startTestHub(join(dir.path, 'hub'));
    try {
      for (const input of [
        FOUND,
        [messageFrame({ type: 'ping', t: 1 }), FOUND[1] as Buffer],
        [messageFrame({ type: 'pong', t: 1 })],
      ]) {
        const peer = await FramePeer.connect(hub.port, await createIdentity('early'));
        // One write: a hub that answered the first message would do so before it saw the rest.
        peer.write(Buffer.concat(input));
        await peer.until(() => false, 10_000, 'the close');
        peer.destroy();
        assert.equal(peer.malformed, undefined);
        assert.deepEqual(
          peer.messages().map((m) => m.type),
          ['error'],
        );
        assert.deepEqual(peer.errorCodes(), ['UNEXPECTED_MESSAGE']);
      }
      const result = await pairWithHub({
        identity: await createIdentity('after'),
        code: (await hub.registry.issueCode()).code,
        address: { host: '127.0.0.1', port: hub.port },
        name: 'after',
      });
      assert.equal(result.hubId, hub.deviceId);
    } finally {
      await hub.stop();
    }
  });

  it('a request sent right after hello, before the welcome came, is answered by its method once the connection is set up', async () => {
    const hub = await startTestHub(join(dir.path, 'hub-pipelined'));
    try {
      const code = (await hub.registry.issueCode()).code;
      const peer = await FramePeer.connect(hub.port, await createIdentity('eager'));
      peer.write(
        Buffer.concat([
          FOUND[1] as Buffer,
          messageFrame({
            type: 'request',
            id: 1,
            method: 'pair.start',
            params: { lookup: code.slice(0, 4), nonce: Buffer.alloc(32, 1).toString('base64') },
          }),
        ]),
      );
      await peer.until(() => peer.messages().some((m) => m.type === 'response'), 10_000, 'the response');
      const response = peer.messages().find((m) => m.type === 'response');
      assert.equal(response?.type === 'response' && response.ok, true, JSON.stringify(response));
      peer.destroy();
    } finally {
      await hub.stop();
    }
  });

  it('messages that arrive before the handshake waits for its first one are held: the first goes to it, none is answered', async () => {
    // The hub's connection exists while the certificate is checked; the client may already be sending.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = netConnect((server.address() as { port: number }).port, '127.0.0.1');
    const [socket] = await accepted;
    const conn = new Connection({
      socket,
      peer: '0'.repeat(64) as DeviceId,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      logger: silentLogger,
    });
    const received: Buffer[] = [];
    client.on('data', (b: Buffer) => received.push(b));
    const clientClosed = once(client, 'close');
    client.write(
      Buffer.concat([
        messageFrame({ type: 'ping', t: 1 }),
        messageFrame({ type: 'request', id: 1, method: 'status' }),
        FOUND[1] as Buffer,
      ]),
    );
    await eventually(() => conn.getStats().framesIn === 3, 10_000, 'the frames read');
    // The handshake begins: it gets the ping, the first message, and refuses it.
    let first: unknown;
    conn.onFirstMessage((m) => (first = m));
    assert.deepEqual(first, { type: 'ping', t: 1 });
    conn.close(new TransportError('UNEXPECTED_MESSAGE', 'expected hello, got ping'));
    await clientClosed;
    server.close();
    const codec = new MessageCodec();
    const sent = new FrameDecoder().push(Buffer.concat(received)).map((f) => codec.decode(f));
    assert.deepEqual(
      sent.map((d) => (d.kind === 'message' ? d.message.type : 'chunk')),
      ['error'],
      'nothing but the error was sent',
    );
  });
});
