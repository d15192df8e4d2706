import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock, Startable } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { DEFAULT_SYNC_PORT } from '../protocol/constants.js';
import { SqliteStore } from '../store/sqlite.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import { Replica } from '../sync/replica.js';
import { SyncSession, type SyncSessionStats } from '../sync/session.js';
import type { Authenticator } from '../transport/authenticator.js';
import { PairingService } from './pairing.js';
import { RateLimiter, type RateLimit } from './rate-limit.js';
import { type DeviceRecord, DeviceRegistry } from './registry.js';
import type { Connection } from '../transport/connection.js';
import { shortDeviceId } from '../transport/device-id.js';
import { TransportError } from '../transport/errors.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../transport/identity.js';
import { type PeerInfo, TransportServer } from '../transport/server.js';
import { syncChannel } from '../transport/sync-channel.js';
import { APP_VERSION } from '../version.js';

/** Everything a hub is configured with. */
export interface HubOptions {
  /** The hub's data directory: identity, database, registry, tokens. Created if missing. */
  dataDir: string;
  /** Name shown to children and in the dashboard. Default 'trosyn-hub'. */
  name?: string;
  /** Address of the sync service. Default '::' (all addresses, IPv4 and IPv6). */
  host?: string;
  /** Port of the sync service (TLS). Default 17700; 0 picks a free port. */
  port?: number;
  /** Heartbeat interval (ms) asked of every child; a child silent for three is dropped. Default 15 s. */
  heartbeatMs?: number;
  /** Decides which devices may connect. Default: the hub's device registry. */
  authenticator?: Authenticator;
  /** Paired devices wait for an admin's approval before they sync. Default false. */
  requireApproval?: boolean;
  /** TCP connections per source address. Default burst 30, 120 per minute. */
  connectionLimit?: RateLimit;
  /** Pairing attempts per source address and overall; see PairingServiceOptions. */
  pairingLimits?: { perAddress?: RateLimit; overall?: RateLimit };
  /** Per-collection conflict strategy and local-only flag; children must use the same. */
  collections?: Record<string, CollectionOptions>;
  /** SQLite durability; see SqliteStoreOptions. Default 'full'. */
  synchronous?: 'full' | 'normal' | 'off';
  logger?: Logger;
  clock?: Clock;
}

/** One child's live sync session, as status and the dashboard show it. */
export interface ChildSession {
  deviceId: DeviceId;
  address: string;
  name: string;
  appVersion: string;
  connectedAt: number;
  caughtUp: boolean;
  stats: SyncSessionStats;
}

type Events = {
  'device-paired': [DeviceRecord];
  'device-revoked': [DeviceRecord];
  'device-connected': [ChildSession];
  'device-disconnected': [{ deviceId: DeviceId; code?: string }];
  'sync-caught-up': [ChildSession];
  'writes-refused': [{ deviceId: DeviceId; rejected: RejectedRevision[] }];
};

interface LiveSession {
  conn: Connection;
  session: SyncSession;
  peer: PeerInfo;
  connectedAt: number;
}

/**
 * The Admin Hub: wires identity, store, engine and the TLS sync service together,
 * and relays every child's changes to the others (each session streams the hub's
 * change log, live, to its child).
 */
export class Hub extends EventEmitter<Events> implements Startable {
  private readonly options: HubOptions;
  private readonly logger: Logger;
  private identity: DeviceIdentity | undefined;
  private registryInstance: DeviceRegistry | undefined;
  private pairing: PairingService | undefined;
  private replicaInstance: Replica | undefined;
  private server: TransportServer | undefined;
  private readonly sessions = new Map<DeviceId, LiveSession>();

