import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';
import { runStorageAdapterSuite } from '../../src/store/testing/adapter-suite.js';
import { tempDir } from '../helpers.js';

runStorageAdapterSuite('SqliteStore', async () => {
  const dir = tempDir();
  let files = 0;
  let last = '';
  const open = async (path: string) => {
    const store = new SqliteStore({ path, synchronous: 'normal' });
    await store.start();
    return store;
  };
  return {
    // Each call is new, empty storage: a file of its own.
    create: async () => {
      last = join(dir.path, `node-${++files}.db`);
      return open(last);
    },
    reopen: async (store) => {
      await store.stop();
      return open((store as SqliteStore).path);
    },
    second: async () => open(last),
    dataVersion: true,
    cleanup: async () => dir.remove(),
  };
});
