import pg from 'pg';
import type { Logger } from 'pino';
import {
  StoreAuthError,
  StoreDatabaseMissingError,
  StoreOpenError,
  StoreUnreachableError,
} from './errors.js';

/**
 * Where a PostgreSQL-backed part keeps its tables: a connection string
 * (`postgres://user:password@host:port/database`, `?host=/run/postgresql` for a
 * unix socket) or a node-postgres pool config.
 */
export type PostgresConnection = string | pg.PoolConfig;

/** A pool to one schema of one database, and how to name it without its password. */
export interface PostgresTarget {
  pool: pg.Pool;
  /** The connection as `postgres://user@host:port/database`, never with its password. */
  label: string;
  /** `err` with every occurrence of the password taken out of its message; no other properties kept but `code`. */
  sanitize(err: unknown): Error;
}

/** How long opening a connection may take before the server counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const INT8_OID = 20;

/**
 * int8 (bigint: positions, counts, times in ms) as a JavaScript number instead of
 * node-postgres's default string. Per pool, not node-postgres's global parser table,
 * so no other user of `pg` in the process is affected. Values stay below 2^53.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Opens a pool whose connections use `schema` (created by the migrations if
 * missing) as their search path. A connection string that is not a URL fails here
 * with STORE_OPEN_FAILED, without echoing it. Nothing is connected yet.
 */
export function openPostgres(
  connection: PostgresConnection,
  options: { schema: string; maxConnections: number; logger: Logger; startupOptions?: string },
): PostgresTarget {
  if (!SCHEMA_NAME.test(options.schema))
    throw new StoreOpenError(
      'PostgreSQL',
      `the schema name ${JSON.stringify(options.schema)} is not a plain lowercase identifier (a-z, 0-9, _)`,
    );
  let config: pg.PoolConfig;
  let label: string;
  if (typeof connection === 'string') {
    const parsed = parseUrl(connection);
    if (parsed === undefined)
      throw new StoreOpenError(
        'PostgreSQL',
        'the connection string is not a URL (postgres://user:password@host:port/database)',
      );
    const { url, host } = parsed;
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
      throw new StoreOpenError('PostgreSQL', `the connection string must start with postgres://`);
    config = { connectionString: connection };
    const socket = url.searchParams.get('host');
    const user = decodeURIComponent(url.username);
    label = `postgres://${user ? `${user}@` : ''}${host || socket || 'localhost'}${url.pathname}`;
  } else {
    config = { ...connection };
    label = `postgres://${connection.user ? `${connection.user}@` : ''}${connection.host ?? 'localhost'}${
      connection.port ? `:${connection.port}` : ''
    }/${connection.database ?? ''}`;
  }
  const secrets = passwordsOf(connection);
  const redact = (text: string): string => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join('***');
    return out;
  };
  const sanitize = (err: unknown): Error => {
    const message = redact(err instanceof Error ? err.message : String(err));
    const clean = new Error(message);
    const code = err instanceof Error && 'code' in err ? err.code : undefined;
    if (typeof code === 'string') Object.assign(clean, { code });
    return clean;
  };
  // A server behind a silent network would otherwise keep a start waiting for good.
  const pool = new pg.Pool({
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...config,
    max: options.maxConnections,
    types,
    ...(options.startupOptions !== undefined && { options: options.startupOptions }),
    // The tables are found, and created, in their own schema. Set on each new
    // connection before the pool hands it out (it waits for this hook), rather than
    // as a startup option, which an `options` parameter of the connection string
    // would silently replace. A connection whose search path cannot be set is not
    // handed out: the query that asked for it fails.
    // pg-pool (3.x) waits for the promise this hook returns; @types/pg declares it void.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    onConnect: async (client: pg.ClientBase) => {
      // A connection the server ends while it is checked out but between queries
      // (pg_terminate_backend, a restart) reports it as an event; unheard, that would
      // end the process. The query that next uses it fails, and the pool drops it.
      client.on('error', (err) =>
        options.logger.warn({ err: sanitize(err), db: label }, 'PostgreSQL connection lost'),
      );
      await client.query(`SET search_path TO ${options.schema}`);
    },
  } as pg.PoolConfig);
  // An idle connection the server drops (restart, network) must not end the process;
  // the pool replaces it on the next query.
  pool.on('error', (err) =>
    options.logger.warn({ err: sanitize(err), db: label }, 'idle PostgreSQL connection lost'),
  );
  return { pool, label, sanitize };
}

