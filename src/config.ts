import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { TrosynError } from './errors.js';
import { DEFAULT_FILES_COLLECTION, type FileTransferPolicy } from './files/node-files.js';
import { parsePostgresLocation } from './store/postgres-location.js';
import type { RetentionPolicy } from './store/types.js';
import type { CollectionOptions } from './sync/replica.js';

/**
 * Optional settings in `<data dir>/config.json`, read by the agent and by CLI
 * commands on the same data directory, so both open the store the same way.
 * On the hub, the collections' strategies and local-only flags, `hubOnly` and
 * `retention` make the collection policy every child receives; a child's file may
 * only add local-only collections and choose its files collections' transfer.
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
  /**
   * Hub only: the per-device write limit, revisions a second each device may write
   * through the hub (a batch counts 20 more); a device over it is slowed, never
   * refused. 0 or "off": no limit. Default 1000 (`--write-limit`).
   */
  writeLimit?: number | 'off';
  /**
   * Hub only: revisions a device may write at once beyond its write limit after a
   * quiet while. Default 10 seconds' worth of the limit: 10000 (`--write-burst`).
   */
  writeBurst?: number;
  /** History kept per record; older bodies are dropped hourly (a head never is). Default: keep all. */
  retention?: { maxRevisions?: number; maxAgeDays?: number };
  /**
   * Hub only: the PostgreSQL database that holds the hub's records and registry
   * (`postgres://user@host:port/database`), never with its password. Written by the
   * hub's first start with `--store`; every later command on this data directory
   * opens the same database. Absent: SQLite files in the data directory.
   */
  store?: string;
  /** Hub only: the file holding the PostgreSQL password, remembered from `--store-password-file`. */
  storePasswordFile?: string;
  /** Hub only, on PostgreSQL: the identity key file, remembered from `--identity-key-file`. */
  identityKeyFile?: string;
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
    writeLimit: z.union([z.number().min(0).finite(), z.literal('off')]).optional(),
    writeBurst: z.number().int().min(0).optional(),
    retention: z
      .object({
        maxRevisions: z.number().int().min(1).optional(),
        maxAgeDays: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    store: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .refine((url) => !holdsPassword(url), {
        message:
          "holds a password: take it out, and give it with PGPASSWORD, --store-password-file or TROSYN_STORE_PASSWORD_FILE (the file's path may be kept as storePasswordFile)",
      })
      .optional(),
    storePasswordFile: z.string().min(1).optional(),
    identityKeyFile: z.string().min(1).optional(),
  })
  .strict();

/** Whether a location holds a password (or cannot be read, which the store's start reports). */
function holdsPassword(url: string): boolean {
  try {
    return parsePostgresLocation(url).password !== undefined;
  } catch {
    return false;
  }
}

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

/**
 * Refuses a child's config.json that sets what the hub decides (conflict
 * strategies, retention, hub-only collections, approval mode) with
 * CHILD_POLICY_SETTING, naming the first such setting.
 */
export function assertChildConfig(config: NodeConfig, dataDir: string): void {
  const path = join(dataDir, 'config.json');
  const named = Object.entries(config.collections ?? {}).find(([, c]) => c.conflict !== undefined);
  const setting = named
    ? `collections.${named[0]}.conflict`
    : (['retention', 'hubOnly', 'requireApproval'] as const).find((k) => config[k] !== undefined);
  if (setting === undefined) return;
  throw new TrosynError(
    'CHILD_POLICY_SETTING',
    `${path}: ${setting} is the hub's to set: conflict strategies, retention and hub-only collections are set on the hub (dashboard Settings, \`trosyn-sync settings\`) and reach every child; a child's config.json may only add local-only collections`,
    { path, setting },
  );
}

/** The local-only collections a node's config.json adds, as Replica takes them. */
export function localOnlyOptions(config: NodeConfig): Record<string, CollectionOptions> | undefined {
  const names = Object.entries(config.collections ?? {}).filter(([, c]) => c.localOnly);
  return names.length > 0
    ? Object.fromEntries(names.map(([name]) => [name, { localOnly: true }]))
    : undefined;
}
