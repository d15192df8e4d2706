import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock, Startable } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { SqliteStore } from '../store/sqlite.js';
import type { DeviceId } from '../store/types.js';
import type { CollectionOptions } from '../sync/replica.js';
import { Replica } from '../sync/replica.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../transport/identity.js';

/** Everything a hub is configured with. */
export interface HubOptions {
  /** The hub's data directory: identity, database, tokens. Created if missing. */
  dataDir: string;
  /** Name shown to children and in the dashboard. Default 'trosyn-hub'. */
  name?: string;
  /** Per-collection conflict strategy and local-only flag. */
  collections?: Record<string, CollectionOptions>;
  logger?: Logger;
  clock?: Clock;
}

/** The Admin Hub: the composition root that wires identity, store and engine together. */
export class Hub implements Startable {
  private readonly options: HubOptions;
  private readonly logger: Logger;
  private identity: DeviceIdentity | undefined;
  private replicaInstance: Replica | undefined;

  constructor(options: HubOptions) {
    this.options = options;
    this.logger = componentLogger(options.logger ?? silentLogger, 'hub');
  }

  isStarted(): boolean {
    return this.replicaInstance !== undefined;
  }

  get deviceId(): DeviceId {
    if (!this.identity) throw new Error('hub not started');
    return this.identity.deviceId;
  }

  get replica(): Replica {
    if (!this.replicaInstance) throw new Error('hub not started');
    return this.replicaInstance;
  }

  async start(): Promise<void> {
    if (this.replicaInstance) return;
    const { dataDir } = this.options;
    this.identity = await loadOrCreateIdentity(join(dataDir, 'identity'), {
      commonName: this.options.name ?? 'trosyn-hub',
      logger: this.logger,
    });
    const replica = new Replica({
      store: new SqliteStore({
        path: join(dataDir, 'trosyn.db'),
        logger: this.logger,
        ...(this.options.clock && { clock: this.options.clock }),
      }),
      deviceId: this.identity.deviceId,
      role: 'hub',
      ...(this.options.collections && { collections: this.options.collections }),
      logger: this.logger,
      ...(this.options.clock && { clock: this.options.clock }),
    });
    await replica.start();
    this.replicaInstance = replica;
    this.logger.info({ deviceId: this.identity.deviceId, dataDir }, 'hub started');
  }

  async stop(): Promise<void> {
    const replica = this.replicaInstance;
    if (!replica) return;
    this.replicaInstance = undefined;
    await replica.stop();
    this.logger.info('hub stopped');
  }
}
