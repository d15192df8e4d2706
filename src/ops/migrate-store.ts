/**
 * Moves a hub that keeps its records and registry in SQLite files (`trosyn.db`,
 * `hub.db`) and its file content in `chunks/` into a PostgreSQL database (schemas
 * `trosyn_store`, `trosyn_hub` and `trosyn_chunks`), table by table and row for row
 * (each chunk verified as it is read): every position of the change log, every id and
 * cursor, the change log's identity, checkpoint secret and epochs. The checkpoint
 * tokens the hub gave its children are computed from exactly these (see
 * store/checkpoint.ts), so the children resume where they were, without pairing
 * again and without anything being sent twice.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { TrosynError } from '../errors.js';
import {
  copyPackChunks,
  POSTGRES_CHUNK_MIGRATIONS,
  POSTGRES_CHUNKS_SCHEMA,
} from '../files/chunk-store-postgres.js';
import { REGISTRY_MIGRATIONS } from '../hub/registry-migrations.js';
import { POSTGRES_REGISTRY_MIGRATIONS } from '../hub/postgres-registry-migrations.js';
import { silentLogger } from '../observability/logger.js';
import { MIGRATIONS, type Migration, runMigrations } from '../store/migrations.js';
import { inTransaction, openError, openPostgres } from '../store/postgres-connection.js';
import { applyPostgresMigrations } from '../store/postgres-migrations.js';
import { POSTGRES_STORE_MIGRATIONS } from '../store/postgres-schema.js';
import { DataDirLock } from './data-dir.js';
import { HUB_REGISTRY_FILE, type HubStorage, onPostgres, rememberHubStorage } from './hub-store.js';

/** What the SQLite files (and `chunks/`) are renamed to once copied: kept, so the move can be undone. */
export const MIGRATED_SUFFIX = '.before-postgres';

/** The hub's chunk store in its data directory, whose chunks go to `trosyn_chunks`. */
const CHUNKS_DIR = 'chunks';

/** One SQLite file and the PostgreSQL schema it goes to. */
interface Part {
  file: string;
  schema: string;
  sqliteSteps: readonly Migration[];
  postgresSteps: readonly Migration[];
  /**
   * PostgreSQL's counter rows, which SQLite keeps in sqlite_sequence: the table, its
   * column, and the SQLite table whose AUTOINCREMENT counter it takes over.
   */
  heads: Record<string, { column: string; sequenceOf: string }>;
}

const PARTS: readonly Part[] = [
  {
    file: 'trosyn.db',
    schema: 'trosyn_store',
    sqliteSteps: MIGRATIONS,
    postgresSteps: POSTGRES_STORE_MIGRATIONS,
    heads: { log_head: { column: 'latest', sequenceOf: 'revisions' } },
  },
  {
    file: HUB_REGISTRY_FILE,
    schema: 'trosyn_hub',
    sqliteSteps: REGISTRY_MIGRATIONS,
    postgresSteps: POSTGRES_REGISTRY_MIGRATIONS,
    heads: { event_head: { column: 'latest', sequenceOf: 'hub_events' } },
  },
];

/** Rows per INSERT statement (PostgreSQL takes at most 65535 parameters in one). */
const BATCH_ROWS = 500;

export interface MigratedTable {
  schema: string;
  table: string;
  rows: number;
}

export interface MigrateStoreResult {
  /** The database, without its password. */
  url: string;
  tables: MigratedTable[];
  /** The SQLite files as they are now named, kept to undo the move. */
  kept: string[];
  /**
   * The database already held this very hub (a move cut short after its copy was
   * committed, before config.json named the database): nothing was copied again,
   * and the move was finished.
   */
  finished?: boolean;
}

