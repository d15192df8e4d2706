import { Counter, Gauge, Histogram } from 'prom-client';
import type { ContentSync } from '../files/content-sync.js';
import type { Clock, Startable } from '../lifecycle.js';
import {
  AckTimes,
  AgentMetrics,
  codeLabel,
  DURATION_BUCKETS,
  isProtocolError,
  ServedBytes,
} from '../observability/metrics.js';
import { storeBytes } from '../ops/store-bytes.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import type { Replica } from '../sync/replica.js';
import type { SyncSessionStats } from '../sync/session.js';
import { APP_VERSION } from '../version.js';
import type { HubLink } from './hub-link.js';
import type { SyncStatus } from './sync-status.js';

export interface ChildMetricsOptions {
  dataDir: string;
  hubId: DeviceId;
  replica: Pick<Replica, 'latestSeq' | 'subscribe' | 'conflicts'>;
  link: Pick<HubLink, 'on' | 'off' | 'totals' | 'sessionStats'>;
  content: Pick<ContentSync, 'status' | 'bytesReceived' | 'bytesDeduplicated' | 'transfers'>;
  /** The agent's sync status (the outbox is counted there). */
  status: () => Promise<SyncStatus>;
  clock: Clock;
}

/**
 * A child agent's Prometheus metrics, served by its local API at `/metrics`: the
 * link to the hub, the outbox, throughput, refusals, conflicts, files, store size,
 * and the durations of sync rounds and of the trip of a local write to the hub's
 * acknowledgement (on this device's clock).
 */
export class ChildMetrics implements Startable {
  private readonly o: ChildMetricsOptions;
  readonly agent = new AgentMetrics();
  private readonly conflicted = new Set<string>();
  private readonly written = new AckTimes();
  private readonly served = new ServedBytes();
  private roundStart: number | undefined;
  private stops: Array<() => void> = [];
  private started = false;

  private readonly refused: Counter<'by' | 'reason'>;
  private readonly conflicts: Counter;
  private readonly disconnects: Counter<'reason'>;
  private readonly protocolErrors: Counter<'reason'>;
  private readonly rounds: Histogram;
  private readonly propagation: Histogram;

