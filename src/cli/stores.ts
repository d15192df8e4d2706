/** Opening a node's stores from the command line: its replica, files and registry. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNodeConfig, localOnlyOptions } from '../config.js';
import { TrosynError } from '../errors.js';
import type { ChunkStore } from '../files/chunk-store.js';
import { PackChunkStore } from '../files/chunk-store-pack.js';
import { FileStore } from '../files/file-store.js';
import { NodeFiles } from '../files/node-files.js';
import type { DeviceRegistry } from '../hub/registry.js';
import {
  HUB_REGISTRY_FILE,
  hubStorage,
  type HubStorage,
  type HubStorageChoice,
  isHubDataDir,
} from '../ops/hub-store.js';
import type { StorageAdapter } from '../store/adapter.js';
import { PostgresLocationError } from '../store/postgres-location.js';
import type { DeviceId } from '../store/types.js';
import type { Replica } from '../sync/replica.js';
import { nodeReplica } from '../sync/node-replica.js';
import { deviceIdOfPem } from '../transport/device-id.js';
import { UsageError } from './context.js';

/** The device ID of the node whose data directory this is; refuses a directory that holds no node. */
export function nodeDeviceId(dir: string): DeviceId {
  const cert = join(dir, 'identity', 'cert.pem');
  if (!existsSync(cert)) {
    throw new TrosynError(
      'NO_NODE',
      `${dir} holds no Trosyn Sync node: start a hub there, or pair a child with \`trosyn-sync pair CODE --data ${dir}\``,
      {
        dataDir: dir,
      },
    );
  }
  return deviceIdOfPem(readFileSync(cert, 'utf8'));
}

/** Whether `dir` is a hub's data directory (SQLite registry file, or a PostgreSQL store in config.json). */
export function isHubDir(dir: string): boolean {
  return isHubDataDir(dir);
}

/**
 * Where the hub of `dir` keeps its records and registry: the one place every
 * command asks (the `hub` command adds what it was given). A location in
 * config.json that cannot be read is INVALID_CONFIG.
 */
export function storageOf(dir: string, given: HubStorageChoice = {}): HubStorage {
  try {
    return hubStorage(dir, given);
  } catch (err) {
    if (!(err instanceof PostgresLocationError)) throw err;
    if (given.store !== undefined) throw new UsageError(`--store: ${err.message}`);
    throw new TrosynError('INVALID_CONFIG', `${join(dir, 'config.json')}: store: ${err.message}`, {
      path: join(dir, 'config.json'),
    });
  }
}

/** The hub's store on PostgreSQL, when `dir` is a hub's whose config.json names one; it must be there. */
async function postgresStoreOf(dir: string): Promise<StorageAdapter | undefined> {
  const storage = storageOf(dir);
  if (storage.kind !== 'postgres') return undefined;
  const { PostgresStore } = await import('../store/postgres.js');
  return new PostgresStore({ connection: storage.connection, mustExist: true });
}

/**
 * Opens the node's store directly, whether or not its agent runs: SQLite lets both
 * write, and a running agent notices the CLI's writes within a second and syncs them.
 */
export async function withReplica<T>(dir: string, fn: (replica: Replica) => Promise<T>): Promise<T> {
  const deviceId = nodeDeviceId(dir);
  // Strategies come from the policy the store keeps; config.json adds local-only collections.
  const collections = localOnlyOptions(loadNodeConfig(dir));
  const store = await postgresStoreOf(dir);
  const replica = nodeReplica({
    dataDir: dir,
    deviceId,
    ...(store && { store }),
    role: isHubDir(dir) ? 'hub' : 'child',
    ...(collections && { collections }),
    // Never make a new, empty store behind the back of a node that has run: a missing one was lost.
    requireExisting: isHubDir(dir) || existsSync(join(dir, 'hub.json')),
  });
  await replica.start();
  try {
    return await fn(replica);
  } finally {
    await replica.stop();
  }
}

/**
 * Opens the node's files directly, as `withReplica` opens its store: chunks are
 * written under their final names only once complete, so the running agent sees
 * whole chunks or none, and serves them as soon as the version's record is synced.
 */
export async function withFiles<T>(dir: string, fn: (files: NodeFiles) => Promise<T>): Promise<T> {
  return withReplica(dir, async (replica) => {
    // A hub on PostgreSQL keeps its content in the database, shared by its processes.
    const storage = storageOf(dir);
    const chunks: ChunkStore =
      storage.kind === 'postgres'
        ? new (await import('../files/chunk-store-postgres.js')).PostgresChunkStore({
            connection: storage.connection,
          })
        : new PackChunkStore({ dir: join(dir, 'chunks') });
    await chunks.start();
    try {
      return await fn(new NodeFiles(replica, new FileStore(chunks)));
    } finally {
      await chunks.stop();
    }
  });
}

/** Opens a hub's device registry directly. */
export async function withRegistry<T>(
  dir: string,
  fn: (registry: DeviceRegistry) => T | Promise<T>,
): Promise<T> {
  if (!isHubDir(dir)) {
    throw new TrosynError(
      'NOT_A_HUB',
      `${dir} is not a hub's data directory (no hub.db, and no PostgreSQL store in its config.json): pass the hub's --data`,
      { dataDir: dir },
    );
  }
  // Loaded here, not with the CLI: only the hub's commands need the registry.
  const storage = storageOf(dir);
  const [{ DeviceRegistry }, backend] = await Promise.all([
    import('../hub/registry.js'),
    storage.kind === 'postgres'
      ? import('../hub/postgres-registry.js').then(
          (m) => new m.PostgresRegistryBackend({ connection: storage.connection, mustExist: true }),
        )
      : import('../hub/sqlite-registry.js').then(
          (m) => new m.SqliteRegistryBackend({ path: join(dir, HUB_REGISTRY_FILE) }),
        ),
  ]);
  const registry = new DeviceRegistry({ backend });
  await registry.start();
  try {
    return await fn(registry);
  } finally {
    await registry.stop();
  }
}
