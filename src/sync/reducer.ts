import type { ReduceOutcome, Reducer, Revision, Settlement, StoredRevision } from '../store/types.js';
import { type ConflictResolver, resolveSingle } from './conflict.js';
import { dominates } from './version-vector.js';

/**
 * The engine's decision for one revision, given the record's current heads.
 *
 * The heads of a record are the revisions no other known revision strictly
 * dominates (by version vector). That set depends only on which revisions a replica
 * holds, never on the order they arrived in, and the resolver is a pure function of
 * the heads; so replicas holding the same revisions hold the same record.
 * Revisions with equal vectors but different content stay concurrent.
 */
export function createReducer(resolverFor: (collection: string) => ConflictResolver): Reducer {
  return (heads: readonly StoredRevision[], incoming: Revision): ReduceOutcome => {
    // A stub carries no body: it joins history and waits for the revision that supersedes it.
    if (incoming.pruned) return { kind: 'stub' };
    for (const h of heads) if (dominates(h.vv, incoming.vv)) return { kind: 'stale' };

    const supersedes = heads.filter((h) => dominates(incoming.vv, h.vv)).map((h) => h.rev);
    const next: Revision[] = heads.filter((h) => !supersedes.includes(h.rev));
    next.push(incoming);
    next.sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));

    return {
      kind: 'head',
      supersedes,
      heads: next.map((h) => h.rev),
      ...settleHeads(resolverFor(incoming.collection), next, incoming.collection, incoming.id),
    };
  };
}

/**
 * What a record resolves to from its heads (sorted by rev): the resolver's verdict
 * for several, the head itself for one. Pure: the same heads give the same answer.
 */
export function settleHeads(
  resolver: ConflictResolver,
  heads: readonly Revision[],
  collection: string,
  id: string,
): Settlement {
  let hlc = heads[0]?.hlc ?? '';
  for (const h of heads) if (h.hlc > hlc) hlc = h.hlc;
  const only = heads.length === 1 ? heads[0] : undefined;
  return {
    resolution: only ? resolveSingle(only) : resolver.resolve(heads, { collection, id }),
    hlc,
    conflict: only ? 'none' : resolver.leavesOpen ? 'open' : 'auto',
    strategy: resolver.name,
  };
}
