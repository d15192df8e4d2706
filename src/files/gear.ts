/**
 * The gear hash of FastCDC (Xia et al., USENIX ATC 2016; IEEE TPDS 2020) and the scan
 * that looks for a cut point with it.
 *
 * The hash is the paper's: after each byte `b`, `fp = (fp << 1) + GEAR[b]` modulo
 * 2^64, so bit k of `fp` depends only on the last k + 1 bytes, and a cut falls after
 * the first byte where `fp & mask` is zero. Every mask here has its bits in
 * positions 30 to 59 (see {@link gearMask}), so a cut depends on the last 60 bytes,
 * and no bit above 59 ever matters: carries run upward, never down.
 *
 * The scan therefore keeps `fp` modulo 2^62 in two 32-bit integers, bits 30-61 and
 * bits 0-29, which JavaScript adds without BigInt (about 90 times slower) and without
 * floating point: the low part has room for the carry it sends up, so no carry test
 * is needed. The masks read the high integer only. The result is exactly the 64-bit
 * hash of the paper in the bits that count; test/files/chunker-gear.test.ts checks
 * the cut points against a BigInt implementation of the paper's algorithm.
 */

/**
 * The gear table: 256 64-bit values, each written as its high and low 32-bit halves.
 * `GEAR[2i] * 2^32 + GEAR[2i + 1]` is the first 8 bytes, read big-endian, of the
 * SHA-256 of the single byte `i`. The rule is fixed because the same bytes must cut
 * the same way on every device forever: changing one value moves chunk boundaries
 * and loses deduplication against everything already stored (the regression vector
 * in test/files/chunker.test.ts fails first).
 */
