import { createHash } from 'node:crypto';
import { TrosynError } from '../errors.js';
import type { DeviceId, Revision } from '../store/types.js';
import { assertCollectionName } from '../sync/ids.js';
import type { GroupRecord } from './registry-backend.js';

/** A write outside the device's write scope; refused alone, the rest of the batch applies. */
export class ScopeWriteDeniedError extends TrosynError {
  constructor(collection: string, group: string) {
    super('SCOPE_WRITE_DENIED', `devices in group ${group} may not write collection ${collection}`, {
      collection,
      group,
    });
  }
}

/** A revision a child sent that it did not write itself (or that claims to come from a hub). */
export class AuthorMismatchError extends TrosynError {
  constructor(rev: string, author: string) {
    super(
      'AUTHOR_MISMATCH',
      `revision ${rev} claims author ${author}, but a device may only send its own writes`,
      { rev, author },
    );
  }
}

/**
 * A group's scope pattern that matches no collection the way it reads (`../x`,
 * `*x`, `a*b`): refused when the group is saved rather than silently never matching.
 */
export class InvalidScopePatternError extends TrosynError {
  constructor(pattern: string) {
    super(
      'INVALID_SCOPE_PATTERN',
      `invalid scope pattern ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}...` : pattern)}: use a collection name (A-Z a-z 0-9 _ . -, not starting with . or -), * for every collection, or a name's beginning followed by * (sales.* or sales*)`,
      { pattern },
    );
  }
}

/**
 * Checks one scope pattern against the forms matchesScope gives a meaning to: `*`,
 * an exact collection name, or the beginning of a collection name followed by one
 * trailing `*` (`sales.*`, `sales*`).
 */
export function assertScopePattern(pattern: string): void {
  if (pattern === '*') return;
  const stem = pattern.endsWith('*') ? pattern.slice(0, -1) : pattern;
  // The stem follows the collection-name rule itself, so a pattern can name any
  // collection, reserved ones (`_...`) included, and nothing that is not one.
  try {
    assertCollectionName(stem, true);
  } catch {
    throw new InvalidScopePatternError(pattern);
  }
}

/** True when `collection` matches a pattern list: exact names, `*` for all, `prefix.*` for a family. */
export function matchesScope(patterns: readonly string[], collection: string): boolean {
  for (const p of patterns) {
    if (p === '*' || p === collection) return true;
    if (p.endsWith('*') && collection.startsWith(p.slice(0, -1))) return true;
  }
  return false;
}

/** What one device may read and write, compiled from its group. */
export interface DeviceScope {
  readable: (collection: string) => boolean;
  admit: (revision: Revision) => TrosynError | undefined;
  /** Changes whenever the set of readable collections changes. */
  readHash: string;
}

/** Compiles a device's scope from its group and the hub-only collections. */
export function compileScope(
  deviceId: DeviceId,
  group: GroupRecord,
  hubOnly: readonly string[],
): DeviceScope {
  const readable = (c: string) => !matchesScope(hubOnly, c) && matchesScope(group.read, c);
  return {
    readable,
    admit: (r) => {
      if (r.author !== deviceId || r.hub) return new AuthorMismatchError(r.rev, r.author);
      if (matchesScope(hubOnly, r.collection) || !matchesScope(group.write, r.collection)) {
        return new ScopeWriteDeniedError(r.collection, group.name);
      }
      return undefined;
    },
    readHash: createHash('sha256')
      .update(JSON.stringify([[...group.read].sort(), [...hubOnly].sort()]))
      .digest('hex')
      .slice(0, 16),
  };
}
