import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { Logger } from 'pino';
import { HubBrowser } from '../discovery/multicast.js';
import { hubCandidates, LastAddressMemory, parseStaticAddress } from '../discovery/static.js';
import type { Clock, Startable } from '../lifecycle.js';
import { componentLogger } from '../observability/logger.js';
import type { DeviceId, RejectedRevision, Seq } from '../store/types.js';
import type { Replica } from '../sync/replica.js';
import { SyncSession, type SyncSessionStats } from '../sync/session.js';
import {
  type ClientStatus,
  type HubAddress,
  type HubConnection,
  TransportClient,
} from '../transport/client.js';
import { type ClockOffset, clockSkewWarning } from '../transport/clock-offset.js';
import type { DeviceIdentity } from '../transport/identity.js';
import { syncChannel } from '../transport/sync-channel.js';
import { chunkLink } from '../transport/chunk-link.js';
import { ChunkExchange } from '../files/chunk-exchange.js';
import type { ChunkStore } from '../files/chunk-store.js';
import type { ContentSync } from '../files/content-sync.js';
import { FILES_FEATURE, POLICY_FEATURE } from '../protocol/constants.js';
import { parseSyncPolicy } from '../sync/policy.js';
import { APP_VERSION } from '../version.js';
import type { ChildInit } from './options.js';
import { loadPairedHub } from './paired-hub.js';
import type { SyncStatus } from './sync-status.js';

type Events = {
  refused: [RejectedRevision[]];
  /** A batch was applied or acknowledged in the session with the hub. */
  progress: [SyncSessionStats];
  connected: [];
  disconnected: [{ code?: string }];
  'caught-up': [];
};

export interface HubLinkOptions {
  init: ChildInit;
  identity: DeviceIdentity;
  hubId: DeviceId;
  replica: Replica;
  /** Brings file content; the hub's connection is where it is fetched from. */
  content: ContentSync;
  chunks: ChunkStore;
  logger: Logger;
  clock: Clock;
}

/**
 * A child's one outbound connection to its hub, and the sync session over it:
 * finds the hub (last good address, static ones, LAN discovery), reconnects with
 * backoff, and keeps what the hub has acknowledged of this child's change log.
 */
export class HubLink extends EventEmitter<Events> implements Startable {
  private readonly o: HubLinkOptions;
  private readonly memory: LastAddressMemory;
  private browser: HubBrowser | undefined;
  private client: TransportClient | undefined;
  private session: SyncSession | undefined;
  /** The connection the session runs on. */
  private conn: HubConnection['conn'] | undefined;
  /** What sessions that ended had moved, so totals never go back. */
  private readonly ended = { changesIn: 0, changesOut: 0, bytesIn: 0, bytesOut: 0 };
  private readonly refused: RejectedRevision[] = [];
  /** How far the hub has acknowledged this child's change log, and which log that was. */
  private acked = { log: '', seq: 0 };
  /** The hub's clock against ours, as last measured (kept while offline). */
  private hubClock: ClockOffset | undefined;

  constructor(options: HubLinkOptions) {
    super();
    this.o = options;
    this.memory = new LastAddressMemory({ dataDir: options.init.dataDir, logger: options.logger });
  }

  isStarted(): boolean {
    return this.client !== undefined;
  }

  /** Loads what the hub acknowledged before and starts LAN discovery; connecting is `connect()`. */
  async start(): Promise<void> {
    this.acked = parseAcked(await this.o.replica.getNote(`acked:${this.o.hubId}`));
    const { init } = this.o;
    if (this.browser || init.hubAddresses || init.discovery === false) return;
    const d = init.discovery === true || init.discovery === undefined ? {} : init.discovery;
    const browser = new HubBrowser({
      deviceId: this.o.hubId,
      logger: this.o.logger,
      clock: this.o.clock,
      ...d,
    });
    try {
      await browser.start();
      this.browser = browser;
    } catch (err) {
      this.o.logger.warn(
        { err: (err as Error).message },
        'LAN discovery unavailable; using known addresses only',
      );
    }
  }

  async stop(): Promise<void> {
    await this.disconnect();
    await this.browser?.stop();
    this.browser = undefined;
  }

