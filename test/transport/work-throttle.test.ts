/**
 * The token buckets behind the hub's per-device write limit: work is charged at
 * once and delayed, never refused, so whatever the sizes of the pieces a key sends,
 * it gets at most its burst plus its rate. The clock is fake: every figure is exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkThrottle } from '../../src/transport/rate-limit.js';
import { FakeClock } from '../helpers.js';

describe('WorkThrottle', () => {
  it('a key within its burst waits nothing; past it, the wait pays its debt at the rate', () => {
    const clock = new FakeClock();
    const t = new WorkThrottle({ perSecond: 100, burst: 50 }, { clock });
    assert.equal(t.reserve('a', 30), 0);
    assert.equal(t.reserve('a', 20), 0, 'exactly the burst: no wait');
    assert.equal(t.available('a'), 0);
    assert.equal(t.reserve('a', 10), 100, '10 units of debt at 100/s: 100 ms');
    // Charged already: waiting it out leaves the key at zero, and the next piece waits again.
    clock.advance(100);
    assert.equal(t.available('a'), 0);
    assert.equal(t.reserve('a', 5), 50);
    // A piece larger than the burst is not refused: it waits for all of its debt.
    clock.advance(50);
    assert.equal(t.reserve('a', 500), 5000);
  });

  it('keys are apart, start full, and refill no further than the burst', () => {
    const clock = new FakeClock();
    const t = new WorkThrottle({ perSecond: 10, burst: 20 }, { clock });
    assert.equal(t.reserve('a', 25), 500);
    assert.equal(t.reserve('b', 20), 0, "another key's debt is not this one's");
    clock.advance(60_000);
    assert.equal(t.available('a'), 20, 'a quiet minute refills to the burst, no further');
    assert.equal(t.reserve('a', 20), 0);
    assert.equal(t.reserve('a', 1), 100);
  });

  it('whatever the pieces, the work let through by any moment is at most the burst plus the rate', () => {
    const clock = new FakeClock();
    const limit = { perSecond: 200, burst: 300 };
    const t = new WorkThrottle(limit, { clock });
    // A seeded mix of piece sizes, each sent as soon as the previous one was let through.
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const start = clock.now();
    let through = 0;
    for (let i = 0; i < 500; i++) {
      const cost = 1 + Math.floor(next() * 120);
      const wait = t.reserve('k', cost);
      clock.advance(wait);
      through += cost;
      const elapsed = (clock.now() - start) / 1000;
      assert.ok(
        through <= limit.burst + limit.perSecond * elapsed + 1,
        `${through} units by ${elapsed} s is more than the limit allows`,
      );
    }
    // And not much less: with work always waiting, the key runs at its rate.
    const elapsed = (clock.now() - start) / 1000;
    const expected = (through - limit.burst) / limit.perSecond;
    assert.ok(elapsed >= expected - 0.001 && elapsed <= expected + 0.5, `${elapsed} s against ${expected} s`);
  });

  it('a new key beyond the bound evicts the least recently used one', () => {
    const clock = new FakeClock();
    const t = new WorkThrottle({ perSecond: 1, burst: 1 }, { clock, maxKeys: 2 });
    t.reserve('a', 5);
    t.reserve('b', 5);
    t.reserve('a', 0);
    t.reserve('c', 0);
    assert.equal(t.available('b'), 1, 'b, least recently used, was forgotten (and starts full)');
    assert.ok(t.available('a') < 0, 'a kept its debt');
  });

  it('refuses a limit that would never refill', () => {
    assert.throws(() => new WorkThrottle({ perSecond: 0, burst: 10 }), RangeError);
    assert.throws(() => new WorkThrottle({ perSecond: 10, burst: -1 }), RangeError);
  });
});
