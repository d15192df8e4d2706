import type { ErrorCode } from '../error-codes.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { type Clock, type Startable, startAll, stopAll } from '../lifecycle.js';
import { type BackupRun, BackupsNotScheduledError } from '../ops/backup-schedule.js';
import { DataDirLock, LockedLifecycle } from '../ops/data-dir.js';
import { componentLogger } from '../observability/logger.js';
import type { DeviceId } from '../store/types.js';
import type { ContentProgress, PeerTransfer } from '../files/content-sync.js';
import type { NodeFiles } from '../files/node-files.js';
import type { Replica } from '../sync/replica.js';
import type { ClockOffset } from '../transport/clock-offset.js';
import { pairingUri } from '../transport/pairing-code.js';
import { TransportError } from '../transport/errors.js';
import { APP_VERSION } from '../version.js';
import type { AdminPort } from './admin-api/port.js';
import { AdminApiServer } from './admin-api/server.js';
import { assembleHub, type RunningHub } from './assembly.js';
import { ensureAdminToken, verifyAdminToken } from './admin-api/token.js';
import type { HubEventInput } from './child-sessions.js';
import type { DeviceSyncReport } from './device-health.js';
import type { EventLog } from './event-log.js';
import { storeBytes } from '../ops/store-bytes.js';
import { checkMetricsListener } from './metrics-listener.js';
import type { MetricsSeries, MetricsWindow } from './metrics-history.js';
import type { ChildSession, HubEvent, HubStatus } from './events.js';
import type { HubInit, HubParts } from './options.js';
import { RELAY_WINDOW_MS, type RecoveryWindow } from './recovery.js';
import type { DeviceRecord, GroupRecord, ListedPairingCode } from './registry-backend.js';
import { type DeviceRegistry, RegistryError } from './registry.js';
import { changeSettings, type HubSettings, readSettings, type SettingsChange } from './settings.js';

export type { ChildSession, HubEvent, HubStatus } from './events.js';

export type { HubInit, HubParts } from './options.js';

type Events = {
  /** Every hub event, for the admin event stream. */
  event: [HubEvent];
};

/** What exists only while the hub runs. */
type Running = RunningHub;

/**
 * The Admin Hub: its parts (identity, store, registry, authenticator) wired into the
 * engine, the TLS sync service, the children's sessions, pairing and the LAN
 * announcements, and the operations the admin API and CLI use. Build it with
 * `createHub(init, parts?)`.
 */
export class Hub extends EventEmitter<Events> implements Startable, AdminPort {
  private readonly init: HubInit;
  private readonly parts: HubParts;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** One agent per data directory, for as long as it runs. */
  private readonly lifecycle: LockedLifecycle;
  private readonly admin: AdminApiServer | undefined;
  private running: Running | undefined;
  /** The core is up: the admin API may serve (it starts last). */
  private ready = false;
  private recovery: RecoveryWindow | undefined;
  private readonly conflicted = new Set<string>();
  private startedAt = 0;
  /** The event log of a hub that is stopping, until it has written its last events. */
  private stopping: EventLog | undefined;
  /** The approval mode the event stream last heard of (undefined before the first start). */
  private approval: boolean | undefined;

  constructor(init: HubInit, parts: HubParts) {
    super();
    this.init = init;
    this.parts = parts;
    this.logger = componentLogger(parts.logger, 'hub');
    this.clock = parts.clock;
    this.lifecycle = new LockedLifecycle(new DataDirLock(init.dataDir, 'hub'));
    if (init.metrics) checkMetricsListener(init.metrics);
    this.admin =
      init.adminApi &&
      new AdminApiServer(
        this,
        { logger: parts.logger, clock: parts.clock, ...init.adminApi },
        { hubCertificate: () => this.now().identity },
      );
    this.setMaxListeners(0);
  }

  isStarted(): boolean {
    return this.ready;
  }

  get name(): string {
    return this.init.name ?? 'trosyn-hub';
  }

  get deviceId(): DeviceId {
    return this.now().identity.deviceId;
  }

  get replica(): Replica {
    return this.now().replica;
  }

  /** The hub's files: put, read, list, history, revert. Their content syncs with the records. */
  get files(): NodeFiles {
    return this.now().files;
  }

