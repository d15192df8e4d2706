import { randomBytes } from 'node:crypto';
import type { ErrorCode } from '../error-codes.js';
import type { Logger } from 'pino';
import { type Clock, type Startable, type Timer } from '../lifecycle.js';
import { componentLogger } from '../observability/logger.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import { FanOut, type FanOutStats } from '../sync/fan-out.js';
import type { Replica } from '../sync/replica.js';
import { SyncSession, type SyncSessionStats } from '../sync/session.js';
import type { ClockOffset } from '../transport/clock-offset.js';
import type { Connection } from '../transport/connection.js';
import { shortDeviceId } from '../transport/device-id.js';
import { TransportError } from '../transport/errors.js';
import type { PeerInfo } from '../transport/server.js';
import { syncChannel } from '../transport/sync-channel.js';
import { type WorkLimit, WorkThrottle } from '../transport/rate-limit.js';
import { SummarizedLog } from '../observability/summarized-log.js';
import { FILES_FEATURE, POLICY_FEATURE } from '../protocol/constants.js';
import { chunkLink } from '../transport/chunk-link.js';
import { ChunkExchange } from '../files/chunk-exchange.js';
import type { ChunkStore } from '../files/chunk-store.js';
import type { ContentSync } from '../files/content-sync.js';
import {
  DEVICE_HEALTH_SETTING as HEALTH_SETTING,
  DeviceHealth,
  type DeviceTrouble,
} from './device-health.js';
import type { ChildSession, HubEvent } from './events.js';
import { admitWithRelay, type RecoveryWindow } from './recovery.js';
import type { GroupRecord } from './registry-backend.js';
import type { DeviceRegistry } from './registry.js';
import { compileScope } from './scopes.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A hub event as a part publishes it; the hub stamps the time. */
export type HubEventInput = DistributiveOmit<HubEvent, 'at'>;

/** A device's sync-progress events come at most this often (ms). */
const PROGRESS_EVERY_MS = 1000;

/**
 * The per-device write limit's default: 1,000 revisions a second, with a burst of
 * 10,000. The hub applies about 30,000 to 50,000 revisions a second in large batches
 * on two cores (bench/engine.ts), so a device at its limit takes a few percent of the
 * hub; yet an import or a first upload of 100,000 records takes about 100 s, and a
 * day's work of a device that was offline (up to 10,000 edits) goes at once.
 */
export const DEFAULT_WRITE_LIMIT: Readonly<WorkLimit> = { perSecond: 1000, burst: 10_000 };

/**
 * What each batch costs under the write limit beyond its revisions: a batch is a
 * transaction on the hub and a relay round to every other child whatever its size,
 * and a batch of one revision costs the hub about as much as 20 revisions of a large
 * batch (measured: 170-250 µs of CPU against 12-35 µs a revision). A device writing
 * many small batches is held back until it packs more into each.
 */
export const WRITE_BATCH_COST = 20;

/** Batches of a device the write limit held, as logged. */
interface HeldWrites {
  batches: number;
  revisions: number;
  heldMs: number;
}

/** After its first line, a device's throttled batches are logged this often (ms), as a count. */
const THROTTLE_LOG_EVERY_MS = 60_000;

/** Closes that are part of normal operation: not reported as sync failures. */
const EXPECTED_CLOSE: ReadonlySet<string> = new Set<ErrorCode>([
  'CONNECTION_CLOSED',
  'REPLACED',
  'SERVER_SHUTTING_DOWN',
  'SCOPES_CHANGED',
  'DEVICE_REVOKED',
]);

