import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadNodeConfig } from '../config.js';
import { TrosynError } from '../errors.js';
import { parsePostgresLocation, withPassword } from '../store/postgres-location.js';

/** The registry file in a hub's data directory, when the hub keeps its data in SQLite. */
export const HUB_REGISTRY_FILE = 'hub.db';

/** The environment variable naming a file that holds the PostgreSQL password. */
export const STORE_PASSWORD_FILE_ENV = 'TROSYN_STORE_PASSWORD_FILE';

/** The environment variable naming the file that seals a hub's identity into its database. */
export const IDENTITY_KEY_FILE_ENV = 'TROSYN_IDENTITY_KEY_FILE';

/**
 * Where a hub keeps its records and registry: SQLite files in its data directory
 * (`trosyn.db`, `hub.db`), or one PostgreSQL database (schemas `trosyn_store` and
 * `trosyn_hub`). The identity, config.json and file content stay in the data
 * directory either way.
 */
export type HubStorage =
  | { kind: 'sqlite' }
  | {
      kind: 'postgres';
      /** The database as a URL without its password: what config.json keeps and status shows. */
      url: string;
      /** What the store and registry connect with: the URL and, when there is one, the password. */
      connection: string;
      /** The password file to remember in config.json, when one was given as an option or is remembered. */
      passwordFile?: string;
      /**
       * The identity key file shared by the hub processes on this database: given,
       * else `$TROSYN_IDENTITY_KEY_FILE`, else remembered (only a given one is remembered).
       */
      identityKeyFile?: string;
      /** Whether identityKeyFile was given as an option: remembered in config.json. */
      rememberKeyFile?: boolean;
    };

/** What a command was given: `--store` and `--store-password-file`. */
export interface HubStorageChoice {
  store?: string;
  storePasswordFile?: string;
  identityKeyFile?: string;
}

/**
 * The hub storage of a data directory: the `--store` given, else the one its
 * config.json remembers, else SQLite. The password is, in this order: the one in the
 * given location (used for this run only), `--store-password-file`,
 * `$TROSYN_STORE_PASSWORD_FILE`, `$PGPASSWORD`, the password file config.json
 * remembers; none when the server asks for none (a trusted socket, a peer login).
 * A location that cannot be read throws PostgresLocationError.
 */
export function hubStorage(
  dataDir: string,
  given: HubStorageChoice = {},
  env: NodeJS.ProcessEnv = process.env,
): HubStorage {
  const config = loadNodeConfig(dataDir);
  const text = given.store ?? config.store;
  if (text === undefined) return { kind: 'sqlite' };
  const { url, password: inline } = parsePostgresLocation(text);
  const givenFile = given.storePasswordFile === undefined ? undefined : resolve(given.storePasswordFile);
  const envFile = env[STORE_PASSWORD_FILE_ENV] || undefined;
  const password =
    inline ??
    (givenFile !== undefined ? readPasswordFile(givenFile, '--store-password-file') : undefined) ??
    (envFile !== undefined ? readPasswordFile(envFile, STORE_PASSWORD_FILE_ENV) : undefined) ??
    (env.PGPASSWORD || undefined) ??
    (config.storePasswordFile !== undefined
      ? readPasswordFile(config.storePasswordFile, `storePasswordFile of ${join(dataDir, 'config.json')}`)
      : undefined);
  const passwordFile = givenFile ?? config.storePasswordFile;
  const givenKey = given.identityKeyFile === undefined ? undefined : resolve(given.identityKeyFile);
  const identityKeyFile = givenKey ?? (env[IDENTITY_KEY_FILE_ENV] || undefined) ?? config.identityKeyFile;
  return {
    kind: 'postgres',
    url,
    connection: withPassword(url, password),
    ...(passwordFile !== undefined && { passwordFile }),
    ...(identityKeyFile !== undefined && { identityKeyFile }),
    ...(givenKey !== undefined && { rememberKeyFile: true }),
  };
}

/** Whether a data directory is a hub's: its registry file is there, or its config.json names its database. */
export function isHubDataDir(dataDir: string): boolean {
  return existsSync(join(dataDir, HUB_REGISTRY_FILE)) || loadNodeConfig(dataDir).store !== undefined;
}

/** Whether the hub of this data directory keeps its data in PostgreSQL (config.json names the database). */
export function onPostgres(dataDir: string): boolean {
  return loadNodeConfig(dataDir).store !== undefined;
}

/**
 * Writes a PostgreSQL storage into the data directory's config.json (the URL without
 * its password, and the password file's path if one was given), keeping everything
 * else in the file; nothing for SQLite. Written once the hub has started on it, so a
 * start that failed leaves the directory as it was.
 */
export function rememberHubStorage(dataDir: string, storage: HubStorage): void {
  if (storage.kind !== 'postgres') return;
  const path = join(dataDir, 'config.json');
  const raw: Record<string, unknown> = existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>)
    : {};
  const next = {
    ...raw,
    store: storage.url,
    ...(storage.passwordFile !== undefined && { storePasswordFile: storage.passwordFile }),
    ...(storage.rememberKeyFile && { identityKeyFile: storage.identityKeyFile }),
  };
  if (JSON.stringify(next) === JSON.stringify(raw)) return;
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

/** The password on the first line of `file`; a missing, unreadable or empty file is STORE_PASSWORD_UNREADABLE. */
function readPasswordFile(file: string, from: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TrosynError(
      'STORE_PASSWORD_UNREADABLE',
      `cannot read the PostgreSQL password file ${file} (${from}): ${reason}`,
      { file },
    );
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '')
    throw new TrosynError(
      'STORE_PASSWORD_UNREADABLE',
      `the PostgreSQL password file ${file} (${from}) is empty: write the password on its first line`,
      { file },
    );
  return password;
}