// prettier-ignore
export const GEAR: readonly number[] = Object.freeze([
  0x6e340b9c, 0xffb37a98, 0x4bf5122f, 0x344554c5,
  0xdbc1b4c9, 0x00ffe48d, 0x084fed08, 0xb978af4d,
  0xe52d9c50, 0x8c502347, 0xe77b9a9a, 0xe9e30b0d,
  0x67586e98, 0xfad27da0, 0xca358758, 0xf6d27e6c,
  0xbeead779, 0x94cf5733, 0x2b4c342f, 0x5433ebe5,
  0x01ba4719, 0xc80b6fe9, 0xe7cf46a0, 0x78fed4fa,
  0xef6cbd21, 0x61eaea79, 0x9d1e0e2d, 0x9459d065,
  0x4d7b3ef7, 0x300acf70, 0xdc0e9c36, 0x58a1a3ed,
  0xc555eab4, 0x5d08845a, 0x4a64a107, 0xf0cb3253,
  0xf299791c, 0xddd3d666, 0xab897fbd, 0xedfa502b,
  0x83891d7f, 0xe85c33e5, 0x2f0fd1e8, 0x9b8de1d5,
  0x7cb7c454, 0x7cf26535, 0x8f11b05d, 0xa785e43e,
  0x452ba1dd, 0xef80246c, 0x68aa2e2e, 0xe5dff96e,
  0x58f7b078, 0x0592032e, 0x77adfc95, 0x029e73b1,
  0xbd4fc42a, 0x21f1f860, 0x1f18d650, 0xd205d71d,
  0x9652595f, 0x37edd08c, 0xffe679bb, 0x831c95b6,
  0x36a9e7f1, 0xc95b82ff, 0xbb7208bc, 0x9b5d7c04,
  0x8a331fdd, 0xe7032f33, 0x334359b9, 0x0efed75d,
  0x09fc9608, 0x2d34c2df, 0xbbf3f11c, 0xb5b43e70,
  0x951dcee3, 0xa7a4f3aa, 0x265fda17, 0xa34611b1,
  0x32ebb1ab, 0xcc1c601c, 0xba5ec51d, 0x07a4ac0e,
  0x684888c0, 0xebb17f37, 0xa318c242, 0x16defe20,
  0xd03502c4, 0x3d74a30b, 0x3973e022, 0xe93220f9,
  0xcdb4ee2a, 0xea69cc6a, 0x8a5edab2, 0x82632443,
  0x5feceb66, 0xffc86f38, 0x6b86b273, 0xff34fce1,
  0xd4735e3a, 0x265e16ee, 0x4e074085, 0x62bedb8b,
  0x4b227777, 0xd4dd1fc6, 0xef2d127d, 0xe37b942b,
  0xe7f6c011, 0x776e8db7, 0x7902699b, 0xe42c8a8e,
  0x2c624232, 0xcdd22177, 0x19581e27, 0xde7ced00,
  0xe7ac0786, 0x668e0ff0, 0x41b805ea, 0x7ac014e2,
  0xdabd3aff, 0x769f07eb, 0x380918b9, 0x46a52664,
  0x62b67e1f, 0x685b7fef, 0x8a8de823, 0xd5ed3e12,
  0xc3641f85, 0x44d7c02f, 0x559aead0, 0x8264d579,
  0xdf7e70e5, 0x021544f4, 0x6b23c0d5, 0xf35d1b11,
  0x3f39d5c3, 0x48e5b79d, 0xa9f51566, 0xbd6705f7,
  0xf67ab10a, 0xd4e4c531, 0x333e0a1e, 0x27815d0c,
  0x44bd7ae6, 0x0f478fae, 0xa83dd0cc, 0xbffe39d0,
  0x6da43b94, 0x4e494e88, 0x86be9a55, 0x762d316a,
  0x72dfcfb0, 0xc470ac25, 0x08f27188, 0x7ce94707,
  0x8ce86a6a, 0xe65d3692, 0xc4694f2e, 0x93d5c4e7,
  0x5c62e091, 0xb8c0565f, 0x4ae81572, 0xf06e1b88,
  0x8c257489, 0x2063f995, 0x8de0b3c4, 0x7f112c59,
  0xe632b709, 0x5b0bf32c, 0xa25513c7, 0xe0f6eaa8,
  0xde5a6f78, 0x116eca62, 0xfcb5f40d, 0xf9be6bae,
  0x4b68ab38, 0x47feda7d, 0x18f5384d, 0x58bcb1bb,
  0xbbeebd87, 0x9e1dff69, 0x245843ab, 0xef9e72e7,
  0xa9253dc8, 0x529dd214, 0xcfae0d42, 0x48f7142f,
  0x74cd9ef9, 0xc7e15f57, 0xd2e2adf7, 0x177b7a8a,
  0x8d33f520, 0xa3c4cef8, 0xca978112, 0xca1bbdca,
  0x3e23e816, 0x0039594a, 0x2e7d2c03, 0xa9507ae2,
  0x18ac3e73, 0x43f01689, 0x3f79bb7b, 0x435b0532,
  0x252f10c8, 0x3610ebca, 0xcd0aa985, 0x6147b6c5,
  0xaaa94026, 0x64f1a41f, 0xde7d1b72, 0x1a1e0632,
  0x189f4003, 0x4be7a199, 0x8254c329, 0xa92850f6,
  0xacac86c0, 0xe609ca90, 0x62c66a7a, 0x5dd70c31,
  0x1b16b1df, 0x538ba12d, 0x65c74c15, 0xa686187b,
  0x148de9c5, 0xa7a44d19, 0x8e35c2cd, 0x3bf6641b,
  0x454349e4, 0x22f05297, 0x043a7187, 0x74c572bd,
  0xe3b98a4d, 0xa31a127d, 0x0bfe935e, 0x70c321c7,
  0x4c94485e, 0x0c21ae6c, 0x50e721e4, 0x9c013f00,
  0x2d711642, 0xb726b044, 0xa1fce436, 0x3854ff88,
  0x594e519a, 0xe499312b, 0x021fb596, 0xdb81e6d0,
  0xcbe5cfdf, 0x7c2118a9, 0xd10b36aa, 0x74a59bcf,
  0x7ace431c, 0xb61584cb, 0x620bfdaa, 0x346b088f,
  0x76be8b52, 0x8d0075f7, 0x591b7cc9, 0x5037822d,
  0xa5ab782c, 0x805e8bfb, 0x5ee0dd4d, 0x4840229f,
  0xaaa8e61e, 0x7faf37dd, 0xc00e7f88, 0x9cfc9216,
  0x3cbdaf66, 0xb3dd2b17, 0x4bfa260a, 0x661d6811,
  0x4f362f90, 0x93bb8e70, 0xe9b0c031, 0xf0493d3f,
  0x2d319369, 0x19341244, 0x3ebe1b59, 0x762a1c80,
  0x9defb0a9, 0xe163278b, 0x075198bf, 0xe61765d3,
  0x949f94d8, 0x58ef6ad1, 0x5e37305c, 0x587caf07,
  0x9e076cea, 0xf246b600, 0x7da59d0d, 0xfbe21f43,
  0x95606213, 0x7518b270, 0xd16bd22f, 0x7196c0a7,
  0x67c872d4, 0x912c71f1, 0x5bad0d11, 0x32ac152c,
  0x84873854, 0xdba02cf6, 0x2a0ab732, 0xb4e9d85e,
  0x79bec7ff, 0x3e69d1b4, 0xfd9528b9, 0x20d6d395,
  0x0605d153, 0x4eb8995f, 0x8d36bbb3, 0xd6fbf24f,
  0x6e3faf1e, 0x27d45fca, 0x9d277175, 0x737fb500,
  0x35af2d15, 0xebde4d67, 0x1f184f10, 0x1c67d585,
  0xc19a797f, 0xa1fd590c, 0x8a8950f7, 0x62366322,
  0x0a43b22d, 0x89fa2499, 0x6d90fbac, 0xc073ee0b,
  0x88aa3e3b, 0x1f22c616, 0x6922e93e, 0x3827642c,
  0xfe1dcd3a, 0xbfcd6b16, 0x2dbf9365, 0xa0b09d85,
  0x74e1ade3, 0x20c66075, 0x9e8e8c37, 0xa53bac77,
  0xbceef655, 0xb5a03491, 0x087d80f7, 0xf182dd44,
  0xee6bb86b, 0x44339392, 0x22adaf05, 0x8a2cb668,
  0x19753a9b, 0x7681b361, 0x5a6e7a47, 0x54af8e7f,
  0xf4f97c88, 0xc409dcf3, 0x149488d8, 0x69cbef08,
  0x9be3799f, 0x24592e94, 0x65f15821, 0x061635e6,
  0x27952171, 0xc7fcdf0d, 0x892f60b3, 0x9450a0e7,
  0xca41841c, 0x5c98e34f, 0x4d6a8e90, 0x039fc978,
  0xd3bb0d59, 0xe354ea84, 0x04d6c0c9, 0x46716aac,
  0x281c9399, 0x0bac2c69, 0xcbecda1c, 0x7d37d4c0,
  0x26e5bfe4, 0xb0686167, 0x68325720, 0xaabd7c82,
  0x47850848, 0x3cbb05de, 0xb12dc850, 0xa3b0a3b7,
  0xe4ff5e7d, 0x7a7f08e9, 0xd1bbd73b, 0xb09190bf,
  0xc557e713, 0x80112b98, 0xae3f4619, 0xb0413d70,
  0xd1211001, 0x882d2ce1, 0x5a0ec31d, 0xaa84fa27,
  0x49994461, 0xd6b46390, 0x3340883a, 0xad3038dd,
  0x7c5bd2d1, 0x44fdde49, 0x4fb733be, 0xdb74fec8,
  0x13598656, 0xf10fa962, 0x383e5d7d, 0x58caa41c,
  0x1dd83126, 0x36f6a0bf, 0x9a7b7b3a, 0x5d50781b,
  0xc337ded6, 0xf56c0720, 0x7a4a4b50, 0xf5121ed5,
  0xd4b0c0a4, 0xa8cc6c25, 0xb5c9a5f4, 0x8292e3fb,
  0x85f97e04, 0xd754c81d, 0x28969cdf, 0xa74a12c8,
  0x528a84ce, 0x6b18eb7d, 0xcdce9374, 0xe0fecee1,
  0x0a2c6ea0, 0x370d1d49, 0x414a21e5, 0x25a759e3,
  0xaf193a8c, 0xdcd0e3fb, 0x19152ddf, 0xba193b5b,
  0x5d5c7d20, 0xa3aab9c1, 0xb7d25296, 0xe7bc6a6b,
  0xfb95aa98, 0xd6e6c582, 0x2795044c, 0xe0f83f71,
  0x7941cb07, 0x924fdc7b, 0x2ea970ff, 0x63aec5d7,
  0x7d8c5da7, 0xfd418379, 0xf031efa5, 0x8744e97a,
  0x30a5bfa5, 0x8e128af9, 0x457e4854, 0x863e7efa,
  0x5e1effe9, 0xb7bab73d, 0xab61ba11, 0xa38b007f,
  0x0a3aaee7, 0xccfb1a64, 0xd0752b60, 0xadb148ca,
  0xe6f20750, 0x9afa3908, 0xde2e331d, 0x891ae267,
  0x3ad4e44a, 0x4306fb62, 0xf8d20e59, 0x8df20877,
  0x45f83d17, 0xe10b34fc, 0xf3df1f9c, 0x358ae8ec,
  0x94455e3e, 0xd9f716be, 0x4d4d75d7, 0x42863ab9,
  0xfde50285, 0x8306c235, 0xd4f09e5c, 0x5af99a24,
  0x966c7c47, 0x125c7457, 0x782e0202, 0x9374527b,
  0x2017ff34, 0x61395672, 0x27abdedd, 0xfe850349,
  0xb0b2988b, 0x6bbe724b, 0x50868f20, 0x258bbc9c,
  0xe596a8e5, 0xc49dd20a, 0xd5202253, 0x4fa2dba3,
  0xaa7225e7, 0xd5b0a255, 0x04b8d34e, 0x20e604ca,
  0x98722e2e, 0xbed8ed3d, 0x3e151409, 0xace91cb3,
  0xaa687b58, 0xb0e73e2e, 0xa8100ae6, 0xaa1940d0,
]);