  constructor(options: HubOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'hub');
  }

  isStarted(): boolean {
    return this.server !== undefined;
  }

  get deviceId(): DeviceId {
    return this.started().identity.deviceId;
  }

  get replica(): Replica {
    return this.started().replica;
  }

  /** Devices, groups and pairing codes. */
  get registry(): DeviceRegistry {
    if (!this.registryInstance) throw new TransportError('NOT_STARTED', 'the hub is not started');
    return this.registryInstance;
  }

  /** The port the sync service listens on. */
  get port(): number {
    return this.started().server.port;
  }

  get name(): string {
    return this.options.name ?? 'trosyn-hub';
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { dataDir } = this.options;
    const identity = await loadOrCreateIdentity(join(dataDir, 'identity'), {
      commonName: this.name,
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
      role: 'hub',
      ...(this.options.collections && { collections: this.options.collections }),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    await replica.start();
    const registry = new DeviceRegistry({
      path: join(dataDir, 'hub.db'),
      ...(this.options.requireApproval !== undefined && { requireApproval: this.options.requireApproval }),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    await registry.start();
    this.registryInstance = registry;
    this.pairing = new PairingService({
      registry,
      hubId: identity.deviceId,
      hubName: this.name,
      ...this.options.pairingLimits,
      onPaired: (device) => this.emit('device-paired', device),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    const connections = new RateLimiter(this.options.connectionLimit ?? { burst: 30, perMinute: 120 }, {
      ...(this.options.clock && { clock: this.options.clock }),
    });
    const server = new TransportServer({
      identity,
      local: {
        name: this.name,
        role: 'hub',
        appVersion: APP_VERSION,
        heartbeatMs: this.options.heartbeatMs ?? 15_000,
      },
      authenticator: this.options.authenticator ?? registry,
      admit: (address) => connections.take(address),
      ...(this.options.host !== undefined && { host: this.options.host }),
      port: this.options.port ?? DEFAULT_SYNC_PORT,
      onConnection: (conn, peer) => this.onConnection(conn, peer),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    try {
      await server.start();
    } catch (err) {
      await replica.stop();
      await registry.stop();
      this.registryInstance = undefined;
      throw err;
    }
    this.identity = identity;
    this.replicaInstance = replica;
    this.server = server;
    this.logger.info({ deviceId: identity.deviceId, port: server.port, dataDir }, 'hub started');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await server.stop();
    for (const live of this.sessions.values()) await live.session.stop();
    this.sessions.clear();
    await this.replicaInstance?.stop();
    this.replicaInstance = undefined;
    await this.registryInstance?.stop();
    this.registryInstance = undefined;
    this.logger.info('hub stopped');
  }

  /** Children connected now. */
  connectedChildren(): ChildSession[] {
    return [...this.sessions.values()].map((s) => this.describe(s));
  }

  /** Drops a device's connections at once with a reason it is told. */
  disconnect(deviceId: DeviceId, code: string, message: string): number {
    return this.server?.disconnect(deviceId, new TransportError(code, message)) ?? 0;
  }

  /** Revokes a device for good and disconnects it at once. */
  revoke(deviceId: DeviceId): DeviceRecord {
    const device = this.registry.revoke(deviceId);
    this.disconnect(
      deviceId,
      'DEVICE_REVOKED',
      'this device was revoked by the hub admin and can no longer sync',
    );
    this.emit('device-revoked', device);
    return device;
  }

  private onConnection(conn: Connection, peer: PeerInfo): void {
    if (peer.access === 'pairing') {
      if (!this.pairing) {
        conn.close(new TransportError('PAIRING_UNAVAILABLE', 'this hub does not accept pairing'));
        return;
      }
      this.pairing.attach(conn, peer);
      return;
    }
    this.registryInstance?.touch(peer.deviceId, {
      address: peer.address,
      appVersion: peer.handshake.peerAppVersion,
    });
    // A reconnecting child may arrive before its old connection is found dead: the newest wins.
    this.sessions
      .get(peer.deviceId)
      ?.conn.close(new TransportError('REPLACED', 'replaced by a newer connection from the same device'));
    const replica = this.started().replica;
    const session = new SyncSession({
      replica,
      channel: syncChannel(conn),
      peer: peer.deviceId,
      logger: componentLogger(this.logger, `sync:${shortDeviceId(peer.deviceId)}`),
    });
    const live: LiveSession = { conn, session, peer, connectedAt: Date.now() };
    this.sessions.set(peer.deviceId, live);
    session.on('caught-up', () => this.emit('sync-caught-up', this.describe(live)));
    session.on('refused', (rejected) => this.emit('writes-refused', { deviceId: peer.deviceId, rejected }));
    conn.once('close', (cause) => {
      if (this.sessions.get(peer.deviceId) === live) this.sessions.delete(peer.deviceId);
      const code = (cause as { code?: string } | undefined)?.code;
      this.emit('device-disconnected', { deviceId: peer.deviceId, ...(code && { code }) });
    });
    session.start().catch((err: unknown) => conn.close(err as Error));
    this.emit('device-connected', this.describe(live));
  }

  private describe(live: LiveSession): ChildSession {
    return {
      deviceId: live.peer.deviceId,
      address: live.peer.address,
      name: live.peer.handshake.peerName,
      appVersion: live.peer.handshake.peerAppVersion,
      connectedAt: live.connectedAt,
      caughtUp: live.session.isCaughtUp(),
      stats: live.session.getStats(),
    };
  }

  private started(): { identity: DeviceIdentity; replica: Replica; server: TransportServer } {
    if (!this.identity || !this.replicaInstance || !this.server)
      throw new TransportError('NOT_STARTED', 'the hub is not started');
    return { identity: this.identity, replica: this.replicaInstance, server: this.server };
  }
}
