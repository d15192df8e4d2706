import { PostgresStore } from '../../src/store/postgres.js';
import { runStorageAdapterSuite } from '../../src/store/testing/adapter-suite.js';
import type { StorageAdapter } from '../../src/store/adapter.js';
import { useClusterForFile } from '../helpers-postgres.js';

const cluster = useClusterForFile();

runStorageAdapterSuite('PostgresStore', async () => {
  const pg = await cluster();
  const databases: string[] = [];
  let last = '';
  const databaseOf = new Map<StorageAdapter, string>();
  const open = async (database: string) => {
    const store = new PostgresStore({ connection: pg.config(database) });
    await store.start();
    databaseOf.set(store, database);
    return store;
  };
  return {
    // Each call is new, empty storage: a database of its own.
    create: async () => {
      last = await pg.createDatabase();
      databases.push(last);
      return open(last);
    },
    reopen: async (store) => {
      await store.stop();
      return open(databaseOf.get(store) as string);
    },
    second: async () => open(last),
    copy: async (store) => {
      const database = databaseOf.get(store) as string;
      // A database with no connections is a template: copying it is the backup.
      await store.stop();
      const saved = await pg.createDatabase(database);
      databases.push(saved);
      return {
        adapter: await open(database),
        restore: async (current) => {
          await current.stop();
          await pg.dropDatabase(database);
          await pg.query(`CREATE DATABASE ${database} TEMPLATE ${saved}`);
          return open(database);
        },
      };
    },
    dataVersion: true,
    cleanup: async () => {
      for (const name of databases) await pg.dropDatabase(name);
    },
  };
});
