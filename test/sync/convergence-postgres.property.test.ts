/**
 * The convergence schedules (see ./convergence-schedules.ts) with the hub's store on
 * PostgreSQL: its copies and restores are databases made from it as a template.
 *
 * TROSYN_PROPERTY_PG_RUNS sets the number of schedules (default 15: each costs a few
 * databases, so the SQLite run is the broad one and this one checks the adapter).
 */
import { PostgresStore } from '../../src/store/postgres.js';
import { useClusterForFile } from '../helpers-postgres.js';
import { runConvergenceProperty, type StorageFor } from './convergence-schedules.js';

const cluster = useClusterForFile();

const postgresStorage: StorageFor = async () => {
  const pg = await cluster();
  const database = await pg.createDatabase();
  let copy: string | undefined;
  return {
    store: () => new PostgresStore({ connection: pg.config(database) }),
    save: async () => {
      if (copy !== undefined) await pg.dropDatabase(copy);
      copy = await pg.createDatabase(database);
    },
    hasSaved: () => copy !== undefined,
    replace: async (by) => {
      await pg.dropDatabase(database);
      if (by === 'saved' && copy !== undefined) {
        await pg.createDatabase(copy, database);
      } else {
        await pg.createDatabase('template0', database);
        if (copy !== undefined) await pg.dropDatabase(copy);
        copy = undefined;
      }
    },
    exists: async () =>
      (await pg.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount === 1,
    remove: async () => {
      await pg.dropDatabase(database);
      if (copy !== undefined) await pg.dropDatabase(copy);
    },
  };
};

runConvergenceProperty({
  name: 'hub on PostgreSQL',
  runs: Number(process.env.TROSYN_PROPERTY_PG_RUNS ?? 15),
  hubStorage: postgresStorage,
});