export interface ChildSessionsOptions {
  hubId: DeviceId;
  replica: Replica;
  /** Brings file content; each child's connection is a peer to fetch its files from. */
  content: ContentSync;
  chunks: ChunkStore;
  registry: DeviceRegistry;
  /** Collections never sent to children nor accepted from them, now (the policy's). */
  hubOnly: () => readonly string[];
  /** The recovery window the hub is in, if any. */
  recovery: () => RecoveryWindow | undefined;
  /** A child found the hub's store rolled back. */
  onRolledBack: () => void;
  publish: (event: HubEventInput) => void;
  /** Told of what the throttled events leave out (the metrics count from it). */
  observer?: SessionObserver;
  /**
   * Look at the registry this often (ms) for revocations, approvals withdrawn and
   * scope changes made by another process (the CLI). 0: never.
   */
  registryWatchMs: number;
  /**
   * The per-device write limit: revisions a second each device may write through the
   * hub (each batch counting WRITE_BATCH_COST more), held back rather than refused.
   * Undefined: no limit.
   */
  writeLimit?: WorkLimit;
  logger: Logger;
  clock: Clock;
}

/** What the sessions tell as it happens, beyond the hub's events: every batch, every refusal. */
export interface SessionObserver {
  /** A batch was applied or acknowledged in a device's session. */
  progress(deviceId: DeviceId, stats: SyncSessionStats): void;
  /** Revisions refused: `by: 'hub'` the device's writes, `by: 'device'` the hub's. */
  refusedWrites(deviceId: DeviceId, by: 'hub' | 'device', rejected: readonly RejectedRevision[]): void;
  /** The write limit held a batch of a device's revisions back for `heldMs` before applying it. */
  writesThrottled?(deviceId: DeviceId, revisions: number, heldMs: number): void;
}

interface LiveSession {
  conn: Connection;
  session: SyncSession;
  peer: PeerInfo;
  name: string;
  connectedAt: number;
  /** The group and scopes the session runs under, to notice when they change. */
  scopeKey: string;
}

/**
 * The hub's sync sessions, one per connected child: each streams the hub's change
 * log to its child within the child's read scope and applies the child's writes
 * within its write scope, so the hub relays every child's changes to the others.
 */
export class ChildSessions implements Startable {
  private readonly o: ChildSessionsOptions;
  private readonly sessions = new Map<DeviceId, LiveSession>();
  private readonly health = new DeviceHealth();
  /** Children of one read scope at one position share the reading and encoding of their batch. */
  private readonly fanOut: FanOut;
  /** What sessions that ended had moved, so totals never go back when a child leaves. */
  private readonly ended: Throughput = { changesIn: 0, changesOut: 0, bytesIn: 0, bytesOut: 0 };
  private watch: Timer | undefined;
  /** Each device's write bucket, kept across its reconnections (none without a write limit). */
  private readonly writes: WorkThrottle | undefined;
  /** The batches each throttled device had held since its last log line (see throttled). */
  private readonly throttleLog: SummarizedLog<HeldWrites>;
  private started = false;
  private healthSave: Timer | undefined;

  constructor(options: ChildSessionsOptions) {
    this.o = options;
    this.fanOut = new FanOut({ replica: options.replica });
    this.writes = options.writeLimit && new WorkThrottle(options.writeLimit, { clock: options.clock });
    this.throttleLog = new SummarizedLog<HeldWrites>({
      clock: options.clock,
      everyMs: THROTTLE_LOG_EVERY_MS,
      add: (sum, one) => ({
        batches: sum.batches + one.batches,
        revisions: sum.revisions + one.revisions,
        heldMs: sum.heldMs + one.heldMs,
      }),
      write: (deviceId, held) => this.logThrottled(deviceId as DeviceId, held),
    });
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.fanOut.start();
    // What went wrong with each device's sync, as the last run left it.
    const saved = await this.o.registry.getSetting(HEALTH_SETTING).catch(() => undefined);
    if (saved) {
      try {
        this.health.restore(JSON.parse(saved));
      } catch (err) {
        this.o.logger.warn({ err }, 'the saved device sync details are unreadable; starting afresh');
      }
    }
    this.health.onChange = () => {
      this.healthSave ??= this.o.clock.setTimeout(() => void this.saveHealth(), 1000);
    };
    if (this.writes) this.throttleLog.start();
    if (this.o.registryWatchMs === 0) return;
    this.watch = this.o.clock.setInterval(() => {
      this.enforceRegistry().catch((err: unknown) => this.o.logger.warn({ err }, 'registry check failed'));
    }, this.o.registryWatchMs);
  }