/** Bits 30-61 of each gear value: the part that reaches the bits the masks read. */
const HIGH = new Int32Array(256);
/** Bits 0-29 of each gear value: kept for the carries they send into bit 30. */
const LOW = new Int32Array(256);
const LOW_BITS = 0x3fffffff;
for (let i = 0; i < 256; i++) {
  const hi = GEAR[2 * i] as number;
  const lo = GEAR[2 * i + 1] as number;
  HIGH[i] = (hi << 2) | (lo >>> 30);
  LOW[i] = lo & LOW_BITS;
}

/** The lowest and highest bit of `fp` a mask may use (see the module comment). */
const MASK_FIRST_BIT = 30;
const MASK_LAST_BIT = 59;
/** The most bits a mask can have: one per position from 30 to 59. */
export const MAX_MASK_BITS = MASK_LAST_BIT - MASK_FIRST_BIT + 1;

/**
 * A mask of `bits` one-bits spread evenly over bits 30-59 of the hash, the highest
 * always set, returned as it applies to the scan's high word (bit 30 of `fp` is bit
 * 0 here). A cut needs all of them zero, a chance of 2^-bits per byte. Spreading the
 * bits, rather than taking the lowest ones, makes every mask depend on a window of
 * 60 bytes, which the 2016 paper found to deduplicate better ("padding zeros").
 */
