/**
 * The hub on PostgreSQL as a user meets it, with real processes on a throwaway
 * cluster: `hub --store` once, then every command with `--data` alone; errors that
 * name the database and the cause but never the password; a dropped schema refused
 * as STORE_MISSING rather than an empty hub.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { useClusterForFile } from '../helpers-postgres.js';
import { CLI, freePort, hubArgs, runCli, startAgent, type CliCommand } from '../e2e/helpers.js';

const dir = tempDir('trosyn-hub-pg-');
after(() => dir.remove());
const cluster = useClusterForFile();

const PASSWORD = 'Hub-p@ss:w0rd/%secret';
const ENCODED = encodeURIComponent(PASSWORD);

/** The CLI with this environment (no PostgreSQL password from the test's own). */
function cliWith(env: Record<string, string> = {}): CliCommand {
  const base = { ...process.env };
  delete base.PGPASSWORD;
  delete base.TROSYN_STORE_PASSWORD_FILE;
  return { command: [process.execPath, CLI], env: { ...base, ...env } };
}

/** Runs the CLI expecting a failure: its error code and the whole of its stderr. */
async function failure(args: string[], cli = cliWith()): Promise<{ code: string; stderr: string }> {
  const err = await runCli(args, cli).then(
    (out) => assert.fail(`expected ${args.join(' ')} to fail, got ${JSON.stringify(out)}`),
    (e: unknown) => e as { stderr: string },
  );
  const code = /trosyn-sync: ([A-Z_]+):/.exec(err.stderr)?.[1] ?? '';
  return { code, stderr: err.stderr };
}

function assertNoPassword(text: string, where: string): void {
  for (const secret of [PASSWORD, ENCODED, 'p@ss:w0rd'])
    assert.ok(!text.includes(secret), `the password is in ${where}: ${text.slice(0, 2000)}`);
}

/** Every log file the hub wrote under `prefix`. */
function logs(prefix: string): string {
  const folder = join(prefix, '..');
  return readdirSync(folder)
    .filter((f) => f.endsWith('.log'))
    .map((f) => readFileSync(join(folder, f), 'utf8'))
    .join('');
}

