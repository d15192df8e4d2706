import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Slabs } from '../src/slabs.js';

describe('Slabs', () => {
  it('a copy is made at once: the caller may change its bytes as soon as copy returns', () => {
    const slabs = new Slabs(1024);
    const source = randomBytes(100);
    const expected = Buffer.from(source);
    const copy = slabs.copy(source);
    source.fill(0);
    assert.deepEqual(copy.bytes, expected);
  });

  it('regions held at the same time never overlap, whatever the order they are released in', () => {
    const slabs = new Slabs(4096, 2);
    const live: { bytes: Buffer; mark: number; release: () => void }[] = [];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let round = 0; round < 2000; round++) {
      if (live.length > 0 && next() % 3 === 0) {
        const [gone] = live.splice(next() % live.length, 1);
        gone?.release();
      } else {
        const region = slabs.take(1 + (next() % 1024));
        const mark = round % 251;
        region.bytes.fill(mark);
        live.push({ ...region, mark });
      }
      for (const r of live)
        assert.ok(
          r.bytes.every((b) => b === r.mark),
          `round ${round}: a live region was overwritten`,
        );
    }
  });

  it('once released, slabs are used again: steady traffic allocates a few and no more', () => {
    const slabs = new Slabs(64 * 1024, 4);
    const inFlight: (() => void)[] = [];
    for (let i = 0; i < 10_000; i++) {
      inFlight.push(slabs.copy(randomBytes(1 + (i % 8000))).release);
      if (inFlight.length > 20) inFlight.shift()?.();
    }
    // 20 copies of up to 8,000 bytes span at most three slabs of 64 KiB, and one is being filled.
    assert.ok(slabs.allocated <= 5, `${slabs.allocated} slabs allocated for 10,000 copies`);
  });

  it('keeps at most `keep` released slabs; the rest are left to the collector', () => {
    const slabs = new Slabs(1000, 2, 1000);
    const held = Array.from({ length: 6 }, () => slabs.take(1000));
    assert.equal(slabs.allocated, 6);
    for (const r of held) r.release();
    assert.equal(slabs.kept, 2);
  });

  it('lets its slabs go once unused for a while, and keeps them while regions are taken', async () => {
    const slabs = new Slabs(1000, 4, 1000, 300);
    const held = Array.from({ length: 3 }, () => slabs.take(1000));
    for (const r of held) r.release();
    assert.equal(slabs.kept, 2, 'two full slabs kept, the third is being filled');
    // Used now and then, more often than the idle time: kept.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 10));
      slabs.take(10).release();
    }
    assert.equal(slabs.kept, 2);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(slabs.kept, 0, 'unused for a while: let go');
    const allocated = slabs.allocated;
    slabs.take(10);
    assert.equal(slabs.allocated, allocated + 1, 'the next region starts a new slab');
  });

  it('a region longer than `largest` is a buffer of its own, and releasing it does nothing', () => {
    const slabs = new Slabs(1024, 4, 256);
    const big = slabs.copy(randomBytes(257));
    assert.equal(big.bytes.length, 257);
    assert.equal(big.bytes.buffer.byteLength >= 257, true);
    big.release();
    assert.equal(slabs.allocated, 0, 'no slab was used for it');
    assert.equal(slabs.copy(Buffer.alloc(0)).bytes.length, 0);
    assert.throws(() => new Slabs(1024, 4, 2048), RangeError);
  });

  it('releasing a region twice counts once: a region still held is not given out again', () => {
    const slabs = new Slabs(1024, 4);
    const a = slabs.take(100);
    const b = slabs.take(100);
    b.bytes.fill(1);
    a.release();
    a.release();
    const c = slabs.take(200);
    c.bytes.fill(2);
    assert.ok(
      b.bytes.every((x) => x === 1),
      'b was overwritten',
    );
  });
});
