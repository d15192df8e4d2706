import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { PackChunkStore } from '../files/chunk-store-pack.js';
import { SqliteStore } from '../store/sqlite.js';
import { NODE_STORE_FILE } from '../sync/node-replica.js';
import { loadOrCreateIdentity } from '../transport/identity.js';
import { Hub } from './hub.js';
import type { HubInit, HubParts } from './options.js';
import { DeviceRegistry } from './registry.js';
import { SqliteRegistryBackend } from './sqlite-registry.js';

/** The registry file in a hub's data directory. */
export const HUB_REGISTRY_FILE = 'hub.db';

/**
 * Builds a hub from its settings, with the default parts (files in `dataDir`:
 * identity, SQLite store, SQLite registry) for every part not given. Nothing is
 * touched on disk until `start()`.
 */
export function createHub(init: HubInit, given: Partial<HubParts> = {}): Hub {
  const logger = given.logger ?? silentLogger;
  const clock = given.clock ?? systemClock;
  const { dataDir } = init;
  const name = init.name ?? 'trosyn-hub';
  // A hub that has run (identity and registry made together with the store) must
  // find its store: a missing one was lost, and starting afresh would hide it.
  const hasRun =
    existsSync(join(dataDir, 'identity', 'cert.pem')) && existsSync(join(dataDir, HUB_REGISTRY_FILE));
  const registry =
    given.registry ??
    new DeviceRegistry({
      backend: new SqliteRegistryBackend({ path: join(dataDir, HUB_REGISTRY_FILE), clock }),
      ...(init.requireApproval !== undefined && { requireApproval: init.requireApproval }),
      logger: componentLogger(logger, 'hub'),
      clock,
    });
  const parts: HubParts = {
    identity:
      given.identity ??
      (() =>
        loadOrCreateIdentity(join(dataDir, 'identity'), {
          commonName: name,
          logger: componentLogger(logger, 'hub'),
        })),
    store:
      given.store ??
      new SqliteStore({
        path: join(dataDir, NODE_STORE_FILE),
        mustExist: hasRun && init.recover !== true,
        ...(init.synchronous && { synchronous: init.synchronous }),
        logger: componentLogger(logger, 'hub'),
        clock,
      }),
    registry,
    authenticator: given.authenticator ?? registry,
    chunks:
      given.chunks ?? new PackChunkStore({ dir: join(dataDir, 'chunks'), fsync: init.synchronous !== 'off' }),
    logger,
    clock,
  };
  return new Hub(init, parts);
}
