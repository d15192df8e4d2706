/**
 * Fuzz target: chunk requests and chunk frames, both ways, as a node decodes and
 * handles them. A node (a real TLS server, a ChunkExchange over the transport's
 * chunk link, a real DiskChunkStore) asks the fuzzing peer for three chunks as
 * soon as it connects; the input is what the peer sends back: the response to that
 * `files.want`, chunk frames (the chunk, "absent", compressed or not), and
 * `files.want` requests of its own, which the node serves from its store.
 *
 * The oracle, per input: what the node sends decodes; each request the peer sends
 * is answered in order; every chunk frame the node serves names a chunk asked for,
 * in the order asked, and holds exactly the bytes of that name; the node's fetch
 * ends (a result, or an error in the error table, never INTERNAL_ERROR); a chunk it
 * calls stored is in the store with its bytes, one it calls absent was named
 * absent by the peer; and the store holds nothing but whole chunks whose bytes
 * hash to their names (no temporary left, nothing nobody asked for).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkExchange, type FetchResult } from '../../../src/files/chunk-exchange.js';
import { DiskChunkStore } from '../../../src/files/chunk-store-disk.js';
import { compress } from '../../../src/protocol/compression.js';
import { encodeFrame, FrameKind } from '../../../src/protocol/frame.js';
import type { Message } from '../../../src/protocol/messages.js';
import { chunkLink } from '../../../src/transport/chunk-link.js';
import { ConnectionClosedError } from '../../../src/transport/errors.js';
import { createIdentity, type DeviceIdentity } from '../../../src/transport/identity.js';
import { FakeClock, tempDir } from '../../helpers.js';
import { startServer } from '../../transport/helpers.js';
import type { FuzzTarget } from '../engine.js';
import { type Input, messageFrame } from '../mutate.js';
import { expectErrorCode, FramePeer, fuzzHello, OracleError, SentFrames } from '../peer.js';

const ANSWER_LIMIT_MS = 10_000;
/** The node's stall limit, on its fake clock: moved past once the input is in. */
const STALL_MS = 60_000;
/** The id of the request that marks the end of an input: answered once all before it was handled. */
const BARRIER_ID = 999_999;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Fixed content, so that a run replays from its seed. */
function content(seed: number, bytes: number, text: boolean): Buffer {
  if (text) return Buffer.from(`chunk ${seed} `.repeat(Math.ceil(bytes / 9)).slice(0, bytes));
  const out = Buffer.alloc(bytes);
  let x = seed * 2654435761;
  for (let i = 0; i < bytes; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Chunks the node fetches from the peer (B: the peer answers absent), and those it has itself. */
const A = content(1, 3000, false);
const B = content(2, 1500, false);
const C = content(3, 4000, true);
const D = content(4, 500, false);
const S1 = content(5, 2000, false);
const S2 = content(6, 3000, true);
const WANTED = [A, B, C].map(sha);
const SERVED = new Map([S1, S2].map((c) => [sha(c), c]));
const ALL = new Map([A, B, C, D, S1, S2].map((c) => [sha(c), c]));

const chunkFrame = (bytes: Buffer) =>
  encodeFrame(FrameKind.Chunk, Buffer.concat([Buffer.of(1), Buffer.from(sha(bytes), 'hex'), bytes]));
const absentFrame = (hash: string) =>
  encodeFrame(FrameKind.Chunk, Buffer.concat([Buffer.of(2), Buffer.from(hash, 'hex')]));

interface Node {
  store: DiskChunkStore;
  /** The store's writes in progress: the stall limit is passed only once they are done. */
  writes: Set<Promise<unknown>>;
  storeDir: string;
  clock: FakeClock;
  fetch?: Promise<FetchResult>;
}

export function chunksTarget(): FuzzTarget {
  const dir = tempDir('trosyn-fuzz-chunks-');
  let server: Awaited<ReturnType<typeof startServer>>;
  let identity: DeviceIdentity;
  let n = 0;
  let node: Node | undefined;

  const newNode = async (): Promise<Node> => {
    const storeDir = join(dir.path, `store-${++n}`);
    const store = new DiskChunkStore({ dir: storeDir, fsync: false });
    await store.start();
    for (const [hash, bytes] of SERVED) await store.put(hash, bytes);
    const writes = new Set<Promise<unknown>>();
    const put = store.put.bind(store);
    store.put = (...args) => {
      const p = put(...args);
      writes.add(p);
      p.then(
        () => writes.delete(p),
        () => writes.delete(p),
      );
      return p;
    };
    return { store, writes, storeDir, clock: new FakeClock() };
  };

  /** Runs the writes against a fresh node; returns the fetch's result or error. */
  const exchange = async (
    input: Input,
  ): Promise<{ result?: FetchResult; error?: unknown; peer: FramePeer }> => {
    const current = (node = await newNode());
    const peer = await FramePeer.connect(server.server.port, identity);
    const sent = new SentFrames();
    const absentNamed = new Set<string>();
    try {
      peer.write(messageFrame(fuzzHello(['files'])));
      // The node asks at once: its files.want is request 1 of the connection.
      await peer.until(
        () => peer.messages().some((m) => m.type === 'request' && m.method === 'files.want'),
        ANSWER_LIMIT_MS,
        "the node's files.want",
      );
      const wants: string[][] = [];
      for (const bytes of input) {
        if (peer.closed) break;
        peer.write(bytes);
        for (const d of sent.push(bytes)) {
          if (d.kind === 'chunk' && d.bytes[0] === 2 && d.bytes.length === 33)
            absentNamed.add(d.bytes.toString('hex', 1, 33));
          if (d.kind !== 'message' || d.message.type !== 'request') continue;
          const m = d.message;
          let response: Message | undefined;
          await peer.until(
            () => (response = peer.claim((x) => x.type === 'response' && x.re === m.id)) !== undefined,
            ANSWER_LIMIT_MS,
            `request ${m.method}`,
          );
          if (response?.type !== 'response' || !response.ok || m.method !== 'files.want') continue;
          wants.push((m.params as { hashes: string[] }).hashes);
        }
      }
      if (sent.violation) {
        await peer.until(() => false, ANSWER_LIMIT_MS, `a stream with ${sent.violation}`);
        if (peer.errorCodes().length === 0)
          throw new OracleError(`the node closed after ${sent.violation} without an error`);
      } else if (sent.buffered === 0 && !peer.closed) {
        // Answered only once everything sent before it has been handled.
        peer.write(messageFrame({ type: 'request', id: BARRIER_ID, method: 'fuzz.barrier' }));
        await peer.until(
          () => peer.messages().some((x) => x.type === 'response' && x.re === BARRIER_ID),
          ANSWER_LIMIT_MS,
          'the barrier',
        );
      }
      // What the node served: one frame per hash asked for, in order, each chunk whole.
      const asked = wants.flat();
      const served = () => peer.received.filter((d) => d.kind === 'chunk');
      await peer.until(() => served().length >= asked.length, ANSWER_LIMIT_MS, 'the chunks asked for');
      served().forEach((d, i) => {
        if (d.kind !== 'chunk') return;
        const hash = d.bytes.toString('hex', 1, 33);
        if (hash !== asked[i])
          throw new OracleError(
            `served ${hash.slice(0, 12)} where ${String(asked[i]).slice(0, 12)} was asked`,
          );
        if (d.bytes[0] === 1 && sha(d.bytes.subarray(33)) !== hash)
          throw new OracleError('served a chunk whose bytes do not match');
        if (d.bytes[0] === 1 && !SERVED.has(hash) && !WANTED.includes(hash))
          throw new OracleError('served a chunk it never had');
        if (d.bytes[0] !== 1 && d.bytes[0] !== 2)
          throw new OracleError(`served a chunk frame of kind ${d.bytes[0]}`);
      });
      if (!peer.closed && served().length > asked.length)
        throw new OracleError('served chunks nobody asked for');
      // A fetch still waiting gives up at its stall limit, then the connection ends.
      // Chunks that arrived are written first: a write is not a stall.
      for (let i = 0; i < 100 && current.writes.size > 0; i++) await Promise.allSettled([...current.writes]);
      await current.clock.tick(STALL_MS);
      await peer.end(ANSWER_LIMIT_MS);
      const outcome: { result?: FetchResult; error?: unknown } = await Promise.race([
        (current.fetch ?? Promise.reject(new OracleError('the node never fetched'))).then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        ),
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new OracleError('the fetch did not end with the connection')),
            ANSWER_LIMIT_MS,
          ),
        ),
      ]);
      if (outcome.result)
        for (const [hash, state] of outcome.result)
          if (state === 'absent' && !absentNamed.has(hash))
            throw new OracleError('absent, and the peer never said so');
      return { ...outcome, peer };
    } finally {
      peer.destroy();
    }
  };

  /** Checks the store once the node's writes are done: whole, named chunks only. */
  const checkStore = async (current: Node, result: FetchResult | undefined) => {
    await current.store.stop();
    for (const entry of readdirSync(current.storeDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const name = entry.name;
      if (!/^[0-9a-f]{64}$/.test(name)) throw new OracleError(`a file ${name} left in the store`);
      const bytes = readFileSync(join(entry.parentPath, name));
      if (sha(bytes) !== name) throw new OracleError(`chunk ${name.slice(0, 12)} is stored with other bytes`);
      if (!SERVED.has(name) && !WANTED.includes(name))
        throw new OracleError(`stored ${name.slice(0, 12)}, never asked for`);
    }
    for (const [hash, state] of result ?? []) {
      if (state !== 'stored') continue;
      const path = readdirSync(current.storeDir, { recursive: true }).find((p) => String(p).endsWith(hash));
      if (!path || !readFileSync(join(current.storeDir, String(path))).equals(ALL.get(hash) as Buffer))
        throw new OracleError(`${hash.slice(0, 12)} is called stored and is not in the store`);
    }
  };

  const seeds = (): Input[] => {
    const queued = (n: number) => messageFrame({ type: 'response', re: 1, ok: true, result: { queued: n } });
    const want = (id: number, hashes: string[]) =>
      messageFrame({ type: 'request', id, method: 'files.want', params: { hashes } });
    const [a, b, c] = [chunkFrame(A), absentFrame(sha(B)), chunkFrame(C)];
    const cZstd = encodeFrame(FrameKind.Chunk, compress('zstd', c.subarray(6)), 'zstd');
    const aBr = encodeFrame(FrameKind.Chunk, compress('br', a.subarray(6)), 'br');
    const tampered = Buffer.from(a);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    return [
      [queued(3), a, b, c],
      [queued(3), aBr, b, cZstd],
      [want(1, [...SERVED.keys(), sha(D)]), queued(3), a, b, c],
      [queued(3), tampered, b, c],
      [queued(3), chunkFrame(D), a, absentFrame(sha(D)), b, c],
      [want(1, ['zz']), want(2, []), queued(3), a.subarray(0, 40), a.subarray(40), b, c],
      [
        messageFrame({
          type: 'response',
          re: 1,
          ok: false,
          error: { code: 'CHUNK_STORE_FULL', message: 'full' },
        }),
      ],
      [queued(3), encodeFrame(FrameKind.Chunk, Buffer.concat([Buffer.of(7), Buffer.from(sha(A), 'hex')]))],
      [queued(3), a, messageFrame({ type: 'ping', t: 5 }), b, want(3, [sha(S1)]), c],
    ];
  };

  return {
    name: 'chunks',
    sources: [
      'src/files/chunk-exchange.ts',
      'src/transport/connection.ts',
      'src/transport/chunk-link.ts',
      'src/protocol/',
    ],
    dictionary: ['files.want', 'response', 'request', 'queued', 'hashes', ...ALL.keys(), '0'.repeat(64)],
    seeds,
    async start() {
      identity = await createIdentity('fuzz-chunks');
      server = await startServer([identity.deviceId], {
        onConnection: (conn) => {
          const current = node;
          if (!current) return;
          const ex = new ChunkExchange(chunkLink(conn), current.store, {
            clock: current.clock,
            stallMs: STALL_MS,
          });
          conn.once('close', (cause) => ex.abort(cause ?? new ConnectionClosedError()));
          current.fetch = ex.fetch(WANTED);
          current.fetch.catch(() => undefined);
        },
      });
    },
    async run(input) {
      const { result, error, peer } = await exchange(input);
      if (peer.malformed)
        throw new OracleError(`the node sent a frame that does not decode: ${peer.malformed}`);
      for (const c of peer.errorCodes()) expectErrorCode(c, 'error message');
      for (const m of peer.messages())
        if (m.type === 'response' && !m.ok) expectErrorCode(m.error.code, 'error response');
      if (error !== undefined) {
        if (error instanceof OracleError) throw error;
        expectErrorCode(String((error as { code?: unknown }).code), `the fetch failed with ${String(error)}`);
      }
      await checkStore(node as Node, result);
    },
    async check() {
      const { result, error } = await exchange(seeds()[0] as Input);
      await checkStore(node as Node, result);
      const states = WANTED.map((h) => result?.get(h));
      if (error !== undefined || states.join() !== 'stored,absent,stored')
        throw new OracleError(`a good peer's chunks after the run: ${states.join()} ${String(error ?? '')}`);
    },
    async stop() {
      await server?.server.stop();
      await node?.store.stop().catch(() => undefined);
      dir.remove();
    },
  };
}
