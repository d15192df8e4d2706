import type { ContentSync } from '../files/content-sync.js';
import { nodeContent } from '../files/node-content.js';
import type { NodeFiles } from '../files/node-files.js';
import type { Logger } from 'pino';
import type { Startable, Timer } from '../lifecycle.js';
import { DEFAULT_SYNC_PORT, FILES_FEATURE, POLICY_FEATURE } from '../protocol/constants.js';
import { nodeStoreState } from '../sync/node-replica.js';
import { type CollectionOptions, Replica } from '../sync/replica.js';
import type { SyncPolicy } from '../sync/policy.js';
import type { Connection } from '../transport/connection.js';
import type { DeviceIdentity } from '../transport/identity.js';
import { type PeerInfo, TransportServer } from '../transport/server.js';
import { APP_VERSION } from '../version.js';
import type { AdminApiServer } from './admin-api/server.js';
import { LanAnnouncements } from './announcements.js';
import { ChildSessions, DEFAULT_WRITE_LIMIT, type HubEventInput } from './child-sessions.js';
import type { WorkLimit } from '../transport/rate-limit.js';
import { EventLog } from './event-log.js';
import type { HubEvent } from './events.js';
import { HubMetrics } from './hub-metrics.js';
import { MetricsListener } from './metrics-listener.js';
import { MetricsHistory } from './metrics-history.js';
import { DescriptorWatch } from '../observability/descriptors.js';
import { BackupSchedule } from '../ops/backup-schedule.js';
import type { HubInit, HubParts } from './options.js';
import { PairingService } from './pairing.js';
import { parseRecoveryWindow, type RecoveryWindow } from './recovery.js';

/** What a running hub is made of, in the order its parts start. */
export interface RunningHub {
  identity: DeviceIdentity;
  replica: Replica;
  files: NodeFiles;
  content: ContentSync;
  sessions: ChildSessions;
  /** Events kept in the registry, and the stream of them with their ids. */
  events: EventLog;
  /** Throughput and connected devices over the last hour and day. */
  metrics: MetricsHistory;
  /** The Prometheus metrics. */
  prometheus: HubMetrics;
  /** Their own listener without a token, when asked for one. */
  metricsListener: MetricsListener | undefined;
  server: TransportServer;
  announcements: LanAnnouncements | undefined;
  /** Scheduled backups, when configured. */
  backups: BackupSchedule | undefined;
  parts: Startable[];
}

/** How the parts reach back to the hub that owns them. */
export interface HubHooks {
  logger: Logger;
  admin: AdminApiServer | undefined;
  recovery: () => RecoveryWindow | undefined;
  loadRecovery: (window: RecoveryWindow | undefined) => void;
  beginRecovery: (reason: RecoveryWindow['reason'], replica: Replica) => Promise<void>;
  /** A conflict the store already held at start: known, not news. */
  rememberConflict: (collection: string, id: string) => void;
  trackConflict: (collection: string, id: string, conflict: 'none' | 'open' | 'auto') => void;
  clearConflicts: () => void;
  setReady: (ready: boolean) => void;
  publish: (event: HubEventInput) => void;
  /** The approval mode as the registry holds it now; `atStart`: read at start, not news. */
  approvalMode: (requireApproval: boolean, atStart: boolean) => void;
  /** The hub's events as they are published, until the returned function is called. */
  subscribe: (listener: (event: HubEvent) => void) => () => void;
  /** Conflicts the hub holds unresolved now. */
  openConflicts: () => number;
}

/**
 * Wires a hub's parts into the running service, none started yet: the engine over
 * the store, the registry, the hub's own state (conflicts, recovery), the
 * children's sessions, the TLS service with pairing, the LAN announcements, and the
 * admin API last, once the rest can serve it.
 */
