import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import type { Replica } from '../sync/replica.js';
import type { ChunkStore } from './chunk-store.js';
import type { SharedChunkStore } from './chunk-store-postgres.js';
import { ContentIndex } from './content-index.js';
import { ContentSync } from './content-sync.js';
import { FileGc } from './file-gc.js';
import { FileStore } from './file-store.js';
import { DEFAULT_FILES_COLLECTION, type FileTransferPolicy, NodeFiles } from './node-files.js';

/** True when `store` is shared between processes and says when chunks arrive (PostgresChunkStore). */
function isSharedChunkStore(store: ChunkStore): store is SharedChunkStore {
  return typeof (store as Partial<SharedChunkStore>).onArrival === 'function';
}

/**
 * A node's file parts over its replica and chunk store: its files, the content
 * sync that fetches what they lack (`files.db` in the data directory), and the
 * garbage collection of chunks no kept version references. The hub and the child
 * build them alike; the caller starts and stops `content` and `gc`.
 */
export function nodeContent(o: {
  dataDir: string;
  replica: Replica;
  chunks: ChunkStore;
  /** Default: `files`, eager. */
  fileCollections: Record<string, FileTransferPolicy> | undefined;
  role: 'hub' | 'child';
  logger: Logger;
  clock: Clock;
}): { files: NodeFiles; content: ContentSync; gc: FileGc } {
  const policies = o.fileCollections ?? { [DEFAULT_FILES_COLLECTION]: 'eager' };
  const { replica, logger, clock } = o;
  const files = new NodeFiles(replica, new FileStore(o.chunks));
  const content = new ContentSync({
    replica,
    files: files.store,
    index: new ContentIndex(join(o.dataDir, 'files.db')),
    policies,
    role: o.role,
    // Content another process put into a shared store (hub processes on one database).
    ...(isSharedChunkStore(o.chunks) && { onArrival: o.chunks.onArrival.bind(o.chunks) }),
    logger,
    clock,
  });
  const gc = new FileGc({
    replica,
    files: files.store,
    collections: () => Object.keys(policies),
    logger,
    clock,
  });
  return { files, content, gc };
}