export function gearMask(bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_MASK_BITS) {
    throw new RangeError(`a gear mask has 1 to ${MAX_MASK_BITS} bits, not ${bits}`);
  }
  const top = MASK_LAST_BIT - MASK_FIRST_BIT;
  let mask = 0;
  for (let k = 0; k < bits; k++) mask |= 1 << (top - Math.floor((k * MAX_MASK_BITS) / bits));
  return mask | 0;
}

/**
 * The hash between calls: `[bits 30-61, bits 0-29]` of `fp`, so a scan can stop at
 * the end of one piece of a stream and go on in the next. All zero at the start of
 * the hashed part of each chunk.
 */
export type GearState = Int32Array;

/** A fresh, zero hash state. */
export function newGearState(): GearState {
  return new Int32Array(2);
}

// Reading four bytes as one 32-bit word is what makes the scan fast (a typed-array
// load costs more than the hash step); the word's byte order is the machine's, so a
// big-endian machine reads bytes one at a time instead and gets the same cuts.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Rolls `bytes[from..to)` into the hash `state` and returns the index just past the
 * first byte after which `hash & mask` is zero (where the chunk ends), or -1 if there
 * is none, leaving `state` ready for the bytes that follow.
 */
export function findCut(bytes: Uint8Array, from: number, to: number, mask: number, state: GearState): number {
  // Up to a 4-byte boundary one byte at a time, so the middle can be read as words.
  const head = LITTLE_ENDIAN ? Math.min(to, from + ((4 - ((bytes.byteOffset + from) & 3)) & 3)) : to;
  let end = scanBytes(bytes, from, head, mask, state);
  if (end >= 0 || head === to) return end;
  const words = (to - head) >>> 2;
  if (words > 0) {
    end = scanWords(new Int32Array(bytes.buffer, bytes.byteOffset + head, words), mask, state);
    if (end >= 0) return head + end;
  }
  return scanBytes(bytes, head + words * 4, to, mask, state);
}