  async stop(): Promise<void> {
    this.started = false;
    this.watch?.cancel();
    this.watch = undefined;
    this.throttleLog.stop();
    const live = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of live) await s.session.stop();
    this.fanOut.stop();
    await this.saveHealth();
    this.health.onChange = () => undefined;
  }

  private async saveHealth(): Promise<void> {
    this.healthSave?.cancel();
    this.healthSave = undefined;
    try {
      // Other hub processes on the same database save theirs too: newer parts of theirs stay.
      const saved = await this.o.registry.getSetting(HEALTH_SETTING);
      if (saved !== undefined) this.health.restore(parseOr(saved));
      await this.o.registry.setSetting(HEALTH_SETTING, JSON.stringify(this.health), { durable: false });
    } catch (err) {
      this.o.logger.warn({ err }, 'could not save the device sync details');
    }
  }

  /** Children connected now. */
  list(): ChildSession[] {
    return [...this.sessions.values()].map((s) => this.describe(s));
  }

  /** A connected device's live session, if it is connected. */
  get(deviceId: DeviceId): ChildSession | undefined {
    const live = this.sessions.get(deviceId);
    return live && this.describe(live);
  }

  /** What went wrong last with a device's sync since the hub started, and where its last session ended. */
  trouble(deviceId: DeviceId): DeviceTrouble {
    return this.health.get(deviceId);
  }

  /** How the batches sent to children were shared: reads, shared and own batches, what is held. */
  fanOutStats(): FanOutStats {
    return this.fanOut.stats();
  }

  /** Changes and bytes moved with children since the hub started, the connected ones included. */
  totals(): Throughput {
    const sum = { ...this.ended };
    for (const live of this.sessions.values()) addThroughput(sum, live);
    return sum;
  }

  /** Drops a device's connection at once, telling it why; true if it was connected. */
  disconnect(deviceId: DeviceId, code: ErrorCode, message: string): boolean {
    const live = this.sessions.get(deviceId);
    live?.conn.close(new TransportError(code, message));
    return live !== undefined;
  }

  /** Disconnects every connected device of a group: its scopes changed. */
  async disconnectGroup(group: string, code: ErrorCode, message: string): Promise<void> {
    for (const d of await this.o.registry.list({ group })) this.disconnect(d.deviceId, code, message);
  }

  /** Serves a connection of an approved device: one sync session for it. */
  async attach(conn: Connection, peer: PeerInfo): Promise<void> {
    const { registry, replica } = this.o;
    // When and where the device was last seen is bookkeeping: a disk that is full or
    // read-only must not turn the device away, it still gets the hub's changes.
    await registry
      .touch(peer.deviceId, { address: peer.address, appVersion: peer.handshake.peerAppVersion })
      .catch((err: unknown) =>
        this.o.logger.warn({ err, deviceId: peer.deviceId }, 'could not save when the device was last seen'),
      );
    const device = await registry.get(peer.deviceId);
    const groupName = device?.group ?? 'default';
    // A group that is gone (deleted while the device moved into it) grants nothing, not everything.
    const group = (await registry.getGroup(groupName)) ?? {
      name: groupName,
      description: '',
      read: groupName === 'default' ? ['*'] : [],
      write: groupName === 'default' ? ['*'] : [],
    };
    if (conn.closed) return;
    // A reconnecting child may arrive before its old connection is found dead: the newest wins.
    this.sessions
      .get(peer.deviceId)
      ?.conn.close(new TransportError('REPLACED', 'replaced by a newer connection from the same device'));
    const scope = compileScope(peer.deviceId, group, this.o.hubOnly());
    // A widened read scope: send from the start, so the child gets older revisions it may now read.
    const scopeSetting = `read_scope:${peer.deviceId}`;
    const widened = (await registry.getSetting(scopeSetting)) !== scope.readHash;
    // Not saved (a full disk): the next connection sends from the start again, which is harmless.
    if (widened)
      await registry
        .setSetting(scopeSetting, scope.readHash)
        .catch((err: unknown) =>
          this.o.logger.warn({ err, deviceId: peer.deviceId }, "could not save the device's read scope"),
        );

    const session = new SyncSession({
      replica,
      channel: syncChannel(conn),
      peer: peer.deviceId,
      readable: scope.readable,
      share: { fanOut: this.fanOut, scope: scope.readHash },
      admit: admitWithRelay(
        peer.deviceId,
        scope,
        {
          hubId: this.o.hubId,
          hubOnly: this.o.hubOnly(),
          writeScopeOf: (id) => this.writeScopeOf(id),
        },
        this.o.recovery,
        () => this.o.clock.now(),
      ),
      ...(widened && { resendFrom: 0 }),
      ...(this.writes && { throttle: ({ revisions }) => this.chargeWrites(peer.deviceId, revisions) }),
      version: peer.handshake.version,
      // Every line of this connection names the device and the session (a new id per connection).
      logger: componentLogger(this.o.logger, `sync:${shortDeviceId(peer.deviceId)}`, {
        deviceId: peer.deviceId,
        session: randomBytes(4).toString('hex'),
      }),
      clock: this.o.clock,
    });
    const live: LiveSession = {
      conn,
      session,
      peer,
      // The name the admin knows the device by; the name the child offers is only a default.
      name: device?.name ?? peer.handshake.peerName,
      connectedAt: this.o.clock.now(),
      scopeKey: scopeKeyOf(group),
    };
    this.sessions.set(peer.deviceId, live);
    this.watchSession(live);
    // The device's clock: measured by the ping the server sent after the welcome, then every heartbeat.
    const clockMeasured = (reading: ClockOffset) => this.health.clockMeasured(peer.deviceId, reading);
    const measured = conn.peerClock();
    if (measured) clockMeasured(measured);
    conn.on('clock', clockMeasured);
    // File content both ways over the same connection: the child's files fetched from it, ours served to it.
    if (peer.handshake.features.includes(FILES_FEATURE)) {
      const exchange = new ChunkExchange(chunkLink(conn), this.o.chunks, { logger: this.o.logger });
      const detach = this.o.content.attach(peer.deviceId, exchange);
      conn.once('close', (cause) => {
        detach();
        exchange.abort(cause ?? new Error('connection closed'));
      });
    }
    if (peer.handshake.features.includes(POLICY_FEATURE)) this.sendPolicy(live);
    session.start().catch((err: unknown) => conn.close(err as Error));
    this.o.publish({ type: 'device-connected', session: this.describe(live) });
    this.o.publish({ type: 'sync-started', deviceId: peer.deviceId });
  }

  private watchSession(live: LiveSession): void {
    const { session, conn, peer } = live;
    const publish = this.o.publish;
    // sync-progress at most once a PROGRESS_EVERY_MS per device, and once more after the
    // last change of a burst: a stream (the dashboard) always sees where a device ended.
    let lastProgress = -Infinity;
    let trailing: Timer | undefined;
    const progressed = () => {
      const wait = lastProgress + PROGRESS_EVERY_MS - this.o.clock.now();
      if (wait > 0) {
        trailing ??= this.o.clock.setTimeout(() => {
          trailing = undefined;
          if (this.sessions.get(peer.deviceId) !== live) return;
          lastProgress = this.o.clock.now();
          publish({ type: 'sync-progress', session: this.describe(live) });
        }, wait);
        return;
      }
      lastProgress = this.o.clock.now();
      publish({ type: 'sync-progress', session: this.describe(live) });
    };
    conn.once('close', () => trailing?.cancel());
    session.on('progress', (stats) => {
      this.o.observer?.progress(peer.deviceId, stats);
      progressed();
    });
    // sync-completed once a connection (and again after a restart): the device is in
    // sync. A live change catches up again each time; a kept event each would be a
    // thousand events a write with a thousand children, so those show as sync-progress.
    let completed = false;
    session.on('caught-up', () => {
      if (completed) return progressed();
      completed = true;
      publish({ type: 'sync-completed', session: this.describe(live) });
    });
    session.on('restart', (reason) => {
      completed = false;
      publish({ type: 'sync-restarted', deviceId: peer.deviceId, reason });
      // A child saw positions of the hub's log that the hub no longer holds.
      if (reason === 'rolled-back') this.o.onRolledBack();
    });
    // Both ways: the hub's revisions the device refused, and the device's writes the hub refused.
    const refused = (by: 'hub' | 'device') => (rejected: RejectedRevision[]) => {
      this.o.logger.warn(
        { device: shortDeviceId(peer.deviceId), by, count: rejected.length, first: rejected[0] },
        'writes refused',
      );
      this.health.refused(peer.deviceId, by, this.o.clock.now(), rejected);
      this.o.observer?.refusedWrites(peer.deviceId, by, rejected);
      publish({
        type: 'writes-refused',
        deviceId: peer.deviceId,
        by,
        count: rejected.length,
        codes: [...new Set(rejected.map((r) => r.code))],
        collections: [...new Set(rejected.map((r) => r.collection))],
      });
    };
    session.on('refused', refused('device'));
    session.on('rejected', refused('hub'));
    conn.once('close', (cause) => {
      if (this.sessions.get(peer.deviceId) === live) this.sessions.delete(peer.deviceId);
      this.health.ended(peer.deviceId, this.o.clock.now(), session.getStats());
      addThroughput(this.ended, live);
      const e = cause as { code?: string; message?: string } | undefined;
      if (e?.code && !EXPECTED_CLOSE.has(e.code)) {
        this.health.failed(peer.deviceId, this.o.clock.now(), e.code, e.message ?? '');
        publish({ type: 'sync-failed', deviceId: peer.deviceId, code: e.code, message: e.message ?? '' });
      }
      publish({
        type: 'device-disconnected',
        deviceId: peer.deviceId,
        name: live.name,
        ...(e?.code && { code: e.code }),
        ...(e?.message && { message: e.message }),
      });
    });
  }

  /**
   * Charges a device's batch to its write bucket; how long (ms) the batch waits. A
   * hold is logged as the sync service logs refused connections: the first of a
   * device at once, with the limit, then one line a minute with how many more came
   * while it lasts (and a last one when the hub stops).
   */
  private chargeWrites(deviceId: DeviceId, revisions: number): number {
    const writes = this.writes as WorkThrottle;
    const heldMs = writes.reserve(deviceId, revisions + WRITE_BATCH_COST);
    if (heldMs === 0) return 0;
    const now = this.o.clock.now();
    this.health.throttled(deviceId, now, now + heldMs, revisions, heldMs);
    this.o.observer?.writesThrottled?.(deviceId, revisions, heldMs);
    this.throttleLog.note(deviceId, { batches: 1, revisions, heldMs });
    return heldMs;
  }

  private logThrottled(deviceId: DeviceId, held: HeldWrites): void {
    const limit = (this.writes as WorkThrottle).limit;
    this.o.logger.warn(
      {
        device: shortDeviceId(deviceId),
        name: this.sessions.get(deviceId)?.name,
        perSecond: limit.perSecond,
        burst: limit.burst,
        ...held,
      },
      'device writes throttled',
    );
  }

  private async writeScopeOf(
    device: DeviceId,
  ): Promise<{ group: string; write: readonly string[] } | undefined> {
    const d = await this.o.registry.get(device);
    if (!d || d.state === 'revoked') return undefined;
    const group = await this.o.registry.getGroup(d.group);
    return group ? { group: group.name, write: group.write } : undefined;
  }

  /**
   * Sends the policy now in force to every connected child that takes it; when the
   * hub-only collections changed, reconnects them all instead, under the new scopes
   * (they get the policy again as they connect).
   */
  policyChanged(hubOnlyChanged: boolean): void {
    for (const live of [...this.sessions.values()]) {
      if (hubOnlyChanged)
        this.disconnect(
          live.peer.deviceId,
          'SCOPES_CHANGED',
          'the hub-only collections changed; reconnecting',
        );
      else if (live.peer.handshake.features.includes(POLICY_FEATURE)) this.sendPolicy(live);
    }
  }

  private sendPolicy(live: LiveSession): void {
    const policy = this.o.replica.getPolicy();
    live.conn.request('policy.set', policy).then(
      () =>
        this.o.logger.debug(
          { device: shortDeviceId(live.peer.deviceId), version: policy.version },
          'policy sent',
        ),
      (err: unknown) => {
        if (live.conn.closed) return;
        this.o.logger.warn(
          { err, device: shortDeviceId(live.peer.deviceId) },
          'a child did not take the policy',
        );
        const e = err as { code?: string; message?: string };
        this.o.publish({
          type: 'error',
          code: e.code ?? 'INVALID_POLICY',
          message: `device did not take the collection policy: ${e.message ?? String(err)}`,
          deviceId: live.peer.deviceId,
        });
      },
    );
  }

  /** Disconnects sessions whose device was revoked, unapproved or moved to other scopes meanwhile. */
  async enforceRegistry(): Promise<void> {
    const { registry } = this.o;
    const groups = new Map((await registry.listGroups()).map((g) => [g.name, g]));
    for (const live of [...this.sessions.values()]) {
      const device = await registry.get(live.peer.deviceId);
      if (!device || device.state === 'revoked') {
        this.disconnect(
          live.peer.deviceId,
          'DEVICE_REVOKED',
          'this device was revoked by the hub admin and can no longer sync',
        );
        if (device) this.o.publish({ type: 'device-revoked', deviceId: device.deviceId, name: device.name });
      } else if (device.state === 'pending') {
        this.disconnect(
          live.peer.deviceId,
          'DEVICE_PENDING_APPROVAL',
          'this device waits for an admin to approve it',
        );
      } else {
        live.name = device.name;
        const group = groups.get(device.group);
        if (group && scopeKeyOf(group) !== live.scopeKey) {
          this.disconnect(
            live.peer.deviceId,
            'SCOPES_CHANGED',
            'this device has new scopes; reconnecting with them',
          );
        }
      }
    }
  }

  private describe(live: LiveSession): ChildSession {
    return {
      deviceId: live.peer.deviceId,
      address: live.peer.address,
      name: live.name,
      appVersion: live.peer.handshake.peerAppVersion,
      connectedAt: live.connectedAt,
      caughtUp: live.session.isCaughtUp(),
      stats: live.session.getStats(),
      bytesIn: live.conn.getStats().bytesIn,
      bytesOut: live.conn.getStats().bytesOut,
    };
  }
}

/** Changes (revisions) and bytes (frames on the wire) moved with children, in and out. */
export interface Throughput {
  changesIn: number;
  changesOut: number;
  bytesIn: number;
  bytesOut: number;
}

function addThroughput(sum: Throughput, live: LiveSession): void {
  const stats = live.session.getStats();
  const wire = live.conn.getStats();
  sum.changesIn += stats.applied;
  sum.changesOut += stats.sent;
  sum.bytesIn += wire.bytesIn;
  sum.bytesOut += wire.bytesOut;
}

function scopeKeyOf(group: GroupRecord): string {
  return JSON.stringify([group.name, group.read, group.write]);
}

/** JSON text parsed, or undefined when it is not JSON (a damaged setting is written over). */
function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
