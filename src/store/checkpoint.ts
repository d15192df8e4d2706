import { createHash } from 'node:crypto';

/**
 * The checkpoint token of log position `seq` holding revision `rev`, written in
 * epoch `epoch` (undefined for positions written before epochs were kept): one
 * formula for every store, so a store moved to another keeps its peers' cursors
 * valid. `salt` is the store's secret; see StorageAdapter.checkpoint.
 */
export function checkpointToken(salt: string, seq: number, rev: string, epoch: string | undefined): string {
  const text = epoch === undefined ? `${salt}:${seq}:${rev}` : `${salt}:${seq}:${rev}:${epoch}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
