/** A summarized log: the first of a key at once, then a sum a minute, forgotten when quiet, bounded in keys. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SummarizedLog } from '../../src/observability/summarized-log.js';
import { FakeClock } from '../helpers.js';

it('writes the first of a key at once, then what came since once an interval, and the rest at stop', () => {
  const clock = new FakeClock();
  const lines: Array<[string, number]> = [];
  const log = new SummarizedLog<number>({
    clock,
    everyMs: 60_000,
    maxKeys: 2,
    add: (sum, one) => sum + one,
    write: (key, n) => lines.push([key, n]),
  });
  log.start();
  log.note('a', 1);
  log.note('a', 1);
  log.note('a', 2);
  assert.deepEqual(lines, [['a', 1]], 'the first at once, the others counted');
  clock.advance(60_000);
  assert.deepEqual(lines.at(-1), ['a', 3]);
  clock.advance(60_000);
  assert.equal(lines.length, 2, 'nothing came: no line');
  log.note('a', 5);
  assert.deepEqual(lines.at(-1), ['a', 5], 'forgotten after a quiet interval: a first again');
  log.note('b', 1);
  log.note('a', 1);
  log.note('c', 1);
  assert.deepEqual(
    lines.slice(-3),
    [
      ['b', 1],
      ['a', 1],
      ['c', 1],
    ],
    'the oldest key told before it is dropped',
  );
  log.note('d', 7);
  log.note('c', 4);
  log.stop();
  assert.deepEqual(
    lines.slice(-2),
    [
      ['d', 7],
      ['c', 4],
    ],
    'the rest at stop',
  );
  clock.advance(120_000);
  assert.equal(lines.length, 8, 'no interval after stop');
});
