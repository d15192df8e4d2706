/**
 * The attackers of the abuse experiment (abuse.ts), in a worker thread of their own
 * so that their sockets never delay the measuring loop's timers: a flood of TLS
 * connection attempts from one address, TLS handshakes that never finish, and a
 * paired identity that completes the handshake and then sends garbage frames, again
 * and again. Each runs until told to stop (`'stop'`), or until its own bound; the
 * worker then posts what it counted and ends.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { silentLogger } from '../../src/observability/logger.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { encodeFrame, FrameKind } from '../../src/protocol/frame.js';
import { Connection } from '../../src/transport/connection.js';
import { clientHandshake } from '../../src/transport/handshake.js';
import { peerDeviceId } from '../../src/transport/tls.js';
import { SeededRandom } from './seeded.js';

/** What the worker is asked to do. */
export interface AttackPlan {
  port: number;
  seed: number;
  /** The flood: `attempts` TLS connections from `address`, `concurrency` at a time. */
  flood?: { address: string; attempts: number; concurrency: number };
  /**
   * Sockets held open per address, half with a partial ClientHello, half silent;
   * the hub cuts a handshake after `limitMs`.
   */
  slow?: { addresses: string[]; perAddress: number; limitMs: number };
  /** A paired identity that completes the handshake, then sends garbage, in a loop. */
  garbage?: { address: string; keyPem: string; certPem: string };
  /** Everything stops by then at the latest (ms from the start). */
  boundMs: number;
}

/** What the worker counted. */
export interface AttackCounts {
  flood?: {
    attempts: number;
    /** Closed by the hub before TLS completed: the attempt limit (RATE_LIMITED). */
    refused: number;
    /** TLS completed, then the hub closed (no client certificate). */
    tlsCompleted: number;
    /** No answer within 5 s (destroyed by the flood itself). */
    unanswered: number;
    tookMs: number;
  };
  slow?: {
    opened: number;
    /**
     * Closed by the hub before its handshake time limit: refused by the attempt limit
     * (at once, or a moment later on a busy machine).
     */
    refusedAtOnce: number;
    /** Closed by the hub at its handshake time limit. */
    timedOut: number;
    /** Most sockets held open longer than a second at once. */
    maxHeld: number;
    /** Longest a socket stayed open before the hub closed it (ms). */
    longestHeldMs: number;
  };
  garbage?: {
    /** Handshakes completed with the paired identity. */
    handshakes: number;
    /** Connections that failed before the handshake completed, by code. */
    failedBefore: Record<string, number>;
    /** How the hub ended each garbage connection: the code of its `error` message. */
    closedWith: Record<string, number>;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const plan = workerData as AttackPlan;
let stopping = false;
const stopped = new Promise<void>((resolve) => {
  parentPort?.on('message', (m) => {
    if (m === 'stop') {
      stopping = true;
      resolve();
    }
  });
  setTimeout(() => {
    stopping = true;
    resolve();
  }, plan.boundMs).unref();
});

/** One TLS attempt without a certificate; how it ended. */
function attempt(port: number, localAddress: string): Promise<'refused' | 'tls' | 'unanswered'> {
  return new Promise((resolve) => {
    let secure = false;
    const socket = tlsConnect({
      socket: netConnect({ host: '127.0.0.1', port, localAddress }),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('unanswered');
    }, 5_000);
    socket.on('secureConnect', () => (secure = true));
    // The hub's refusal after TLS (an `error` frame, then its end): done with this attempt.
    socket.on('data', () => (secure = true));
    socket.on('end', () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(secure ? 'tls' : 'refused');
    });
  });
}

async function flood(f: NonNullable<AttackPlan['flood']>): Promise<AttackCounts['flood']> {
  const counts = { attempts: 0, refused: 0, tlsCompleted: 0, unanswered: 0, tookMs: 0 };
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: f.concurrency }, async () => {
      while (next < f.attempts && !stopping) {
        next++;
        counts.attempts++;
        const how = await attempt(plan.port, f.address);
        if (how === 'refused') counts.refused++;
        else if (how === 'tls') counts.tlsCompleted++;
        else counts.unanswered++;
      }
    }),
  );
  counts.tookMs = Date.now() - start;
  parentPort?.postMessage({ floodDone: true });
  return counts;
}

