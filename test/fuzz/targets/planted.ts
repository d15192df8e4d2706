/** Fuzz target around the planted fault (fixtures/planted.ts): the engine's own test. */
import type { FuzzTarget } from '../engine.js';
import { planted } from '../fixtures/planted.js';

export function plantedTarget(): FuzzTarget {
  return {
    name: 'planted',
    sources: ['test/fuzz/fixtures/planted.ts'],
    dictionary: ['x'],
    seeds: () => [[Buffer.from([0x40, 0x40, 0x40, 0x40])]],
    start: () => Promise.resolve(),
    run: (input) => Promise.resolve(planted(Buffer.concat(input))),
    check: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
}
