/**
 * The one lifecycle of everything that holds a socket, timer or file, and the one
 * source of time.
 *
 * `start()` and `stop()` are idempotent: starting a started component or stopping a
 * stopped one (or one never started) resolves without doing anything. `stop()`
 * releases every resource the component holds.
 */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
  isStarted(): boolean;
}

/** A pending timer; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * Wall-clock time in milliseconds and the timers that run on it; injectable, so
 * tests run heartbeats, expiries, retries and retention on a fake clock instead of
 * real waits. Timers never keep the process alive on their own.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once, `ms` from now. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms`, first `ms` from now. */
  setInterval(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/**
 * Starts parts in order; if one fails, stops those already started (in reverse)
 * and rethrows, so a failed start holds nothing.
 */
export async function startAll(parts: readonly Startable[]): Promise<void> {
  const started: Startable[] = [];
  try {
    for (const part of parts) {
      await part.start();
      started.push(part);
    }
  } catch (err) {
    await stopAll(started);
    throw err;
  }
}

/**
 * Stops parts in reverse order, each even if another failed; rethrows the first
 * failure once all are stopped.
 */
export async function stopAll(parts: readonly Startable[]): Promise<void> {
  let first: unknown;
  for (const part of [...parts].reverse()) {
    try {
      await part.stop();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/**
 * Runs a component's start and stop one at a time: a second `start()` while one
 * runs waits for it instead of starting twice, and `stop()` waits for a start in
 * progress before it stops.
 */
export class LifecycleGuard {
  private running: Promise<void> = Promise.resolve();
  private started = false;

  isStarted(): boolean {
    return this.started;
  }

  start(fn: () => Promise<void>): Promise<void> {
    return this.serial(async () => {
      if (this.started) return;
      await fn();
      this.started = true;
    });
  }

  stop(fn: () => Promise<void>): Promise<void> {
    return this.serial(async () => {
      if (!this.started) return;
      this.started = false;
      await fn();
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.running.then(fn, fn);
    this.running = run.catch(() => undefined);
    return run;
  }
}
