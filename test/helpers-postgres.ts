/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, a
 * server listening only on a unix socket in that directory, fsync off, removed
 * again afterwards. PostgreSQL refuses to run as root, so as root (CI) every server
 * command runs as the `postgres` user that Debian's package creates.
 *
 * One cluster per test file (`useClusterForFile()` at the top level of the file);
 * a fresh database per test (`createDatabase()`).
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PostgresCluster {
  /** The socket directory: the `host` of a connection. */
  readonly socketDir: string;
  /** A pool config for `database` as the superuser (trusted, no password). */
  config(database: string): pg.PoolConfig;
  /** A connection string for `database` as `user` with `password`, over the socket. */
  url(database: string, user: string, password: string): string;
  /**
   * Creates an empty database, or a copy of `template` (which must have no
   * connections), named `name` or a new name; returns the name.
   */
  createDatabase(template?: string, name?: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  /** Runs SQL as the superuser in the maintenance database (or `database`). */
  query(sql: string, values?: unknown[], database?: string): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory (Debian keeps them off PATH). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined)
    throw new Error(`no PostgreSQL server under ${root}/*/bin (install Debian's postgresql package)`);
  return join(root, newest, 'bin');
}

let clusters = 0;

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'trosyn-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const owner = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (owner.status !== 0)
      throw new Error('running as root, and there is no postgres user to run the server as');
    chownSync(dir, Number(owner.stdout.trim()), Number(gid.stdout.trim()));
  }
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const pgctl = (...args: string[]) => command('pg_ctl', ['-D', data, ...args]);
  const stopSync = () => {
    const [file, args] = pgctl('stop', '-m', 'immediate', '-w');
    if (existsSync(join(data, 'postmaster.pid'))) spawnSync(file, args, { stdio: 'ignore', cwd: dir });
    rmSync(dir, { recursive: true, force: true });
  };
  // Also when the file's process ends without running its after() hooks.
  const onExit = () => stopSync();
  process.on('exit', onExit);

  let admin: pg.Pool | undefined;
  try {
    await run(
      ...command('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '-N']),
      { cwd: dir },
    );
    // The superuser is trusted on the socket (the directory is private); every other
    // role signs in with its password, so tests can exercise one.
    writeFileSync(join(data, 'pg_hba.conf'), 'local all postgres trust\nlocal all all scram-sha-256\n');
    const options = [
      "-c listen_addresses=''",
      `-k ${dir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c shared_buffers=16MB',
      '-c max_connections=60',
    ].join(' ');
    try {
      await run(...pgctl('start', '-w', '-t', '60', '-l', logFile, '-o', options), { cwd: dir });
    } catch (err) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      throw new Error(`the PostgreSQL test server did not start: ${String(err)}\n${log}`);
    }
    admin = new pg.Pool({ host: dir, user: 'postgres', database: 'postgres', max: 2 });
  } catch (err) {
    process.off('exit', onExit);
    stopSync();
    throw err;
  }
  const pool = admin;
  const prefix = `t${++clusters}_${process.pid}`;
  let databases = 0;
  let stopped = false;
  const config = (database: string): pg.PoolConfig => ({ host: dir, user: 'postgres', database });
  return {
    socketDir: dir,
    config,
    url: (database, user, password) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@/${database}?host=${encodeURIComponent(dir)}`,
    async createDatabase(template = 'template0', name = `${prefix}_${++databases}`) {
      // A template's last connection may still be closing on the server for a moment.
      for (let attempt = 1; ; attempt++) {
        try {
          await pool.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
          return name;
        } catch (err) {
          const inUse = err instanceof Error && 'code' in err && err.code === '55006';
          if (!inUse || attempt >= 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    },
    async dropDatabase(name) {
      await pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    async query(sql, values, database) {
      if (database === undefined) return pool.query(sql, values);
      const client = new pg.Client(config(database));
      await client.connect();
      try {
        return await client.query(sql, values);
      } finally {
        await client.end();
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await pool.end();
      process.off('exit', onExit);
      stopSync();
    },
  };
}

/**
 * One cluster for the tests of this file, started when first asked for and stopped
 * after the file's last test. Call at the top level of a test file.
 */
export function useClusterForFile(): () => Promise<PostgresCluster> {
  let cluster: Promise<PostgresCluster> | undefined;
  after(async () => {
    if (cluster) await (await cluster).stop();
  });
  return () => (cluster ??= startPostgresCluster());
}

/**
 * A new database owned by a new role `role` that signs in with `password`, which the
 * CLI reads from a file in `dir` (TROSYN_STORE_PASSWORD_FILE; PGPASSWORD unset): the
 * database, the environment to run the CLI with, and the database's location as
 * `--store` takes it (over the cluster's socket, without the password).
 */
export async function passwordDatabase(
  cluster: PostgresCluster,
  role: string,
  password: string,
  dir: string,
): Promise<{ database: string; env: NodeJS.ProcessEnv; store: string }> {
  const database = await cluster.createDatabase();
  await cluster.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  await cluster.query(`ALTER DATABASE ${database} OWNER TO ${role}`);
  const passwordFile = join(dir, 'pg-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, TROSYN_STORE_PASSWORD_FILE: passwordFile };
  delete env.PGPASSWORD;
  const store = `postgres://${role}@/${database}?host=${encodeURIComponent(cluster.socketDir)}`;
  return { database, env, store };
}
