/**
 * Fuzzing a live TLS hub: many authenticated connections send mutated, truncated
 * and random frames while a well-behaved child syncs at the same time. The hub
 * must stay up, answer each bad peer with an error or a close, and let the good
 * session finish. The frames are random, not guided: the coverage-guided form of
 * the sync session's fuzzing, with a stronger oracle (the hub's store and acks
 * checked per input), is the `session` target of test/fuzz (`npm run fuzz --
 * --target session`); this test stays for what that one lacks, many connections
 * at once against a child syncing live.
 *
 * TROSYN_FUZZ_FRAMES sets the number of frames (default 5,000, to keep `npm test`
 * short; a long run is `TROSYN_FUZZ_FRAMES=1000000 npm test -- fuzz`), and the
 * time limit grows with it. The seed is printed before anything else, so a run
 * that fails or times out can be replayed with TROSYN_FUZZ_SEED.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { createChild } from '../../src/child/factory.js';
import { createHub } from '../../src/hub/factory.js';
import { MessageCodec } from '../../src/protocol/codec.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import type { Message } from '../../src/protocol/messages.js';
import type { DeviceId } from '../../src/store/types.js';
import { StaticAuthenticator } from '../../src/transport/authenticator.js';
import { createIdentity, loadOrCreateIdentity } from '../../src/transport/identity.js';
import { prng, type Rand } from '../fuzz/random.js';
import { eventually, tempDir } from '../helpers.js';

const FRAMES = Number(process.env.TROSYN_FUZZ_FRAMES ?? 5_000);
const SEED = Number(process.env.TROSYN_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PARALLEL = 12;
// A limit against a hung run, not a speed target: a frame costs about 2 to 5 ms on
// two busy cores (most of it the TLS handshakes of the fuzzing connections), so
// 10 ms a frame on top of two minutes for setup and the final sync leaves room.
const TIME_LIMIT_MS = 120_000 + 10 * FRAMES;

// First, before any work: a run cut short by its time limit still names its seed.
console.log(
  `fuzz: seed ${SEED}, ${FRAMES} frames, time limit ${Math.round(TIME_LIMIT_MS / 1000)} s; replay with TROSYN_FUZZ_SEED=${SEED} TROSYN_FUZZ_FRAMES=${FRAMES}`,
);

const codec = new MessageCodec();
const encode = (m: unknown) => codec.encode(m as Message);

const validHello: Message = {
  type: 'hello',
  protocol: 'trosyn-sync',
  versions: [1],
  name: 'fuzzer',
  role: 'child',
  appVersion: '0.0.0',
  compression: ['none'],
  features: [],
};

/**
 * One frame: mostly harmless but odd (pings, requests for unknown methods, stray
 * acks), sometimes mutated, garbage, oversized, mis-flagged or of an unknown type.
 * Whether it must end the connection is decided by the oracle, not guessed here:
 * a bit flip may well leave a valid frame.
 */
function fuzzFrame(r: Rand): Buffer {
  const roll = r.next();
  if (roll < 0.35) return encode({ type: 'ping', t: r.next() * 1e12 });
  if (roll < 0.7) {
    return encode({
      type: 'request',
      id: 1 + r.int(1e6),
      method: r.pick(['status', 'x', 'sync.now', 'a.b-c', 'files.get']),
      params: { n: r.int(100), s: 'x'.repeat(r.int(50)), deep: r.next() < 0.1 ? nested(r.int(200)) : null },
    });
  }
  if (roll < 0.86)
    return encode({ type: 'sync.ack', upTo: r.int(1e6), applied: 0, duplicates: 0, rejected: [] });
  switch (r.int(7)) {
    case 0: {
      const bytes = Buffer.from(encode({ type: 'ping', t: r.int(1000) }));
      for (let i = 0, n = 1 + r.int(4); i < n; i++) {
        const at = r.int(bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << r.int(8));
      }
      return bytes;
    }
    case 1:
      return Buffer.from(Array.from({ length: 1 + r.int(200) }, () => r.int(256)));
    case 2: {
      // A length prefix far beyond the maximum: refused from the first four bytes.
      const header = Buffer.alloc(6);
      header.writeUInt32BE(DEFAULT_MAX_FRAME_BYTES + 1 + r.int(2 ** 30));
      header[4] = 1;
      return header;
    }
    case 3:
      return encode({ type: r.pick(['nope', 'sync.unknown', 'HELLO', '']), x: 1 });
    case 4: {
      const payload = Buffer.from(
        r.pick([
          '[1,2,3]',
          '"str"',
          '{"type":"ping"}',
          '{"type":"request","id":-1,"method":"x"}',
          '{',
          'null',
        ]),
      );
      const header = Buffer.alloc(6);
      header.writeUInt32BE(payload.length + 2);
      header[4] = 1;
      return Buffer.concat([header, payload]);
    }
    case 5: {
      // Compressed flag over bytes that are not compressed.
      const bytes = Buffer.from(encode({ type: 'ping', t: 1 }));
      bytes[5] = r.pick([1, 2, 3]);
      return bytes;
    }
    default: {
      // Reserved kind or flag bits.
      const bytes = Buffer.from(encode({ type: 'ping', t: 1 }));
      if (r.next() < 0.5) bytes[4] = 3 + r.int(250);
      else bytes[5] = (bytes[5] as number) | (4 << r.int(6));
      return bytes;
    }
  }
}

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}

/**
 * The oracle: decodes what a connection sent exactly as the hub does, and says
 * whether the stream so far contains a frame the hub must refuse.
 */
