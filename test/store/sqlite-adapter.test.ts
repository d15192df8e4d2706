import { copyFileSync, rmSync } from 'node:fs';
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
    copy: async (store) => {
      const { path } = store as SqliteStore;
      const saved = `${path}.copy-${++files}`;
      // A clean stop leaves no WAL behind: the file alone is the copy.
      await store.stop();
      copyFileSync(path, saved);
      return {
        adapter: await open(path),
        restore: async (current) => {
          await current.stop();
          for (const suffix of ['-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
          copyFileSync(saved, path);
          return open(path);
        },
      };
    },
    dataVersion: true,
    cleanup: async () => dir.remove(),
  };
});