/** Every form the password can take in a message: as given, and URL-decoded. */
function passwordsOf(connection: PostgresConnection): string[] {
  const found: string[] = [];
  if (typeof connection === 'string') {
    const url = parseUrl(connection)?.url;
    if (url?.password) found.push(url.password, decodeURIComponent(url.password));
    const param = url?.searchParams.get('password');
    if (param) found.push(param, encodeURIComponent(param));
  } else if (typeof connection.password === 'string' && connection.password !== '') {
    found.push(connection.password);
  }
  return [...new Set(found.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
}

/**
 * A connection string as a URL; one with no host before the path
 * (`postgres://user:pw@/db?host=/run/postgresql`, a unix socket) as node-postgres
 * reads it. Undefined when it is not a URL.
 */
function parseUrl(text: string): { url: URL; host: string } | undefined {
  for (const candidate of [text, text.replace('@/', '@localhost/')]) {
    try {
      const url = new URL(candidate);
      return { url, host: candidate === text ? url.host : '' };
    } catch {
      // Try the next reading.
    }
  }
  return undefined;
}

/** Runs `fn` on one connection inside a transaction; rolls back on a throw. */
export async function inTransaction<T>(
  pool: pg.Pool,
  begin: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Socket errors of a server that cannot be reached at all. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EACCES',
  // cannot_connect_now: the server is starting up or shutting down
  '57P03',
]);

/**
 * Why a database could not be opened, as a named error that names the database
 * (without its password) and the cause: STORE_UNREACHABLE, STORE_AUTH_FAILED,
 * STORE_DATABASE_MISSING, or STORE_OPEN_FAILED for anything else.
 */
export function openError(target: PostgresTarget, err: unknown): Error {
  const clean = target.sanitize(err);
  const code = (clean as { code?: string }).code ?? '';
  const message = clean.message;
  if (
    UNREACHABLE.has(code) ||
    /timeout (exceeded when trying to connect|expired)|connection timeout|Connection terminated unexpectedly/i.test(
      message,
    )
  )
    return new StoreUnreachableError(target.label, clean);
  // invalid_password, invalid_authorization_specification (no such role, pg_hba.conf)
  if (code === '28P01' || code === '28000') return new StoreAuthError(target.label, clean);
  // node-postgres's own words when the server asks for a password and none was given
  if (/client password must be a string|password must be a non-empty string/i.test(message))
    return new StoreAuthError(target.label, new Error('the server asks for a password and none was given'));
  if (code === '3D000') return new StoreDatabaseMissingError(target.label, clean);
  return new StoreOpenError(target.label, clean);
}

/**
 * Payload-free wake-ups on one channel: while the database is open and someone
 * subscribed, a connection of its own LISTENs on `channel` and every subscriber is
 * called on each notification, never the data path. When that connection is lost
 * it connects again (every `retryMs`) and calls the subscribers once it is back, for
 * what was missed meanwhile. Subscribers stay across a close and the next open.
 */
export class PostgresWakeups {
  private readonly listeners = new Set<() => void>();
  private target: PostgresTarget | undefined;
  private client: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** Calls `listener` on every wake-up from now on; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    this.listen();
    return () => this.listeners.delete(listener);
  }

  /** The database is open: LISTEN from now on (once anyone subscribed). */
  open(target: PostgresTarget): void {
    // The channel is a schema name, which openPostgres has checked by now.
    if (!SCHEMA_NAME.test(this.channel)) throw new Error(`not a plain channel name: ${this.channel}`);
    this.target = target;
    this.listen();
  }

  /** The database closes: the LISTEN connection ends. */
  async close(): Promise<void> {
    this.target = undefined;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private listen(): void {
    if (this.client || !this.target || this.listeners.size === 0) return;
    void this.connect(this.target, false);
  }

  private wake(): void {
    for (const l of this.listeners) l();
  }

  private async connect(target: PostgresTarget, again: boolean): Promise<void> {
    const options = target.pool.options as pg.PoolConfig;
    const client = new pg.Client({ ...options, types });
    const lost = (err?: unknown) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      if (this.target !== target) return;
      if (err) this.logger.warn({ err: target.sanitize(err), db: target.label }, 'wake-up connection lost');
      this.retry = setTimeout(() => void this.connect(target, true), this.retryMs);
      this.retry.unref();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => this.wake());
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (again) this.wake();
    } catch (err) {
      lost(err);
    }
  }
}
