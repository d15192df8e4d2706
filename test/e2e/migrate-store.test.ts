/**
 * `trosyn-sync migrate-store` end to end, with real processes and a throwaway
 * cluster: a hub on SQLite with a paired child, records, edits and a conflict; the
 * hub stopped and moved into PostgreSQL; started again with `--data` alone. The
 * child reconnects without pairing again, is sent nothing it already has and sends
 * nothing the hub already has, new writes cross both ways, and history and the
 * conflict are there; the hub's file content moves too (its chunks into
 * `trosyn_chunks`), is read from there, and new content lands there. Refusals on the way: the hub running, and a database that
 * already holds the hub's schemas.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { packHashes } from '../../src/files/chunk-store-postgres.js';
import { noise, sha } from '../fixtures/bytes.js';
import { eventually, tempDir } from '../helpers.js';
import { passwordDatabase, useClusterForFile } from '../helpers-postgres.js';
import {
  type Agent,
  CLI,
  type CliCommand,
  freePort,
  hubArgs,
  runCli,
  startAgent,
  startChildAgent,
  pairWithHub,
} from './helpers.js';

const dir = tempDir('trosyn-e2e-migrate-');
after(() => dir.remove());
const cluster = useClusterForFile();

const PASSWORD = 'migrate-Secret:pw@hub';

interface SessionStats {
  sent: number;
  applied: number;
  duplicates: number;
  restart?: unknown;
}
interface ChildStatus {
  state: string;
  connection: { state: string };
  session?: SessionStats;
}

/** Runs the CLI expecting a failure: its error code and stderr. */
async function failure(args: string[], cli: CliCommand): Promise<{ code: string; stderr: string }> {
  const err = await runCli(args, cli).then(
    (out) => assert.fail(`expected ${args.join(' ')} to fail, got ${JSON.stringify(out)}`),
    (e: unknown) => e as { stderr: string },
  );
  return { code: /trosyn-sync: ([A-Z_]+):/.exec(err.stderr)?.[1] ?? '', stderr: err.stderr };
}

