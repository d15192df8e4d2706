import type { Logger } from 'pino';
import type { InterfaceSelectionOptions } from '../discovery/interfaces.js';
import type { Clock } from '../lifecycle.js';
import type { CompressionCodec } from '../protocol/compression.js';
import type { ChunkStore } from '../files/chunk-store.js';
import type { FileTransferPolicy } from '../files/node-files.js';
import type { StorageAdapter } from '../store/adapter.js';
import type { DeviceId, RetentionPolicy } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import type { BackoffOptions } from '../transport/backoff.js';
import type { HubAddress } from '../transport/client.js';
import type { DeviceIdentity } from '../transport/identity.js';
import type { LocalApiOptions } from './local-api/server.js';

/** A child agent's settings: plain values, each with its default. The parts are ChildParts. */
export interface ChildInit {
  /** The child's data directory: identity, store, paired hub, lock. Created if missing. */
  dataDir: string;
  /**
   * Name offered to the hub at pairing (the hub's registry name is the one shown).
   * @default 'trosyn-child'
   */
  name?: string;
  /**
   * The pinned hub.
   * @default the hub this data directory paired with (hub.json)
   */
  hubId?: DeviceId;
  /** Static `host:port` addresses of the hub, tried after the last good one. */
  staticAddresses?: string[];
  /**
   * Find the hub by LAN discovery when the known addresses fail.
   * @default true
   */
  discovery?: boolean | (InterfaceSelectionOptions & { discoveryPort?: number });
  /** Replaces the built-in address search (last, static, discovered) entirely; for tests and embedding. */
  hubAddresses?: () => HubAddress[] | Promise<HubAddress[]>;
  /**
   * Compression codecs offered to the hub, best first.
   * @default every codec this build has
   */
  compression?: CompressionCodec[];
  /**
   * Heartbeat interval (ms) this child offers; the hub's choice wins.
   * @default 15000
   */
  heartbeatMs?: number;
  /**
   * Waits between reconnect attempts.
   * @default { initialMs: 500, maxMs: 30000 } with full jitter
   */
  backoff?: BackoffOptions;
  /**
   * Per-collection settings of this child. The hub's collection policy (sent at every
   * connection and kept in the store) decides conflict strategies and retention for
   * every collection it names; these apply only to collections it does not name, and
   * a `localOnly` here always holds (a child may keep more collections to itself).
   */
  collections?: Record<string, CollectionOptions>;
  /**
   * SQLite durability of the default store; see SqliteStoreOptions. `'off'` also
   * stops the default chunk store syncing file content to disk (tests only).
   * @default 'full'
   */
  synchronous?: 'full' | 'normal' | 'off';
  /**
   * History kept per record, applied at start and hourly, until the hub's policy sets one.
   * @default keep everything
   */
  retention?: RetentionPolicy;
  /** The local REST API for apps on this machine (127.0.0.1 only); off unless given. */
  localApi?: Omit<LocalApiOptions, 'dataDir' | 'logger' | 'clock'>;
  /**
   * The store was lost (missing or empty although this child has paired): start
   * with an empty one and get back from the hub what it holds (this child's own
   * synced writes included). Without it such a start fails with STORE_MISSING.
   * @default false
   */
  recover?: boolean;
  /**
   * The files collections (their records are file versions; their content follows
   * as chunks) and each one's transfer policy.
   * `on-demand` content is fetched when a version is read.
   * @default { files: 'eager' }
   */
  fileCollections?: Record<string, FileTransferPolicy>;
}

/**
 * The parts a child agent is built from. `createChild` builds the defaults from
 * ChildInit; a test or an embedding app replaces any of them.
 */
export interface ChildParts {
  /** The device's key and certificate. Default: `<dataDir>/identity`, created on first start. */
  identity: () => Promise<DeviceIdentity>;
  /** Records, revisions, change log, cursors. Default: SQLite at `<dataDir>/trosyn.db`. */
  store: StorageAdapter;
  /** File content, as chunks named by their SHA-256. Default: files under `<dataDir>/chunks`. */
  chunks: ChunkStore;
  logger: Logger;
  clock: Clock;
}