  /** Where the content of the hub's file versions stands, overall and per connected device. */
  fileTransfers(): { progress: ContentProgress; devices: PeerTransfer[] } {
    const { content } = this.now();
    return { progress: content.status(), devices: content.transfers() };
  }

  /** Devices, groups, pairing codes and settings. */
  get registry(): DeviceRegistry {
    return this.parts.registry;
  }

  /** The port the sync service listens on. */
  get port(): number {
    return this.now().server.port;
  }

  /** The admin API's port, when it runs. */
  get adminPort(): number | undefined {
    return this.admin?.isStarted() ? this.admin.port : undefined;
  }

  /** The port of the metrics listener without a token (HubInit.metrics), when it runs. */
  get metricsPort(): number | undefined {
    const listener = this.running?.metricsListener;
    return listener?.isStarted() ? listener.port : undefined;
  }

  /** The admin API server (scheme, certificate fingerprint), when the hub has one. */
  get adminApi(): AdminApiServer | undefined {
    return this.admin;
  }

  /** The admin token, once, when this start created it (first start); undefined after. */
  takeCreatedAdminToken(): string | undefined {
    return this.admin?.takeCreatedToken();
  }

  /** Starts every part in order; a second call waits for the first; a failure stops what started. */
  start(): Promise<void> {
    return this.lifecycle.start(() => this.startParts());
  }

  stop(): Promise<void> {
    return this.lifecycle.stop(async () => {
      const running = this.running;
      this.running = undefined;
      // Events of the stop itself (children disconnected) are still written to the log.
      this.stopping = running?.events;
      try {
        if (running) await stopAll(running.parts);
      } finally {
        this.stopping = undefined;
      }
      this.logger.info('hub stopped');
    });
  }

  private async startParts(): Promise<void> {
    const running = await assembleHub(this.init, this.parts, {
      logger: this.logger,
      admin: this.admin,
      recovery: () => this.recovery,
      loadRecovery: (window) => {
        this.recovery = window;
      },
      beginRecovery: (reason, replica) => this.beginRecovery(reason, replica),
      rememberConflict: (collection, id) => this.conflicted.add(`${collection}\u0000${id}`),
      trackConflict: (collection, id, conflict) => this.trackConflict(collection, id, conflict),
      clearConflicts: () => this.conflicted.clear(),
      setReady: (ready) => {
        this.ready = ready;
      },
      publish: (e) => this.publish(e),
      approvalMode: (on, atStart) => this.approvalMode(on, atStart),
      subscribe: (listener) => this.subscribe(listener),
      openConflicts: () => this.conflicted.size,
    });
    // Set before listening: a child may connect the moment the port opens.
    this.running = running;
    try {
      await startAll(running.parts);
    } catch (err) {
      this.running = undefined;
      throw err;
    }
    this.startedAt = this.clock.now();
    this.logger.info(
      { deviceId: running.identity.deviceId, port: running.server.port, dataDir: this.init.dataDir },
      'hub started',
    );
  }

  // --- status and the admin operations (AdminPort) --------------------------------------------

  connectedChildren(): ChildSession[] {
    return this.running?.sessions.list() ?? [];
  }

  async status(): Promise<HubStatus> {
    const { identity, replica, server, announcements } = this.now();
    const devices = { approved: 0, pending: 0, revoked: 0 };
    for (const d of await this.registry.list()) devices[d.state]++;
    const recovery = this.recoveryWindow();
    const bytes = storeBytes(this.init.dataDir);
    return {
      deviceId: identity.deviceId,
      name: this.name,
      version: APP_VERSION,
      startedAt: this.startedAt,
      syncPort: server.port,
      ...(this.adminPort !== undefined && { adminPort: this.adminPort }),
      devices,
      connected: this.connectedChildren(),
      store: await replica.stats(),
      ...(bytes !== undefined && { storeBytes: bytes }),
      discovery: announcements?.diagnostics() ?? [],
      ...(this.running?.backups && { backups: this.running.backups.status() }),
      ...(recovery && { recovery }),
    };
  }

  /** The recovery window the hub is in, if any (see RecoveryWindow). */
  recoveryWindow(): RecoveryWindow | undefined {
    const w = this.recovery;
    return w && this.clock.now() <= w.until ? { ...w } : undefined;
  }

  listDevices(filter: { state?: DeviceRecord['state']; group?: string } = {}): Promise<DeviceRecord[]> {
    return this.registry.list(filter);
  }

