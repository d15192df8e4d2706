import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DiscoveryDiagnostics } from '../discovery/types.js';
import { DnsSdPublisher } from '../discovery/dns-sd.js';
import type { InterfaceSelectionOptions } from '../discovery/interfaces.js';
import { HubAnnouncer } from '../discovery/multicast.js';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import type { CompressionCodec } from '../protocol/compression.js';
import { DEFAULT_SYNC_PORT } from '../protocol/constants.js';
import type { DeviceId, RetentionPolicy, StoreStats } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import type { Replica } from '../sync/replica.js';
import { nodeReplica, nodeStoreState } from '../sync/node-replica.js';
import { SyncSession } from '../sync/session.js';
import type { Authenticator } from '../transport/authenticator.js';
import type { Connection } from '../transport/connection.js';
import { shortDeviceId } from '../transport/device-id.js';
import { TransportError } from '../transport/errors.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../transport/identity.js';
import { type PeerInfo, TransportServer } from '../transport/server.js';
import { syncChannel } from '../transport/sync-channel.js';
import { APP_VERSION } from '../version.js';
import type { ChildSession, HubEvent } from './events.js';
import { PairingService } from './pairing.js';
import type { RateLimit } from '../transport/rate-limit.js';
import { AdminApiServer, type AdminApiOptions } from './admin-api.js';
import { type DeviceRecord, DeviceRegistry, type GroupRecord, RegistryError } from './registry.js';
import { compileScope } from './scopes.js';
import { DataDirLock } from '../ops/data-dir.js';
import { admitWithRelay, parseRecoveryWindow, RELAY_WINDOW_MS, type RecoveryWindow } from './recovery.js';

export type { ChildSession, HubEvent } from './events.js';

/** Everything a hub is configured with. */
export interface HubOptions {
  /** The hub's data directory: identity, database, registry, tokens. Created if missing. */
  dataDir: string;
  /** Name shown to children and in the hub's status. Default 'trosyn-hub'. */
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
  /**
   * Connection attempts per source address that fail or stay unauthenticated;
   * healthy reconnects of paired devices do not count (see
   * TransportServerOptions.attemptLimit). Default burst 30, 120 per minute.
   */
  connectionLimit?: RateLimit;
  /** Pairing attempts per source address and overall; see PairingServiceOptions. */
  pairingLimits?: { perAddress?: RateLimit; overall?: RateLimit };
  /** Per-collection conflict strategy and local-only flag; children must use the same. */
  collections?: Record<string, CollectionOptions>;
  /** Collections kept on the hub: never sent to children, never accepted from them. Patterns as in scopes. */
  hubOnly?: string[];
  /**
   * Announce the hub on the LAN (multicast and DNS-SD). Default true. `false` for
   * networks where devices use static addresses only.
   */
  discovery?:
    | boolean
    | (InterfaceSelectionOptions & { announceIntervalMs?: number; discoveryPort?: number; dnsSd?: boolean });
  /** Compression codecs the hub accepts, in its order of preference. Default: every one this build has. */
  compression?: CompressionCodec[];
  /** The admin HTTP API; off unless given. See AdminApiOptions. */
  adminApi?: AdminApiOptions;
  /** History kept per record, applied hourly and at start. Default: keep everything. */
  retention?: RetentionPolicy;
  /** SQLite durability; see SqliteStoreOptions. Default 'full'. */
  synchronous?: 'full' | 'normal' | 'off';
  /**
   * The store file is missing or empty although this hub has run before: start with
   * an empty store and take back from the children what they hold, including what
   * they hold for other devices (for RELAY_WINDOW_MS). Without it such a start fails
   * with STORE_MISSING. Default false.
   */
  recover?: boolean;
  logger?: Logger;
  clock?: Clock;
}

export interface HubStatus {
  deviceId: DeviceId;
  name: string;
  version: string;
  startedAt: number;
  syncPort: number;
  /** Port of the admin API, when it runs. */
  adminPort?: number;
  devices: { approved: number; pending: number; revoked: number };
  connected: ChildSession[];
  store: StoreStats;
  discovery: DiscoveryDiagnostics[];
}

type Events = {
  /** Every hub event, for the admin event stream. */
  event: [HubEvent];
};

interface LiveSession {
  conn: Connection;
  session: SyncSession;
  peer: PeerInfo;
  connectedAt: number;
  /** The group and scopes the session runs under, to notice when they change. */
  scopeKey: string;
}

/**
 * The Admin Hub: wires identity, store, engine, device registry, pairing, the TLS
 * sync service and LAN announcements together, and relays every child's changes
 * to the others (each session streams the hub's change log, live, to its child,
 * within that child's read scope).
 */