describe('migrate-store: a SQLite hub moved into PostgreSQL, as processes', () => {
  it('the child resumes without pairing again or anything sent twice; history and the conflict are kept', async () => {
    const pg = await cluster();
    const { database, env, store } = await passwordDatabase(pg, 'trosyn_move', PASSWORD, dir.path);
    const occupied = await pg.createDatabase();
    await pg.query(`ALTER DATABASE ${occupied} OWNER TO trosyn_move`);
    await pg.query('CREATE SCHEMA trosyn_hub AUTHORIZATION trosyn_move', [], occupied);
    await pg.query('CREATE TABLE trosyn_hub.devices (device_id text)', [], occupied);
    await pg.query('ALTER TABLE trosyn_hub.devices OWNER TO trosyn_move', [], occupied);
    const cli: CliCommand = { command: [process.execPath, CLI], env };
    const hubData = join(dir.path, 'hub');
    const childData = join(dir.path, 'child');
    const port = await freePort();
    const socket = encodeURIComponent(pg.socketDir);

    const has = async (data: string, id: string, text: string): Promise<boolean> => {
      const got = await runCli(['get', 'notes', id, '--data', data], cli).catch(() => undefined);
      return (got?.body as { text?: string } | undefined)?.text === text;
    };
    const put = (data: string, id: string, text: string) =>
      runCli(['put', 'notes', id, JSON.stringify({ text }), '--data', data], cli);
    const storeInConfig = (): unknown => {
      const path = join(hubData, 'config.json');
      return existsSync(path)
        ? (JSON.parse(readFileSync(path, 'utf8')) as { store?: unknown }).store
        : undefined;
    };
    let apiPort = 0;
    const childStatus = async (): Promise<ChildStatus> => {
      const token = readFileSync(join(childData, 'api-token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/status`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await res.json()) as ChildStatus;
    };
    const startChild = async () => {
      const started = await startChildAgent(childData, port, 'desk-move');
      apiPort = started.apiPort;
      return started.agent;
    };

    let hub: Agent = startAgent([...hubArgs(hubData, port), '--no-admin-api'], { cli });
    let child: Agent | undefined;
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub on SQLite');
      assert.equal(started.store, join(hubData, 'trosyn.db'));
      await pairWithHub(started.pairingCode as string, childData, port, 'desk-move');
      child = await startChild();

      // Records, an edit (two revisions of one record) and one from each side.
      await put(hubData, 'edited', 'first');
      await put(hubData, 'edited', 'second');
      await put(hubData, 'contested', 'agreed');
      await put(childData, 'from-child', 'child 1');
      await eventually(() => has(childData, 'contested', 'agreed'), 30_000, "the hub's writes on the child");
      await eventually(() => has(childData, 'edited', 'second'), 30_000, 'the edit on the child');
      await eventually(() => has(hubData, 'from-child', 'child 1'), 30_000, "the child's write on the hub");
      // A file put on the child, whose content the hub fetches into its chunks/.
      const hubHolds = async (name: string, bytes: Buffer) => {
        const out = join(dir.path, `hub-copy-${name}`);
        rmSync(out, { force: true });
        await runCli(['files', 'get', name, '-o', out, '--data', hubData], cli).catch(() => undefined);
        return existsSync(out) && sha(readFileSync(out)) === sha(bytes);
      };
      const plan = noise(700 * 1024 + 3, 41);
      writeFileSync(join(dir.path, 'plan.bin'), plan);
      await runCli(['files', 'put', join(dir.path, 'plan.bin'), '--data', childData]);
      await eventually(() => hubHolds('plan.bin', plan), 30_000, 'the file content on the hub');

      // A conflict: both sides edit one record while apart.
      await child.kill();
      await put(hubData, 'contested', 'hub side');
      await put(childData, 'contested', 'child side');
      child = await startChild();
      const conflictsOf = async () =>
        (await runCli(['conflicts', '--data', hubData], cli)) as unknown as { id: string; status: string }[];
      await eventually(async () => (await conflictsOf()).length === 1, 30_000, 'the conflict on the hub');
      await eventually(async () => (await childStatus()).state === 'synced', 30_000, 'the child in sync');
      const conflictsBefore = await conflictsOf();
      const historyOf = async (id: string) =>
        (
          (await runCli(['history', 'notes', id, '--data', hubData], cli)) as unknown as { rev: string }[]
        ).map((h) => h.rev);
      const editedBefore = await historyOf('edited');
      assert.equal(editedBefore.length, 2, 'both revisions of the edited record');
      const contestedBefore = await historyOf('contested');
      const contestedOnChild = (await runCli(['get', 'notes', 'contested', '--data', childData])).rev;

      // Refused while the hub runs: nothing is copied from a store in use.
      const running = await failure(['migrate-store', '--data', hubData, '--to', store], cli);
      assert.equal(running.code, 'DATA_DIR_LOCKED', running.stderr);

      await hub.kill();
      // Refused into a database that already holds the hub's schemas; nothing changes.
      const taken = await failure(
        ['migrate-store', '--data', hubData, '--to', `postgres://trosyn_move@/${occupied}?host=${socket}`],
        cli,
      );
      assert.equal(taken.code, 'STORE_TARGET_NOT_EMPTY', taken.stderr);
      assert.match(taken.stderr, /trosyn_hub/);
      assert.ok(existsSync(join(hubData, 'trosyn.db')), 'the SQLite store left in place');
      assert.equal(storeInConfig(), undefined);
      const untouched = await pg.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema IN ('trosyn_store', 'trosyn_hub')",
        [],
        occupied,
      );
      assert.equal(untouched.rows[0].n, 1, 'the occupied database got no tables');

      const moved = (await runCli(['migrate-store', '--from', hubData, '--to', store], cli)) as unknown as {
        url: string;
        tables: { schema: string; table: string; rows: number }[];
        kept: string[];
      };
      assert.equal(moved.url, store);
      assert.ok(!JSON.stringify(moved).includes(PASSWORD), 'no password in the output');
      const rowsOf = (schema: string, table: string) =>
        moved.tables.find((t) => t.schema === schema && t.table === table)?.rows;
      assert.equal(rowsOf('trosyn_hub', 'devices'), 1, 'the paired child');
      assert.equal(rowsOf('trosyn_store', 'conflicts'), 1, 'the conflict');
      assert.ok((rowsOf('trosyn_store', 'revisions') ?? 0) >= 6, 'every revision');
      assert.deepEqual(moved.kept.sort(), [
        join(hubData, 'chunks.before-postgres'),
        join(hubData, 'hub.db.before-postgres'),
        join(hubData, 'trosyn.db.before-postgres'),
      ]);
      // Every chunk of the hub's store, each in PostgreSQL.
      const chunkHashes = packHashes(join(hubData, 'chunks.before-postgres'));
      assert.ok(chunkHashes.length >= 3, `the file's chunks (${chunkHashes.length})`);
      assert.equal(rowsOf('trosyn_chunks', 'chunks'), chunkHashes.length, 'every chunk reported');
      const chunksThere = await pg.query(
        "SELECT encode(hash, 'hex') AS hash FROM trosyn_chunks.chunks WHERE sha256(bytes) = hash ORDER BY hash",
        [],
        database,
      );
      assert.deepEqual(
        chunksThere.rows.map((r: { hash: string }) => r.hash),
        chunkHashes,
        'every chunk in PostgreSQL, sound',
      );
      assert.ok(!existsSync(join(hubData, 'trosyn.db')) && !existsSync(join(hubData, 'hub.db')));
      assert.equal(storeInConfig(), store);

      // A move cut short between its commit and config.json (a crash right there) leaves
      // the SQLite files in place and config.json without the database. Run again, it
      // finishes the move instead of refusing the database its own copy is in.
      for (const name of ['trosyn.db', 'hub.db', 'chunks'])
        renameSync(join(hubData, `${name}.before-postgres`), join(hubData, name));
      const configPath = join(hubData, 'config.json');
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      delete config.store;
      delete config.storePasswordFile;
      writeFileSync(configPath, JSON.stringify(config));
      const finished = (await runCli(
        ['migrate-store', '--from', hubData, '--to', store],
        cli,
      )) as unknown as {
        finished?: boolean;
        tables: unknown[];
        kept: string[];
      };
      assert.equal(finished.finished, true, JSON.stringify(finished));
      assert.deepEqual(finished.tables, [], 'nothing copied again');
      assert.deepEqual(finished.kept.sort(), moved.kept.sort());
      assert.equal(storeInConfig(), store);
      const inPostgres = await pg.query(
        'SELECT (SELECT count(*)::int FROM trosyn_store.revisions) AS revisions, (SELECT latest FROM trosyn_store.log_head) AS latest, (SELECT max(seq) FROM trosyn_store.revisions) AS max',
        [],
        database,
      );
      assert.equal(inPostgres.rows[0].revisions, rowsOf('trosyn_store', 'revisions'));
      assert.equal(
        Number(inPostgres.rows[0].latest),
        Number(inPostgres.rows[0].max),
        'the log head carried over',
      );

      // Row for row: every table the SQLite files hold, with as many rows in PostgreSQL.
      for (const [file, schema] of [
        ['trosyn.db', 'trosyn_store'],
        ['hub.db', 'trosyn_hub'],
      ] as const) {
        const kept = new Database(join(hubData, `${file}.before-postgres`), { readonly: true });
        try {
          const tables = kept
            .prepare<[], string>(
              "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'",
            )
            .pluck()
            .all();
          assert.ok(tables.length >= 5, `${file} has its tables`);
          for (const table of tables) {
            const here = kept.prepare<[], number>(`SELECT count(*) FROM ${table}`).pluck().get();
            const there = await pg.query(`SELECT count(*)::int AS n FROM ${schema}.${table}`, [], database);
            assert.equal(rowsOf(schema, table), here, `${schema}.${table} reported`);
            assert.equal(there.rows[0].n, here, `${schema}.${table} in PostgreSQL`);
          }
        } finally {
          kept.close();
        }
      }

      // The hub again, from --data alone, now on PostgreSQL.
      hub = startAgent([...hubArgs(hubData, port), '--no-admin-api'], { cli });
      const again = await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub on PostgreSQL');
      assert.equal(again.store, store);
      assert.equal(again.deviceId, started.deviceId, 'the same hub identity');

      // The running child reconnects by itself; its session sends and receives nothing.
      await eventually(
        async () => {
          const s = await childStatus();
          return s.connection.state === 'connected' && s.state === 'synced' && s.session !== undefined;
        },
        30_000,
        'the child reconnected and in sync',
      );
      const resumed = (await childStatus()).session;
      assert.deepEqual(
        {
          sent: resumed?.sent,
          applied: resumed?.applied,
          duplicates: resumed?.duplicates,
          restart: resumed?.restart,
        },
        { sent: 0, applied: 0, duplicates: 0, restart: undefined },
        'nothing resent either way',
      );

      // New writes cross both ways, one revision each.
      await put(hubData, 'after-move', 'hub 2');
      await eventually(
        () => has(childData, 'after-move', 'hub 2'),
        30_000,
        "the hub's new write on the child",
      );
      await put(childData, 'child-after', 'child 2');
      await eventually(
        () => has(hubData, 'child-after', 'child 2'),
        30_000,
        "the child's new write on the hub",
      );
      const after = (await childStatus()).session;
      assert.equal(after?.applied, 1, 'the child applied only the new record');
      assert.equal(after?.sent, 1, 'the child sent only its new record');
      assert.equal(after?.duplicates, 0);

      // The file moved with the hub: read from the database; a new one lands there.
      assert.ok(await hubHolds('plan.bin', plan), 'the moved file, whole, from PostgreSQL');
      assert.ok(!existsSync(join(hubData, 'chunks')), 'no chunk store in the data directory');
      const plan2 = noise(400 * 1024 + 9, 42);
      writeFileSync(join(dir.path, 'plan-2.bin'), plan2);
      await runCli(['files', 'put', join(dir.path, 'plan-2.bin'), '--data', childData]);
      await eventually(() => hubHolds('plan-2.bin', plan2), 30_000, 'a new file content on the hub');
      assert.ok(!existsSync(join(hubData, 'chunks')), 'still none in the data directory');

      // History, the conflict and the pairing are as they were.
      assert.deepEqual(await historyOf('edited'), editedBefore);
      assert.deepEqual(await historyOf('contested'), contestedBefore);
      assert.deepEqual(await conflictsOf(), conflictsBefore);
      assert.equal(
        (await runCli(['get', 'notes', 'contested', '--data', hubData], cli)).rev,
        contestedOnChild,
      );
      const devices = (await runCli(['devices', '--data', hubData], cli)) as unknown as {
        name: string;
        state: string;
      }[];
      assert.deepEqual(
        devices.map((d) => [d.name, d.state]),
        [['desk-move', 'approved']],
      );

      // A second move of the same directory is refused: it is on PostgreSQL now.
      await hub.kill();
      const twice = await failure(['migrate-store', '--data', hubData, '--to', store], cli);
      assert.equal(twice.code, 'STORE_SQLITE_ONLY', twice.stderr);
    } finally {
      await child?.kill();
      await hub.kill();
    }
  });
});