  getDevice(deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    return this.registry.get(deviceId);
  }

  /** Drops a device's connection at once with a reason it is told. */
  disconnect(deviceId: DeviceId, code: ErrorCode, message: string): boolean {
    return this.running?.sessions.disconnect(deviceId, code, message) ?? false;
  }

  async approve(deviceId: DeviceId): Promise<DeviceRecord> {
    const device = await this.registry.approve(deviceId);
    this.publish({ type: 'device-approved', deviceId, name: device.name });
    return device;
  }

  /** Revokes a device for good and disconnects it at once. */
  async revoke(deviceId: DeviceId): Promise<DeviceRecord> {
    const device = await this.registry.revoke(deviceId);
    this.disconnect(
      deviceId,
      'DEVICE_REVOKED',
      'this device was revoked by the hub admin and can no longer sync',
    );
    this.publish({ type: 'device-revoked', deviceId, name: device.name });
    return device;
  }

  async updateDevice(deviceId: DeviceId, change: { name?: string; group?: string }): Promise<DeviceRecord> {
    const current = await this.registry.get(deviceId);
    if (!current)
      throw new RegistryError('DEVICE_NOT_FOUND', `no device ${deviceId} is registered`, { deviceId });
    // Check everything before changing anything, so a bad group leaves no half-done rename.
    if (change.group !== undefined && !(await this.registry.getGroup(change.group)))
      throw new RegistryError(
        'GROUP_NOT_FOUND',
        `no group ${JSON.stringify(change.group)}; create it first`,
        {
          group: change.group,
        },
      );
    const name = change.name?.trim();
    if (name !== undefined && (name.length === 0 || name.length > 128))
      throw new RegistryError('INVALID_NAME', 'a device name has 1 to 128 characters');
    let updated = current;
    if (name !== undefined && name !== current.name) {
      updated = await this.registry.rename(deviceId, name);
      this.publish({ type: 'device-updated', deviceId, name: updated.name });
    }
    // Moving disconnects the device, to reconnect under its new scopes; a no-op move must not.
    if (change.group !== undefined && change.group !== current.group) {
      updated = await this.registry.setGroup(deviceId, change.group);
      this.disconnect(
        deviceId,
        'SCOPES_CHANGED',
        'this device moved to another group; reconnecting with its new scopes',
      );
      this.publish({ type: 'device-updated', deviceId, name: updated.name });
    }
    return updated;
  }

  listGroups(): Promise<GroupRecord[]> {
    return this.registry.listGroups();
  }

  /** Creates or changes a group's scopes; its connected devices reconnect under the new ones. */
  async putGroup(group: GroupRecord): Promise<GroupRecord> {
    const saved = await this.registry.putGroup(group);
    await this.running?.sessions.disconnectGroup(
      saved.name,
      'SCOPES_CHANGED',
      `the scopes of group ${saved.name} changed; reconnecting with the new ones`,
    );
    this.publish({ type: 'scopes-changed', group: saved.name });
    return saved;
  }

  /** Deletes a group that no device and no active pairing code needs (see DeviceRegistry.deleteGroup). */
  async deleteGroup(name: string): Promise<void> {
    await this.registry.deleteGroup(name);
    this.publish({ type: 'scopes-changed', group: name, deleted: true });
  }

  settings(): Promise<HubSettings> {
    return readSettings(this.now().replica, this.registry);
  }

  async backupNow(): Promise<BackupRun> {
    const { backups } = this.now();
    if (!backups) throw new BackupsNotScheduledError();
    return backups.runNow();
  }

  /** Changes the settings; the replica's policy listener sends a new policy to every child. */
  async updateSettings(change: SettingsChange): Promise<HubSettings & { resettled: number }> {
    const { replica } = this.now();
    const before = await this.settings();
    const after = await changeSettings(replica, this.registry, change, this.clock.now());
    // A policy change publishes its own event; approval mode alone publishes here.
    this.approvalMode(after.requireApproval, after.policy.version !== before.policy.version);
    return after;
  }

