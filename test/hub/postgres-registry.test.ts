import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { PostgresRegistryBackend } from '../../src/hub/postgres-registry.js';
import type { RegistryBackend } from '../../src/hub/registry-backend.js';
import { runRegistryBackendSuite } from '../../src/hub/testing/registry-suite.js';
import type { DeviceId } from '../../src/store/types.js';
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

describe('PostgresRegistryBackend beyond the suite', () => {
  const T0 = 1_750_000_000_000;

  /** Two backends on one database, as two hub processes; both migrate it at once. */
  const twoProcesses = async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    const started = async () => {
      const backend = new PostgresRegistryBackend({ connection: pg.config(database) });
      await backend.start();
      return backend;
    };
    const [a, b] = await Promise.all([started(), started()]);
    return {
      a,
      b,
      close: async () => {
        await Promise.all([a.stop(), b.stop()]);
        await pg.dropDatabase(database);
      },
    };
  };

  it('two hubs settling one code at once: one pairs, the other finds it spent', async () => {
    const { a, b, close } = await twoProcesses();
    try {
      for (let round = 0; round < 5; round++) {
        const text = `R${round}AA11111111`;
        await a.insertCode(
          { group: 'default', createdAt: T0, expiresAt: T0 + 60_000, lookupLength: 4 },
          () => text,
        );
        const codeId = (await b.findActiveCode(text.slice(0, 4), T0))?.codeId as number;
        const settle = (backend: PostgresRegistryBackend) => {
          const deviceId = randomBytes(32).toString('hex') as DeviceId;
          return backend.settleCode(
            codeId,
            { tagMatched: true, deviceId, now: T0 + 1, maxAttempts: 3 },
            (group) => ({ deviceId, name: 'desk', group, state: 'pending' }),
          );
        };
        const outcomes = (await Promise.all([settle(a), settle(b)])).map((o) => o.outcome).sort();
        assert.deepEqual(outcomes, ['code-invalid', 'paired'], `round ${round}`);
      }
      assert.equal((await a.listDevices()).length, 5, 'one device per code');
    } finally {
      await close();
    }
  });

  it('two hubs appending events at once: ids unique, gapless, committed in order', async () => {
    const { a, b, close } = await twoProcesses();
    try {
      const ids: number[] = [];
      const seen: number[] = [];
      let writing = true;
      const follow = async () => {
        let after = 0;
        for (let guard = 0; guard < 10_000; guard++) {
          const last = !writing;
          const page = await a.listEvents({ order: 'asc', afterId: after, limit: 5 });
          seen.push(...page.map((e) => e.id));
          after = page.at(-1)?.id ?? after;
          if (last && page.length < 5) return;
        }
        assert.fail('the follower did not catch up');
      };
      const following = follow();
      const append = async (backend: PostgresRegistryBackend) => {
        for (let i = 0; i < 12; i++)
          ids.push(
            ...(await backend.appendEvents([
              { at: T0 + i, type: 'error', deviceId: null, data: '{}' },
              { at: T0 + i, type: 'error', deviceId: null, data: '{}' },
            ])),
          );
      };
      try {
        await Promise.all([append(a), append(b)]);
      } finally {
        writing = false;
        await following;
      }
      assert.deepEqual(
        [...ids].sort((x, y) => x - y),
        Array.from({ length: 48 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        seen,
        Array.from({ length: 48 }, (_, i) => i + 1),
        'a follower by id missed none',
      );
      assert.deepEqual(await b.eventBounds(), { oldest: 1, latest: 48 });
    } finally {
      await close();
    }
  });

  it('a registry from a newer version is refused with STORE_SCHEMA_TOO_NEW', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    try {
      const backend = new PostgresRegistryBackend({ connection: pg.config(database) });
      await backend.start();
      await backend.stop();
      await pg.query(
        "INSERT INTO trosyn_hub.schema_migrations (version, description, applied_at) VALUES (999, 'from the future', 0)",
        [],
        database,
      );
      await assert.rejects(new PostgresRegistryBackend({ connection: pg.config(database) }).start(), {
        code: 'STORE_SCHEMA_TOO_NEW',
      });
    } finally {
      await pg.dropDatabase(database);
    }
  });
});
