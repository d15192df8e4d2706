import { Counter, Gauge, Histogram } from 'prom-client';
import type { ContentSync } from '../files/content-sync.js';
import type { Clock, Startable } from '../lifecycle.js';
import {
  AckTimes,
  AgentMetrics,
  BACKUP_METRIC,
  codeLabel,
  DURATION_BUCKETS,
  isProtocolError,
  ServedBytes,
} from '../observability/metrics.js';
import type { BackupScheduleStatus } from '../ops/backup-schedule.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import { storeBytes } from '../ops/store-bytes.js';
import type { Replica } from '../sync/replica.js';
import type { SyncSessionStats } from '../sync/session.js';
import { shortDeviceId } from '../transport/device-id.js';
import { APP_VERSION } from '../version.js';
import type { ChildSessions, SessionObserver } from './child-sessions.js';
import type { HubEvent } from './events.js';
import type { DeviceRegistry } from './registry.js';

/** Why a pairing attempt ended: paired, or the code of its failure. */
export type PairingOutcome = 'paired' | string;

export interface HubMetricsOptions {
  dataDir: string;
  hubId: DeviceId;
  replica: Pick<Replica, 'latestSeq' | 'subscribe'>;
  sessions: Pick<ChildSessions, 'list' | 'trouble' | 'totals'>;
  registry: Pick<DeviceRegistry, 'list'>;
  content: Pick<ContentSync, 'status' | 'bytesReceived' | 'bytesDeduplicated' | 'transfers'>;
  /** Conflicts the hub holds unresolved now. */
  openConflicts: () => number;
  /** The hub's events, from now until the returned function is called. */
  subscribe: (listener: (event: HubEvent) => void) => () => void;
  /** The scheduled backups, when the hub makes them (`--backup-dir`). */
  backups?: () => BackupScheduleStatus | undefined;
  clock: Clock;
}

/**
 * The hub's Prometheus metrics. Gauges and kept totals are read at scrape time from
 * what the parts keep (sessions, registry, content); events the hub publishes and
 * the sessions' observer drive the counters and histograms. Per device (approved
 * devices only, label `device` = the short device ID): info, connected, last seen,
 * pending changes each way and sync lag, at most 6 series.
 */
export class HubMetrics implements Startable, SessionObserver {
  private readonly o: HubMetricsOptions;
  readonly agent = new AgentMetrics();
  private unsubscribe: (() => void) | undefined;
  private readonly refused: Counter<'by' | 'reason'>;
  private readonly conflicts: Counter;
  private readonly backupRuns: Counter<'result'>;
  private readonly pairingAttempts: Counter;
  private readonly pairingFailures: Counter<'reason'>;
  private readonly rateLimited: Counter<'limit'>;
  private readonly rejected: Counter<'reason'>;
  private readonly syncFailures: Counter<'reason'>;
  private readonly protocolErrors: Counter<'reason'>;
  private readonly writesThrottledRevisions: Counter;
  private readonly writesThrottledSeconds: Counter;
  private readonly rounds: Histogram;
  private readonly propagation: Histogram;
  /** When each connected device's current sync round began (absent: caught up). */
  private readonly roundStart = new Map<DeviceId, number>();
  /** The last position of the hub's log each device acknowledged, as the metrics saw it. */
  private readonly acked = new Map<DeviceId, number>();
  private readonly written = new AckTimes();
  private readonly served = new ServedBytes();
  private unsubscribeChanges: (() => void) | undefined;