/**
 * Copies the SQLite hub of `dataDir` into the PostgreSQL database of `storage`,
 * then remembers that database in config.json and renames the SQLite files with
 * MIGRATED_SUFFIX. Refused while the hub runs (DATA_DIR_LOCKED), for a directory
 * that is no SQLite hub (NOT_A_HUB, STORE_SQLITE_ONLY), and for a database whose
 * schemas hold any table already (STORE_TARGET_NOT_EMPTY). Everything is copied in
 * one transaction: a failure leaves the database without the schemas and the data
 * directory as it was.
 */
export async function migrateStore(
  dataDir: string,
  storage: HubStorage & { kind: 'postgres' },
  now: number = Date.now(),
): Promise<MigrateStoreResult> {
  if (onPostgres(dataDir))
    throw new TrosynError(
      'STORE_SQLITE_ONLY',
      `${dataDir} is a hub that already keeps its records and registry in PostgreSQL (its config.json names the database): there is nothing in SQLite to move`,
      { dataDir },
    );
  for (const part of PARTS)
    if (!existsSync(join(dataDir, part.file)))
      throw new TrosynError(
        'NOT_A_HUB',
        `${dataDir} holds no SQLite hub to move (no ${part.file}): give the hub's --data`,
        { dataDir, missing: part.file },
      );
  // Held while moving: refused if the hub runs, and none may start meanwhile.
  const lock = new DataDirLock(dataDir, 'hub');
  await lock.start();
  const sources: Database.Database[] = [];
  try {
    for (const part of PARTS) {
      const db = new Database(join(dataDir, part.file), { fileMustExist: true });
      sources.push(db);
      // A store of an earlier version is brought up to this one first, as a start would.
      runMigrations(db, part.sqliteSteps, now);
    }
    const target = openPostgres(storage.connection, {
      schema: PARTS[0]?.schema ?? 'trosyn_store',
      maxConnections: 1,
      logger: silentLogger,
    });
    let tables: MigratedTable[];
    let finished = false as boolean;
    try {
      try {
        await target.pool.query('SELECT 1');
      } catch (err) {
        throw openError(target, err);
      }
      tables = await inTransaction(target.pool, 'BEGIN', async (client) => {
        if (await holdsThisHub(client, sources[0] as Database.Database)) {
          finished = true;
          return [];
        }
        await refuseUsedTarget(client, storage.url);
        const copied: MigratedTable[] = [];
        for (const [i, part] of PARTS.entries()) {
          const source = sources[i];
          if (!source) continue;
          await client.query(`SET LOCAL search_path TO ${part.schema}`);
          await applyPostgresMigrations(client, part.schema, part.postgresSteps, now);
          copied.push(...(await copyPart(source, client, part)));
        }
        // The file content goes too: a hub on PostgreSQL keeps its chunks there.
        await client.query(`SET LOCAL search_path TO ${POSTGRES_CHUNKS_SCHEMA}`);
        await applyPostgresMigrations(client, POSTGRES_CHUNKS_SCHEMA, POSTGRES_CHUNK_MIGRATIONS, now);
        const chunks = await copyPackChunks(join(dataDir, CHUNKS_DIR), client, now);
        copied.push({ schema: POSTGRES_CHUNKS_SCHEMA, table: 'chunks', rows: chunks.chunks });
        return copied;
      });
    } finally {
      await target.pool.end().catch(() => undefined);
    }
    for (const db of sources.splice(0)) {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    }
    rememberHubStorage(dataDir, storage);
    const kept: string[] = [];
    for (const name of [...PARTS.map((p) => p.file), CHUNKS_DIR]) {
      const from = join(dataDir, name);
      if (!existsSync(from)) continue;
      renameSync(from, `${from}${MIGRATED_SUFFIX}`);
      kept.push(`${from}${MIGRATED_SUFFIX}`);
    }
    return { url: storage.url, tables, kept, ...(finished && { finished }) };
  } finally {
    for (const db of sources) db.close();
    await lock.stop();
  }
}

/**
 * Whether the database already holds exactly the store of `source` (trosyn.db): the
 * same change log identity and checkpoint secret, at the same position. Only a
 * copy made by an earlier move of this very hub has them, cut short between its
 * commit and config.json (a crash, a kill); a hub started on the database since
 * would have moved its log on. Any other content is no match.
 */
