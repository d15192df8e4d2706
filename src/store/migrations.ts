import type Database from 'better-sqlite3';
import { SchemaTooNewError } from './errors.js';

/** One forward step of a schema. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/**
 * Forward-only schema migrations of the sync store. The version lives in
 * `PRAGMA user_version` and every applied step is recorded in `schema_migrations`.
 * Add a step by appending to this list; never edit a step that has shipped.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'records, revisions (change log), peers and cursors, conflicts',
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;

      -- Every device this node has heard of: peers it syncs with (their cursor is the
      -- last position of their change log applied here) and authors of revisions. Rows
      -- refer to devices by this table's small integer id instead of the 64-character ID.
      CREATE TABLE devices (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL UNIQUE,
        cursor INTEGER NOT NULL DEFAULT 0
      );

      -- The change log: seq is the local, strictly increasing, never reused position.
      -- Revisions are found through their record (collection, record_id): a global index
      -- on the random rev hash would dirty pages all over the B-tree on every batch.
      CREATE TABLE revisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        rev TEXT NOT NULL,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        parents TEXT NOT NULL,
        -- version vector as 'device:count' pairs, devices by their devices.id
        vv TEXT NOT NULL,
        hlc TEXT NOT NULL,
        author INTEGER NOT NULL REFERENCES devices(id),
        hub INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        body_hash TEXT NOT NULL,
        body TEXT,
        fields TEXT,
        pruned INTEGER NOT NULL DEFAULT 0,
        head INTEGER NOT NULL,
        local INTEGER NOT NULL,
        source INTEGER REFERENCES devices(id)
      );
      -- Finds a record's revisions; with head in the key, its current heads and the
      -- records of a collection (head = 1) come straight from the index.
      CREATE INDEX revisions_by_record ON revisions(collection, record_id, head);

      -- A record's state is its single head. Only a record with several heads (a
      -- conflict) needs more: which head won, and the body a merge or custom resolver
      -- derived. Those few records have a row here.
      CREATE TABLE resolutions (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        rev TEXT NOT NULL,
        rev_seq INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        hlc TEXT NOT NULL,
        body TEXT,
        conflict INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (collection, id)
      ) WITHOUT ROWID;

      CREATE TABLE conflicts (
        id INTEGER PRIMARY KEY,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'auto', 'resolved')),
        strategy TEXT NOT NULL,
        heads TEXT NOT NULL,
        winner TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        resolved_at INTEGER,
        resolved_by TEXT
      );
      CREATE UNIQUE INDEX conflicts_active ON conflicts(collection, record_id) WHERE status != 'resolved';
      CREATE INDEX conflicts_by_status ON conflicts(status);
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** Brings the sync store up to the latest schema; returns the versions applied. */
export function migrate(db: Database.Database, now: number): number[] {
  return runMigrations(db, MIGRATIONS, now);
}

/** Applies the steps newer than the database's recorded version, each in its own transaction. */
export function runMigrations(db: Database.Database, steps: readonly Migration[], now: number): number[] {
  const latest = steps[steps.length - 1]?.version ?? 0;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > latest) throw new SchemaTooNewError(current, latest);
  const applied: number[] = [];
  for (const step of steps) {
    if (step.version <= current) continue;
    db.transaction(() => {
      db.exec(step.sql);
      db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(
        step.version,
        step.description,
        now,
      );
      db.pragma(`user_version = ${step.version}`);
    })();
    applied.push(step.version);
  }
  return applied;
}