class Oracle {
  private readonly decoder = new FrameDecoder();
  private readonly codec = new MessageCodec();
  violated = false;
  push(bytes: Buffer): void {
    if (this.violated) return;
    try {
      for (const frame of this.decoder.push(bytes)) {
        const decoded = this.codec.decode(frame);
        if (decoded.kind === 'chunk') throw new Error('unrequested chunk');
      }
    } catch {
      this.violated = true;
    }
  }
}

interface FuzzResult {
  framesSent: number;
  sentFatal: boolean;
  serverClosed: boolean;
  gotErrorFrame: boolean;
}

/** One fuzzing connection; resolves when it is closed (by the hub, or by itself after its frames). */
async function fuzzConnection(
  port: number,
  identity: { keyPem: string; certPem: string },
  r: Rand,
  budget: number,
): Promise<FuzzResult> {
  const socket: TLSSocket = connect({
    host: '127.0.0.1',
    port,
    key: identity.keyPem,
    cert: identity.certPem,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  const result: FuzzResult = { framesSent: 0, sentFatal: false, serverClosed: false, gotErrorFrame: false };
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) {
        const decoded = codec.decode(frame);
        if (decoded.kind === 'message' && decoded.message.type === 'error') result.gotErrorFrame = true;
      }
    } catch {
      // The hub sends well-formed frames; a decode failure here would show as a missing error frame.
    }
  });
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  let ended = false;
  socket.once('end', () => {
    result.serverClosed = true;
    ended = true;
  });
  try {
    await once(socket, 'secureConnect');
  } catch {
    return result;
  }
  // Most fuzzers complete the handshake first, to reach the message handlers behind it.
  if (r.next() < 0.8) {
    socket.write(encode(validHello));
    result.framesSent++;
  }
  const oracle = new Oracle();
  const count = 1 + r.int(Math.max(1, budget));
  for (let i = 0; i < count && !ended && !socket.destroyed; i++) {
    let bytes = fuzzFrame(r);
    // Some frames go out truncated, cut short before the close.
    const truncate = r.next() < 0.03 && bytes.length > 1;
    if (truncate) bytes = bytes.subarray(0, 1 + r.int(bytes.length - 1));
    socket.write(bytes);
    result.framesSent++;
    oracle.push(bytes);
    if (oracle.violated) {
      result.sentFatal = true;
      break;
    }
    if (truncate) break;
  }
  if (!result.sentFatal) socket.end();
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  socket.destroy();
  return result;
}

const dir = tempDir();
after(() => dir.remove());

// The limit is set on the suite as well as the test: the runner's default per-test
// limit (scripts/test.mjs) would otherwise cut a long run short.
describe('fuzzing a live TLS hub', { timeout: TIME_LIMIT_MS }, () => {
  it(
    `${FRAMES} mutated, truncated and random frames; the hub stays up and a concurrent sync completes (seed ${SEED})`,
    {
      timeout: TIME_LIMIT_MS,
    },
    async () => {
      const fuzzId = await createIdentity('fuzzer');
      const goodId = (await loadOrCreateIdentity(join(dir.path, 'good', 'identity'))).deviceId;
      const hub = createHub(
        {
          discovery: false,
          dataDir: join(dir.path, 'hub'),
          host: '127.0.0.1',
          port: 0,
          connectionLimit: { burst: 1e9, perMinute: 1e9 },
          synchronous: 'off',
        },
        { authenticator: new StaticAuthenticator([fuzzId.deviceId, goodId] as DeviceId[]) },
      );
      await hub.start();
      for (let i = 0; i < 3000; i += 500) {
        await hub.replica.writeMany(
          Array.from({ length: 500 }, (_, j) => ({
            op: 'put' as const,
            collection: 'docs',
            id: `d${i + j}`,
            body: { i: i + j, pad: 'p'.repeat(200) },
          })),
        );
      }
      const good = createChild({
        dataDir: join(dir.path, 'good'),
        hubId: hub.deviceId,
        hubAddresses: () => [{ host: '127.0.0.1', port: hub.port }],
        backoff: { initialMs: 50, maxMs: 500 },
        synchronous: 'off',
      });
      const r = prng(SEED);
      let sent = 0;
      let connections = 0;
      let fatal = 0;
      let fatalAnswered = 0;
      const unanswered: FuzzResult[] = [];
      const worker = async () => {
        while (sent < FRAMES) {
          const result = await fuzzConnection(hub.port, fuzzId, prng(r.int(2 ** 31)), 80);
          connections++;
          sent += result.framesSent;
          if (result.sentFatal) {
            fatal++;
            if (result.serverClosed || result.gotErrorFrame) fatalAnswered++;
            else unanswered.push(result);
          }
        }
      };
      await good.start();
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      await eventually(
        async () => (await good.replica.list('docs', { limit: 10_000 })).length === 3000,
        30_000,
        'the good child synced every record',
      );
      const w = await good.replica.put('docs', 'after-fuzz', { ok: true });
      await eventually(
        async () => (await hub.replica.get('docs', 'after-fuzz'))?.rev === w.rev,
        10_000,
        'the hub still syncs',
      );
      console.log(
        `fuzz: seed ${SEED}, ${sent} frames over ${connections} connections, ${fatal} fatal frames, ${fatalAnswered} answered with an error or close`,
      );
      assert.ok(sent >= FRAMES);
      assert.deepEqual(unanswered, [], 'every peer that sent a bad frame got an error or a close');
      await good.stop();
      await hub.stop();
    },
  );
});
