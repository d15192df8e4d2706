import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../src/sync/canonical.js';
import { decodeHlc, encodeHlc, HybridClock } from '../../src/sync/hlc.js';
import { compareVectors, dominates, incrementVector, joinVectors } from '../../src/sync/version-vector.js';
import { FakeClock } from '../helpers.js';

describe('HybridClock', () => {
  it('is strictly increasing even when the wall clock stalls or steps back', () => {
    const wall = new FakeClock(1000);
    const clock = new HybridClock(wall);
    const a = clock.now();
    const b = clock.now();
    wall.time = 500;
    const c = clock.now();
    assert.ok(a < b && b < c);
    assert.deepEqual(decodeHlc(c), { wall: 1000, counter: 2 });
  });

  it('moves past observed timestamps', () => {
    const clock = new HybridClock(new FakeClock(1000));
    clock.observe(encodeHlc(5000, 7));
    assert.deepEqual(decodeHlc(clock.now()), { wall: 5000, counter: 8 });
  });

  it('borrows the next millisecond when the counter is exhausted', () => {
    const clock = new HybridClock(new FakeClock(1000));
    clock.observe(encodeHlc(1000, 0xffff));
    assert.deepEqual(decodeHlc(clock.now()), { wall: 1001, counter: 0 });
  });

  it('string order equals time order', () => {
    fc.assert(
      fc.property(fc.nat(2 ** 47), fc.nat(0xffff), fc.nat(2 ** 47), fc.nat(0xffff), (w1, c1, w2, c2) => {
        const cmp = w1 !== w2 ? Math.sign(w1 - w2) : Math.sign(c1 - c2);
        const a = encodeHlc(w1, c1);
        const b = encodeHlc(w2, c2);
        assert.equal(a < b ? -1 : a > b ? 1 : 0, cmp);
      }),
    );
  });
});

describe('version vectors', () => {
  it('compares', () => {
    assert.equal(compareVectors({ a: 1 }, { a: 1 }), 'equal');
    assert.equal(compareVectors({ a: 2 }, { a: 1 }), 'after');
    assert.equal(compareVectors({ a: 1 }, { a: 1, b: 1 }), 'before');
    assert.equal(compareVectors({ a: 2 }, { a: 1, b: 1 }), 'concurrent');
    assert.equal(dominates({ a: 1, b: 1 }, { a: 1 }), true);
    assert.equal(dominates({ a: 1 }, { a: 1 }), false);
  });

  it('join dominates-or-equals each input, and an increment dominates the join', () => {
    const vec = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 5 }));
    fc.assert(
      fc.property(
        fc.array(vec, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('a', 'b', 'x'),
        (vs, who) => {
          const j = joinVectors(vs);
          for (const v of vs) assert.notEqual(compareVectors(j, v), 'before');
          const next = incrementVector(j, who);
          for (const v of vs) assert.equal(dominates(next, v), true);
        },
      ),
    );
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops undefined', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }),
      '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is the same for equal values built in any key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        assert.equal(canonicalJson(obj), canonicalJson(reversed));
        assert.deepEqual(JSON.parse(canonicalJson(obj)), JSON.parse(JSON.stringify(obj)));
      }),
    );
  });

  it('refuses values JSON cannot carry', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }), { code: 'INVALID_BODY' });
    assert.throws(() => canonicalJson({ d: new Date(0) }), { code: 'INVALID_BODY' });
    assert.throws(() => canonicalJson({ f: () => 1 }), { code: 'INVALID_BODY' });
  });
});