  constructor(options: ChildMetricsOptions) {
    this.o = options;
    const registers = [this.agent.registry];
    const agent = this.agent;
    // One status per scrape, shared by the gauges that read it.
    let look: Promise<SyncStatus> | undefined;
    const status = () => (look ??= options.status().finally(() => setImmediate(() => (look = undefined))));
    const lag = (s: SyncStatus): number | undefined => {
      if (s.connection.state !== 'connected') return undefined;
      if (s.state === 'synced') return 0;
      this.roundStart ??= options.clock.now();
      return (options.clock.now() - this.roundStart) / 1000;
    };

    new Gauge({
      name: 'trosyn_build_info',
      help: 'The version and role of this agent (always 1).',
      labelNames: ['version', 'role'],
      registers,
      collect() {
        this.set({ version: APP_VERSION, role: 'child' }, 1);
      },
    });
    new Gauge({
      name: 'trosyn_hub_connected',
      help: 'Whether this device has a sync session with its hub open (1) or not (0).',
      registers,
      async collect() {
        this.set((await status()).connection.state === 'connected' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'trosyn_pending_changes',
      help: "Changes still to cross: this device's writes the hub has not acknowledged (to_hub, the outbox), the hub's log still to arrive in the initial sync (from_hub, while connected).",
      labelNames: ['direction'],
      registers,
      async collect() {
        this.reset();
        this.set({ direction: 'to_hub' }, (await status()).pending);
        const session = options.link.sessionStats();
        if (session)
          this.set(
            { direction: 'from_hub' },
            Math.max(0, Math.max(session.peerLatest, session.appliedUpTo) - session.appliedUpTo),
          );
      },
    });
    new Gauge({
      name: 'trosyn_sync_lag_seconds',
      help: 'While connected: 0 when synced (records and file content), else the seconds since the current sync round began.',
      registers,
      async collect() {
        this.reset();
        const seconds = lag(await status());
        if (seconds !== undefined) this.set(seconds);
      },
    });
    const totals = () => options.link.totals();
    agent.keptCounter(
      'trosyn_changes_total',
      "Revisions received from the hub and applied (in), and this device's sent to the hub (out).",
      ['direction'],
      () => [
        [{ direction: 'in' }, totals().changesIn],
        [{ direction: 'out' }, totals().changesOut],
      ],
    );
    agent.keptCounter(
      'trosyn_sync_bytes_total',
      'Bytes of the sync connection on the wire (after compression), in and out.',
      ['direction'],
      () => [
        [{ direction: 'in' }, totals().bytesIn],
        [{ direction: 'out' }, totals().bytesOut],
      ],
    );
    agent.keptCounter(
      'trosyn_file_bytes_total',
      'Bytes of file content fetched from the hub (in) and served to it (out).',
      ['direction'],
      () => [
        [{ direction: 'in' }, options.content.bytesReceived()],
        [{ direction: 'out' }, this.served.look(options.content.transfers())],
      ],
    );
    agent.keptCounter(
      'trosyn_file_deduplicated_bytes_total',
      'Bytes of received file versions that did not travel because their chunks were here already.',
      [],
      () => [[{}, options.content.bytesDeduplicated()]],
    );
    new Gauge({
      name: 'trosyn_files_pending',
      help: 'File versions whose content is not all on this device yet.',
      registers,
      collect() {
        this.set(options.content.status().pending);
      },
    });
    new Gauge({
      name: 'trosyn_files_pending_bytes',
      help: 'Bytes of file content still to arrive on this device.',
      registers,
      collect() {
        const s = options.content.status();
        this.set(Math.max(0, s.bytesTotal - s.bytesHere));
      },
    });
    new Gauge({
      name: 'trosyn_store_bytes',
      help: "Bytes of this device's record store on disk (SQLite database and write-ahead log).",
      registers,
      collect() {
        this.set(storeBytes(options.dataDir) ?? 0);
      },
    });
    new Gauge({
      name: 'trosyn_change_log_position',
      help: "The latest position (sequence number) of this device's change log.",
      registers,
      async collect() {
        this.set(await options.replica.latestSeq());
      },
    });
    const conflicted = this.conflicted;
    new Gauge({
      name: 'trosyn_conflicts_open',
      help: 'Records in conflict on this device that no one has resolved yet.',
      registers,
      collect() {
        this.set(conflicted.size);
      },
    });
    this.conflicts = new Counter({
      name: 'trosyn_conflicts_total',
      help: 'Conflicts opened on this device since the agent started.',
      registers,
    });
    this.refused = new Counter({
      name: 'trosyn_refused_writes_total',
      help: "This device's writes the hub refused (by=hub), by the reason's error code.",
      labelNames: ['by', 'reason'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'trosyn_disconnects_total',
      help: 'Sessions with the hub that ended, by the error code they ended with.',
      labelNames: ['reason'],
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'trosyn_protocol_errors_total',
      help: 'Sessions with the hub ended by a frame or protocol error, by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.rounds = new Histogram({
      name: 'trosyn_sync_round_duration_seconds',
      help: 'Sync rounds with the hub: from connecting, or a local write after being caught up, until caught up both ways.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.propagation = new Histogram({
      name: 'trosyn_propagation_seconds',
      help: "From a local write until the hub acknowledges it (measured on this device's clock).",
      buckets: DURATION_BUCKETS,
      registers,
    });
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { link, replica, clock } = this.o;
    for (const c of await replica.conflicts())
      if (c.status !== 'resolved') this.conflicted.add(`${c.collection}\u0000${c.id}`);
    this.stops.push(
      replica.subscribe((e) => {
        const key = `${e.collection}\u0000${e.id}`;
        if (e.conflict !== 'none' && !this.conflicted.has(key)) {
          this.conflicted.add(key);
          this.conflicts.inc();
        } else if (e.conflict === 'none') this.conflicted.delete(key);
        if (e.origin !== 'local') return;
        this.written.written(e.seq, clock.now(), 'local');
        this.roundStart ??= clock.now();
      }),
    );
    const onConnected = () => {
      this.roundStart = clock.now();
    };
    const onCaughtUp = () => {
      if (this.roundStart !== undefined) this.rounds.observe((clock.now() - this.roundStart) / 1000);
      this.roundStart = undefined;
    };
    // Positions acknowledged are forgotten, so each write is timed once, however many sessions it waited.
    const onProgress = (stats: SyncSessionStats) => {
      this.written.acknowledged('hub', 0, stats.ackedUpTo, clock.now(), (s) => this.propagation.observe(s));
      this.written.forget(stats.ackedUpTo);
    };
    const onRefused = (list: RejectedRevision[]) => {
      for (const r of list) this.refused.inc({ by: 'hub', reason: codeLabel(r.code) });
    };
    const onDisconnected = ({ code }: { code?: string }) => {
      this.disconnects.inc({ reason: code === undefined ? 'NONE' : codeLabel(code) });
      if (isProtocolError(code)) this.protocolErrors.inc({ reason: codeLabel(code) });
      this.roundStart = undefined;
      // The last look at what this connection served, before its exchange goes.
      this.served.look(this.o.content.transfers());
      this.served.ended(this.o.hubId);
    };
    link.on('connected', onConnected);
    link.on('caught-up', onCaughtUp);
    link.on('progress', onProgress);
    link.on('refused', onRefused);
    link.on('disconnected', onDisconnected);
    this.stops.push(() => {
      link.off('connected', onConnected);
      link.off('caught-up', onCaughtUp);
      link.off('progress', onProgress);
      link.off('refused', onRefused);
      link.off('disconnected', onDisconnected);
    });
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    this.started = false;
  }

  /** The Prometheus text of a scrape. */
  text(): Promise<string> {
    return this.agent.text();
  }
}