async function holdsThisHub(client: pg.ClientBase, source: Database.Database): Promise<boolean> {
  const schema = PARTS[0]?.schema ?? 'trosyn_store';
  const present = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename IN ('meta', 'log_head')",
    [schema],
  );
  if (present.rows[0]?.n !== 2) return false;
  const meta = await client.query<{ key: string; value: string }>(
    `SELECT key, value FROM ${schema}.meta WHERE key IN ('log_id', 'log_salt')`,
  );
  const head = await client.query<{ latest: number }>(`SELECT latest FROM ${schema}.log_head`);
  const theirs = Object.fromEntries(meta.rows.map((r) => [r.key, r.value]));
  const mine = Object.fromEntries(
    (
      source.prepare("SELECT key, value FROM meta WHERE key IN ('log_id', 'log_salt')").all() as Array<{
        key: string;
        value: string;
      }>
    ).map((r) => [r.key, r.value]),
  );
  const latest =
    (source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'revisions'").pluck().get() as
      number | undefined) ?? 0;
  return (
    mine.log_id !== undefined &&
    mine.log_id === theirs.log_id &&
    mine.log_salt === theirs.log_salt &&
    Number(head.rows[0]?.latest ?? -1) === latest
  );
}

/** STORE_TARGET_NOT_EMPTY when a schema the hub would use holds any table. */
async function refuseUsedTarget(client: pg.ClientBase, url: string): Promise<void> {
  const schemas = [...PARTS.map((p) => p.schema), POSTGRES_CHUNKS_SCHEMA];
  const { rows } = await client.query<{ schema: string; n: number }>(
    `SELECT schemaname AS "schema", count(*)::int AS n FROM pg_catalog.pg_tables
     WHERE schemaname = ANY($1) GROUP BY schemaname ORDER BY schemaname`,
    [schemas],
  );
  if (rows.length > 0)
    throw new TrosynError(
      'STORE_TARGET_NOT_EMPTY',
      `${url} already holds tables in ${rows.map((r) => `${r.schema} (${r.n})`).join(', ')}: a hub runs on it, or a move was made before. Move into a database without the schemas ${schemas.join(' and ')}`,
      { url, schemas: rows.map((r) => r.schema) },
    );
}

interface ColumnInfo {
  name: string;
  type: string;
  identity: boolean;
}

/** Copies every table of one SQLite file into its freshly made schema; returns the row counts. */
async function copyPart(
  source: Database.Database,
  client: pg.ClientBase,
  part: Part,
): Promise<MigratedTable[]> {
  const sqliteTables = source
    .prepare<[], string>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name",
    )
    .pluck()
    .all();
  const columns = await postgresColumns(client, part.schema);
  const order = await dependencyOrder(client, part.schema, [...columns.keys()]);
  const headTables = Object.keys(part.heads);
  const mismatch = (what: string) =>
    new Error(`the SQLite ${part.file} and the PostgreSQL schema ${part.schema} differ: ${what}`);
  for (const table of sqliteTables)
    if (!columns.has(table)) throw mismatch(`no table ${table} in PostgreSQL`);
  for (const table of columns.keys())
    if (!sqliteTables.includes(table) && !headTables.includes(table))
      throw mismatch(`no table ${table} in SQLite`);

  // The migrations seed some rows (the default group): the copy replaces them.
  for (const table of [...order].reverse())
    if (sqliteTables.includes(table)) await client.query(`DELETE FROM ${table}`);

  const sequence = (name: string): number =>
    source.prepare<[string], number>('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck().get(name) ?? 0;
  const copied: MigratedTable[] = [];
  for (const table of order) {
    const head = part.heads[table];
    if (head) {
      await client.query(`UPDATE ${table} SET ${head.column} = $1`, [sequence(head.sequenceOf)]);
      continue;
    }
    const targetColumns = columns.get(table) ?? [];
    const sourceColumns = source
      .prepare<[], string>(`SELECT name FROM pragma_table_info('${table}') ORDER BY cid`)
      .pluck()
      .all();
    const names = targetColumns.map((c) => c.name);
    if ([...sourceColumns].sort().join(',') !== [...names].sort().join(','))
      throw mismatch(
        `${table} has columns ${sourceColumns.join(', ')} in SQLite, ${names.join(', ')} in PostgreSQL`,
      );
    const rows = await copyTable(source, client, table, targetColumns);
    for (const column of targetColumns.filter((c) => c.identity))
      await client.query(
        `SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max(${column.name}) FROM ${table}), 0) + 1, false)`,
        [`${part.schema}.${table}`, column.name],
      );
    copied.push({ schema: part.schema, table, rows });
  }
  return copied;
}