export async function assembleHub(init: HubInit, parts: HubParts, hooks: HubHooks): Promise<RunningHub> {
  const { logger } = hooks;
  const clock = parts.clock;
  const name = init.name ?? 'trosyn-hub';
  // Asked for, and needed: a recovered store holds nothing yet. A SQLite file is
  // looked at before the store makes it; a PostgreSQL store once it has started.
  const sqliteState = init.postgres === undefined ? nodeStoreState(init.dataDir) : undefined;
  const recovering = async (): Promise<boolean> =>
    init.recover === true &&
    (sqliteState !== undefined ? sqliteState !== 'present' : (await replica.stats()).latestSeq === 0);
  const identity = await parts.identity();
  const replica = new Replica({
    store: parts.store,
    deviceId: identity.deviceId,
    role: 'hub',
    // Strategies by name are the policy's (sent to children); a resolver function stays the hub's own.
    ...(resolverObjects(init.collections) && { collections: resolverObjects(init.collections) }),
    pruneEveryMs: 3600_000,
    watchExternalWritesMs: 250,
    logger,
    clock,
  });
  const { files, content, gc } = nodeContent({
    dataDir: init.dataDir,
    replica,
    chunks: parts.chunks,
    fileCollections: init.fileCollections,
    role: 'hub',
    logger,
    clock,
  });
  content.on('progress', (progress) => hooks.publish({ type: 'files-progress', progress }));
  const sessions = new ChildSessions({
    hubId: identity.deviceId,
    replica,
    content,
    chunks: parts.chunks,
    registry: parts.registry,
    hubOnly: () => replica.getPolicy().hubOnly,
    recovery: hooks.recovery,
    onRolledBack: () => void hooks.beginRecovery('store-rolled-back', replica),
    publish: hooks.publish,
    observer: {
      progress: (deviceId, stats) => prometheus.progress(deviceId, stats),
      refusedWrites: (deviceId, by, rejected) => prometheus.refusedWrites(deviceId, by, rejected),
      writesThrottled: (deviceId, revisions, heldMs) =>
        prometheus.writesThrottled(deviceId, revisions, heldMs),
    },
    ...(writeLimitOf(init) && { writeLimit: writeLimitOf(init) }),
    // Changes made to the registry by another process (the CLI) apply within a second.
    registryWatchMs: parts.authenticator === parts.registry ? 1000 : 0,
    logger,
    clock,
  });
  const events = new EventLog({
    store: parts.registry,
    ...(init.eventRetentionDays !== undefined && { retentionDays: init.eventRetentionDays }),
    logger,
    clock,
  });
  const metrics = new MetricsHistory({
    totals: () => sessions.totals(),
    connected: () => sessions.list().length,
    persist: {
      load: () => parts.registry.getSetting('metrics_history'),
      save: (text) => parts.registry.setSetting('metrics_history', text, { durable: false }),
    },
    clock,
  });
  const prometheus = new HubMetrics({
    dataDir: init.dataDir,
    hubId: identity.deviceId,
    replica,
    sessions,
    registry: parts.registry,
    content,
    openConflicts: hooks.openConflicts,
    subscribe: hooks.subscribe,
    ...(init.backups && { backups: () => backups?.status() }),
    clock,
  });
  const pairing = new PairingService({
    registry: parts.registry,
    hubId: identity.deviceId,
    hubName: name,
    ...init.pairingLimits,
    onPaired: (d) =>
      hooks.publish({
        type: 'device-paired',
        deviceId: d.deviceId,
        name: d.name,
        state: d.state,
        group: d.group,
      }),
    onAttempt: (outcome) => prometheus.pairing(outcome),
    logger,
    clock,
  });
  const onConnection = (conn: Connection, peer: PeerInfo): void => {
    if (peer.access === 'pairing') {
      pairing.attach(conn, peer);
      return;
    }
    sessions.attach(conn, peer).catch((err: unknown) => {
      logger.warn({ err }, 'could not open a sync session');
      conn.close(err instanceof Error ? err : new Error(String(err)));
    });
  };
  const server = new TransportServer({
    identity,
    local: {
      name,
      role: 'hub',
      appVersion: APP_VERSION,
      heartbeatMs: init.heartbeatMs ?? 15_000,
      features: [FILES_FEATURE, POLICY_FEATURE],
      ...(init.compression && { compression: init.compression }),
    },
    authenticator: parts.authenticator,
    ...(init.host !== undefined && { host: init.host }),
    port: init.port ?? DEFAULT_SYNC_PORT,
    attemptLimit: init.connectionLimit ?? { burst: 30, perMinute: 120 },
    onConnection,
    logger,
    clock,
  });
  server.on('rejected', (r) => prometheus.connectionRejected(r.code));
  const discovery = init.discovery ?? true;
  const announcements =
    discovery === false
      ? undefined
      : new LanAnnouncements({
          settings: discovery,
          deviceId: identity.deviceId,
          name,
          syncPort: () => server.port,
          logger,
          clock,
          onUnavailable: (err) =>
            hooks.publish({ type: 'error', code: err.code ?? 'DISCOVERY_BIND_FAILED', message: err.message }),
        });
  // What the hub itself keeps between its store and its service: conflicts and recovery.
  let unsubscribe: () => void = () => undefined;
  let unsubscribePolicy: () => void = () => undefined;
  let approvalWatch: Timer | undefined;
  const hubState: Startable = {
    isStarted: () => true,
    start: async () => {
      hooks.loadRecovery(parseRecoveryWindow(await replica.getNote('recovery')));
      if (await recovering()) await hooks.beginRecovery('store-recreated', replica);
      for (const c of await replica.conflicts())
        if (c.status !== 'resolved') hooks.rememberConflict(c.collection, c.id);
      unsubscribe = replica.subscribe((e) => hooks.trackConflict(e.collection, e.id, e.conflict));
      await adoptGivenPolicy(replica, init, clock.now(), logger);
      let hubOnly = JSON.stringify(replica.getPolicy().hubOnly);
      unsubscribePolicy = replica.onPolicy((policy) => {
        const now = JSON.stringify(policy.hubOnly);
        sessions.policyChanged(now !== hubOnly);
        hubOnly = now;
        hooks.publish({ type: 'settings-changed', version: policy.version });
      });
      // The approval mode lives in the registry, which another process (the CLI) may
      // change: looked at every second, so the event stream hears of it.
      hooks.approvalMode(await parts.registry.requireApproval(), true);
      approvalWatch = clock.setInterval(() => {
        parts.registry.requireApproval().then(
          (on) => hooks.approvalMode(on, false),
          (err: unknown) => logger.warn({ err }, 'reading the approval mode failed'),
        );
      }, 1000);
    },
    stop: async () => {
      approvalWatch?.cancel();
      approvalWatch = undefined;
      unsubscribe();
      unsubscribePolicy();
      hooks.clearConflicts();
    },
  };
  const backups =
    init.backups &&
    new BackupSchedule({
      dataDir: init.dataDir,
      dir: init.backups.dir,
      everyMs: (init.backups.everyHours ?? 24) * 3600_000,
      keep: init.backups.keep ?? 7,
      clock,
      logger,
      onRun: (run) =>
        hooks.publish(
          run.ok
            ? { type: 'backup-completed', dir: run.dir, bytes: run.bytes, durationMs: run.durationMs }
            : { type: 'backup-failed', code: run.code, message: run.message },
        ),
    });
  let ready = false;
  const readiness: Startable = {
    isStarted: () => ready,
    start: async () => {
      ready = true;
      hooks.setReady(true);
    },
    stop: async () => {
      ready = false;
      hooks.setReady(false);
    },
  };
  const metricsListener = init.metrics && new MetricsListener(init.metrics, () => prometheus.text(), logger);
  const descriptors = new DescriptorWatch({ logger, clock });
  return {
    identity,
    replica,
    files,
    content,
    sessions,
    events,
    metrics,
    prometheus,
    metricsListener,
    server,
    announcements,
    backups,
    parts: [
      replica,
      parts.chunks,
      content,
      gc,
      parts.registry,
      // Stopped after the sessions, so their last disconnections are written too.
      events,
      hubState,
      prometheus,
      sessions,
      metrics,
      server,
      descriptors,
      ...(announcements ? [announcements] : []),
      readiness,
      ...(backups ? [backups] : []),
      ...(metricsListener ? [metricsListener] : []),
      ...(hooks.admin ? [hooks.admin] : []),
    ],
  };
}

