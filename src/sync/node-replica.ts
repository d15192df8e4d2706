import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import type { StorageAdapter } from '../store/adapter.js';
import { SqliteStore } from '../store/sqlite.js';
import type { DeviceId, RetentionPolicy } from '../store/types.js';
import { type CollectionOptions, Replica } from './replica.js';

/** The store file of a node, inside its data directory. */
export const NODE_STORE_FILE = 'trosyn.db';

export interface NodeReplicaOptions {
  dataDir: string;
  deviceId: DeviceId;
  role: 'hub' | 'child';
  /** The store to use instead of the SQLite file in the data directory (a hub's on PostgreSQL). */
  store?: StorageAdapter;
  collections?: Record<string, CollectionOptions>;
  synchronous?: 'full' | 'normal' | 'off';
  /** Applied at start and hourly while running. */
  retention?: RetentionPolicy;
  /** Look for other processes' writes this often (ms); the running agents do, one-shot CLI commands do not. */
  watchExternalWritesMs?: number;
  /**
   * The node has run before, so its store must exist: a missing or empty store file
   * fails with STORE_MISSING instead of starting afresh. Default false.
   */
  requireExisting?: boolean;
  logger?: Logger;
  clock?: Clock;
}

/** Whether a node's store file is there and holds something. */
export function nodeStoreState(dataDir: string): 'present' | 'missing' | 'empty' {
  try {
    return statSync(join(dataDir, NODE_STORE_FILE)).size === 0 ? 'empty' : 'present';
  } catch {
    return 'missing';
  }
}

/** The replica of a node's data directory (not started), built the same way by hub, child and CLI. */
export function nodeReplica(o: NodeReplicaOptions): Replica {
  return new Replica({
    store:
      o.store ??
      new SqliteStore({
        path: join(o.dataDir, NODE_STORE_FILE),
        ...(o.requireExisting && { mustExist: true }),
        ...(o.logger && { logger: o.logger }),
        ...(o.synchronous && { synchronous: o.synchronous }),
        ...(o.clock && { clock: o.clock }),
      }),
    deviceId: o.deviceId,
    role: o.role,
    ...(o.collections && { collections: o.collections }),
    ...(o.watchExternalWritesMs !== undefined && { watchExternalWritesMs: o.watchExternalWritesMs }),
    ...(o.retention && { retention: o.retention, pruneEveryMs: 3600_000 }),
    ...(o.logger && { logger: o.logger }),
    ...(o.clock && { clock: o.clock }),
  });
}
