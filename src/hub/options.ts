import type { Logger } from 'pino';
import type { InterfaceSelectionOptions } from '../discovery/interfaces.js';
import type { Clock } from '../lifecycle.js';
import type { CompressionCodec } from '../protocol/compression.js';
import type { ChunkStore } from '../files/chunk-store.js';
import type { FileTransferPolicy } from '../files/node-files.js';
import type { StorageAdapter } from '../store/adapter.js';
import type { PostgresConnection } from '../store/postgres-connection.js';
import type { RetentionPolicy } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import type { Authenticator } from '../transport/authenticator.js';
import type { DeviceIdentity } from '../transport/identity.js';
import type { RateLimit } from '../transport/rate-limit.js';
import type { AdminApiOptions } from './admin-api/server.js';
import type { MetricsListenerOptions } from './metrics-listener.js';
import type { DeviceRegistry } from './registry.js';

/** A hub's settings: plain values, each with its default. The parts are HubParts. */
export interface HubInit {
  /** The hub's data directory: identity, store, registry, lock. Created if missing. */
  dataDir: string;
  /**
   * Name shown to children and in the hub's status.
   * @default 'trosyn-hub'
   */
  name?: string;
  /**
   * Address of the sync service.
   * @default '::' (every address, IPv4 and IPv6)
   */
  host?: string;
  /**
   * TCP port of the sync service (TLS); 0 picks a free port.
   * @default 17700
   */
  port?: number;
  /**
   * Heartbeat interval (ms) asked of every child; a child silent for three is dropped.
   * @default 15000
   */
  heartbeatMs?: number;
  /**
   * Paired devices wait for an admin's approval before they sync (a setting stored
   * in the registry overrides it).
   * @default false
   */
  requireApproval?: boolean;
  /**
   * Failed or unauthenticated connection attempts per source address; healthy
   * reconnects of known devices give their attempt back.
   * @default { burst: 30, perMinute: 120 }
   */
  connectionLimit?: RateLimit;
  /**
   * The per-device write limit: revisions a second each paired device may write
   * through the hub over time, and the burst it may write at once after a quiet
   * while; each batch also counts 20 revisions (WRITE_BATCH_COST: a batch costs the
   * hub a transaction and a relay round whatever its size). A device over its limit
   * is slowed, never refused: the hub holds its next batch, unacknowledged, until its
   * bucket has refilled, and the device sends its writes later in fuller batches.
   * `false`, or `perSecond` 0: no limit.
   * @default { perSecond: 1000, burst: 10000 }; burst: 10 seconds' worth when only perSecond is given
   */
  writeLimit?: { perSecond?: number; burst?: number } | false;
  /**
   * Pairing attempts per source address and overall.
   * @default { perAddress: { burst: 5, perMinute: 10 }, overall: { burst: 20, perMinute: 60 } }
   */
  pairingLimits?: { perAddress?: RateLimit; overall?: RateLimit };
  /**
   * The collection policy to start with: per-collection conflict strategy and
   * local-only flag. With `hubOnly` and `retention` it becomes the policy every child
   * receives, adopted at start whenever it differs from what was given at the last
   * start (so a change made since through the admin API or CLI survives restarts that
   * give the same options). A ConflictResolver object stays the hub's own.
   */
  collections?: Record<string, CollectionOptions>;
  /** Collections kept on the hub: never sent to children, never accepted from them. Patterns as in scopes. Part of the policy. */
  hubOnly?: string[];
  /**
   * Announce the hub on the LAN (multicast and DNS-SD); `false` for networks where
   * devices use static addresses only.
   * @default true
   */
  discovery?:
    | boolean
    | (InterfaceSelectionOptions & { announceIntervalMs?: number; discoveryPort?: number; dnsSd?: boolean });
  /**
   * Compression codecs the hub accepts, in its order of preference.
   * @default every codec this build has
   */
  compression?: CompressionCodec[];
  /** The admin HTTP API; off unless given. See AdminApiOptions for its defaults. */
  adminApi?: AdminApiOptions;
  /**
   * A separate plain-HTTP listener for Prometheus that serves `GET /metrics`
   * without a token, for a scraper on a trusted network. The admin API serves
   * `/metrics` with the admin token whether or not this is given.
   * @default off; `host` defaults to '127.0.0.1'
   */
  metrics?: MetricsListenerOptions;
  /**
   * History kept per record on every node, applied at start and hourly. Part of the policy.
   * @default keep everything
   */
  retention?: RetentionPolicy;
  /**
   * Days the hub keeps its events (the admin API's event log, and what a
   * reconnecting event stream can resume from); older ones are dropped at start and
   * hourly. Above 0, at most 3650.
   * @default 30
   */
  eventRetentionDays?: number;
  /**
   * Back the hub up while it runs (see ops/backup.ts): into `dir`, every `everyHours`,
   * keeping the newest `keep`. Off unless given.
   */
  backups?: { dir: string; everyHours?: number; keep?: number };
  /**
   * Keep the default store and registry in this PostgreSQL database (schemas
   * `trosyn_store` and `trosyn_hub`, created on the first start) instead of
   * `trosyn.db` and `hub.db` in `dataDir`; the identity and file content stay in
   * `dataDir`. Once the data directory's config.json names the database (the CLI
   * writes it after the first start), a later start finds both schemas there or fails
   * with STORE_MISSING, as a hub that ran on SQLite does when its files are gone.
   * @default SQLite files in dataDir
   */
  postgres?: PostgresConnection;
  /**
   * With `postgres`: a file holding the secret (32 bytes or more) that seals the
   * hub's identity into the database, so that other hub processes on the same
   * database, given the same file, present the same identity (src/hub/shared-identity.ts).
   */
  identityKeyFile?: string;
  /**
   * SQLite durability of the default store; see SqliteStoreOptions. `'off'` also
   * stops the default chunk store syncing file content to disk (tests only).
   * @default 'full'
   */
  synchronous?: 'full' | 'normal' | 'off';
  /**
   * The store was lost (missing or empty although the hub has run before): start
   * with an empty one and take back from the children what they hold, including
   * what they hold for other devices (for RELAY_WINDOW_MS). Without it such a start
   * fails with STORE_MISSING.
   * @default false
   */
  recover?: boolean;
  /**
   * The files collections (their records are file versions; their content follows
   * as chunks) and each one's transfer policy.
   * The hub fetches every version's content whatever the policy.
   * @default { files: 'eager' }
   */
  fileCollections?: Record<string, FileTransferPolicy>;
}

/**
 * The parts a hub is built from. `createHub` builds the defaults from HubInit; a
 * test or another deployment replaces any of them (a hub on another StorageAdapter
 * is `createHub(init, { store })`).
 */
export interface HubParts {
  /** The hub's key and certificate. Default: `<dataDir>/identity`, created on first start. */
  identity: () => Promise<DeviceIdentity>;
  /** Records, revisions, change log, cursors. Default: SQLite at `<dataDir>/trosyn.db`, or HubInit.postgres. */
  store: StorageAdapter;
  /** File content, as chunks named by their SHA-256. Default: files under `<dataDir>/chunks`. */
  chunks: ChunkStore;
  /** Devices, groups, pairing codes, settings. Default: over SQLite at `<dataDir>/hub.db`, or HubInit.postgres. */
  registry: DeviceRegistry;
  /** Who may connect. Default: the registry. */
  authenticator: Authenticator;
  logger: Logger;
  clock: Clock;
}