/** The first bytes of a TLS record holding a ClientHello of 512 bytes, and no more. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

async function slow(s: NonNullable<AttackPlan['slow']>): Promise<AttackCounts['slow']> {
  const counts = { opened: 0, refusedAtOnce: 0, timedOut: 0, maxHeld: 0, longestHeldMs: 0 };
  const open = new Set<Socket>();
  let held = 0;
  const hold = async (localAddress: string, partial: boolean): Promise<void> => {
    while (!stopping) {
      const openedAt = Date.now();
      counts.opened++;
      const socket = netConnect({ host: '127.0.0.1', port: plan.port, localAddress });
      open.add(socket);
      let long = false;
      const heldTimer = setTimeout(() => {
        long = true;
        held++;
        counts.maxHeld = Math.max(counts.maxHeld, held);
      }, 1_000);
      if (partial) socket.on('connect', () => socket.write(PARTIAL_CLIENT_HELLO));
      socket.on('error', () => undefined);
      await new Promise<void>((r) => socket.once('close', () => r()));
      clearTimeout(heldTimer);
      open.delete(socket);
      if (long) held--;
      if (stopping) return;
      const lived = Date.now() - openedAt;
      // Timers fire a little early or late: a socket that lived nearly the limit was cut by it.
      if (lived < s.limitMs - 250) counts.refusedAtOnce++;
      else {
        counts.timedOut++;
        counts.longestHeldMs = Math.max(counts.longestHeldMs, lived);
      }
      // Back again after a moment: the pressure lasts, without turning into a flood of its own.
      await sleep(200);
    }
  };
  const holders = s.addresses.flatMap((a) =>
    Array.from({ length: s.perAddress }, (_, i) => hold(a, i % 2 === 0)),
  );
  await stopped;
  for (const socket of open) socket.destroy();
  await Promise.all(holders);
  return counts;
}

/** Garbage of four kinds, by turn: noise, a frame too large, bad JSON, an unknown message type. */
function garbageBytes(n: number, rng: SeededRandom): Buffer {
  switch (n % 4) {
    case 0:
      return Buffer.from(Array.from({ length: 256 }, () => Math.floor(rng.next() * 256)));
    case 1: {
      const header = Buffer.alloc(6);
      header.writeUInt32BE(0x7fff_ffff, 0);
      header[4] = FrameKind.Message;
      return header;
    }
    case 2:
      return encodeFrame(FrameKind.Message, Buffer.from('{"type": "hello", "versions": [1, 2'));
    default:
      return encodeFrame(FrameKind.Message, Buffer.from(JSON.stringify({ type: 'launch', at: n })));
  }
}

async function garbage(g: NonNullable<AttackPlan['garbage']>): Promise<AttackCounts['garbage']> {
  const counts = {
    handshakes: 0,
    failedBefore: {} as Record<string, number>,
    closedWith: {} as Record<string, number>,
  };
  const bump = (map: Record<string, number>, code: string) => (map[code] = (map[code] ?? 0) + 1);
  const rng = new SeededRandom(plan.seed).fork('garbage');
  for (let n = 0; !stopping; n++) {
    const socket: TLSSocket = tlsConnect({
      socket: netConnect({ host: '127.0.0.1', port: plan.port, localAddress: g.address }),
      key: g.keyPem,
      cert: g.certPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    socket.on('error', () => undefined);
    const secure = await new Promise<boolean>((resolve) => {
      socket.once('secureConnect', () => resolve(true));
      socket.once('close', () => resolve(false));
    });
    if (!secure) {
      bump(counts.failedBefore, 'closed before TLS');
      await sleep(100);
      continue;
    }
    const conn = new Connection({
      socket,
      peer: peerDeviceId(socket) ?? ('0'.repeat(64) as never),
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      logger: silentLogger,
    });
    const closed = new Promise<string>((resolve) =>
      conn.once('close', (cause) => resolve((cause as { code?: string } | undefined)?.code ?? 'none')),
    );
    try {
      await clientHandshake(
        conn,
        { name: 'garbage', role: 'child', appVersion: '0.1.0', heartbeatMs: 15_000 },
        10_000,
      );
    } catch (err) {
      bump(counts.failedBefore, (err as { code?: string }).code ?? 'none');
      socket.destroy();
      await sleep(100);
      continue;
    }
    counts.handshakes++;
    socket.write(garbageBytes(n, rng));
    const timer = setTimeout(() => socket.destroy(), 5_000);
    bump(counts.closedWith, await closed);
    clearTimeout(timer);
    socket.destroy();
  }
  return counts;
}

const [floodCounts, slowCounts, garbageCounts] = await Promise.all([
  plan.flood && flood(plan.flood),
  plan.slow && slow(plan.slow),
  plan.garbage && garbage(plan.garbage),
]);
const result: AttackCounts = {
  ...(floodCounts && { flood: floodCounts }),
  ...(slowCounts && { slow: slowCounts }),
  ...(garbageCounts && { garbage: garbageCounts }),
};
parentPort?.postMessage({ counts: result });
