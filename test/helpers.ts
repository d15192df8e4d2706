import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock, Timer } from '../src/lifecycle.js';

/** A fresh directory under the system temp dir; `remove()` deletes it. */
export function tempDir(prefix = 'trosyn-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

interface FakeTimer {
  at: number;
  every: number | undefined;
  fn: () => void;
  order: number;
}

/**
 * A clock that moves only when told to, with timers that fire as it moves:
 * `advance(ms)` fires what falls due at once, in order; `await tick(ms)` also lets
 * promises and I/O settle after each timer, as real time would.
 */
export class FakeClock implements Clock {
  private readonly timers = new Set<FakeTimer>();
  private order = 0;

  constructor(public time = 1_750_000_000_000) {}

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Timers waiting to fire. */
  pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (let next = this.due(until); next; next = this.due(until)) this.fire(next);
    this.time = until;
  }

  async tick(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    for (let next = this.due(until); next; next = this.due(until)) {
      this.fire(next);
      await settle();
    }
    this.time = until;
    await settle();
  }

  private add(fn: () => void, ms: number, every: number | undefined): Timer {
    const timer: FakeTimer = { at: this.time + Math.max(0, ms), every, fn, order: this.order++ };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }

  private due(until: number): FakeTimer | undefined {
    let next: FakeTimer | undefined;
    for (const t of this.timers)
      if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.order < next.order))) next = t;
    return next;
  }

  private fire(timer: FakeTimer): void {
    this.time = Math.max(this.time, timer.at);
    if (timer.every === undefined) this.timers.delete(timer);
    else {
      timer.at += timer.every;
      timer.order = this.order++;
    }
    timer.fn();
  }
}

/** Lets pending promise callbacks and ready I/O run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A clock fixed at `now()`: its timers never fire (for code that only reads the time). */
export function fixedClock(now: () => number): Clock {
  return {
    now,
    setTimeout: () => ({ cancel: () => undefined }),
    setInterval: () => ({ cancel: () => undefined }),
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `length` pseudo-random bytes fixed by `seed` on every machine: the AES-128-CTR keystream of a key derived from it. */
export function seededBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** The low end of the kernel's ephemeral port range (where `listen(0)` and outgoing connections land). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

const EPHEMERAL_LOW = ephemeralLow();
/** Ports this process handed out: never twice. */
const givenPorts = new Set<number>();

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 now, for a process the test starts to listen on.
 * Chosen at random below the kernel's ephemeral range: a port `listen(0)` gives is
 * in that range, and between its close and the process's bind, an outgoing
 * connection of another test could take it as its own end (PORT_IN_USE, seen in
 * CI). Below the range only another listener can, and each process picks at random.
 */
export async function freePort(): Promise<number> {
  const high = EPHEMERAL_LOW - 1;
  const low = Math.max(1024, high - 12_000);
  if (high - low >= 1000) {
    for (let tries = 0; tries < 100; tries++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if (givenPorts.has(port)) continue;
      if (await canListen(port)) {
        givenPorts.add(port);
        return port;
      }
    }
  }
  // No room below the range, or nothing free there: the kernel's choice.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
