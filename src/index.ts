/**
 * Trosyn Sync as a library: open a node's replica, read and write records, watch
 * changes, browse history, revert, list and resolve conflicts, sync with peers;
 * store files as content-defined chunks and read them back.
 */
import { SqliteStore, type SqliteStoreOptions } from './store/sqlite.js';
import { Replica, type ReplicaOptions } from './sync/replica.js';

export { isTrosynError, TrosynError } from './errors.js';
export { type Clock, type Startable, type Timer, startAll, stopAll, systemClock } from './lifecycle.js';
export { createLogger, silentLogger } from './observability/logger.js';
export type { SyncMessage } from './protocol/messages.js';
export * as protocol from './protocol/index.js';
export * as discovery from './discovery/index.js';
export { Hub, type HubInit, type HubParts, type HubStatus, type HubEvent } from './hub/hub.js';
export { createHub } from './hub/factory.js';
export { Child, type ChildInit, type ChildParts, type SyncStatus } from './child/child.js';
export { createChild } from './child/factory.js';
export type { RegistryBackend } from './hub/registry-backend.js';
export { SqliteRegistryBackend } from './hub/sqlite-registry.js';
export { pairWithHub, type PairOptions, type PairResult } from './child/pairing.js';
export { DeviceRegistry, type DeviceRecord, type GroupRecord } from './hub/registry.js';
export { type Authenticator, type AuthDecision, StaticAuthenticator } from './transport/authenticator.js';
export { formatDeviceId, parseDeviceId } from './transport/device-id.js';
export { createIdentity, type DeviceIdentity, loadOrCreateIdentity } from './transport/identity.js';
export type { StorageAdapter } from './store/adapter.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite.js';
export type * from './store/types.js';
export { createChannelPair, type MessageChannel } from './sync/channel.js';
export {
  type ConflictResolver,
  type ConflictStrategy,
  type CustomResolution,
  customResolver,
  hubWinsResolver,
  lwwResolver,
  manualResolver,
  mergeResolver,
} from './sync/conflict.js';
export { isDeviceId, newRecordId, randomDeviceId } from './sync/ids.js';
export {
  type ApplyReport,
  type ChangeEvent,
  type CollectionOptions,
  type HistoryEntry,
  Replica,
  type ReplicaOptions,
  type WriteResult,
} from './sync/replica.js';
export { SyncSession, type SyncSessionOptions, type SyncSessionStats } from './sync/session.js';
export { chunkBuffer, chunkStream } from './files/chunker.js';
export type {
  ChunkStore,
  ChunkStoreStats,
  GcOptions,
  GcReport,
  GetOptions,
  PutOptions,
} from './files/chunk-store.js';
export { DiskChunkStore, type DiskChunkStoreOptions } from './files/chunk-store-disk.js';
export { type ChunkLocation, PackChunkStore, type PackChunkStoreOptions } from './files/chunk-store-pack.js';
export type { FileBody } from './files/file-body.js';
export { FileStore } from './files/file-store.js';
export { type FileVersion, NodeFiles } from './files/node-files.js';
export type { ContentProgress } from './files/content-sync.js';

export interface OpenReplicaOptions extends Omit<ReplicaOptions, 'store'> {
  /** Path of the node's SQLite file. */
  path: string;
  synchronous?: SqliteStoreOptions['synchronous'];
}

/** Opens (and starts) a replica on an embedded SQLite file. Call `stop()` when done. */
export async function openReplica(options: OpenReplicaOptions): Promise<Replica> {
  const { path, synchronous, ...rest } = options;
  const store = new SqliteStore({
    path,
    ...(synchronous !== undefined && { synchronous }),
    ...(rest.logger !== undefined && { logger: rest.logger }),
    ...(rest.clock !== undefined && { clock: rest.clock }),
  });
  const replica = new Replica({ ...rest, store });
  await replica.start();
  return replica;
}
