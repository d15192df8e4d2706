import type { VersionVector } from '../store/types.js';

export type Causality = 'equal' | 'before' | 'after' | 'concurrent';

/** How `a` relates to `b`: before (b dominates), after (a dominates), equal or concurrent. */
export function compareVectors(a: VersionVector, b: VersionVector): Causality {
  let aAhead = false;
  let bAhead = false;
  for (const key in a) {
    const av = a[key] ?? 0;
    const bv = b[key] ?? 0;
    if (av > bv) aAhead = true;
    else if (av < bv) bAhead = true;
  }
  for (const key in b) {
    if (key in a) continue;
    if ((b[key] ?? 0) > 0) bAhead = true;
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'after';
  if (bAhead) return 'before';
  return 'equal';
}

/** True when `a` strictly dominates `b` (a has seen everything b has, and more). */
export function dominates(a: VersionVector, b: VersionVector): boolean {
  return compareVectors(a, b) === 'after';
}

/** The least vector that dominates-or-equals all the inputs. */
export function joinVectors(vectors: Iterable<VersionVector>): VersionVector {
  const out: VersionVector = {};
  for (const v of vectors) {
    for (const key in v) {
      const n = v[key] ?? 0;
      if (n > (out[key] ?? 0)) out[key] = n;
    }
  }
  return out;
}

/** A copy of `v` with `device`'s counter one higher. */
export function incrementVector(v: VersionVector, device: string): VersionVector {
  return { ...v, [device]: (v[device] ?? 0) + 1 };
}

/** The vector with keys in sorted order, for hashing. */
export function sortedVector(v: VersionVector): Array<[string, number]> {
  return Object.keys(v)
    .sort()
    .map((k) => [k, v[k] ?? 0]);
}
