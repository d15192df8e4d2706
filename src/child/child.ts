import { EventEmitter, once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { InterfaceSelectionOptions } from '../discovery/interfaces.js';
import { HubBrowser } from '../discovery/multicast.js';
import { hubCandidates, LastAddressMemory, parseStaticAddress } from '../discovery/static.js';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import type { DeviceId, RejectedRevision, RetentionPolicy, Seq } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import type { Replica } from '../sync/replica.js';
import { nodeReplica } from '../sync/node-replica.js';
import { SyncSession, type SyncSessionStats } from '../sync/session.js';
import type { BackoffOptions } from '../transport/backoff.js';
import { type ClientStatus, type HubAddress, TransportClient } from '../transport/client.js';
import { TransportError } from '../transport/errors.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../transport/identity.js';
import { syncChannel } from '../transport/sync-channel.js';
import { APP_VERSION } from '../version.js';
import type { CompressionCodec } from '../protocol/compression.js';
import { type LocalApiOptions, LocalApiServer } from './local-api.js';
import { loadPairedHub, NotPairedError } from './paired-hub.js';
import { DataDirLock } from '../ops/data-dir.js';

export interface ChildOptions {
  /** The child's data directory: identity, database, paired hub. Created if missing. */
  dataDir: string;
  /** Name shown on the hub. Default 'trosyn-child'. */
  name?: string;
  /** The pinned hub. Default: the hub this data directory paired with (hub.json). */
  hubId?: DeviceId;
  /** Static `host:port` addresses of the hub, tried after the last good one. */
  staticAddresses?: string[];
  /** Find the hub by LAN discovery when the known addresses fail. Default true. */
  discovery?: boolean | (InterfaceSelectionOptions & { discoveryPort?: number });
  /** Replaces the built-in address search (last, static, discovered) entirely; for tests and embedding. */
  hubAddresses?: () => HubAddress[] | Promise<HubAddress[]>;
  /** Compression codecs offered to the hub, best first. Default: every one this build has. */
  compression?: CompressionCodec[];
  /** Heartbeat interval (ms) this child offers; the hub's choice wins. Default 15 s. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  collections?: Record<string, CollectionOptions>;
  synchronous?: 'full' | 'normal' | 'off';
  /** History kept per record, applied hourly and at start. Default: keep everything. */
  retention?: RetentionPolicy;
  /** The local REST API for apps on this machine (127.0.0.1 only); off unless given. */
  localApi?: Omit<LocalApiOptions, 'dataDir'>;
  /**
   * The store file is missing or empty although this child has run before: start
   * with an empty store and get back from the hub what it holds (this child's own
   * synced writes included). Without it such a start fails with STORE_MISSING.
   * Default false.
   */
  recover?: boolean;
  logger?: Logger;
  clock?: Clock;
}

/** What the end user's app shows: synced / syncing / offline / paused / error. */
export interface SyncStatus {
  state: 'synced' | 'syncing' | 'offline' | 'paused' | 'error';
  connection: ClientStatus;
  hubId: DeviceId;
  deviceId: DeviceId;
  /** Local changes the hub has not acknowledged yet (the outbox). */
  pending: number;
  /** The latest writes the hub refused (e.g. SCOPE_WRITE_DENIED), newest last. They stay on this device. */
  refused: RejectedRevision[];
  session?: SyncSessionStats;
}

type Events = {
  /** The hub refused some of this device's writes; each entry names the cause. */
  refused: [RejectedRevision[]];
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
  private readonly clock: Clock;
  private identity: DeviceIdentity | undefined;
  private replicaInstance: Replica | undefined;
  private hubId: DeviceId | undefined;
  private client: TransportClient | undefined;
  private browser: HubBrowser | undefined;
  private memory: LastAddressMemory | undefined;
  private session: SyncSession | undefined;
  private paused = false;
  private api: LocalApiServer | undefined;
  private readonly refused: RejectedRevision[] = [];
  /** How far the hub has acknowledged this child's change log, and which log that was. */
  private acked = { log: '', seq: 0 };
  private lock: DataDirLock | undefined;

  constructor(options: ChildOptions) {
    super();
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'child');
    this.clock = options.clock ?? systemClock;
  }

  isStarted(): boolean {
    return this.replicaInstance !== undefined;
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
    if (this.replicaInstance) return;
    // One agent per data directory, for as long as it runs.
    const lock = new DataDirLock(this.options.dataDir, 'child');
    await lock.start();
    try {
      await this.startParts();
    } catch (err) {
      await this.stop();
      await lock.stop();
      throw err;
    }
    this.lock = lock;
  }

  private async startParts(): Promise<void> {
    const { dataDir } = this.options;
    const hubId = this.options.hubId ?? loadPairedHub(dataDir)?.hubId;
    if (!hubId) throw new NotPairedError(dataDir);
    // A paired child has a store (pairing makes it): if it is gone, it was lost.
    const hasRun = existsSync(join(dataDir, 'identity', 'cert.pem')) && loadPairedHub(dataDir) !== undefined;
    const identity = await loadOrCreateIdentity(join(dataDir, 'identity'), {
      commonName: this.options.name ?? 'trosyn-child',
      logger: this.logger,
    });
    const replica = nodeReplica({
      dataDir,
      deviceId: identity.deviceId,
      role: 'child',
      ...(this.options.collections && { collections: this.options.collections }),
      ...(this.options.synchronous && { synchronous: this.options.synchronous }),
      ...(this.options.retention && { retention: this.options.retention }),
      watchExternalWritesMs: 250,
      requireExisting: hasRun && !this.options.recover,
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    await replica.start();
    this.identity = identity;
    this.replicaInstance = replica;
    this.hubId = hubId;
    this.acked = parseAcked(await replica.getNote(`acked:${hubId}`));
    this.memory = new LastAddressMemory({ dataDir, logger: this.logger });
    if (!this.options.hubAddresses && this.options.discovery !== false) {
      const d =
        this.options.discovery === true || this.options.discovery === undefined ? {} : this.options.discovery;
      this.browser = new HubBrowser({
        deviceId: hubId,
        logger: this.logger,
        ...d,
        ...(this.options.clock && { clock: this.options.clock }),
      });
      try {
        await this.browser.start();
      } catch (err) {
        this.logger.warn(
          { err: (err as Error).message },
          'LAN discovery unavailable; using known addresses only',
        );
        this.browser = undefined;
      }
    }
    if (!this.paused) await this.connect();
    if (this.options.localApi) {
      const api = new LocalApiServer(this, {
        dataDir,
        logger: this.logger,
        ...(this.options.clock && { clock: this.options.clock }),
        ...this.options.localApi,
      });
      await api.start();
      this.api = api;
    }
    this.logger.info({ deviceId: identity.deviceId, hubId }, 'child agent started');
  }

  async stop(): Promise<void> {
    if (!this.replicaInstance) return;
    await this.api?.stop();
    this.api = undefined;
    await this.disconnect();
    await this.browser?.stop();
    this.browser = undefined;
    await this.replicaInstance.stop();
    this.replicaInstance = undefined;
    await this.lock?.stop();
    this.lock = undefined;
    this.logger.info('child agent stopped');
  }

  /** The local API's port, when it runs. */
  get apiPort(): number | undefined {
    return this.api?.port;
  }

  /** Stops syncing (the app keeps working locally); `resume()` continues from the cursors. */
  async pause(): Promise<void> {
    this.paused = true;
    await this.disconnect();
  }

  async resume(): Promise<void> {
    this.paused = false;
    if (this.replicaInstance && !this.client) await this.connect();
  }

  /** Tries to reach the hub now instead of waiting out the backoff. */
  syncNow(): void {
    this.client?.retryNow();
  }

  async status(): Promise<SyncStatus> {
    const connection = this.client?.status() ?? { state: 'stopped' as const, attempts: 0 };
    const session = this.session?.getStats();
    this.noteSessionAck();
    let pending = 0;
    const replica = this.replicaInstance;
    if (replica) {
      // The hub's acknowledgement counts only for the log it was made for: after this
      // store was recreated or rolled back, everything is pending again.
      const mine = (await replica.changeLog()).id;
      const since = this.acked.log === mine ? this.acked.seq : 0;
      const hubLog = this.session?.logs().peer ?? (await replica.cursorFor(this.hubId as DeviceId)).log;
      pending = await replica.pendingSince(since as Seq, { device: this.hubId as DeviceId, log: hubLog });
    }
    let state: SyncStatus['state'] = 'offline';
    if (this.paused) state = 'paused';
    else if (connection.state === 'failed') state = 'error';
    else if (connection.state === 'connected') state = this.session?.isCaughtUp() ? 'synced' : 'syncing';
    return {
      state,
      connection,
      hubId: this.hubId as DeviceId,
      deviceId: this.deviceId,
      pending,
      refused: [...this.refused],
      ...(session && { session }),
    };
  }

  /** Where to look for the hub now: the last good address, static ones, then what discovery sees. */
  private async addresses(): Promise<HubAddress[]> {
    if (this.options.hubAddresses) return this.options.hubAddresses();
    const statics = [...(this.options.staticAddresses ?? []), ...this.pairedAddresses()].flatMap((text) => {
      try {
        return [parseStaticAddress(text)];
      } catch {
        return [];
      }
    });
    const last = await this.memory?.load();
    let discovered = this.browser?.list() ?? [];
    if (discovered.length === 0 && this.browser) {
      // Ask now and give the hub a moment to answer, rather than waiting for its next announcement.
      this.browser.query();
      await Promise.race([once(this.browser, 'found'), new Promise((r) => setTimeout(r, 1500).unref())]);
      discovered = this.browser.list();
    }
    return hubCandidates({
      ...(last && { last }),
      statics,
      discovered,
      ...(this.hubId && { deviceId: this.hubId }),
    }).map((c) => ({
      host: c.host,
      port: c.port,
    }));
  }

  private pairedAddresses(): string[] {
    try {
      return (loadPairedHub(this.options.dataDir)?.addresses ?? []).map(
        (a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`,
      );
    } catch {
      return [];
    }
  }

  private async connect(): Promise<void> {
    const identity = this.identity as DeviceIdentity;
    const replica = this.replicaInstance as Replica;
    const client = new TransportClient({
      identity,
      local: {
        name: this.options.name ?? 'trosyn-child',
        role: 'child',
        appVersion: APP_VERSION,
        heartbeatMs: this.options.heartbeatMs ?? 15_000,
        ...(this.options.compression && { compression: this.options.compression }),
      },
      hubId: this.hubId as DeviceId,
      addresses: () => this.addresses(),
      onConnected: async (hub) => {
        if (!this.options.hubAddresses)
          await this.memory?.remember({ ...hub.address, deviceId: hub.hubId }).catch(() => undefined);
        const session = new SyncSession({
          replica,
          channel: syncChannel(hub.conn),
          peer: hub.hubId,
          logger: componentLogger(this.logger, 'sync'),
        });
        this.session = session;
        const noteAcked = () => {
          this.noteSessionAck(session);
          replica.setNote(`acked:${hub.hubId}`, JSON.stringify(this.acked)).catch(() => undefined);
        };
        session.on('refused', (list) => {
          this.refused.push(...list);
          this.refused.splice(0, Math.max(0, this.refused.length - 100));
          this.logger.warn({ count: list.length, first: list[0] }, 'the hub refused writes');
          this.emit('refused', list);
        });
        session.on('caught-up', () => {
          noteAcked();
          this.emit('caught-up');
        });
        hub.conn.once('close', () => {
          if (this.session === session) {
            noteAcked();
            this.session = undefined;
          }
        });
        await session.start();
      },
      ...(this.options.backoff && { backoff: this.options.backoff }),
      // Only the hub's own verdict stops retrying. Another certificate at an address
      // (a spoofed announcement, a stale address) just means: try the next one.
      fatalCodes: ['DEVICE_REVOKED'],
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    client.on('connected', () => this.emit('connected'));
    client.on('disconnected', (cause) => {
      const code = (cause as { code?: string } | undefined)?.code;
      this.emit('disconnected', code ? { code } : {});
    });
    this.client = client;
    await client.start();
  }

  /** Takes the hub's acknowledgement of this child's log from the running session. */
  private noteSessionAck(session = this.session): void {
    const log = session?.logs().mine;
    if (!session || log === undefined) return;
    const upTo = session.getStats().ackedUpTo;
    if (log !== this.acked.log) this.acked = { log, seq: upTo };
    else if (upTo > this.acked.seq) this.acked = { log, seq: upTo };
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.stop();
    await this.session?.stop();
    this.session = undefined;
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
