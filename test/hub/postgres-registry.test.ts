import { PostgresRegistryBackend } from '../../src/hub/postgres-registry.js';
import type { RegistryBackend } from '../../src/hub/registry-backend.js';
import { runRegistryBackendSuite } from '../../src/hub/testing/registry-suite.js';
import { useClusterForFile } from '../helpers-postgres.js';

const cluster = useClusterForFile();

runRegistryBackendSuite('PostgresRegistryBackend', async () => {
  const pg = await cluster();
  const databases: string[] = [];
  const databaseOf = new Map<RegistryBackend, string>();
  const open = async (database: string) => {
    const backend = new PostgresRegistryBackend({ connection: pg.config(database) });
    await backend.start();
    databaseOf.set(backend, database);
    return backend;
  };
  return {
    // Each call is new, empty storage: a database of its own.
    create: async () => {
      const database = await pg.createDatabase();
      databases.push(database);
      return open(database);
    },
    reopen: async (backend) => {
      await backend.stop();
      return open(databaseOf.get(backend) as string);
    },
    cleanup: async () => {
      for (const name of databases) await pg.dropDatabase(name);
    },
  };
});