  /** Keeps trying to reach the hub until `disconnect()`. */
  async connect(): Promise<void> {
    if (this.client) return;
    const { init, identity, hubId } = this.o;
    const client = new TransportClient({
      identity,
      local: {
        name: init.name ?? 'trosyn-child',
        role: 'child',
        appVersion: APP_VERSION,
        heartbeatMs: init.heartbeatMs ?? 15_000,
        features: [FILES_FEATURE, POLICY_FEATURE],
        ...(init.compression && { compression: init.compression }),
      },
      hubId,
      addresses: () => this.addresses(),
      onConnected: (hub) => this.openSession(hub),
      ...(init.backoff && { backoff: init.backoff }),
      // Only the hub's own verdict stops retrying. Another certificate at an address
      // (a spoofed announcement, a stale address) just means: try the next one.
      fatalCodes: ['DEVICE_REVOKED'],
      logger: this.o.logger,
      clock: this.o.clock,
    });
    client.on('connected', () => this.emit('connected'));
    client.on('disconnected', (cause) => {
      const code = (cause as { code?: string } | undefined)?.code;
      this.emit('disconnected', code ? { code } : {});
    });
    this.client = client;
    await client.start();
  }

  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.stop();
    await this.session?.stop();
    this.session = undefined;
  }

  /** Tries to reach the hub now instead of waiting out the backoff. */
  retryNow(): void {
    this.client?.retryNow();
  }

  async status(paused: boolean): Promise<Omit<SyncStatus, 'deviceId'>> {
    const connection: ClientStatus = this.client?.status() ?? { state: 'stopped', attempts: 0 };
    const session = this.session?.getStats();
    this.noteSessionAck();
    const { replica, hubId } = this.o;
    // The hub's acknowledgement counts only for the log it was made for: after this
    // store was recreated or rolled back, everything is pending again.
    const mine = (await replica.changeLog()).id;
    const since = this.acked.log === mine ? this.acked.seq : 0;
    const hubLog = this.session?.logs().peer ?? (await replica.cursorFor(hubId)).log;
    const pending = await replica.pendingSince(since as Seq, { device: hubId, log: hubLog });
    const files = this.o.content.status();
    let state: SyncStatus['state'] = 'offline';
    if (paused) state = 'paused';
    else if (connection.state === 'failed') state = 'error';
    else if (connection.state === 'connected')
      state = this.session?.isCaughtUp() && files.pending === 0 && !files.busy ? 'synced' : 'syncing';
    const warning = this.hubClock && clockSkewWarning(this.hubClock);
    return {
      state,
      connection,
      hubId,
      pending,
      files,
      refused: [...this.refused],
      ...(session && { session }),
      ...(this.hubClock && { hubClock: { ...this.hubClock } }),
      ...(warning && { clockWarning: warning }),
    };
  }

  private async openSession(hub: HubConnection): Promise<void> {
    const { replica } = this.o;
    // Measured over the hello and welcome, then at every heartbeat.
    const clockMeasured = (reading: ClockOffset) => (this.hubClock = reading);
    const measured = hub.conn.peerClock();
    if (measured) clockMeasured(measured);
    hub.conn.on('clock', clockMeasured);
    // Before any wait: the hub sends its policy as soon as the session is set up.
    hub.conn.handle('policy.set', async (params) => {
      const policy = parseSyncPolicy(params);
      const before = replica.getPolicy().version;
      const { resettled } = await replica.setPolicy(policy);
      if (policy.version !== before)
        this.o.logger.info({ version: policy.version, resettled }, "adopted the hub's collection policy");
      return { version: policy.version };
    });
    if (!this.o.init.hubAddresses)
      await this.memory.remember({ ...hub.address, deviceId: hub.hubId }).catch(() => undefined);
    const session = new SyncSession({
      replica,
      channel: syncChannel(hub.conn),
      peer: hub.hubId,
      version: hub.handshake.version,
      // Every line of this connection names the hub and the session (a new id per connection).
      logger: componentLogger(this.o.logger, 'sync', {
        deviceId: hub.hubId,
        session: randomBytes(4).toString('hex'),
      }),
      clock: this.o.clock,
    });
    this.session = session;
    this.conn = hub.conn;
    session.on('progress', (stats) => this.emit('progress', stats));
    const noteAcked = () => {
      this.noteSessionAck(session);
      replica.setNote(`acked:${hub.hubId}`, JSON.stringify(this.acked)).catch(() => undefined);
    };
    session.on('refused', (list) => {
      this.refused.push(...list);
      this.refused.splice(0, Math.max(0, this.refused.length - 100));
      this.o.logger.warn({ count: list.length, first: list[0] }, 'the hub refused writes');
      this.emit('refused', list);
    });
    session.on('caught-up', () => {
      noteAcked();
      this.emit('caught-up');
    });
    // File content over the same connection: ours served to the hub, the hub's fetched.
    if (hub.handshake.features.includes(FILES_FEATURE)) {
      const exchange = new ChunkExchange(chunkLink(hub.conn), this.o.chunks, { logger: this.o.logger });
      const detach = this.o.content.attach(hub.hubId, exchange);
      hub.conn.once('close', (cause) => {
        detach();
        exchange.abort(cause ?? new Error('connection closed'));
      });
    }
    hub.conn.once('close', () => {
      const stats = session.getStats();
      const wire = hub.conn.getStats();
      this.ended.changesIn += stats.applied;
      this.ended.changesOut += stats.sent;
      this.ended.bytesIn += wire.bytesIn;
      this.ended.bytesOut += wire.bytesOut;
      if (this.session === session) {
        noteAcked();
        this.session = undefined;
        this.conn = undefined;
      }
    });
    await session.start();
  }

  /** Changes (revisions) and bytes (frames on the wire) moved with the hub since start, in and out. */
  totals(): { changesIn: number; changesOut: number; bytesIn: number; bytesOut: number } {
    const sum = { ...this.ended };
    const stats = this.session?.getStats();
    const wire = this.conn?.getStats();
    if (stats && wire) {
      sum.changesIn += stats.applied;
      sum.changesOut += stats.sent;
      sum.bytesIn += wire.bytesIn;
      sum.bytesOut += wire.bytesOut;
    }
    return sum;
  }

  /** The session's counters now, while connected. */
  sessionStats(): SyncSessionStats | undefined {
    return this.session?.getStats();
  }

  /** Takes the hub's acknowledgement of this child's log from the running session. */
  private noteSessionAck(session = this.session): void {
    const log = session?.logs().mine;
    if (!session || log === undefined) return;
    const upTo = session.getStats().ackedUpTo;
    if (log !== this.acked.log || upTo > this.acked.seq) this.acked = { log, seq: upTo };
  }

  /** Where to look for the hub now: the last good address, static ones, then what discovery sees. */
  private async addresses(): Promise<HubAddress[]> {
    const { init, hubId } = this.o;
    if (init.hubAddresses) return init.hubAddresses();
    const statics = [...(init.staticAddresses ?? []), ...this.pairedAddresses()].flatMap((text) => {
      try {
        return [parseStaticAddress(text)];
      } catch {
        return [];
      }
    });
    const last = await this.memory.load();
    let discovered = this.browser?.list() ?? [];
    if (discovered.length === 0 && this.browser) {
      // Ask now and give the hub a moment to answer, rather than waiting for its next announcement.
      this.browser.query();
      await Promise.race([
        once(this.browser, 'found'),
        new Promise((resolve) => this.o.clock.setTimeout(() => resolve(undefined), 1500)),
      ]);
      discovered = this.browser.list();
    }
    return hubCandidates({ ...(last && { last }), statics, discovered, deviceId: hubId }).map((c) => ({
      host: c.host,
      port: c.port,
    }));
  }

  private pairedAddresses(): string[] {
    try {
      return (loadPairedHub(this.o.init.dataDir)?.addresses ?? []).map(
        (a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`,
      );
    } catch {
      return [];
    }
  }
}

/** The stored acknowledgement: `{log, seq}` JSON (a bare number from earlier versions names no log). */
function parseAcked(text: string | undefined): { log: string; seq: number } {
  if (!text) return { log: '', seq: 0 };
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null) {
      const { log, seq } = v as { log?: unknown; seq?: unknown };
      if (typeof log === 'string' && typeof seq === 'number') return { log, seq };
    }
  } catch {
    // fall through
  }
  return { log: '', seq: 0 };
}
