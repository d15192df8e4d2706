import type pg from 'pg';
import type { Logger } from 'pino';
import { PostgresStoreMissingError, SchemaTooNewError } from './errors.js';
import type { Migration } from './migrations.js';
import {
  inTransaction,
  openError,
  openPostgres,
  type PostgresConnection,
  type PostgresTarget,
} from './postgres-connection.js';

/**
 * Brings one schema of a PostgreSQL database up to the latest of `steps`; returns
 * the versions applied. Each applied step is a row of `schema_migrations` (the
 * highest is the schema's version). All pending steps run in one transaction
 * (PostgreSQL's DDL is transactional), under an advisory lock on the schema's name,
 * so of several processes starting at once one migrates and the others then find
 * nothing left to do. A schema newer than `steps` is refused with
 * STORE_SCHEMA_TOO_NEW and left as it is.
 */
export async function runPostgresMigrations(
  pool: pg.Pool,
  schema: string,
  steps: readonly Migration[],
  now: number,
): Promise<number[]> {
  return inTransaction(pool, 'BEGIN', (client) => applyPostgresMigrations(client, schema, steps, now));
}

/**
 * runPostgresMigrations inside a transaction the caller holds on `client`, whose
 * search path is `schema`: so a caller can make a schema and fill it in one
 * transaction (migrate-store).
 */
export async function applyPostgresMigrations(
  client: pg.ClientBase,
  schema: string,
  steps: readonly Migration[],
  now: number,
): Promise<number[]> {
  const latest = steps[steps.length - 1]?.version ?? 0;
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`trosyn-sync migrate ${schema}`]);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at bigint NOT NULL)',
  );
  const { rows } = await client.query<{ version: number }>(
    'SELECT coalesce(max(version), 0) AS version FROM schema_migrations',
  );
  const current = rows[0]?.version ?? 0;
  if (current > latest) throw new SchemaTooNewError(current, latest);
  const applied: number[] = [];
  for (const step of steps) {
    if (step.version <= current) continue;
    await client.query(step.sql);
    await client.query(
      'INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)',
      [step.version, step.description, now],
    );
    applied.push(step.version);
  }
  return applied;
}

/**
 * Opens `connection`, brings `options.schema` to `steps` and runs `prepare` on the
 * result: what the store and the registry each do at start. On any failure the pool
 * is ended and the error is named (see openError; STORE_SCHEMA_TOO_NEW, STORE_MISSING),
 * the password left out.
 */
export async function openMigrated(
  connection: PostgresConnection,
  options: {
    schema: string;
    maxConnections: number;
    logger: Logger;
    steps: readonly Migration[];
    now: number;
    /** What the schema holds, for the log line and errors. */
    what: 'store' | 'registry' | 'chunk store';
    /** Server settings every connection starts with (libpq `options`, e.g. `-c name=value`). */
    startupOptions?: string;
    /**
     * The schema must already hold a migrated database (its owner has run on it):
     * when it does not, fail with STORE_MISSING rather than create an empty one.
     */
    mustExist?: boolean;
    prepare?: (target: PostgresTarget) => Promise<void>;
  },
): Promise<PostgresTarget> {
  const { schema, logger } = options;
  const target = openPostgres(connection, {
    schema,
    maxConnections: options.maxConnections,
    logger,
    ...(options.startupOptions !== undefined && { startupOptions: options.startupOptions }),
  });
  try {
    if (options.mustExist && !(await migrated(target.pool, schema)))
      throw new PostgresStoreMissingError(target.label, schema, options.what);
    const applied = await runPostgresMigrations(target.pool, schema, options.steps, options.now);
    if (applied.length > 0)
      logger.info({ db: target.label, schema, applied }, `${options.what} schema migrated`);
    await options.prepare?.(target);
  } catch (err) {
    await target.pool.end().catch(() => undefined);
    if (err instanceof SchemaTooNewError || err instanceof PostgresStoreMissingError) throw err;
    throw openError(target, err);
  }
  return target;
}

/** Whether `schema` holds a database some migration step was applied to. */
async function migrated(pool: pg.Pool, schema: string): Promise<boolean> {
  const { rows } = await pool.query<{ table: string | null }>('SELECT to_regclass($1) AS table', [
    `${schema}.schema_migrations`,
  ]);
  if (rows[0]?.table == null) return false;
  const count = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.schema_migrations`);
  return (count.rows[0]?.n ?? 0) > 0;
}