export class Hub extends EventEmitter<Events> implements Startable {
  private readonly options: HubOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private identity: DeviceIdentity | undefined;
  private registryInstance: DeviceRegistry | undefined;
  private pairing: PairingService | undefined;
  private replicaInstance: Replica | undefined;
  private server: TransportServer | undefined;
  private announcers: Startable[] = [];
  private admin: AdminApiServer | undefined;
  private readonly sessions = new Map<DeviceId, LiveSession>();
  private readonly conflicted = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private registryWatch: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private recovery: RecoveryWindow | undefined;
  private lock: DataDirLock | undefined;

  constructor(options: HubOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'hub');
    this.clock = options.clock ?? systemClock;
    this.setMaxListeners(0);
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
    return this.started().registry;
  }

  /** The admin API's port, when it runs. */
  get adminPort(): number | undefined {
    return this.admin?.port;
  }

  /** The admin token, once, when this start created it (first start); undefined after. */
  takeCreatedAdminToken(): string | undefined {
    return this.admin?.takeCreatedToken();
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
    // One agent per data directory, for as long as it runs.
    const lock = new DataDirLock(this.options.dataDir, 'hub');
    await lock.start();
    try {
      await this.startParts();
    } catch (err) {
      await lock.stop();
      throw err;
    }
    this.lock = lock;
  }

  private async startParts(): Promise<void> {
    const { dataDir } = this.options;
    const clockOption = this.options.clock ? { clock: this.options.clock } : {};
    // A hub that has run before (identity and registry made with the store) must
    // find its store; checked before a first start makes them.
    const hasRun = existsSync(join(dataDir, 'identity', 'cert.pem')) && existsSync(join(dataDir, 'hub.db'));
    const recovering = hasRun && this.options.recover === true && nodeStoreState(dataDir) !== 'present';
    const identity = await loadOrCreateIdentity(join(dataDir, 'identity'), {
      commonName: this.name,
      logger: this.logger,
    });
    const replica = nodeReplica({
      dataDir,
      deviceId: identity.deviceId,
      role: 'hub',
      ...(this.options.collections && { collections: this.options.collections }),
      ...(this.options.synchronous && { synchronous: this.options.synchronous }),
      ...(this.options.retention && { retention: this.options.retention }),
      watchExternalWritesMs: 250,
      requireExisting: hasRun && !this.options.recover,
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    const registry = new DeviceRegistry({
      path: join(dataDir, 'hub.db'),
      ...(this.options.requireApproval !== undefined && { requireApproval: this.options.requireApproval }),
      logger: this.logger,
      ...clockOption,
    });
    const server = new TransportServer({
      identity,
      local: {
        name: this.name,
        role: 'hub',
        appVersion: APP_VERSION,
        heartbeatMs: this.options.heartbeatMs ?? 15_000,
        ...(this.options.compression && { compression: this.options.compression }),
      },
      authenticator: this.options.authenticator ?? registry,
      ...(this.options.host !== undefined && { host: this.options.host }),
      port: this.options.port ?? DEFAULT_SYNC_PORT,
      attemptLimit: this.options.connectionLimit ?? { burst: 30, perMinute: 120 },
      onConnection: (conn, peer) => this.onConnection(conn, peer),
      logger: this.logger,
      ...clockOption,
    });
    await replica.start();
    try {
      await registry.start();
      this.identity = identity;
      this.replicaInstance = replica;
      this.registryInstance = registry;
      this.pairing = new PairingService({
        registry,
        hubId: identity.deviceId,
        hubName: this.name,
        ...this.options.pairingLimits,
        onPaired: (d) =>
          this.publish({
            type: 'device-paired',
            deviceId: d.deviceId,
            name: d.name,
            state: d.state,
            group: d.group,
          }),
        logger: this.logger,
        ...clockOption,
      });
      this.recovery = parseRecoveryWindow(await replica.getNote('recovery'));
      if (recovering) await this.beginRecovery('store-recreated');
      for (const c of await replica.conflicts())
        if (c.status !== 'resolved') this.conflicted.add(`${c.collection}\u0000${c.id}`);
      this.unsubscribe = replica.subscribe((e) => this.trackConflict(e.collection, e.id, e.conflict));
      // Assigned before listening: a child may connect the moment the port opens.
      this.server = server;
      await server.start();
      await this.startDiscovery(identity.deviceId, server.port);
    } catch (err) {
      this.unsubscribe?.();
      await server.stop();
      await replica.stop();
      await registry.stop();
      this.server = undefined;
      this.replicaInstance = undefined;
      this.registryInstance = undefined;
      throw err;
    }
    if (this.options.adminApi) {
      const admin = new AdminApiServer(this, {
        logger: this.logger,
        ...clockOption,
        ...this.options.adminApi,
      });
      try {
        await admin.start();
      } catch (err) {
        await this.stop();
        throw err;
      }
      this.admin = admin;
    }
    if (!this.options.authenticator) {
      // Changes made to the registry by another process (the CLI) take effect within a second.
      this.registryWatch = setInterval(() => this.enforceRegistry(), 1000);
      this.registryWatch.unref();
    }
    this.startedAt = this.clock.now();
    this.logger.info({ deviceId: identity.deviceId, port: server.port, dataDir }, 'hub started');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await this.admin?.stop();
    this.admin = undefined;
    this.server = undefined;
    if (this.registryWatch) clearInterval(this.registryWatch);
    this.registryWatch = undefined;
    for (const a of this.announcers) await a.stop();
    this.announcers = [];
    await server.stop();
    for (const live of this.sessions.values()) await live.session.stop();
    this.sessions.clear();
    this.unsubscribe?.();
    await this.replicaInstance?.stop();
    this.replicaInstance = undefined;
    await this.registryInstance?.stop();
    this.registryInstance = undefined;
    await this.lock?.stop();
    this.lock = undefined;
    this.logger.info('hub stopped');
  }

  // --- status and devices -----------------------------------------------------------

  /** Children connected now. */
  connectedChildren(): ChildSession[] {
    return [...this.sessions.values()].map((s) => this.describe(s));
  }

  async status(): Promise<HubStatus> {
    const { identity, registry, replica, server } = this.started();
    const devices = { approved: 0, pending: 0, revoked: 0 };
    for (const d of registry.list()) devices[d.state]++;
    return {
      deviceId: identity.deviceId,
      name: this.name,
      version: APP_VERSION,
      startedAt: this.startedAt,
      syncPort: server.port,
      ...(this.admin && { adminPort: this.admin.port }),
      devices,
      connected: this.connectedChildren(),
      store: await replica.stats(),
      discovery: this.announcers.flatMap(
        (a) => (a as { diagnostics?: () => DiscoveryDiagnostics[] }).diagnostics?.() ?? [],
      ),
    };
  }

  /** Drops a device's connections at once with a reason it is told. */
  disconnect(deviceId: DeviceId, code: string, message: string): number {
    return this.server?.disconnect(deviceId, new TransportError(code, message)) ?? 0;
  }

  /** The recovery window the hub is in, if any (see RecoveryWindow). */
  recoveryWindow(): RecoveryWindow | undefined {
    const w = this.recovery;
    return w && this.clock.now() <= w.until ? { ...w } : undefined;
  }

  /** Revokes a device for good and disconnects it at once. */
  revoke(deviceId: DeviceId): DeviceRecord {
    const device = this.registry.revoke(deviceId);
    this.disconnect(
      deviceId,
      'DEVICE_REVOKED',
      'this device was revoked by the hub admin and can no longer sync',
    );
    this.publish({ type: 'device-revoked', deviceId, name: device.name });
    return device;
  }

  approve(deviceId: DeviceId): DeviceRecord {
    const device = this.registry.approve(deviceId);
    this.publish({ type: 'device-approved', deviceId, name: device.name });
    return device;
  }

  rename(deviceId: DeviceId, name: string): DeviceRecord {
    const device = this.registry.rename(deviceId, name);
    this.publish({ type: 'device-updated', deviceId, name: device.name });
    return device;
  }

  /** Moves a device to another group; its new scopes apply from its next connection, which starts now. */
  setGroup(deviceId: DeviceId, group: string): DeviceRecord {
    const device = this.registry.setGroup(deviceId, group);
    this.disconnect(
      deviceId,
      'SCOPES_CHANGED',
      'this device moved to another group; reconnecting with its new scopes',
    );
    this.publish({ type: 'device-updated', deviceId, name: device.name });
    return device;
  }

  /** Creates or changes a group's scopes; its connected devices reconnect under the new ones. */
  putGroup(group: GroupRecord): GroupRecord {
    const saved = this.registry.putGroup(group);
    for (const d of this.registry.list({ group: saved.name })) {
      this.disconnect(
        d.deviceId,
        'SCOPES_CHANGED',
        `the scopes of group ${saved.name} changed; reconnecting with the new ones`,
      );
    }
    this.publish({ type: 'scopes-changed', group: saved.name });
    return saved;
  }

  // --- internals -------------------------------------------------------------------------

  private async startDiscovery(deviceId: DeviceId, syncPort: number): Promise<void> {
    const config = this.options.discovery ?? true;
    if (config === false) return;
    const settings = config === true ? {} : config;
    const common = {
      deviceId,
      name: this.name.slice(0, 64),
      syncPort,
      logger: this.logger,
      ...(settings.interfaces && { interfaces: settings.interfaces }),
      ...(settings.includeLoopback !== undefined && { includeLoopback: settings.includeLoopback }),
      ...(settings.discoveryPort !== undefined && { discoveryPort: settings.discoveryPort }),
      ...(this.options.clock && { clock: this.options.clock }),
    };
    const parts: Startable[] = [
      new HubAnnouncer({
        ...common,
        ...(settings.announceIntervalMs !== undefined && { announceIntervalMs: settings.announceIntervalMs }),
      }),
    ];
    if (settings.dnsSd !== false) parts.push(new DnsSdPublisher(common));
    for (const part of parts) {
      try {
        await part.start();
        this.announcers.push(part);
      } catch (err) {
        // A network without multicast still works with static addresses: warn, do not fail.
        this.logger.warn(
          { err: (err as Error).message },
          'LAN announcements unavailable; children need a static address',
        );
        this.publish({
          type: 'error',
          code: (err as { code?: string }).code ?? 'DISCOVERY_BIND_FAILED',
          message: (err as Error).message,
        });
      }
    }
  }

  /** The hub lost revisions: take back, for a while, what children hold for others. */
  private async beginRecovery(reason: RecoveryWindow['reason']): Promise<void> {
    const at = this.clock.now();
    const window: RecoveryWindow = { at, until: at + RELAY_WINDOW_MS, reason };
    this.recovery = window;
    await this.replicaInstance?.setNote('recovery', JSON.stringify(window));
    this.logger.warn(
      { reason, until: new Date(window.until).toISOString() },
      'recovering lost revisions: children send back what they hold, also for other devices',
    );
    this.publish({ type: 'recovery-started', reason, until: window.until });
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
    const { registry, replica } = this.started();
    registry.touch(peer.deviceId, { address: peer.address, appVersion: peer.handshake.peerAppVersion });
    // A reconnecting child may arrive before its old connection is found dead: the newest wins.
    this.sessions
      .get(peer.deviceId)
      ?.conn.close(new TransportError('REPLACED', 'replaced by a newer connection from the same device'));

    const device = registry.get(peer.deviceId);
    const group = registry.getGroup(device?.group ?? 'default') ?? {
      name: 'default',
      description: '',
      read: ['*'],
      write: ['*'],
    };
    const scope = compileScope(peer.deviceId, group, this.options.hubOnly ?? []);
    // A widened read scope: send from the start, so the child gets older revisions it may now read.
    const scopeKey = `read_scope:${peer.deviceId}`;
    const widened = registry.getSetting(scopeKey) !== scope.readHash;
    if (widened) registry.setSetting(scopeKey, scope.readHash);

    const authority = {
      hubId: this.deviceId,
      hubOnly: this.options.hubOnly ?? [],
      writeScopeOf: (device: DeviceId) => {
        const d = registry.get(device);
        if (!d || d.state === 'revoked') return undefined;
        const g = registry.getGroup(d.group);
        return g ? { group: g.name, write: g.write } : undefined;
      },
    };
    const session = new SyncSession({
      replica,
      channel: syncChannel(conn),
      peer: peer.deviceId,
      readable: scope.readable,
      admit: admitWithRelay(
        peer.deviceId,
        scope,
        authority,
        () => this.recovery,
        () => this.clock.now(),
      ),
      ...(widened && { resendFrom: 0 }),
      logger: componentLogger(this.logger, `sync:${shortDeviceId(peer.deviceId)}`),
    });
    const live: LiveSession = {
      conn,
      session,
      peer,
      connectedAt: this.clock.now(),
      scopeKey: scopeKeyOf(group),
    };
    this.sessions.set(peer.deviceId, live);
    let lastProgress = 0;
    session.on('progress', () => {
      const now = this.clock.now();
      if (now - lastProgress < 1000) return;
      lastProgress = now;
      this.publish({ type: 'sync-progress', session: this.describe(live) });
    });
    session.on('caught-up', () => this.publish({ type: 'sync-completed', session: this.describe(live) }));
    session.on('restart', (reason) => {
      this.publish({ type: 'sync-restarted', deviceId: peer.deviceId, reason });
      // A child saw positions of the hub's log that the hub no longer holds.
      if (reason === 'rolled-back')
        this.beginRecovery('store-rolled-back').catch((err: unknown) =>
          this.logger.error({ err }, 'could not record the recovery'),
        );
    });
    session.on('refused', (rejected) => {
      this.logger.warn(
        { device: shortDeviceId(peer.deviceId), count: rejected.length, first: rejected[0] },
        'writes refused',
      );
      this.publish({
        type: 'writes-refused',
        deviceId: peer.deviceId,
        count: rejected.length,
        codes: [...new Set(rejected.map((r) => r.code))],
        collections: [...new Set(rejected.map((r) => r.collection))],
      });
    });
    conn.once('close', (cause) => {
      if (this.sessions.get(peer.deviceId) === live) this.sessions.delete(peer.deviceId);
      const e = cause as { code?: string; message?: string } | undefined;
      const expected = [
        'CONNECTION_CLOSED',
        'REPLACED',
        'SERVER_SHUTTING_DOWN',
        'SCOPES_CHANGED',
        'DEVICE_REVOKED',
      ];
      if (e?.code && !expected.includes(e.code)) {
        this.publish({
          type: 'sync-failed',
          deviceId: peer.deviceId,
          code: e.code,
          message: e.message ?? '',
        });
      }
      this.publish({
        type: 'device-disconnected',
        deviceId: peer.deviceId,
        name: this.describe(live).name,
        ...(e?.code && { code: e.code }),
        ...(e?.message && { message: e.message }),
      });
    });
    session.start().catch((err: unknown) => conn.close(err as Error));
    this.publish({ type: 'device-connected', session: this.describe(live) });
    this.publish({ type: 'sync-started', deviceId: peer.deviceId });
  }

  /** Disconnects sessions whose device was revoked, unapproved or moved to other scopes meanwhile. */
  private enforceRegistry(): void {
    const registry = this.registryInstance;
    if (!registry) return;
    try {
      for (const live of this.sessions.values()) {
        const device = registry.get(live.peer.deviceId);
        if (!device || device.state === 'revoked') {
          this.disconnect(
            live.peer.deviceId,
            'DEVICE_REVOKED',
            'this device was revoked by the hub admin and can no longer sync',
          );
          if (device) this.publish({ type: 'device-revoked', deviceId: device.deviceId, name: device.name });
        } else if (device.state === 'pending') {
          this.disconnect(
            live.peer.deviceId,
            'DEVICE_PENDING_APPROVAL',
            'this device waits for an admin to approve it',
          );
        } else {
          const group = registry.getGroup(device.group);
          if (group && scopeKeyOf(group) !== live.scopeKey) {
            this.disconnect(
              live.peer.deviceId,
              'SCOPES_CHANGED',
              'this device has new scopes; reconnecting with them',
            );
          }
        }
      }
    } catch (err) {
      this.logger.warn({ err }, 'registry check failed');
    }
  }

  private trackConflict(collection: string, id: string, conflict: 'none' | 'open' | 'auto'): void {
    const key = `${collection}\u0000${id}`;
    if (conflict !== 'none' && !this.conflicted.has(key)) {
      this.conflicted.add(key);
      this.publish({ type: 'conflict-opened', collection, id, status: conflict });
    } else if (conflict === 'none' && this.conflicted.delete(key)) {
      this.publish({ type: 'conflict-resolved', collection, id });
    }
  }

  private publish(event: DistributiveOmit<HubEvent, 'at'>): void {
    this.emit('event', { ...event, at: this.clock.now() } as HubEvent);
  }

  private describe(live: LiveSession): ChildSession {
    return {
      deviceId: live.peer.deviceId,
      address: live.peer.address,
      // The name the admin knows the device by; the name the child offers is only a default.
      name: this.registryInstance?.get(live.peer.deviceId)?.name ?? live.peer.handshake.peerName,
      appVersion: live.peer.handshake.peerAppVersion,
      connectedAt: live.connectedAt,
      caughtUp: live.session.isCaughtUp(),
      stats: live.session.getStats(),
      bytesIn: live.conn.getStats().bytesIn,
      bytesOut: live.conn.getStats().bytesOut,
    };
  }

  private started(): {
    identity: DeviceIdentity;
    replica: Replica;
    registry: DeviceRegistry;
    server: TransportServer;
  } {
    if (!this.identity || !this.replicaInstance || !this.registryInstance || !this.server) {
      throw new RegistryError('NOT_STARTED', 'the hub is not started');
    }
    return {
      identity: this.identity,
      replica: this.replicaInstance,
      registry: this.registryInstance,
      server: this.server,
    };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function scopeKeyOf(group: GroupRecord): string {
  return JSON.stringify([group.name, group.read, group.write]);
}