  /**
   * Publishes `settings-changed` when the approval mode is not the one last known,
   * whoever changed it (the admin API here, the CLI found by the registry watch),
   * once. `known`: record it without an event (read at start, or said by a policy's event).
   */
  private approvalMode(requireApproval: boolean, known: boolean): void {
    const changed = this.approval !== undefined && this.approval !== requireApproval;
    this.approval = requireApproval;
    // A look that ends after the hub stopped tells no one.
    const replica = this.running?.replica;
    if (changed && !known && replica)
      this.publish({ type: 'settings-changed', version: replica.getPolicy().version });
  }

  deviceClock(deviceId: DeviceId): ClockOffset | null {
    return this.running?.sessions.trouble(deviceId).clock ?? null;
  }

  /** How far behind a device is each way, and what went wrong last with its sync. */
  async deviceSync(deviceId: DeviceId): Promise<DeviceSyncReport> {
    const { replica, sessions } = this.now();
    const hubLatestSeq = await replica.latestSeq();
    const applied = (await replica.cursorFor(deviceId)).seq;
    const { lastSession, ...trouble } = sessions.trouble(deviceId);
    const live = sessions.get(deviceId);
    const stats = live?.stats ?? lastSession?.stats;
    const ackedUpTo = stats ? stats.ackedUpTo : null;
    const appliedUpTo = Math.max(applied, live?.stats.appliedUpTo ?? 0);
    const deviceLatest = live ? Math.max(live.stats.peerLatest, live.stats.appliedUpTo) : null;
    return {
      hubLatestSeq,
      caughtUp: live ? live.caughtUp : null,
      toDevice: { ackedUpTo, behind: ackedUpTo === null ? null : Math.max(0, hubLatestSeq - ackedUpTo) },
      fromDevice: {
        appliedUpTo,
        deviceLatest,
        behind: deviceLatest === null ? null : Math.max(0, deviceLatest - appliedUpTo),
      },
      ...trouble,
      lastSessionEndedAt: lastSession?.endedAt ?? null,
    };
  }

  async issuePairingCode(options: { ttlMs?: number; group?: string } = {}) {
    const issued = await this.registry.issueCode(options);
    return { ...issued, qr: pairingUri(issued.code, this.deviceId, this.port) };
  }

  listPairingCodes(): Promise<ListedPairingCode[]> {
    return this.registry.listCodes();
  }

  subscribe(listener: (event: HubEvent) => void): () => void {
    this.on('event', listener);
    return () => this.off('event', listener);
  }

  records(): Replica {
    return this.replica;
  }

  /** The hub's event log: kept events with their ids, and the stream of them as they are written. */
  get eventLog(): EventLog {
    return this.now().events;
  }

  /** Throughput with the children and devices connected, over the last hour or day. */
  metricsHistory(window: MetricsWindow): MetricsSeries {
    return this.now().metrics.series(window);
  }

  /** A Prometheus scrape of the hub's metrics (text format 0.0.4). */
  metricsText(): Promise<string> {
    return this.now().prometheus.text();
  }

  /** Dashboard sign-in links and sessions, kept in the registry. */
  get signIns(): DeviceRegistry {
    return this.registry;
  }

  verifyAdminToken(token: string): Promise<boolean> {
    return verifyAdminToken(this.registry, token);
  }

  ensureAdminToken(): Promise<string | undefined> {
    return ensureAdminToken(this.registry);
  }

  // --- internals -------------------------------------------------------------------------

  /** The hub lost revisions: take back, for a while, what children hold for others. */
  private async beginRecovery(
    reason: RecoveryWindow['reason'],
    replica = this.running?.replica,
  ): Promise<void> {
    const at = this.clock.now();
    const window: RecoveryWindow = { at, until: at + RELAY_WINDOW_MS, reason };
    this.recovery = window;
    try {
      await replica?.setNote('recovery', JSON.stringify(window));
    } catch (err) {
      this.logger.error({ err }, 'could not record the recovery');
    }
    this.logger.warn(
      { reason, until: new Date(window.until).toISOString() },
      'recovering lost revisions: children send back what they hold, also for other devices',
    );
    this.publish({ type: 'recovery-started', reason, until: window.until });
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

  private publish(input: HubEventInput): void {
    const event = { ...input, at: this.clock.now() } as HubEvent;
    this.emit('event', event);
    (this.running?.events ?? this.stopping)?.append(event);
  }

  private now(): Running {
    if (!this.running) throw new TransportError('NOT_STARTED', 'the hub is not started');
    return this.running;
  }
}
