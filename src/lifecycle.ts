/**
 * The one lifecycle of everything that holds a socket, timer or file.
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

/** A source of wall-clock time in milliseconds; injectable so tests can control time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