describe('the hub on PostgreSQL', () => {
  let database = '';
  let socketDir = '';

  async function setUp(): Promise<void> {
    if (database) return;
    const pg = await cluster();
    socketDir = pg.socketDir;
    database = await pg.createDatabase();
    await pg.query(`CREATE ROLE trosyn LOGIN PASSWORD '${PASSWORD.replace(/'/g, "''")}'`);
    await pg.query(`ALTER DATABASE ${database} OWNER TO trosyn`);
  }

  it('names why a database cannot be used (host and cause, never the password) and remembers nothing', async () => {
    await setUp();
    const pg = await cluster();
    const data = join(dir.path, 'refused');
    const port = await freePort();
    const start = (store: string) => [...hubArgs(data, port), '--no-admin-api', '--store', store];

    const wrong = await failure(start(pg.url(database, 'trosyn', `${PASSWORD}x`)));
    assert.equal(wrong.code, 'STORE_AUTH_FAILED', wrong.stderr);
    assert.match(
      wrong.stderr,
      new RegExp(`postgres://trosyn@${socketDir}/${database}.*password authentication failed`),
    );
    assertNoPassword(wrong.stderr, 'the wrong-password error');

    const none = await failure(start(`postgres://trosyn@/${database}?host=${encodeURIComponent(socketDir)}`));
    assert.equal(none.code, 'STORE_AUTH_FAILED', none.stderr);
    assert.match(none.stderr, /asks for a password and none was given/);

    const missing = await failure(start(pg.url('no_such_db', 'trosyn', PASSWORD)));
    assert.equal(missing.code, 'STORE_DATABASE_MISSING', missing.stderr);
    assert.match(missing.stderr, /no_such_db.*does not exist/);
    assertNoPassword(missing.stderr, 'the missing-database error');

    const closed = await freePort();
    const unreachable = await failure(start(`postgres://trosyn:${ENCODED}@127.0.0.1:${closed}/${database}`));
    assert.equal(unreachable.code, 'STORE_UNREACHABLE', unreachable.stderr);
    assert.match(unreachable.stderr, new RegExp(`127\\.0\\.0\\.1:${closed}.*ECONNREFUSED`));
    assertNoPassword(unreachable.stderr, 'the unreachable error');

    const garbage = await failure(start(`mysql://trosyn:${ENCODED}@db/x`));
    assert.equal(garbage.code, 'USAGE');
    assertNoPassword(garbage.stderr, 'the usage error');

    assert.ok(!existsSync(join(data, 'config.json')), 'a start that failed remembers no store');
  });

  it('a hub that ran on SQLite is not restarted as an empty hub on PostgreSQL', async () => {
    await setUp();
    const pg = await cluster();
    const data = join(dir.path, 'was-sqlite');
    const port = await freePort();
    const sqlite = startAgent([...hubArgs(data, port), '--no-admin-api'], { cli: cliWith() });
    try {
      await sqlite.waitFor((l) => l.event === 'started', 30_000, 'the hub on SQLite');
    } finally {
      await sqlite.kill();
    }
    const empty = await pg.createDatabase();
    await pg.query(`ALTER DATABASE ${empty} OWNER TO trosyn`);
    const moved = await failure(
      [...hubArgs(data, port), '--no-admin-api', '--store', pg.url(empty, 'trosyn', PASSWORD)],
      cliWith(),
    );
    assert.equal(moved.code, 'STORE_MISSING', moved.stderr);
    assert.match(
      moved.stderr,
      /ran on the SQLite files in its data directory does not move to PostgreSQL by itself/,
    );
    assertNoPassword(moved.stderr, 'the error');
    assert.ok(!existsSync(join(data, 'config.json')), 'nothing remembered');
    const made = await pg.query("SELECT to_regclass('trosyn_store.meta') AS t", [], empty);
    assert.equal(made.rows[0].t, null, 'no empty store was made');
  });

  it('remembers the store: later commands need only --data, and the password shows nowhere', async () => {
    await setUp();
    const pg = await cluster();
    const data = join(dir.path, 'hub');
    const logPrefix = join(dir.path, 'hub-logs', 'hub.log');
    const port = await freePort();
    const hub = startAgent(
      [
        ...hubArgs(data, port),
        '--http-port',
        '0',
        '--store',
        pg.url(database, 'trosyn', PASSWORD),
        '--log-level',
        'trace',
        '--log-file',
        logPrefix,
      ],
      { cli: cliWith() },
    );
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub on PostgreSQL');
      assert.equal(started.store, `postgres://trosyn@/${database}?host=${encodeURIComponent(socketDir)}`);
      // What other users of the machine see of the process (ps, /proc).
      const cmdline = readFileSync(`/proc/${hub.proc.pid}/cmdline`, 'utf8');
      assertNoPassword(cmdline, 'the command line others see');
      assert.match(cmdline, /--store/);
      const status = await fetch(`http://127.0.0.1:${started.adminPort as number}/api/status`, {
        headers: { authorization: `Bearer ${started.adminToken as string}` },
      });
      assert.equal(status.status, 200);
      assertNoPassword(await status.text(), 'the admin API status');

      const config = readFileSync(join(data, 'config.json'), 'utf8');
      assertNoPassword(config, 'config.json');
      assert.equal(
        (JSON.parse(config) as { store: string }).store,
        `postgres://trosyn@/${database}?host=${encodeURIComponent(socketDir)}`,
      );
      assert.ok(!existsSync(join(data, 'trosyn.db')) && !existsSync(join(data, 'hub.db')), 'no SQLite store');

      // Beside the running hub, with the password from a file named in the environment.
      const passwordFile = join(dir.path, 'pg-password');
      writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
      const cli = cliWith({ TROSYN_STORE_PASSWORD_FILE: passwordFile });
      await runCli(['put', 'notes', 'n1', '{"text":"on postgres"}', '--data', data], cli);
      assert.deepEqual((await runCli(['get', 'notes', 'n1', '--data', data], cli)).body, {
        text: 'on postgres',
      });
      const st = await runCli(['status', '--data', data], cli);
      assert.equal(st.role, 'hub');
      assert.equal((st.store as { records: number }).records, 1);
      const code = await runCli(['pairing-code', '--data', data, '--no-qr'], cli);
      assert.match(String(code.code), /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
      assert.deepEqual(await runCli(['devices', '--data', data], cli), []);
      const settings = await runCli(['settings', '--data', data], cli);
      assert.equal(settings.requireApproval, false, JSON.stringify(settings));
      assert.deepEqual(await runCli(['files', 'ls', '--data', data], cli), []);
      // The same through $PGPASSWORD; without any password the sign-in is refused.
      assert.equal((await runCli(['status', '--data', data], cliWith({ PGPASSWORD: PASSWORD }))).role, 'hub');
      const refused = await failure(['status', '--data', data]);
      assert.equal(refused.code, 'STORE_AUTH_FAILED', refused.stderr);

      const doctor = await runCli(['doctor', '--data', data, '--timeout', '200'], cli).catch(
        (e: { stderr: string }) => assert.fail(e.stderr),
      );
      const checks = doctor.checks as { id: string; status: string; detail: string }[];
      assert.equal(doctor.role, 'hub');
      assert.equal(checks.find((c) => c.id === 'postgres')?.status, 'ok', JSON.stringify(checks));
      assert.match(
        checks.find((c) => c.id === 'postgres')?.detail ?? '',
        /store schema version 1, registry schema version 1/,
      );
      assert.equal(checks.find((c) => c.id === 'databases')?.status, 'ok', JSON.stringify(checks));

      const backup = await failure(['backup', '--out', join(dir.path, 'backup'), '--data', data], cli);
      assert.equal(backup.code, 'STORE_SQLITE_ONLY', backup.stderr);
    } finally {
      await hub.kill();
    }
    assertNoPassword(JSON.stringify(hub.lines), "the hub's output");
    const logged = logs(logPrefix);
    assert.match(logged, /hub started/, 'trace logs were written');
    assert.match(logged, new RegExp(`postgres://trosyn@${socketDir}`), 'the log names the database');
    assertNoPassword(logged, "the hub's logs");

    // Started again with --data alone (the password from the environment): the same hub.
    const again = startAgent([...hubArgs(data, port), '--no-admin-api'], {
      cli: cliWith({ PGPASSWORD: PASSWORD }),
    });
    try {
      await again.waitFor((l) => l.event === 'started', 30_000, 'the hub again');
    } finally {
      await again.kill();
    }
    const scheduled = await failure(
      [...hubArgs(data, port), '--no-admin-api', '--backup-dir', join(dir.path, 'b')],
      cliWith({ PGPASSWORD: PASSWORD }),
    );
    assert.equal(scheduled.code, 'STORE_SQLITE_ONLY', scheduled.stderr);
  });

  it('a dropped schema is STORE_MISSING, not an empty hub; --recover brings back the store, never the registry', async () => {
    await setUp();
    const pg = await cluster();
    const data = join(dir.path, 'hub');
    assert.ok(existsSync(join(data, 'config.json')), 'runs after the test that made the hub');
    const port = await freePort();
    const cli = cliWith({ PGPASSWORD: PASSWORD });
    await pg.query('DROP SCHEMA trosyn_store CASCADE', [], database);

    const start = await failure([...hubArgs(data, port), '--no-admin-api'], cli);
    assert.equal(start.code, 'STORE_MISSING', start.stderr);
    assert.match(start.stderr, /holds no hub store \(schema trosyn_store\)/);
    const ls = await failure(['ls', '--data', data], cli);
    assert.equal(ls.code, 'STORE_MISSING', ls.stderr);
    const gone = await pg.query("SELECT to_regclass('trosyn_store.meta') AS t", [], database);
    assert.equal(gone.rows[0].t, null, 'nothing made an empty store');

    const recovered = startAgent([...hubArgs(data, port), '--no-admin-api', '--recover'], { cli });
    try {
      await recovered.waitFor((l) => l.event === 'started', 30_000, 'the recovering hub');
    } finally {
      await recovered.kill();
    }
    assert.deepEqual((await runCli(['ls', 'notes', '--data', data], cli)).records, []);

    await pg.query('DROP SCHEMA trosyn_hub CASCADE', [], database);
    const noRegistry = await failure([...hubArgs(data, port), '--no-admin-api', '--recover'], cli);
    assert.equal(noRegistry.code, 'STORE_MISSING', noRegistry.stderr);
    assert.match(noRegistry.stderr, /holds no hub registry \(schema trosyn_hub\)/);
    const devices = await failure(['devices', '--data', data], cli);
    assert.equal(devices.code, 'STORE_MISSING', devices.stderr);
  });
});
