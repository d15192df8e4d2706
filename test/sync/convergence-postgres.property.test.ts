/**
 * The convergence schedules (see ./convergence-schedules.ts) with the hub's store on
 * PostgreSQL: its copies and restores are databases made from it as a template.
 *
 * TROSYN_PROPERTY_PG_RUNS sets the number of schedules (default 15: each costs a few
 * databases, so the SQLite run is the broad one and this one checks the adapter).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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

/** Warnings this process gave while the schedules ran (node-postgres deprecations among them). */
const warnings: string[] = [];
process.on('warning', (w) => warnings.push(`${w.name}: ${w.message}`));

describe('the PostgreSQL store and node-postgres', () => {
  it('sends no query on a connection while another runs on it (a deprecation in pg 8, an error in pg 9)', () => {
    // The schedules above opened pools and connections and queried them throughout.
    assert.deepEqual(
      warnings.filter((w) => /already executing a query/.test(w)),
      [],
    );
  });
});
