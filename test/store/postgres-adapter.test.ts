import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import pino from 'pino';
import { PostgresStore } from '../../src/store/postgres.js';
import { POSTGRES_STORE_MIGRATIONS } from '../../src/store/postgres-schema.js';
import { makeRevision, runStorageAdapterSuite } from '../../src/store/testing/adapter-suite.js';
import type { StorageAdapter } from '../../src/store/adapter.js';
import type { DeviceId, Seq } from '../../src/store/types.js';
import { lwwResolver } from '../../src/sync/conflict.js';
import { createReducer } from '../../src/sync/reducer.js';
import { Replica } from '../../src/sync/replica.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { eventually, FakeClock } from '../helpers.js';
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
          await pg.createDatabase(saved, database);
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

describe('PostgresStore beyond the suite', () => {
  const lww = createReducer(() => lwwResolver);

  it("a replica hears of another process's commit by a wake-up, not its clock, and again after the wake-up connection was cut", async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    // The clock never moves: a look on the clock never comes, only the wake-ups.
    const clock = new FakeClock();
    // Two processes of one hub: one device, one database.
    const hubId = randomDeviceId();
    const replica = () =>
      new Replica({
        store: new PostgresStore({ connection: pg.config(database), clock }),
        deviceId: hubId,
        role: 'hub',
        watchExternalWritesMs: 250,
        clock,
      });
    const a = replica();
    const b = replica();
    await a.start();
    await b.start();
    const seen: string[] = [];
    a.subscribe((e) => seen.push(e.id));
    await b.put('notes', 'first', { v: 1 });
    await eventually(async () => seen.includes('first'), 10_000, "b's write seen by a");
    // The server ends the wake-up connections (each replica has one); b writes while they are down.
    const cut = await pg.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'",
      [database],
    );
    assert.equal(cut.rowCount, 2, 'one wake-up connection each');
    await b.put('notes', 'second', { v: 2 });
    await eventually(async () => seen.includes('second'), 10_000, 'seen once the wake-ups are back');
    assert.deepEqual(seen, ['first', 'second'], 'each once, as a change of another process');
    await a.stop();
    await b.stop();
    await pg.dropDatabase(database);
  });

  it('two stores on one database (two hub processes) write at once: positions are unique, gapless and seen in order', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    // Both migrate the empty database at once: one does, the other finds it done.
    const started = async () => {
      const store = new PostgresStore({ connection: pg.config(database) });
      await store.start();
      return store;
    };
    const [a, b] = await Promise.all([started(), started()]);
    const reader = new PostgresStore({ connection: pg.config(database) });
    await reader.start();
    try {
      const author = (n: number) => `${String(n).repeat(64)}` as DeviceId;
      const written: string[] = [];
      const writer = async (store: PostgresStore, n: number) => {
        for (let batch = 0; batch < 15; batch++) {
          const revisions = Array.from({ length: 4 }, (_, i) =>
            makeRevision('notes', `w${n}-${batch}-${i}`, { n, batch, i }, author(n)),
          );
          written.push(...revisions.map((r) => r.rev));
          await store.apply({
            revisions: revisions.map((revision) => ({ revision, local: false })),
            reduce: lww,
            now: 1,
          });
        }
      };
      // A peer follows the log while it grows: what it passes with its cursor it must have been sent.
      const seen: string[] = [];
      let since = 0 as Seq;
      let writing = true;
      const follow = async () => {
        for (let guard = 0; guard < 10_000; guard++) {
          // Only a read that began after the last write can be the last read.
          const last = !writing;
          const batch = await reader.changesSince({ since, limit: 7, maxBytes: 1 << 20 });
          seen.push(...batch.revisions.map((r) => r.rev));
          since = batch.upTo;
          if (last && !batch.more) return;
        }
        assert.fail('the follower did not catch up');
      };
      const following = follow();
      try {
        await Promise.all([writer(a, 1), writer(b, 2)]);
      } finally {
        writing = false;
        await following;
      }
      assert.equal(await reader.latestSeq(), 120);
      const missed = written.filter((r) => !seen.includes(r));
      assert.equal(new Set(seen).size, seen.length, 'no revision twice');
      assert.deepEqual(missed, [], 'the follower saw every revision');
      assert.equal(seen.length, written.length);
      const positions = (
        await pg.query('SELECT seq FROM trosyn_store.revisions ORDER BY seq', [], database)
      ).rows.map((r: { seq: string }) => Number(r.seq));
      assert.deepEqual(
        positions,
        Array.from({ length: 120 }, (_, i) => i + 1),
        'gapless',
      );
      // Each writer notices the other's commits through dataVersion.
      const before = await a.dataVersion();
      await b.setMeta('x', '1');
      assert.notEqual(await a.dataVersion(), before);
    } finally {
      await Promise.all([a.stop(), b.stop(), reader.stop()]);
      await pg.dropDatabase(database);
    }
  });

  it('a password never shows in an error, a log line or the label', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    const password = 'Sw0rdfish-p@ss:word/with%signs';
    await pg.query(`CREATE ROLE trosyn_app LOGIN PASSWORD '${password}'`);
    await pg.query(`GRANT CREATE ON DATABASE ${database} TO trosyn_app`);
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
    try {
      const wrong = new PostgresStore({
        connection: pg.url(database, 'trosyn_app', `${password}-wrong`),
        logger,
      });
      const err = await wrong.start().then(
        () => assert.fail('a wrong password is refused'),
        (e: unknown) => e,
      );
      assert.equal((err as { code?: string }).code, 'STORE_AUTH_FAILED');
      for (const text of [String(err), inspect(err, { depth: 10 }), JSON.stringify(err), lines.join('')])
        for (const secret of [password, encodeURIComponent(password)])
          assert.ok(!text.includes(secret), `no password in ${text}`);
      assert.match(String((err as Error).message), /trosyn_app@.*password authentication failed/);

      const config = { ...pg.config(database), user: 'trosyn_app', password: `${password}-wrong` };
      const err2 = await new PostgresStore({ connection: config }).start().then(
        () => assert.fail('a wrong password is refused'),
        (e: unknown) => e,
      );
      assert.ok(!inspect(err2, { depth: 10 }).includes(password));

      const unparsable = `postgres://trosyn_app:${password}@[::1/${database}`;
      const err3 = await new PostgresStore({ connection: unparsable }).start().then(
        () => assert.fail('refused'),
        (e: unknown) => e,
      );
      assert.equal((err3 as { code?: string }).code, 'STORE_OPEN_FAILED');
      assert.ok(!inspect(err3, { depth: 10 }).includes('Sw0rdfish'));

      const right = new PostgresStore({ connection: pg.url(database, 'trosyn_app', password), logger });
      await right.start();
      try {
        assert.ok(!right.label.includes('Sw0rdfish'));
        assert.match(right.label, /^postgres:\/\/trosyn_app@/);
        await right.setMeta('k', 'v');
        assert.equal(await right.getMeta('k'), 'v');
      } finally {
        await right.stop();
      }
      assert.ok(!lines.join('').includes('Sw0rdfish'), 'nor in the log');
    } finally {
      await pg.dropDatabase(database);
      await pg.query('DROP ROLE trosyn_app');
    }
  });

  it('a database from a newer version is refused with STORE_SCHEMA_TOO_NEW and left as it is', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    try {
      const store = new PostgresStore({ connection: pg.config(database) });
      await store.start();
      await store.setMeta('k', 'v');
      await store.stop();
      const latest = POSTGRES_STORE_MIGRATIONS.at(-1)?.version ?? 0;
      await pg.query(
        "INSERT INTO trosyn_store.schema_migrations (version, description, applied_at) VALUES ($1, 'from the future', 0)",
        [latest + 1],
        database,
      );
      await assert.rejects(new PostgresStore({ connection: pg.config(database) }).start(), {
        code: 'STORE_SCHEMA_TOO_NEW',
      });
      const versions = await pg.query(
        'SELECT version FROM trosyn_store.schema_migrations ORDER BY version',
        [],
        database,
      );
      assert.deepEqual(
        versions.rows.map((r: { version: number }) => r.version),
        [...POSTGRES_STORE_MIGRATIONS.map((m) => m.version), latest + 1],
      );
      const meta = await pg.query("SELECT value FROM trosyn_store.meta WHERE key = 'k'", [], database);
      assert.equal(meta.rows[0]?.value, 'v');
    } finally {
      await pg.dropDatabase(database);
    }
  });

  it('a write the server refuses fails with STORE_WRITE_FAILED, keeps nothing, and the store goes on afterwards', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    const store = new PostgresStore({ connection: pg.config(database) });
    await store.start();
    try {
      // The server turns the database read-only; the store's connections are replaced.
      await pg.query(`ALTER DATABASE ${database} SET default_transaction_read_only = on`);
      await pg.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
      const revision = makeRevision('notes', 'n', { v: 1 });
      const write = () => store.apply({ revisions: [{ revision, local: false }], reduce: lww, now: 1 });
      // A connection the server ended may be handed out before the pool notices: that
      // write fails too (STORE_WRITE_FAILED, the connection ended), and the next gets a new one.
      const messages: string[] = [];
      for (let attempt = 0; attempt < 5 && !messages.some((m) => /read-only/.test(m)); attempt++)
        messages.push(
          await write().then(
            () => assert.fail('a read-only database takes no write'),
            (err: unknown) => {
              assert.equal((err as { code?: string }).code, 'STORE_WRITE_FAILED');
              return String((err as Error).message);
            },
          ),
        );
      assert.match(messages.at(-1) ?? '', /read-only/);
      assert.equal(await store.latestSeq(), 0);
      await pg.query(`ALTER DATABASE ${database} SET default_transaction_read_only = off`);
      await pg.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
      let applied = false;
      for (let attempt = 0; attempt < 3 && !applied; attempt++)
        applied = await write().then(
          (result) => result.applied.length === 1,
          () => false,
        );
      assert.ok(applied, 'the store writes again once the server does');
      assert.equal(await store.latestSeq(), 1);
    } finally {
      await store.stop();
      await pg.dropDatabase(database);
    }
  });

  it('two stores in two schemas of one database are apart', async () => {
    const pg = await cluster();
    const database = await pg.createDatabase();
    const one = new PostgresStore({ connection: pg.config(database), schema: 'store_one' });
    const two = new PostgresStore({ connection: pg.config(database), schema: 'store_two' });
    await one.start();
    await two.start();
    try {
      await one.apply({
        revisions: [{ revision: makeRevision('notes', 'n', { v: 1 }), local: false }],
        reduce: lww,
        now: 1,
      });
      assert.equal(await one.latestSeq(), 1);
      assert.equal(await two.latestSeq(), 0);
      assert.notEqual((await one.changeLog()).id, (await two.changeLog()).id);
      // Options of the connection string's own do not move the tables out of the schema.
      const withOptions = new PostgresStore({
        connection: `${pg.url(database, 'postgres', '')}&options=${encodeURIComponent('-c statement_timeout=60000')}`,
        schema: 'store_three',
      });
      await withOptions.start();
      await withOptions.setMeta('k', 'v');
      await withOptions.stop();
      const where = await pg.query(
        "SELECT to_regclass('store_three.meta') IS NOT NULL AS ours, to_regclass('public.meta') IS NOT NULL AS public",
        [],
        database,
      );
      assert.deepEqual(where.rows[0], { ours: true, public: false });
      await assert.rejects(
        new PostgresStore({ connection: pg.config(database), schema: 'Robert"; DROP' }).start(),
        { code: 'STORE_OPEN_FAILED' },
      );
    } finally {
      await one.stop();
      await two.stop();
      await pg.dropDatabase(database);
    }
  });
});
