import { type Clock, systemClock } from '../lifecycle.js';

/** Wall-clock ms fit in 12 hex digits (until the year 10889); the counter in 4. */
const WALL_DIGITS = 12;
const COUNTER_DIGITS = 4;
const MAX_COUNTER = 0xffff;
const HLC_RE = /^[0-9a-f]{16}$/;

/**
 * A hybrid logical clock timestamp as a 16-character hex string: wall-clock
 * milliseconds then a counter. String order is time order, so timestamps compare
 * with `<` and sort in SQL.
 */
export type Hlc = string;

export function encodeHlc(wall: number, counter: number): Hlc {
  return wall.toString(16).padStart(WALL_DIGITS, '0') + counter.toString(16).padStart(COUNTER_DIGITS, '0');
}

export function decodeHlc(hlc: Hlc): { wall: number; counter: number } {
  return {
    wall: Number.parseInt(hlc.slice(0, WALL_DIGITS), 16),
    counter: Number.parseInt(hlc.slice(WALL_DIGITS), 16),
  };
}

export function isHlc(value: unknown): value is Hlc {
  return typeof value === 'string' && HLC_RE.test(value);
}

/** Wall-clock milliseconds of a timestamp. */
export function hlcTime(hlc: Hlc): number {
  return Number.parseInt(hlc.slice(0, WALL_DIGITS), 16);
}

/**
 * The clock of one node. `now()` is strictly greater than every timestamp it has
 * returned or observed, even when the wall clock stalls or steps back.
 */
export class HybridClock {
  private wall = 0;
  private counter = 0;
  private readonly clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.clock = clock;
  }

  now(): Hlc {
    const physical = Math.floor(this.clock.now());
    if (physical > this.wall) {
      this.wall = physical;
      this.counter = 0;
    } else {
      this.bump();
    }
    return encodeHlc(this.wall, this.counter);
  }

  /** Moves the clock past a timestamp seen from elsewhere. */
  observe(hlc: Hlc): void {
    const { wall, counter } = decodeHlc(hlc);
    if (wall > this.wall || (wall === this.wall && counter > this.counter)) {
      this.wall = wall;
      this.counter = counter;
    }
  }

  private bump(): void {
    if (this.counter < MAX_COUNTER) {
      this.counter++;
    } else {
      // 65,536 events in one millisecond: borrow the next millisecond.
      this.wall++;
      this.counter = 0;
    }
  }
}