/** Copies one table's rows in batches, in the order of its rowid or key; returns how many. */
async function copyTable(
  source: Database.Database,
  client: pg.ClientBase,
  table: string,
  columns: readonly ColumnInfo[],
): Promise<number> {
  const list = columns.map((c) => c.name).join(', ');
  const convert = columns.map((c) =>
    c.type === 'boolean' ? (v: unknown) => (v === null ? null : v !== 0) : (v: unknown) => v,
  );
  let batch: unknown[][] = [];
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const values: unknown[] = [];
    const tuples = batch.map((row) => {
      const marks = row.map((v, i) => {
        values.push(convert[i]?.(v) ?? v);
        return `$${values.length}`;
      });
      return `(${marks.join(', ')})`;
    });
    await client.query(`INSERT INTO ${table} (${list}) VALUES ${tuples.join(', ')}`, values);
    count += batch.length;
    batch = [];
  };
  for (const row of source.prepare<[], unknown[]>(`SELECT ${list} FROM ${table}`).raw().iterate()) {
    batch.push(row);
    if (batch.length >= BATCH_ROWS) await flush();
  }
  await flush();
  return count;
}

/** The tables of a schema (but schema_migrations) and their columns, in column order. */
async function postgresColumns(client: pg.ClientBase, schema: string): Promise<Map<string, ColumnInfo[]>> {
  const { rows } = await client.query<{ table: string; name: string; type: string; identity: string }>(
    `SELECT table_name AS "table", column_name AS "name", data_type AS "type", is_identity AS "identity"
     FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'schema_migrations'
     ORDER BY table_name, ordinal_position`,
    [schema],
  );
  const tables = new Map<string, ColumnInfo[]>();
  for (const row of rows) {
    const list = tables.get(row.table) ?? [];
    list.push({ name: row.name, type: row.type, identity: row.identity === 'YES' });
    tables.set(row.table, list);
  }
  return tables;
}

/** `tables` ordered so that a table comes after every table its foreign keys refer to. */
async function dependencyOrder(client: pg.ClientBase, schema: string, tables: string[]): Promise<string[]> {
  const { rows } = await client.query<{ from: string; to: string }>(
    `SELECT c.conrelid::regclass::text AS "from", c.confrelid::regclass::text AS "to"
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.contype = 'f' AND n.nspname = $1`,
    [schema],
  );
  const bare = (name: string) => name.replace(/^.*\./, '');
  const needs = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]));
  for (const row of rows) if (bare(row.from) !== bare(row.to)) needs.get(bare(row.from))?.add(bare(row.to));
  const ordered: string[] = [];
  const pending = [...tables].sort();
  for (let round = 0; pending.length > 0 && round <= tables.length; round++)
    for (const table of [...pending])
      if ([...(needs.get(table) ?? [])].every((t) => ordered.includes(t))) {
        ordered.push(table);
        pending.splice(pending.indexOf(table), 1);
      }
  if (pending.length > 0) throw new Error(`foreign keys of ${schema} form a cycle: ${pending.join(', ')}`);
  return ordered;
}
