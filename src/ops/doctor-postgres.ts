/**
 * The doctor's look at a hub whose records and registry are in PostgreSQL: can the
 * database be reached and signed in to, and does it hold both schemas. Reads only.
 */
import type pg from 'pg';
import { silentLogger } from '../observability/logger.js';
import { openError, openPostgres, type PostgresTarget } from '../store/postgres-connection.js';
import type { Check } from './doctor-check.js';
import { hubStorage } from './hub-store.js';

const SCHEMAS = [
  { schema: 'trosyn_store', what: 'store' },
  { schema: 'trosyn_hub', what: 'registry' },
] as const;

/**
 * The PostgreSQL check of a hub's data directory, and the open database for the
 * checks after it (undefined when it failed). The caller ends the pool.
 */
export async function checkPostgres(dataDir: string): Promise<{ check: Check; pool: pg.Pool | undefined }> {
  const title = 'PostgreSQL';
  let target: PostgresTarget | undefined;
  try {
    const storage = hubStorage(dataDir);
    if (storage.kind !== 'postgres') throw new Error('the data directory names no PostgreSQL store');
    target = openPostgres(storage.connection, {
      schema: 'trosyn_hub',
      maxConnections: 1,
      logger: silentLogger,
    });
    const versions: string[] = [];
    const missing: string[] = [];
    for (const { schema, what } of SCHEMAS) {
      const { rows } = await target.pool
        .query<{ table: string | null }>('SELECT to_regclass($1) AS table', [`${schema}.schema_migrations`])
        .catch((err: unknown) => {
          throw openError(target as PostgresTarget, err);
        });
      if (rows[0]?.table == null) {
        missing.push(`the ${what} (schema ${schema})`);
        continue;
      }
      const version = await target.pool.query<{ v: number | null }>(
        `SELECT max(version) AS v FROM ${schema}.schema_migrations`,
      );
      versions.push(`${what} schema version ${version.rows[0]?.v ?? 0}`);
    }
    if (missing.length > 0) {
      await target.pool.end();
      return {
        check: {
          id: 'postgres',
          title,
          status: 'fail',
          detail: `${target.label} holds no ${missing.join(' and no ')}: dropped, or another database (STORE_MISSING)`,
          fix: 'restore the database from a backup (pg_dump, a base backup); a lost store alone also comes back from the children with `trosyn-sync hub --recover`',
        },
        pool: undefined,
      };
    }
    return {
      check: { id: 'postgres', title, status: 'ok', detail: `${target.label}: ${versions.join(', ')}` },
      pool: target.pool,
    };
  } catch (err) {
    await target?.pool.end().catch(() => undefined);
    const code = (err as { code?: string }).code;
    return {
      check: {
        id: 'postgres',
        title,
        status: 'fail',
        detail: `${code ? `${code}: ` : ''}${(err as Error).message}`,
        fix: 'see docs/DEPLOY.md (PostgreSQL) and the code in docs/ERRORS.md',
      },
      pool: undefined,
    };
  }
}
