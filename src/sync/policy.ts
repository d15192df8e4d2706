import { z } from 'zod';
import { TrosynError } from '../errors.js';
import type { RetentionPolicy } from '../store/types.js';
import type { StrategyName } from './conflict.js';
import { assertCollectionName } from './ids.js';

/** What the hub decides about one collection for every node. */
export interface CollectionPolicy {
  /** How concurrent writes settle. Default 'lww'. */
  conflict?: StrategyName;
  /** Never synced: each node's writes stay on that node (only writes made while it is set). */
  localOnly?: boolean;
}

/**
 * The collection policies the hub sets and every node applies: conflict strategy
 * and local-only per collection, the hub-only collections, and history retention.
 * Set on the hub (dashboard, CLI, admin API), kept in each node's store and sent to
 * every child over the protocol (`policy.set`), so no two nodes settle a conflict
 * differently. A child may add local-only collections of its own, nothing else.
 */
export interface SyncPolicy {
  /** Counts the hub's changes: 0 before the first. */
  version: number;
  /** Wall-clock ms of the last change (0 before the first). */
  updatedAt: number;
  collections: Record<string, CollectionPolicy>;
  /** Collections kept on the hub: never sent to children, never accepted from them (scope patterns). */
  hubOnly: string[];
  /** History kept per record; older bodies are dropped hourly (a head never is). Empty: keep all. */
  retention: { maxRevisions?: number; maxAgeDays?: number };
}

export const EMPTY_POLICY: SyncPolicy = Object.freeze({
  version: 0,
  updatedAt: 0,
  collections: {},
  hubOnly: [],
  retention: {},
});

/** A policy that cannot be applied: a wrong strategy, collection name or limit. */
export class InvalidPolicyError extends TrosynError {
  constructor(message: string) {
    super('INVALID_POLICY', message);
  }
}

const collectionPolicy = z
  .object({
    conflict: z.enum(['lww', 'hub-wins', 'merge', 'manual']).optional(),
    localOnly: z.boolean().optional(),
  })
  .strict();

/** The policy's JSON shape, as stored, sent and accepted by the admin API. */
export const syncPolicySchema = z
  .object({
    version: z.number().int().nonnegative(),
    updatedAt: z.number().nonnegative(),
    collections: z.record(z.string().max(256), collectionPolicy),
    hubOnly: z.array(z.string().max(256)).max(1000),
    retention: z
      .object({
        maxRevisions: z.number().int().min(1).optional(),
        maxAgeDays: z.number().positive().max(36500).optional(),
      })
      .strict(),
  })
  .strict();

/** Checks a policy from the wire or a file; names the first problem. */
export function parseSyncPolicy(raw: unknown): SyncPolicy {
  const parsed = syncPolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidPolicyError(
      `invalid collection policy: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const policy = parsed.data as SyncPolicy;
  if (Object.keys(policy.collections).length > 10_000)
    throw new InvalidPolicyError('invalid collection policy: more than 10000 collections');
  for (const name of Object.keys(policy.collections)) {
    try {
      assertCollectionName(name, true);
    } catch (err) {
      throw new InvalidPolicyError(`invalid collection policy: ${(err as Error).message}`);
    }
  }
  return policy;
}

/** The retention of a policy as the store applies it, or undefined to keep everything. */
export function policyRetention(policy: SyncPolicy): RetentionPolicy | undefined {
  const r = policy.retention;
  if (r.maxRevisions === undefined && r.maxAgeDays === undefined) return undefined;
  return {
    ...(r.maxRevisions !== undefined && { maxRevisions: r.maxRevisions }),
    ...(r.maxAgeDays !== undefined && { maxAgeMs: r.maxAgeDays * 24 * 3600_000 }),
  };
}