/** The custom resolver objects among a hub's collection options (strategy names belong to the policy). */
/** The write limit a hub's settings ask for; undefined when it is off. */
export function writeLimitOf(init: Pick<HubInit, 'writeLimit'>): WorkLimit | undefined {
  const given = init.writeLimit;
  if (given === false) return undefined;
  if (given === undefined) return { ...DEFAULT_WRITE_LIMIT };
  const perSecond = given.perSecond ?? DEFAULT_WRITE_LIMIT.perSecond;
  if (perSecond === 0) return undefined;
  if (!(perSecond > 0) || !Number.isFinite(perSecond))
    throw new RangeError(`writeLimit.perSecond must be a positive number or 0 (off), not ${perSecond}`);
  const burst = given.burst ?? (given.perSecond === undefined ? DEFAULT_WRITE_LIMIT.burst : perSecond * 10);
  if (!(burst >= 0) || !Number.isFinite(burst))
    throw new RangeError(`writeLimit.burst must be 0 or more, not ${given.burst}`);
  return { perSecond, burst };
}

function resolverObjects(collections: HubInit['collections']): Record<string, CollectionOptions> | undefined {
  const out = Object.entries(collections ?? {}).filter(
    ([, c]) => c.conflict && typeof c.conflict !== 'string',
  );
  return out.length > 0
    ? Object.fromEntries(out.map(([name, c]) => [name, { conflict: c.conflict }]))
    : undefined;
}