function scanBytes(bytes: Uint8Array, from: number, to: number, mask: number, state: GearState): number {
  const high = HIGH;
  const low = LOW;
  let h = state[0] as number;
  let l = state[1] as number;
  for (let i = from; i < to; i++) {
    const b = bytes[i] as number;
    // fp = 2 fp + GEAR[b]: the low part is below 2^30, so doubling it and adding
    // LOW[b] stays below 2^32, and its bits 30-31 are exactly what carries upward.
    const t = ((l << 1) + (low[b] as number)) | 0;
    h = ((h << 1) + (high[b] as number) + (t >>> 30)) | 0;
    l = t & LOW_BITS;
    if ((h & mask) === 0) return i + 1;
  }
  state[0] = h;
  state[1] = l;
  return -1;
}

/** {@link scanBytes} over little-endian words, unrolled by hand: four steps a load. */
function scanWords(words: Int32Array, mask: number, state: GearState): number {
  const high = HIGH;
  const low = LOW;
  let h = state[0] as number;
  let l = state[1] as number;
  let t = 0;
  let b = 0;
  for (let w = 0; w < words.length; w++) {
    const v = words[w] as number;
    b = v & 255;
    t = ((l << 1) + (low[b] as number)) | 0;
    h = ((h << 1) + (high[b] as number) + (t >>> 30)) | 0;
    l = t & LOW_BITS;
    if ((h & mask) === 0) return w * 4 + 1;
    b = (v >>> 8) & 255;
    t = ((l << 1) + (low[b] as number)) | 0;
    h = ((h << 1) + (high[b] as number) + (t >>> 30)) | 0;
    l = t & LOW_BITS;
    if ((h & mask) === 0) return w * 4 + 2;
    b = (v >>> 16) & 255;
    t = ((l << 1) + (low[b] as number)) | 0;
    h = ((h << 1) + (high[b] as number) + (t >>> 30)) | 0;
    l = t & LOW_BITS;
    if ((h & mask) === 0) return w * 4 + 3;
    b = v >>> 24;
    t = ((l << 1) + (low[b] as number)) | 0;
    h = ((h << 1) + (high[b] as number) + (t >>> 30)) | 0;
    l = t & LOW_BITS;
    if ((h & mask) === 0) return w * 4 + 4;
  }
  state[0] = h;
  state[1] = l;
  return -1;
}
