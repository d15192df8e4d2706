import type { JsonObject, Resolution, RevId, Revision } from '../store/types.js';
import { canonicalJson, isJsonObject, jsonEqual, setField } from './canonical.js';
import { InvalidOptionError } from './errors.js';

export interface ResolverContext {
  collection: string;
  id: string;
}

/**
 * Settles a record whose heads are concurrent. Must be pure and deterministic: the
 * same heads, in any order, give the same resolution on every replica. The heads
 * passed in are sorted by rev, number at least two, and are never pruned stubs.
 * Every implementation must pass `./testing/resolver-suite.ts`.
 */
export interface ConflictResolver {
  /** Recorded on each conflict entry. */
  readonly name: string;
  /** When true the conflict stays open until a person resolves it (the result is provisional). */
  readonly leavesOpen?: boolean;
  resolve(heads: readonly Revision[], context: ResolverContext): Resolution;
}

/** The built-in strategies by name. */
export type StrategyName = 'lww' | 'hub-wins' | 'merge' | 'manual';

/** Positive when `a` is later than `b`: by HLC, then author device ID, then rev. */
export function compareLww(a: Revision, b: Revision): number {
  if (a.hlc !== b.hlc) return a.hlc > b.hlc ? 1 : -1;
  if (a.author !== b.author) return a.author > b.author ? 1 : -1;
  if (a.rev !== b.rev) return a.rev > b.rev ? 1 : -1;
  return 0;
}

function latest(heads: readonly Revision[]): Revision {
  let best = heads[0];
  if (!best) throw new Error('latest() needs at least one revision');
  for (const h of heads) if (compareLww(h, best) > 0) best = h;
  return best;
}

function plain(winner: Revision): Resolution {
  return { winner: winner.rev, deleted: winner.deleted, body: winner.body, derived: false };
}

/** The single head of an uncontested record. */
export function resolveSingle(head: Revision): Resolution {
  return plain(head);
}

/** Last writer wins: highest HLC, ties broken by device ID. */
export const lwwResolver: ConflictResolver = {
  name: 'lww',
  resolve: (heads) => plain(latest(heads)),
};

/** The hub's revision wins; among several hub revisions (or none), last writer wins. */
export const hubWinsResolver: ConflictResolver = {
  name: 'hub-wins',
  resolve: (heads) => {
    const fromHub = heads.filter((h) => h.hub);
    return plain(latest(fromHub.length > 0 ? fromHub : heads));
  },
};

/** Provisional last-writer-wins; the conflict stays open for a person to resolve. */
export const manualResolver: ConflictResolver = {
  name: 'manual',
  leavesOpen: true,
  resolve: (heads) => plain(latest(heads)),
};

/** A field's clock in a revision: its own entry, or the revision's HLC for revisions without field clocks. */
function fieldClock(r: Revision, field: string): string {
  // Own fields only: `fields.__proto__` would otherwise read Object.prototype.
  return (r.fields && Object.hasOwn(r.fields, field) ? r.fields[field] : undefined) ?? r.hlc;
}

/**
 * Field-by-field merge of live heads. Every revision of a merge collection carries
 * a clock per top-level field (the time that field last changed), so the common
 * ancestor's knowledge travels with each revision: a field changed on one side only
 * has the newer clock there and wins, exactly as a three-way merge against the
 * ancestor would decide; a field changed on both sides goes to the later change
 * (LWW per field). A field removed on one side is absent from that body while its
 * clock records the removal. Because the merge needs no stored ancestor, history
 * retention can never make two replicas merge differently.
 */
export function mergeFields(heads: readonly Revision[]): {
  body: JsonObject;
  clocks: Record<string, string>;
} {
  const names = new Set<string>();
  for (const h of heads) {
    if (h.body) for (const k of Object.keys(h.body)) names.add(k);
    if (h.fields) for (const k of Object.keys(h.fields)) names.add(k);
  }
  const body: JsonObject = {};
  const clocks: Record<string, string> = {};
  for (const name of [...names].sort()) {
    let best: Revision | undefined;
    let bestClock = '';
    let bestValue = '';
    for (const h of heads) {
      const clock = fieldClock(h, name);
      const present = h.body !== null && Object.hasOwn(h.body, name);
      // Absent sorts before any value, so ties are settled the same way everywhere.
      const value = present ? canonicalJson(h.body?.[name]) : '';
      if (best === undefined || clock > bestClock || (clock === bestClock && value > bestValue)) {
        best = h;
        bestClock = clock;
        bestValue = value;
      }
    }
    if (!best) continue;
    setField(clocks, name, bestClock);
    if (best.body !== null && Object.hasOwn(best.body, name)) setField(body, name, best.body[name] ?? null);
  }
  return { body, clocks };
}

/**
 * Three-way JSON merge, field by field (see `mergeFields`). A delete concurrent
 * with edits wins only when it is later than every edit.
 */
export const mergeResolver: ConflictResolver = {
  name: 'merge',
  resolve: (heads) => {
    const live = heads.filter((h) => !h.deleted);
    const newest = latest(heads);
    if (live.length === 0 || newest.deleted) return plain(newest);
    const winner = latest(live);
    const { body } = mergeFields(live);
    return { winner: winner.rev, deleted: false, body, derived: !jsonEqual(body, winner.body) };
  },
};

/** What a custom function returns: one of the heads (by rev), or a new body (null deletes). */
export type CustomResolution = RevId | { body: JsonObject | null };

/**
 * Wraps a deterministic function as a resolver. It receives the heads sorted by rev
 * and must return the same answer for the same heads on every replica: no clocks,
 * no randomness, no I/O.
 */
export function customResolver(
  name: string,
  fn: (heads: readonly Revision[], context: ResolverContext) => CustomResolution,
): ConflictResolver {
  return {
    name,
    resolve: (heads, context) => {
      const answer = fn(heads, context);
      const fallback = latest(heads);
      if (typeof answer === 'string') {
        const chosen = heads.find((h) => h.rev === answer);
        return plain(chosen ?? fallback);
      }
      if (answer.body === null) return { winner: fallback.rev, deleted: true, body: null, derived: true };
      if (!isJsonObject(answer.body)) return plain(fallback);
      return { winner: fallback.rev, deleted: false, body: answer.body, derived: true };
    },
  };
}

export const BUILTIN_RESOLVERS: Readonly<Record<StrategyName, ConflictResolver>> = {
  lww: lwwResolver,
  'hub-wins': hubWinsResolver,
  merge: mergeResolver,
  manual: manualResolver,
};

/** A strategy name or a resolver, as collection options accept it. */
export type ConflictStrategy = StrategyName | ConflictResolver;

export function toResolver(strategy: ConflictStrategy | undefined, collection: string): ConflictResolver {
  if (strategy === undefined) return lwwResolver;
  if (typeof strategy === 'string') {
    const found = BUILTIN_RESOLVERS[strategy];
    if (!found) {
      throw new InvalidOptionError(
        `collections.${collection}.conflict`,
        `unknown strategy ${JSON.stringify(strategy)}; use lww, hub-wins, merge, manual or a ConflictResolver`,
      );
    }
    return found;
  }
  if (typeof strategy.resolve !== 'function' || typeof strategy.name !== 'string') {
    throw new InvalidOptionError(
      `collections.${collection}.conflict`,
      'a custom resolver needs a name and a resolve() function',
    );
  }
  return strategy;
}
