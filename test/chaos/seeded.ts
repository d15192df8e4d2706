/**
 * Seeded randomness for the chaos runs: the same seed gives the same fault schedule
 * (which node is killed, when, for how long), so a failing run can be replayed with
 * `--seed`. Timing on a loaded machine still varies; the schedule does not.
 */

/** A small seeded generator (mulberry32): fast, 32 bits of state, good enough for schedules. */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** A number in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    const item = list[Math.floor(this.next() * list.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** An independent generator for one part of the run (a writer, a fault), fixed by this seed and `label`. */
  fork(label: string): SeededRandom {
    let h = this.seed >>> 0;
    for (const c of label) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return new SeededRandom(h);
  }
}

/** The seed given (decimal), or a fresh one when none is. */
export function seedOf(value: string | undefined): number {
  if (value === undefined || value === '') return Math.floor(Math.random() * 2 ** 31);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32)
    throw new Error(`a seed is a whole number 0..2^32-1, not ${value}`);
  return n;
}
