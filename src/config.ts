import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { TrosynError } from './errors.js';
import { DEFAULT_FILES_COLLECTION, type FileTransferPolicy } from './files/node-files.js';
import type { RetentionPolicy } from './store/types.js';
import type { CollectionOptions } from './sync/replica.js';

/**
 * Optional settings in `<data dir>/config.json`, read by the agent and by CLI
 * commands on the same data directory, so both open the store the same way.
 * Conflict strategies must be the same on the hub and every child.
 */
export interface NodeConfig {
  /**
   * Per collection: conflict strategy ('lww', 'hub-wins', 'merge', 'manual'), local-only
   * flag, and `files` to make it a files collection with that transfer policy: `eager`
   * (every version's content follows its record) or `on-demand` (a child fetches a
   * version's content when it is opened). `files` is a files collection, eager, unless
   * configured otherwise.
   */
  collections?: Record<
    string,
    { conflict?: 'lww' | 'hub-wins' | 'merge' | 'manual'; localOnly?: boolean; files?: FileTransferPolicy }
  >;
  /** Hub only: collections never sent to children nor accepted from them (patterns, `*` allowed at the end). */
  hubOnly?: string[];
  /** Hub only: newly paired devices wait for an admin's approval. */
  requireApproval?: boolean;
  /** History kept per record; older bodies are dropped hourly (a head never is). Default: keep all. */
  retention?: { maxRevisions?: number; maxAgeDays?: number };
}

const schema = z
  .object({
    collections: z
      .record(
        z.string(),
        z
          .object({
            conflict: z.enum(['lww', 'hub-wins', 'merge', 'manual']).optional(),
            localOnly: z.boolean().optional(),
            files: z.enum(['eager', 'on-demand']).optional(),
          })
          .strict(),
      )
      .optional(),
    hubOnly: z.array(z.string()).optional(),
    requireApproval: z.boolean().optional(),
    retention: z
      .object({
        maxRevisions: z.number().int().min(1).optional(),
        maxAgeDays: z.number().positive().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** The data directory's config.json, or `{}` when there is none; a broken file fails with INVALID_CONFIG. */
export function loadNodeConfig(dataDir: string): NodeConfig {
  const path = join(dataDir, 'config.json');
  if (!existsSync(path)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TrosynError('INVALID_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`, { path });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TrosynError(
      'INVALID_CONFIG',
      `${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      { path },
    );
  }
  return parsed.data as NodeConfig;
}

/** The retention policy of a config, as Replica takes it. */
export function retentionPolicy(config: NodeConfig): RetentionPolicy | undefined {
  const r = config.retention;
  if (!r) return undefined;
  return {
    ...(r.maxRevisions !== undefined && { maxRevisions: r.maxRevisions }),
    ...(r.maxAgeDays !== undefined && { maxAgeMs: r.maxAgeDays * 24 * 3600_000 }),
  };
}

/** The collection options of a config, as Replica takes them. */
export function collectionOptions(config: NodeConfig): Record<string, CollectionOptions> | undefined {
  if (!config.collections) return undefined;
  const out: Record<string, CollectionOptions> = {};
  for (const [name, { files: _files, ...options }] of Object.entries(config.collections))
    out[name] = options as CollectionOptions;
  return out;
}

/** The files collections of a config and their transfer policies (`files`, eager, unless configured). */
export function fileCollections(config: NodeConfig): Record<string, FileTransferPolicy> {
  const out: Record<string, FileTransferPolicy> = { [DEFAULT_FILES_COLLECTION]: 'eager' };
  for (const [name, options] of Object.entries(config.collections ?? {}))
    if (options.files) out[name] = options.files;
  return out;
}
