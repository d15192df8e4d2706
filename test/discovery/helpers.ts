import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { type EventEmitter, once } from 'node:events';
import { after } from 'node:test';
import type { DiscoveredHub, Discovery } from '../../src/discovery/types.js';
import type { Startable } from '../../src/lifecycle.js';
import type { DeviceId } from '../../src/store/types.js';
import type { FakeClock } from '../helpers.js';

/** A random device ID. */
export function deviceId(): DeviceId {
  return randomBytes(32).toString('hex') as DeviceId;
}

/**
 * A UDP port that was free a moment ago on 127.0.0.1: each test gets its own, so
 * test files running side by side (and other programs) never hear each other.
 */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Sends datagrams by unicast to 127.0.0.1:port from a throwaway socket. */
export async function sendUdp(port: number, ...datagrams: (string | Buffer)[]): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (const d of datagrams)
      await new Promise<void>((resolve, reject) =>
        socket.send(typeof d === 'string' ? Buffer.from(d) : d, port, '127.0.0.1', (err) =>
          err ? reject(err) : resolve(),
        ),
      );
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** Options every in-process test uses: IPv4 on loopback only, so nothing leaves the machine. */
export function loopbackOnly(port: number): { discoveryPort: number; families: [4]; interfaces: string[] } {
  return { discoveryPort: port, families: [4], interfaces: ['lo'] };
}

/** The next hub `browser` finds; rejects after `timeoutMs` of real time (a datagram takes real time to arrive). */
export function nextFound(browser: Discovery, timeoutMs = 5_000): Promise<DiscoveredHub> {
  return Promise.race([
    once(browser as unknown as EventEmitter, 'found').then(([hub]) => hub as DiscoveredHub),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no 'found' within ${timeoutMs} ms`)), timeoutMs).unref(),
    ),
  ]);
}

/**
 * Moves `clock` in steps of `stepMs`, letting I/O settle after each, until `work`
 * settles; at most `maxSteps` steps. For work whose time limit runs on the clock but
 * which first needs real I/O (binding a socket) before it arms its timer.
 */
export async function runClockUntil<T>(
  clock: FakeClock,
  work: Promise<T>,
  stepMs: number,
  maxSteps = 1_000,
): Promise<T> {
  let settled = false;
  const watched = work.finally(() => {
    settled = true;
  });
  for (let i = 0; i < maxSteps && !settled; i++) await clock.tick(stepMs);
  if (!settled) throw new Error(`not settled after ${maxSteps} steps of ${stepMs} ms on the clock`);
  return watched;
}

/** Each loopback test's time limit (ms): only datagrams take real time, and little of it. */
export const timeout = 10_000;

/**
 * Returns `track(component)`, which stops the component once the file's tests are
 * done, so a test that fails midway leaves no socket open.
 */
export function stopAfterTests(): <T extends Startable>(component: T) => T {
  const running: Startable[] = [];
  after(async () => {
    await Promise.all(running.map((c) => c.stop()));
  });
  return (component) => {
    running.push(component);
    return component;
  };
}
