import type { TrosynError } from '../errors.js';
import type { DeviceId, Revision } from '../store/types.js';
import { hlcTime } from '../sync/hlc.js';
import type { DeviceScope } from './scopes.js';
import { AuthorMismatchError, matchesScope, ScopeWriteDeniedError } from './scopes.js';

/** How long after a recovery the hub takes back revisions that children hold for others. */
export const RELAY_WINDOW_MS = 30 * 24 * 3600_000;

/**
 * The hub lost revisions: its store was recreated (`--recover`) or found rolled
 * back to an older copy. Children hold what it lost, including revisions written by
 * other devices and by the hub itself, and send them back. Until `until`, the hub
 * accepts such relayed revisions if they are older than `at`.
 */
export interface RecoveryWindow {
  /** Wall-clock ms of the recovery: a revision newer than this cannot have been lost. */
  at: number;
  /** Relayed revisions are refused again after this (ms). */
  until: number;
  reason: 'store-recreated' | 'store-rolled-back';
}

/** What the relay rule needs to know about the registry. */
export interface RelayAuthority {
  hubId: DeviceId;
  hubOnly: readonly string[];
  /** The write scope of a registered, not revoked device, or undefined. */
  writeScopeOf(device: DeviceId): Promise<{ group: string; write: readonly string[] } | undefined>;
}

/**
 * The write check for a child's session: its own writes go through its scope; a
 * revision written by another device (relayed) is accepted only inside a recovery
 * window, only if it predates the recovery, only in a collection the child may
 * read (it could have received it), and only where its author may write. Revisions
 * are not signed, so outside recovery a child may send only its own writes.
 */
export function admitWithRelay(
  sender: DeviceId,
  scope: DeviceScope,
  authority: RelayAuthority,
  recovery: () => RecoveryWindow | undefined,
  now: () => number,
): (revision: Revision) => TrosynError | undefined | Promise<TrosynError | undefined> {
  return (r) => {
    if (r.author === sender) return scope.admit(r);
    const window = recovery();
    if (!window || now() > window.until || hlcTime(r.hlc) > window.at || !scope.readable(r.collection))
      return new AuthorMismatchError(r.rev, r.author);
    if (r.author === authority.hubId) return r.hub ? undefined : new AuthorMismatchError(r.rev, r.author);
    if (r.hub) return new AuthorMismatchError(r.rev, r.author);
    return authority.writeScopeOf(r.author).then((author) => {
      if (!author) return new AuthorMismatchError(r.rev, r.author);
      if (matchesScope(authority.hubOnly, r.collection) || !matchesScope(author.write, r.collection))
        return new ScopeWriteDeniedError(r.collection, author.group);
      return undefined;
    });
  };
}

/** Reads a stored recovery window (JSON), ignoring anything malformed. */
export function parseRecoveryWindow(text: string | undefined): RecoveryWindow | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<RecoveryWindow>;
    if (typeof v.at === 'number' && typeof v.until === 'number' && typeof v.reason === 'string')
      return v as RecoveryWindow;
  } catch {
    // fall through
  }
  return undefined;
}