/**
 * The policy the hub was started with (config.json's collections, hubOnly and
 * retention, or the same HubInit options). What changed since the last start's
 * options is applied to the policy in force, part by part (a collection, the
 * hub-only list, the retention): editing config.json and restarting changes what was
 * edited, while what the dashboard or CLI changed since, and the file does not
 * touch, stays.
 */
async function adoptGivenPolicy(replica: Replica, init: HubInit, now: number, logger: Logger): Promise<void> {
  if (init.collections === undefined && init.hubOnly === undefined && init.retention === undefined) return;
  const collections: SyncPolicy['collections'] = {};
  for (const [name, c] of Object.entries(init.collections ?? {})) {
    const conflict = typeof c.conflict === 'string' && c.conflict !== 'lww' ? c.conflict : undefined;
    if (conflict || c.localOnly)
      collections[name] = { ...(conflict && { conflict }), ...(c.localOnly && { localOnly: true }) };
  }
  const r = init.retention;
  const given: Given = {
    collections,
    hubOnly: init.hubOnly ?? [],
    retention: {
      ...(r?.maxRevisions !== undefined && { maxRevisions: r.maxRevisions }),
      ...(r?.maxAgeMs !== undefined && { maxAgeDays: r.maxAgeMs / (24 * 3600_000) }),
    },
  };
  const key = JSON.stringify(given);
  const note = await replica.getNote('given_policy');
  if (note === key) return;
  const last: Given = note ? (JSON.parse(note) as Given) : { collections: {}, hubOnly: [], retention: {} };
  const current = replica.getPolicy();
  const next = { ...current, collections: { ...current.collections } };
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const name of new Set([...Object.keys(last.collections), ...Object.keys(given.collections)])) {
    if (same(last.collections[name], given.collections[name])) continue;
    const entry = given.collections[name];
    if (entry) next.collections[name] = entry;
    else delete next.collections[name];
  }
  if (!same(last.hubOnly, given.hubOnly)) next.hubOnly = given.hubOnly;
  if (!same(last.retention, given.retention)) next.retention = given.retention;
  if (!same(next, current)) {
    await replica.setPolicy({ ...next, version: current.version + 1, updatedAt: now });
    logger.info({ version: current.version + 1 }, 'collection policy changed by the configuration');
  }
  await replica.setNote('given_policy', key);
}

type Given = Pick<SyncPolicy, 'collections' | 'hubOnly' | 'retention'>;
