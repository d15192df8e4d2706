import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { PackChunkStore } from '../files/chunk-store-pack.js';
import { SqliteStore } from '../store/sqlite.js';
import { NODE_STORE_FILE } from '../sync/node-replica.js';
import { loadOrCreateIdentity } from '../transport/identity.js';
import { Child } from './child.js';
import type { ChildInit, ChildParts } from './options.js';
import { loadPairedHub } from './paired-hub.js';

/**
 * Builds a child agent from its settings, with the default parts (files in
 * `dataDir`: identity, SQLite store) for every part not given. Nothing is touched
 * on disk until `start()`.
 */
export function createChild(init: ChildInit, given: Partial<ChildParts> = {}): Child {
  const logger = given.logger ?? silentLogger;
  const clock = given.clock ?? systemClock;
  const { dataDir } = init;
  // A paired child has a store (pairing makes it): if it is gone, it was lost.
  let paired = false;
  try {
    paired = existsSync(join(dataDir, 'identity', 'cert.pem')) && loadPairedHub(dataDir) !== undefined;
  } catch {
    // An unreadable hub.json is reported by start(), with its cause.
  }
  const parts: ChildParts = {
    identity:
      given.identity ??
      (() =>
        loadOrCreateIdentity(join(dataDir, 'identity'), {
          commonName: init.name ?? 'trosyn-child',
          logger: componentLogger(logger, 'child'),
        })),
    store:
      given.store ??
      new SqliteStore({
        path: join(dataDir, NODE_STORE_FILE),
        mustExist: paired && init.recover !== true,
        ...(init.synchronous && { synchronous: init.synchronous }),
        logger: componentLogger(logger, 'child'),
        clock,
      }),
    chunks:
      given.chunks ?? new PackChunkStore({ dir: join(dataDir, 'chunks'), fsync: init.synchronous !== 'off' }),
    logger,
    clock,
  };
  return new Child(init, parts);
}
