import type { ContentProgress } from '../../files/content-sync.js';
import type { NodeFiles } from '../../files/node-files.js';
import type { ReplicaReader } from '../../http/replica-routes.js';
import type { Replica } from '../../sync/replica.js';
import type { SyncStatus } from '../sync-status.js';

/** What the local routes need of a replica: the read routes' needs, writes and the change feed. */
export type LocalRecords = ReplicaReader &
  Pick<Replica, 'put' | 'create' | 'delete' | 'revert' | 'subscribe'>;

/** What the file routes need: write from a stream, read (with a range), list, versions, revert, delete. */
export type LocalFiles = Pick<
  NodeFiles,
  'putStream' | 'version' | 'read' | 'list' | 'history' | 'revert' | 'remove' | 'isHere'
>;

/**
 * What the local API needs from a child agent: its records, its sync state and the
 * sync controls, and nothing else. The Child implements it; route tests give a fake.
 */
export interface LocalPort {
  isStarted(): boolean;
  records(): LocalRecords;
  status(): Promise<SyncStatus>;
  /** A Prometheus scrape of the agent's metrics (`GET /metrics`). */
  metricsText(): Promise<string>;
  /** Tries to reach the hub now instead of waiting out the retry delay. */
  syncNow(): void;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** The device's files (throws NOT_STARTED while the agent is stopped). */
  readonly files: LocalFiles;
  /** Calls `listener` as file content arrives, until the returned function is called. */
  watchFiles(listener: (progress: ContentProgress) => void): () => void;
}
