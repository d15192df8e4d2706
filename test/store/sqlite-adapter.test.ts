import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';
import { runStorageAdapterSuite } from '../../src/store/testing/adapter-suite.js';
import { tempDir } from '../helpers.js';

runStorageAdapterSuite('SqliteStore', async () => {
  const dir = tempDir();
  const path = join(dir.path, 'node.db');
  return {
    create: async () => {
      const store = new SqliteStore({ path, synchronous: 'normal' });
      await store.start();
      return store;
    },
    reopen: async (store) => {
      await store.stop();
      const again = new SqliteStore({ path, synchronous: 'normal' });
      await again.start();
      return again;
    },
    second: async () => {
      const other = new SqliteStore({ path, synchronous: 'normal' });
      await other.start();
      return other;
    },
    cleanup: async () => dir.remove(),
  };
});
