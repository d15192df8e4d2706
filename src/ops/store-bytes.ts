import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_STORE_FILE } from '../sync/node-replica.js';

/** The size of the SQLite store in a data directory (database and write-ahead log), if it is there. */
export function storeBytes(dataDir: string): number | undefined {
  const base = join(dataDir, NODE_STORE_FILE);
  if (!existsSync(base)) return undefined;
  let bytes = 0;
  for (const file of [base, `${base}-wal`]) if (existsSync(file)) bytes += statSync(file).size;
  return bytes;
}
