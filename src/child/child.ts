import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { type Clock, type Startable, startAll, stopAll } from '../lifecycle.js';
import { DescriptorWatch } from '../observability/descriptors.js';
import { componentLogger } from '../observability/logger.js';
import { type ContentProgress, ContentSync } from '../files/content-sync.js';
import { nodeContent } from '../files/node-content.js';
import type { NodeFiles } from '../files/node-files.js';
import { DataDirLock, LockedLifecycle } from '../ops/data-dir.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import { NotStartedError } from '../sync/errors.js';
import { Replica } from '../sync/replica.js';
import type { DeviceIdentity } from '../transport/identity.js';
import { ChildMetrics } from './child-metrics.js';
import { HubLink } from './hub-link.js';
import type { LocalPort } from './local-api/port.js';
import { LocalApiServer } from './local-api/server.js';
import type { ChildInit, ChildParts } from './options.js';
import { loadPairedHub, NotPairedError } from './paired-hub.js';
import type { SyncStatus } from './sync-status.js';

export type { ChildInit, ChildParts } from './options.js';
export type { SyncStatus } from './sync-status.js';

type Events = {
  /** The hub refused some of this device's writes; each entry names the cause. */
  refused: [RejectedRevision[]];
  connected: [];
  disconnected: [{ code?: string }];
  'caught-up': [];
  /** File content arriving (at most every 250 ms while chunks arrive). */
  files: [ContentProgress];
};

/** What exists only while the agent runs. */
interface Running {
  identity: DeviceIdentity;
  replica: Replica;
  files: NodeFiles;
  content: ContentSync;
  link: HubLink;
  metrics: ChildMetrics;
  api: LocalApiServer | undefined;
  parts: Startable[];
}

/**
 * The child agent: the app's local replica plus one outbound connection to its
 * hub. Offline it keeps working on the local store, whose change log is its
 * outbox; on reconnect it resumes from the cursors. Build it with
 * `createChild(init, parts?)`.
 */
export class Child extends EventEmitter<Events> implements Startable, LocalPort {
  private readonly init: ChildInit;
  private readonly parts: ChildParts;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** One agent per data directory, for as long as it runs. */
  private readonly lifecycle: LockedLifecycle;
  private running: Running | undefined;
  private paused = false;

  constructor(init: ChildInit, parts: ChildParts) {
    super();
    this.init = init;
    this.parts = parts;
    this.logger = componentLogger(parts.logger, 'child');
    this.clock = parts.clock;
    this.lifecycle = new LockedLifecycle(new DataDirLock(init.dataDir, 'child'));
  }

  isStarted(): boolean {
    return this.lifecycle.isStarted();
  }

  get deviceId(): DeviceId {
    return this.now().identity.deviceId;
  }

  get replica(): Replica {
    return this.now().replica;
  }

  /** This device's files: put, read, list, history, revert. Their content syncs with the records. */
  get files(): NodeFiles {
    return this.now().files;
  }

  /** The local API's port, when it runs. */
  get apiPort(): number | undefined {
    return this.running?.api?.isStarted() ? this.running.api.port : undefined;
  }

  /** Starts every part in order; a second call waits for the first; a failure stops what started. */
  start(): Promise<void> {
    return this.lifecycle.start(() => this.startParts());
  }

  stop(): Promise<void> {
    return this.lifecycle.stop(async () => {
      const running = this.running;
      this.running = undefined;
      if (running) await stopAll(running.parts);
      this.logger.info('child agent stopped');
    });
  }

  private async startParts(): Promise<void> {
    const { init, parts } = this;
    const hubId = init.hubId ?? loadPairedHub(init.dataDir)?.hubId;
    if (!hubId) throw new NotPairedError(init.dataDir);
    const identity = await parts.identity();
    const replica = new Replica({
      store: parts.store,
      deviceId: identity.deviceId,
      role: 'child',
      ...(init.collections && { collections: init.collections }),
      ...(init.retention && { retention: init.retention }),
      // Hourly, with the retention in force then: the hub's policy may set it.
      pruneEveryMs: 3600_000,
      watchExternalWritesMs: 250,
      logger: this.logger,
      clock: this.clock,
    });
    const { files, content, gc } = nodeContent({
      dataDir: init.dataDir,
      replica,
      chunks: parts.chunks,
      fileCollections: init.fileCollections,
      role: 'child',
      logger: this.logger,
      clock: this.clock,
    });
    // Reading a version whose content is not here yet (on demand, or still arriving) fetches it.
    files.fetchMissingWith((version) => content.fetchNow(version));
    content.on('progress', (p) => this.emit('files', p));
    const link = new HubLink({
      init,
      identity,
      hubId,
      replica,
      content,
      chunks: parts.chunks,
      logger: this.logger,
      clock: this.clock,
    });
    link.on('refused', (list) => this.emit('refused', list));
    link.on('connected', () => this.emit('connected'));
    link.on('disconnected', (e) => this.emit('disconnected', e));
    link.on('caught-up', () => this.emit('caught-up'));
    // Connecting is part of starting, unless paused: the first attempt runs now.
    const connecting: Startable = {
      isStarted: () => link.isStarted(),
      start: async () => {
        if (!this.paused) await link.connect();
      },
      stop: () => link.disconnect(),
    };
    const api =
      init.localApi &&
      new LocalApiServer(this, {
        dataDir: init.dataDir,
        logger: parts.logger,
        clock: this.clock,
        ...init.localApi,
      });
    const metrics = new ChildMetrics({
      dataDir: init.dataDir,
      hubId,
      replica,
      link,
      content,
      status: () => this.status(),
      clock: this.clock,
    });
    const list: Startable[] = [
      replica,
      parts.chunks,
      content,
      gc,
      // Before the link, to see its first connection.
      metrics,
      link,
      connecting,
      ...(api ? [api] : []),
      new DescriptorWatch({ logger: this.logger, clock: this.clock }),
    ];
    this.running = { identity, replica, files, content, link, metrics, api, parts: list };
    try {
      await startAll(list);
    } catch (err) {
      this.running = undefined;
      throw err;
    }
    this.logger.info({ deviceId: identity.deviceId, hubId }, 'child agent started');
  }

  // --- the app's view (LocalPort) -------------------------------------------------------------

  records(): Replica {
    if (!this.running) throw new NotStartedError('the child agent');
    return this.running.replica;
  }

  watchFiles(listener: (progress: ContentProgress) => void): () => void {
    this.on('files', listener);
    return () => this.off('files', listener);
  }

  /** Stops syncing (the app keeps working locally); `resume()` continues from the cursors. */
  async pause(): Promise<void> {
    this.paused = true;
    await this.running?.link.disconnect();
  }

  async resume(): Promise<void> {
    this.paused = false;
    await this.running?.link.connect();
  }

  /** Tries to reach the hub, and to fetch missing file content, now instead of waiting out the backoff. */
  syncNow(): void {
    this.running?.link.retryNow();
    this.running?.content.retryNow();
  }

  /** A Prometheus scrape of this agent's metrics (text format 0.0.4). */
  metricsText(): Promise<string> {
    return this.now().metrics.text();
  }

  async status(): Promise<SyncStatus> {
    const { identity, link } = this.now();
    return { ...(await link.status(this.paused)), deviceId: identity.deviceId };
  }

  private now(): Running {
    if (!this.running) throw new NotStartedError('the child agent');
    return this.running;
  }
}