  constructor(options: HubMetricsOptions) {
    this.o = options;
    const registers = [this.agent.registry];
    const agent = this.agent;
    const seconds = (ms: number) => ms / 1000;

    new Gauge({
      name: 'trosyn_build_info',
      help: 'The version and role of this agent (always 1).',
      labelNames: ['version', 'role'],
      registers,
      collect() {
        this.set({ version: APP_VERSION, role: 'hub' }, 1);
      },
    });
    // One look at the registry and the sessions per scrape, shared by the device gauges.
    let look: Promise<Look> | undefined;
    const current = () => (look ??= this.look().finally(() => setImmediate(() => (look = undefined))));
    new Gauge({
      name: 'trosyn_devices',
      help: 'Devices registered with the hub, by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        const { counts } = await current();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'trosyn_connected_devices',
      help: 'Devices with a sync session open now.',
      registers,
      async collect() {
        this.set((await current()).connected);
      },
    });
    const perDevice = (
      name: string,
      help: string,
      labelNames: readonly string[],
      rows: (d: DeviceRow) => Array<[Record<string, string>, number]>,
    ) =>
      new Gauge<string>({
        name,
        help,
        labelNames: ['device', ...labelNames],
        registers,
        async collect() {
          this.reset();
          for (const d of (await current()).devices)
            for (const [labels, value] of rows(d)) this.set({ ...labels, device: d.device }, value);
        },
      });
    perDevice(
      'trosyn_device_info',
      "Maps an approved device's short ID to its name and group (always 1).",
      ['name', 'group'],
      (d) => [[{ name: d.name, group: d.group }, 1]],
    );
    perDevice(
      'trosyn_device_connected',
      'Whether an approved device has a sync session open (1) or not (0).',
      [],
      (d) => [[{}, d.connected ? 1 : 0]],
    );
    perDevice(
      'trosyn_device_last_seen_timestamp_seconds',
      'When the hub last heard from an approved device (Unix time); now while it is connected.',
      [],
      (d) => (d.lastSeen === undefined ? [] : [[{}, seconds(d.lastSeen)]]),
    );
    perDevice(
      'trosyn_device_pending_changes',
      "Positions of a change log still to reach the other side: the hub's log not yet acknowledged by the device (to_device, an upper bound: some are outside its read scope), the device's log not yet applied by the hub (from_device, while connected).",
      ['direction'],
      (d) => [
        ...(d.toDevice === undefined
          ? []
          : [[{ direction: 'to_device' }, d.toDevice] as [Record<string, string>, number]]),
        ...(d.fromDevice === undefined
          ? []
          : [[{ direction: 'from_device' }, d.fromDevice] as [Record<string, string>, number]]),
      ],
    );
    perDevice(
      'trosyn_device_sync_lag_seconds',
      'How long a connected device has been out of sync: 0 while caught up both ways, else the seconds since its current sync round began.',
      [],
      (d) => (d.lag === undefined ? [] : [[{}, d.lag]]),
    );

    const totals = () => this.o.sessions.totals();
    agent.keptCounter(
      'trosyn_changes_total',
      'Revisions received from devices and applied (in), and sent to devices (out).',
      ['direction'],
      () => {
        const t = totals();
        return [
          [{ direction: 'in' }, t.changesIn],
          [{ direction: 'out' }, t.changesOut],
        ];
      },
    );
    agent.keptCounter(
      'trosyn_sync_bytes_total',
      'Bytes of sync connections on the wire (after compression), in and out.',
      ['direction'],
      () => {
        const t = totals();
        return [
          [{ direction: 'in' }, t.bytesIn],
          [{ direction: 'out' }, t.bytesOut],
        ];
      },
    );
    agent.keptCounter(
      'trosyn_file_bytes_total',
      'Bytes of file content fetched from devices (in) and served to them (out).',
      ['direction'],
      () => [
        [{ direction: 'in' }, this.o.content.bytesReceived()],
        [{ direction: 'out' }, this.served.look(this.o.content.transfers())],
      ],
    );
    agent.keptCounter(
      'trosyn_file_deduplicated_bytes_total',
      'Bytes of received file versions that did not travel because their chunks were here already.',
      [],
      () => [[{}, this.o.content.bytesDeduplicated()]],
    );
    new Gauge({
      name: 'trosyn_files_pending',
      help: 'File versions whose content is not all at the hub yet.',
      registers,
      collect() {
        this.set(options.content.status().pending);
      },
    });
    new Gauge({
      name: 'trosyn_files_pending_bytes',
      help: 'Bytes of file content still to arrive at the hub.',
      registers,
      collect() {
        const s = options.content.status();
        this.set(Math.max(0, s.bytesTotal - s.bytesHere));
      },
    });
    new Gauge({
      name: 'trosyn_store_bytes',
      help: "Bytes of the hub's record store on disk (SQLite database and write-ahead log).",
      registers,
      collect() {
        this.set(storeBytes(options.dataDir) ?? 0);
      },
    });
    new Gauge({
      name: 'trosyn_change_log_position',
      help: "The latest position (sequence number) of the hub's change log.",
      registers,
      async collect() {
        this.set(await options.replica.latestSeq());
      },
    });
    new Gauge({
      name: 'trosyn_conflicts_open',
      help: 'Records in conflict that no one has resolved yet.',
      registers,
      collect() {
        this.set(options.openConflicts());
      },
    });
    // Only on a hub that makes scheduled backups: the backup alert fires on a stale
    // value, never on a hub without a schedule.
    const backups = options.backups;
    if (backups) {
      new Gauge({
        name: BACKUP_METRIC,
        help: 'When the newest complete scheduled backup was made (Unix time; 0 while there is none).',
        registers,
        collect() {
          this.set(seconds(backups()?.last?.at ?? 0));
        },
      });
      new Gauge({
        name: 'trosyn_last_backup_bytes',
        help: 'Bytes of the newest complete scheduled backup.',
        registers,
        collect() {
          this.set(backups()?.last?.bytes ?? 0);
        },
      });
    }
    this.backupRuns = new Counter({
      name: 'trosyn_backups_total',
      help: 'Scheduled backups since the hub started, by result (ok, failed).',
      labelNames: ['result'],
      registers: backups ? registers : [],
    });
    for (const result of ['ok', 'failed']) this.backupRuns.inc({ result }, 0);
    this.conflicts = new Counter({
      name: 'trosyn_conflicts_total',
      help: 'Conflicts opened since the hub started (concurrent edits of one record).',
      registers,
    });
    this.refused = new Counter({
      name: 'trosyn_refused_writes_total',
      help: "Revisions refused, by who refused them (hub: a device's writes; device: the hub's) and the reason's error code.",
      labelNames: ['by', 'reason'],
      registers,
    });
    this.pairingAttempts = new Counter({
      name: 'trosyn_pairing_attempts_total',
      help: 'Pairing exchanges started with the hub.',
      registers,
    });
    this.pairingFailures = new Counter({
      name: 'trosyn_pairing_failures_total',
      help: "Pairing attempts that failed, by the failure's error code (PAIRING_FAILED: a wrong code).",
      labelNames: ['reason'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'trosyn_rate_limited_total',
      help: 'Attempts refused by a rate limit: connection attempts per address, pairing attempts.',
      labelNames: ['limit'],
      registers,
    });
    this.rejected = new Counter({
      name: 'trosyn_connections_rejected_total',
      help: 'Connections refused before a session opened (TLS, unknown or revoked device, rate limit, bad handshake), by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.syncFailures = new Counter({
      name: 'trosyn_sync_failures_total',
      help: 'Sync sessions that ended in a failure rather than a routine close, by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'trosyn_protocol_errors_total',
      help: 'Connections ended by a frame or protocol error (bad frame, invalid or unexpected message), by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.writesThrottledRevisions = new Counter({
      name: 'trosyn_device_writes_throttled_total',
      help: 'Revisions from devices held back by the per-device write limit before the hub applied them (a device writing faster than its limit; nothing is refused).',
      registers,
    });
    this.writesThrottledSeconds = new Counter({
      name: 'trosyn_device_write_throttle_seconds_total',
      help: "Seconds devices' batches were held back by the per-device write limit, summed over devices.",
      registers,
    });
    this.rounds = new Histogram({
      name: 'trosyn_sync_round_duration_seconds',
      help: "Sync rounds with devices: from a device's connection, or the first batch after it was caught up, until it is caught up both ways.",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.propagation = new Histogram({
      name: 'trosyn_propagation_seconds',
      help: "From a change entering the hub's log until a connected device acknowledges it (measured on the hub's clock).",
      buckets: DURATION_BUCKETS,
      registers,
    });
  }

  isStarted(): boolean {
    return this.unsubscribe !== undefined;
  }

  async start(): Promise<void> {
    if (this.unsubscribe) return;
    this.unsubscribe = this.o.subscribe((e) => this.onEvent(e));
    this.unsubscribeChanges = this.o.replica.subscribe((c) =>
      this.written.written(c.seq, this.o.clock.now(), c.origin),
    );
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribeChanges?.();
    this.unsubscribe = undefined;
    this.unsubscribeChanges = undefined;
  }

  /** The Prometheus text of a scrape. */
  text(): Promise<string> {
    return this.agent.text();
  }

  /** A pairing attempt ended. */
  pairing(outcome: PairingOutcome): void {
    this.pairingAttempts.inc();
    if (outcome === 'paired') return;
    this.pairingFailures.inc({ reason: codeLabel(outcome) });
    if (outcome === 'PAIRING_RATE_LIMITED') this.rateLimited.inc({ limit: 'pairing' });
  }

  /** The sync service refused a connection before handing it on. */
  connectionRejected(code: string): void {
    this.rejected.inc({ reason: codeLabel(code) });
    if (code === 'RATE_LIMITED') this.rateLimited.inc({ limit: 'connection' });
    if (isProtocolError(code)) this.protocolErrors.inc({ reason: codeLabel(code) });
  }

  // --- SessionObserver ---------------------------------------------------------------------

  progress(deviceId: DeviceId, stats: SyncSessionStats): void {
    const now = this.o.clock.now();
    if (!this.roundStart.has(deviceId)) this.roundStart.set(deviceId, now);
    const before = this.acked.get(deviceId);
    if (before !== undefined)
      this.written.acknowledged(deviceId, before, stats.ackedUpTo, now, (s) => this.propagation.observe(s));
    if (before === undefined || stats.ackedUpTo > before) this.acked.set(deviceId, stats.ackedUpTo);
  }

  refusedWrites(deviceId: DeviceId, by: 'hub' | 'device', rejected: readonly RejectedRevision[]): void {
    void deviceId;
    for (const r of rejected) this.refused.inc({ by, reason: codeLabel(r.code) });
  }

  writesThrottled(deviceId: DeviceId, revisions: number, heldMs: number): void {
    void deviceId;
    this.writesThrottledRevisions.inc(revisions);
    this.writesThrottledSeconds.inc(heldMs / 1000);
  }

  // --- internals ---------------------------------------------------------------------------

  private onEvent(e: HubEvent): void {
    const now = this.o.clock.now();
    switch (e.type) {
      case 'device-connected':
        this.roundStart.set(e.session.deviceId, now);
        break;
      case 'sync-completed': {
        const start = this.roundStart.get(e.session.deviceId);
        if (start !== undefined) this.rounds.observe((now - start) / 1000);
        this.roundStart.delete(e.session.deviceId);
        break;
      }
      case 'device-disconnected':
        this.roundStart.delete(e.deviceId);
        // The last look at what this connection served, before its exchange goes.
        this.served.look(this.o.content.transfers());
        this.served.ended(e.deviceId);
        break;
      case 'sync-failed':
        this.syncFailures.inc({ reason: codeLabel(e.code) });
        if (isProtocolError(e.code)) this.protocolErrors.inc({ reason: codeLabel(e.code) });
        break;
      case 'conflict-opened':
        this.conflicts.inc();
        break;
      case 'backup-completed':
        this.backupRuns.inc({ result: 'ok' });
        break;
      case 'backup-failed':
        this.backupRuns.inc({ result: 'failed' });
        break;
      default:
        break;
    }
  }

  /** The registry and the sessions as one scrape sees them. */
  private async look(): Promise<Look> {
    const now = this.o.clock.now();
    const [all, hubLatest] = await Promise.all([this.o.registry.list(), this.o.replica.latestSeq()]);
    const live = new Map(this.o.sessions.list().map((s) => [s.deviceId, s]));
    const counts = { approved: 0, pending: 0, revoked: 0 };
    const devices: DeviceRow[] = [];
    for (const d of all) {
      counts[d.state]++;
      if (d.state !== 'approved') continue;
      const session = live.get(d.deviceId);
      const last = this.o.sessions.trouble(d.deviceId).lastSession;
      const stats = session?.stats ?? last?.stats;
      let lag: number | undefined;
      if (session) {
        if (session.caughtUp) lag = 0;
        else {
          // Behind although no batch has moved since it was last caught up: the round begins now.
          if (!this.roundStart.has(d.deviceId)) this.roundStart.set(d.deviceId, now);
          lag = (now - (this.roundStart.get(d.deviceId) as number)) / 1000;
        }
      }
      devices.push({
        device: shortDeviceId(d.deviceId),
        name: d.name,
        group: d.group,
        connected: session !== undefined,
        ...(session
          ? { lastSeen: now }
          : d.lastSeen !== null || last
            ? { lastSeen: Math.max(d.lastSeen ?? 0, last?.endedAt ?? 0) }
            : {}),
        ...(stats && { toDevice: Math.max(0, hubLatest - stats.ackedUpTo) }),
        ...(session && {
          fromDevice: Math.max(
            0,
            Math.max(session.stats.peerLatest, session.stats.appliedUpTo) - session.stats.appliedUpTo,
          ),
        }),
        ...(lag !== undefined && { lag }),
      });
    }
    return { counts, connected: live.size, devices };
  }
}

/** One approved device as a scrape sees it. */
interface DeviceRow {
  device: string;
  name: string;
  group: string;
  connected: boolean;
  lastSeen?: number;
  toDevice?: number;
  fromDevice?: number;
  lag?: number;
}

interface Look {
  counts: Record<'approved' | 'pending' | 'revoked', number>;
  connected: number;
  devices: DeviceRow[];
}
