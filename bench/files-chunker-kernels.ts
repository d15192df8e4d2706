/**
 * The scans the chunker's own (src/files/gear.ts) is measured against in
 * bench/files-chunker.ts. Both compute the same 64-bit gear hash over the same
 * table; only the arithmetic differs.
 */
import { GEAR, gearMask } from '../src/files/gear.js';

const U64 = (1n << 64n) - 1n;
const GEAR64 = Array.from(
  { length: 256 },
  (_, i) => (BigInt(GEAR[2 * i] as number) << 32n) | BigInt(GEAR[2 * i + 1] as number),
);
const splitAt29 = (values: bigint[]) => ({
  high: Int32Array.from(values, (v) => Number((v >> 29n) & 0xffffffffn) | 0),
  low: Int32Array.from(values, (v) => Number(v & 0x1fffffffn)),
});
const PLAIN = splitAt29(GEAR64);
const SHIFTED = splitAt29(GEAR64.map((v) => (v << 1n) & U64));

/**
 * FastCDC 2020's "rolling two bytes each time": for the first byte of each pair the
 * hash is shifted by two and a table of gear values shifted by one is added, which
 * leaves twice the hash, tested against the mask shifted by one; the second byte adds
 * its plain value. The split is at bit 29, as shifting the low part by two must not
 * overflow 32 bits. `mask` is as gearMask gives it; `state` ends as [bits 29-60, bits 0-28].
 */
export function scanTwoBytesAtATime(words: Int32Array, mask: number, state: Int32Array): number {
  const { high, low } = PLAIN;
  const { high: highLs, low: lowLs } = SHIFTED;
  const maskLs = mask << 2;
  const mask29 = mask << 1;
  let h = 0;
  let l = 0;
  let t = 0;
  let b = 0;
  for (let w = 0; w < words.length; w++) {
    const v = words[w] as number;
    b = v & 255;
    t = ((l << 2) + (lowLs[b] as number)) | 0;
    h = ((h << 2) + (highLs[b] as number) + (t >>> 29)) | 0;
    l = t & 0x1fffffff;
    if ((h & maskLs) === 0) return w * 4 + 1;
    b = (v >>> 8) & 255;
    t = (l + (low[b] as number)) | 0;
    h = (h + (high[b] as number) + (t >>> 29)) | 0;
    l = t & 0x1fffffff;
    if ((h & mask29) === 0) return w * 4 + 2;
    b = (v >>> 16) & 255;
    t = ((l << 2) + (lowLs[b] as number)) | 0;
    h = ((h << 2) + (highLs[b] as number) + (t >>> 29)) | 0;
    l = t & 0x1fffffff;
    if ((h & maskLs) === 0) return w * 4 + 3;
    b = v >>> 24;
    t = (l + (low[b] as number)) | 0;
    h = (h + (high[b] as number) + (t >>> 29)) | 0;
    l = t & 0x1fffffff;
    if ((h & mask29) === 0) return w * 4 + 4;
  }
  state[0] = h;
  state[1] = l;
  return -1;
}

/** The 64-bit gear hash with BigInt, every byte; returns the final hash. */
export function bigintScan(bytes: Uint8Array): bigint {
  const mask = BigInt(gearMask(30) >>> 0) << 30n;
  let fp = 0n;
  for (const b of bytes) {
    fp = ((fp << 1n) + (GEAR64[b] as bigint)) & U64;
    if ((fp & mask) === 0n) throw new Error('the bench input matched the never-matching mask');
  }
  return fp;
}
