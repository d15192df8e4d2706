import type { Replica } from '../sync/replica.js';
import { type CollectionPolicy, parseSyncPolicy, type SyncPolicy } from '../sync/policy.js';
import type { DeviceRegistry } from './registry.js';
import { assertScopePattern } from './scopes.js';

/** The hub's settings an admin changes at run time (dashboard, CLI, admin API). */
export interface HubSettings {
  /** Newly paired devices wait for an admin's approval. */
  requireApproval: boolean;
  /** The collection policy every node applies (see SyncPolicy). */
  policy: SyncPolicy;
}

/**
 * A change to the settings: each part given replaces that part, the rest stays.
 * `collections` replaces the whole per-collection table (a collection left out goes
 * back to last-writer-wins, synced).
 */
export interface SettingsChange {
  requireApproval?: boolean;
  collections?: Record<string, CollectionPolicy>;
  hubOnly?: string[];
  retention?: SyncPolicy['retention'];
}

export async function readSettings(replica: Replica, registry: DeviceRegistry): Promise<HubSettings> {
  return { requireApproval: await registry.requireApproval(), policy: replica.getPolicy() };
}

/**
 * Applies a settings change on the hub: the policy (checked whole first, so nothing
 * changes when any part is wrong) gets the next version and is adopted by the hub's
 * replica, which settles conflicts again where a strategy changed; the running hub
 * sends it to every child. Returns the settings now in force.
 */
export async function changeSettings(
  replica: Replica,
  registry: DeviceRegistry,
  change: SettingsChange,
  now: number,
): Promise<HubSettings & { resettled: number }> {
  const current = replica.getPolicy();
  const policyChanged =
    change.collections !== undefined || change.hubOnly !== undefined || change.retention !== undefined;
  let resettled = 0;
  if (policyChanged) {
    const hubOnly = change.hubOnly ?? current.hubOnly;
    for (const pattern of hubOnly) assertScopePattern(pattern);
    // Settings left at their default are not stored: `{}` and absent mean the same.
    const collections: Record<string, CollectionPolicy> = {};
    for (const [name, c] of Object.entries(change.collections ?? current.collections)) {
      const kept: CollectionPolicy = {
        ...(c.conflict && c.conflict !== 'lww' && { conflict: c.conflict }),
        ...(c.localOnly && { localOnly: true }),
      };
      if (Object.keys(kept).length > 0) collections[name] = kept;
    }
    const next = parseSyncPolicy({
      version: current.version + 1,
      updatedAt: now,
      collections,
      hubOnly: [...new Set(hubOnly)],
      retention: change.retention ?? current.retention,
    });
    ({ resettled } = await replica.setPolicy(next));
  }
  if (change.requireApproval !== undefined) await registry.setRequireApproval(change.requireApproval);
  return { ...(await readSettings(replica, registry)), resettled };
}
