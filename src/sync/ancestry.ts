/**
 * Where the sides of a conflict meet in a record's history. A revision names the
 * revisions it superseded (`parents`), so a record's history is a graph; the sides
 * of a conflict are heads, and what they last had in common is their common
 * ancestor. The engine never needs it (the `merge` strategy carries per-field
 * clocks instead), but a person comparing the sides does: a field is a change only
 * if it differs from the ancestor.
 */

/** What the search needs of a revision: its id, what it superseded, and its clock. */
export interface RevisionLink {
  rev: string;
  parents: readonly string[];
  hlc: string;
}

/** Every revision reachable from `rev` through `parents`, itself included. */
function ancestorsOf(rev: string, parentsOf: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [rev];
  while (stack.length > 0) {
    const next = stack.pop() as string;
    if (seen.has(next)) continue;
    seen.add(next);
    for (const p of parentsOf.get(next) ?? []) stack.push(p);
  }
  return seen;
}

/**
 * The latest common ancestor of `heads` in `history`: of the revisions every head
 * descends from (or is), one that no other such revision descends from; among
 * several (criss-cross histories), the one with the latest clock, then the highest
 * rev, so every replica picks the same. Undefined when the heads share nothing (the
 * record was created on two devices at once) or fewer than two heads are given.
 * Parents missing from `history` end the walk there.
 */
export function commonAncestor(
  history: readonly RevisionLink[],
  heads: readonly string[],
): string | undefined {
  if (heads.length < 2) return undefined;
  const parentsOf = new Map(history.map((r) => [r.rev, r.parents]));
  const hlcOf = new Map(history.map((r) => [r.rev, r.hlc]));
  let common: Set<string> | undefined;
  for (const head of heads) {
    const mine = ancestorsOf(head, parentsOf);
    common = common === undefined ? mine : new Set([...common].filter((r) => mine.has(r)));
  }
  const shared = [...(common ?? [])].filter((r) => hlcOf.has(r));
  // Drop every shared revision that is an ancestor of another shared one: the rest are the latest.
  const older = new Set<string>();
  for (const r of shared) for (const a of ancestorsOf(r, parentsOf)) if (a !== r) older.add(a);
  const latest = shared.filter((r) => !older.has(r));
  latest.sort((a, b) => {
    const ha = hlcOf.get(a) ?? '';
    const hb = hlcOf.get(b) ?? '';
    if (ha !== hb) return ha > hb ? -1 : 1;
    return a > b ? -1 : 1;
  });
  return latest[0];
}
