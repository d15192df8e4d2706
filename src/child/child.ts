import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock, Startable } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { SqliteStore } from '../store/sqlite.js';
import type { DeviceId } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import { Replica } from '../sync/replica.js';
import { SyncSession, type SyncSessionStats } from '../sync/session.js';
import type { BackoffOptions } from '../transport/backoff.js';
import { type ClientStatus, type HubAddress, TransportClient } from '../transport/client.js';
import { TransportError } from '../transport/errors.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../transport/identity.js';
import { syncChannel } from '../transport/sync-channel.js';
import { APP_VERSION } from '../version.js';

export interface ChildOptions {
  /** The child's data directory: identity, database, paired hub. Created if missing. */
  dataDir: string;
  /** Name shown on the hub. Default 'trosyn-child'. */
  name?: string;
  /** The pinned hub: only a server presenting this device's certificate is trusted. */
  hubId: DeviceId;
  /** Where to find the hub, best first; asked again before each round of attempts. */
  hubAddresses: () => HubAddress[] | Promise<HubAddress[]>;
  /** Heartbeat interval (ms) this child offers; the hub's choice wins. Default 15 s. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  collections?: Record<string, CollectionOptions>;
  synchronous?: 'full' | 'normal' | 'off';
  logger?: Logger;
  clock?: Clock;
}

/** What the end user's app shows: synced / syncing / offline / error. */
export interface SyncStatus {
  state: 'synced' | 'syncing' | 'offline' | 'error';
  connection: ClientStatus;
  hubId: DeviceId;
  /** Revisions of this device not yet acknowledged by the hub. */
  session?: SyncSessionStats;
}

type Events = {
  connected: [];
  disconnected: [{ code?: string }];
  'caught-up': [];
};

/**
 * The child agent: the app's local replica plus one outbound connection to its
 * hub. Offline it keeps working on the local store, whose change log is its
 * outbox; on reconnect it resumes from the cursors.
 */
export class Child extends EventEmitter<Events> implements Startable {
  private readonly options: ChildOptions;
  private readonly logger: Logger;
  private identity: DeviceIdentity | undefined;
  private replicaInstance: Replica | undefined;
  private client: TransportClient | undefined;
  private session: SyncSession | undefined;

  constructor(options: ChildOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'child');
  }

  isStarted(): boolean {
    return this.client !== undefined;
  }

  get deviceId(): DeviceId {
    if (!this.identity) throw new TransportError('NOT_STARTED', 'the child agent is not started');
    return this.identity.deviceId;
  }

  get replica(): Replica {
    if (!this.replicaInstance) throw new TransportError('NOT_STARTED', 'the child agent is not started');
    return this.replicaInstance;
  }

  async start(): Promise<void> {
    if (this.client) return;
    const { dataDir } = this.options;
    const identity = await loadOrCreateIdentity(join(dataDir, 'identity'), {
      commonName: this.options.name ?? 'trosyn-child',
      logger: this.logger,
    });
    const replica = new Replica({
      store: new SqliteStore({
        path: join(dataDir, 'trosyn.db'),
        logger: this.logger,
        ...(this.options.synchronous && { synchronous: this.options.synchronous }),
        ...(this.options.clock && { clock: this.options.clock }),
      }),
      deviceId: identity.deviceId,
      role: 'child',
      ...(this.options.collections && { collections: this.options.collections }),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    await replica.start();
    const client = new TransportClient({
      identity,
      local: {
        name: this.options.name ?? 'trosyn-child',
        role: 'child',
        appVersion: APP_VERSION,
        heartbeatMs: this.options.heartbeatMs ?? 15_000,
      },
      hubId: this.options.hubId,
      addresses: this.options.hubAddresses,
      onConnected: async (hub) => {
        const session = new SyncSession({
          replica,
          channel: syncChannel(hub.conn),
          peer: hub.hubId,
          logger: componentLogger(this.logger, 'sync'),
        });
        this.session = session;
        session.on('caught-up', () => this.emit('caught-up'));
        hub.conn.once('close', () => {
          if (this.session === session) this.session = undefined;
        });
        await session.start();
      },
      ...(this.options.backoff && { backoff: this.options.backoff }),
      fatalCodes: ['DEVICE_REVOKED'],
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    client.on('connected', () => this.emit('connected'));
    client.on('disconnected', (cause) => {
      const code = (cause as { code?: string } | undefined)?.code;
      this.emit('disconnected', code ? { code } : {});
    });
    this.identity = identity;
    this.replicaInstance = replica;
    this.client = client;
    await client.start();
    this.logger.info({ deviceId: identity.deviceId, hubId: this.options.hubId }, 'child agent started');
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    await client.stop();
    await this.session?.stop();
    this.session = undefined;
    await this.replicaInstance?.stop();
    this.replicaInstance = undefined;
    this.logger.info('child agent stopped');
  }

  status(): SyncStatus {
    const connection = this.client?.status() ?? { state: 'stopped' as const, attempts: 0 };
    const session = this.session?.getStats();
    let state: SyncStatus['state'] = 'offline';
    if (connection.state === 'failed') state = 'error';
    else if (connection.state === 'connected') state = this.session?.isCaughtUp() ? 'synced' : 'syncing';
    return { state, connection, hubId: this.options.hubId, ...(session && { session }) };
  }

  /** Tries to reach the hub now instead of waiting out the backoff. */
  syncNow(): void {
    this.client?.retryNow();
  }
}
