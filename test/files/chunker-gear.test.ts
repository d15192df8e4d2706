/**
 * The gear hash as the chunker computes it (two 32-bit integers, four bytes a load)
 * against the FastCDC definition written the slow, obvious way with BigInt: the same
 * cut points, byte for byte. And the gear table against the rule that makes it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { type ChunkerOptions, cutPoints, DEFAULT_CHUNKER_OPTIONS } from '../../src/files/chunker.js';
import { GEAR, gearMask, MAX_MASK_BITS } from '../../src/files/gear.js';
import { seededBytes } from '../helpers.js';

const U64 = (1n << 64n) - 1n;

/** GEAR[i] from its rule: the first 8 bytes of SHA-256 of the byte i, big-endian. */
const RULE = Array.from({ length: 256 }, (_, i) =>
  createHash('sha256').update(Uint8Array.of(i)).digest().readBigUInt64BE(0),
);

/** A mask of `bits` bits over bits 30-59 of the 64-bit hash, spread evenly, the highest at 59. */
function referenceMask(bits: number): bigint {
  let mask = 0n;
  for (let k = 0; k < bits; k++) mask |= 1n << BigInt(59 - Math.floor((k * 30) / bits));
  return mask;
}

/**
 * FastCDC (2016 paper, Algorithm 2, with normalized chunking): skip `minSize` bytes,
 * then roll `fp = (fp << 1) + GEAR[b]` over 64 bits and cut after the first byte
 * where `fp & mask` is zero, the strict mask before `avgSize` bytes and the loose one
 * after, or at `maxSize`, or at the end of the input.
 */
function referenceCuts(bytes: Uint8Array, options: ChunkerOptions): number[] {
  const { minSize, avgSize, maxSize, normalization } = { ...DEFAULT_CHUNKER_OPTIONS, ...options };
  const bits = Math.log2(avgSize);
  const maskS = referenceMask(bits + normalization);
  const maskL = referenceMask(bits - normalization);
  const cuts: number[] = [];
  for (let start = 0; start < bytes.length;) {
    const end = Math.min(bytes.length, start + maxSize);
    let cut = end;
    let fp = 0n;
    for (let i = start + minSize; i < end; i++) {
      fp = ((fp << 1n) + (RULE[bytes[i] as number] as bigint)) & U64;
      if ((fp & (i - start < avgSize ? maskS : maskL)) === 0n) {
        cut = i + 1;
        break;
      }
    }
    cuts.push(cut);
    start = cut;
  }
  return cuts;
}

describe('the gear hash', () => {
  it('has the table its rule makes: SHA-256 of each byte value, first 8 bytes', () => {
    assert.equal(GEAR.length, 512);
    for (let i = 0; i < 256; i++) {
      const value = (BigInt(GEAR[2 * i] as number) << 32n) | BigInt(GEAR[2 * i + 1] as number);
      assert.equal(value, RULE[i], `GEAR[${i}]`);
    }
  });

  it('spreads each mask over bits 30-59, the highest always set', () => {
    for (let bits = 1; bits <= MAX_MASK_BITS; bits++) {
      const mask = BigInt(gearMask(bits) >>> 0) << 30n;
      assert.equal(mask, referenceMask(bits), `${bits} bits`);
      assert.equal(mask.toString(2).replace(/0/g, '').length, bits);
    }
    assert.throws(() => gearMask(0), RangeError);
    assert.throws(() => gearMask(MAX_MASK_BITS + 1), RangeError);
  });

  it('cuts exactly where the 64-bit FastCDC definition cuts', () => {
    const random = seededBytes('reference', 400_000);
    // Offsets 0-3 into a buffer move the input across the 4-byte boundaries the fast scan reads on.
    const inputs = [0, 1, 2, 3].map((skew) => random.subarray(skew));
    const settings: ChunkerOptions[] = [
      { minSize: 64, avgSize: 256, maxSize: 1024, normalization: 0 },
      { minSize: 64, avgSize: 256, maxSize: 1024, normalization: 3 },
      { minSize: 100, avgSize: 512, maxSize: 600, normalization: 2 },
      { minSize: 2048, avgSize: 8192, maxSize: 32768, normalization: 1 },
      { minSize: 8192, avgSize: 65536, maxSize: 131072 },
    ];
    for (const options of settings) {
      for (const input of inputs) {
        const expected = referenceCuts(input, options);
        assert.ok(expected.length > 3, `${expected.length} cuts`);
        assert.deepEqual(cutPoints(input, options), expected, JSON.stringify(options));
      }
    }
    // Text, where the bytes are far from uniform.
    const text = Buffer.from(Array.from({ length: 5000 }, (_, i) => `row ${i}; total ${i * 31}\n`).join(''));
    assert.deepEqual(cutPoints(text, settings[0]), referenceCuts(text, settings[0] as ChunkerOptions));
  });
});
