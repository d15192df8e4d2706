/**
 * The length-value encoding CPace (draft-irtf-cfrg-cpace) builds its strings with,
 * kept apart from the group arithmetic so that the pairing code's channel binding
 * can use it without loading the curve library.
 */

/** The parts one after another, in one new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** LEB128 of a length: 7 bits a byte, least significant first, bit 7 set while more follow. */
export function leb128(length: number): Uint8Array {
  const bytes: number[] = [];
  let rest = length;
  do {
    const low = rest & 0x7f;
    rest = Math.floor(rest / 128);
    bytes.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return Uint8Array.from(bytes);
}

/** prepend_len(data): `data` preceded by its length in LEB128. */
export function prependLen(data: Uint8Array): Uint8Array {
  return concat(leb128(data.length), data);
}

/** lv_cat(a0, a1, ...): each input with its length prepended, concatenated. */
export function lvCat(...parts: Uint8Array[]): Uint8Array {
  return concat(...parts.map(prependLen));
}
