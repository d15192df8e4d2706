import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadNodeConfig } from '../config.js';
import { systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { PackChunkStore } from '../files/chunk-store-pack.js';
import { PostgresChunkStore } from '../files/chunk-store-postgres.js';
import { HUB_REGISTRY_FILE } from '../ops/hub-store.js';
import { PostgresStore } from '../store/postgres.js';
import { SqliteStore } from '../store/sqlite.js';
import { NODE_STORE_FILE } from '../sync/node-replica.js';
import { hasIdentity as identityIn, loadOrCreateIdentity, writeIdentity } from '../transport/identity.js';
import { Hub } from './hub.js';
import type { HubInit, HubParts } from './options.js';
import { PostgresRegistryBackend } from './postgres-registry.js';
import { DeviceRegistry } from './registry.js';
import type { RegistryBackend } from './registry-backend.js';
import { sharedHubIdentity } from './shared-identity.js';
import { SqliteRegistryBackend } from './sqlite-registry.js';

export { HUB_REGISTRY_FILE } from '../ops/hub-store.js';

/**
 * Builds a hub from its settings, with the default parts (files in `dataDir`:
 * identity, SQLite store, SQLite registry, chunks; or the store, registry and chunks
 * in `init.postgres`) for every part not given. Nothing is touched on disk until `start()`.
 */
export function createHub(init: HubInit, given: Partial<HubParts> = {}): Hub {
  const logger = given.logger ?? silentLogger;
  const clock = given.clock ?? systemClock;
  const { dataDir } = init;
  const name = init.name ?? 'trosyn-hub';
  // A hub that has run (identity and registry made together with the store) must
  // find its store: a missing one was lost, and starting afresh would hide it. On
  // PostgreSQL it has run once config.json names its database (or, moved from
  // SQLite, once its registry file is here).
  const hasIdentity = existsSync(join(dataDir, 'identity', 'cert.pem'));
  const hasRegistryFile = existsSync(join(dataDir, HUB_REGISTRY_FILE));
  const hasRun =
    hasIdentity &&
    (init.postgres === undefined
      ? hasRegistryFile
      : hasRegistryFile || loadNodeConfig(dataDir).store !== undefined);
  const hubLogger = componentLogger(logger, 'hub');
  const backend = (): RegistryBackend =>
    init.postgres === undefined
      ? new SqliteRegistryBackend({ path: join(dataDir, HUB_REGISTRY_FILE), clock })
      : new PostgresRegistryBackend({
          connection: init.postgres,
          // The registry does not come back from the children: --recover does not excuse it.
          mustExist: hasRun,
          logger: hubLogger,
          clock,
        });
  const registry =
    given.registry ??
    new DeviceRegistry({
      backend: backend(),
      ...(init.requireApproval !== undefined && { requireApproval: init.requireApproval }),
      logger: hubLogger,
      clock,
    });
  const mustExist = hasRun && init.recover !== true;
  const identityDir = join(dataDir, 'identity');
  const ownIdentity = () => loadOrCreateIdentity(identityDir, { commonName: name, logger: hubLogger });
  // On PostgreSQL every hub process on the database presents the identity it names.
  const sharedIdentity = async () => {
    await registry.start();
    try {
      return await sharedHubIdentity({
        settings: registry,
        local: async () => (identityIn(identityDir) ? ownIdentity() : undefined),
        create: ownIdentity,
        keep: async (identity) => writeIdentity(identityDir, identity),
        ...(init.identityKeyFile !== undefined && { keyFile: init.identityKeyFile }),
        logger: hubLogger,
      });
    } catch (err) {
      await registry.stop().catch(() => undefined);
      throw err;
    }
  };
  const parts: HubParts = {
    identity: given.identity ?? (init.postgres === undefined ? ownIdentity : sharedIdentity),
    store:
      given.store ??
      (init.postgres === undefined
        ? new SqliteStore({
            path: join(dataDir, NODE_STORE_FILE),
            mustExist,
            ...(init.synchronous && { synchronous: init.synchronous }),
            logger: hubLogger,
            clock,
          })
        : new PostgresStore({ connection: init.postgres, mustExist, logger: hubLogger, clock })),
    registry,
    authenticator: given.authenticator ?? registry,
    // On PostgreSQL the content is in the database too, shared by every hub process on
    // it; chunks this hub kept in its data directory before are copied in at start.
    chunks:
      given.chunks ??
      (init.postgres === undefined
        ? new PackChunkStore({ dir: join(dataDir, 'chunks'), fsync: init.synchronous !== 'off' })
        : new PostgresChunkStore({
            connection: init.postgres,
            fsync: init.synchronous !== 'off',
            importFrom: join(dataDir, 'chunks'),
            logger: hubLogger,
          })),
    logger,
    clock,
  };
  return new Hub(init, parts);
}
