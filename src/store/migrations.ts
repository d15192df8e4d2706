import { existsSync, renameSync, rmSync } from 'node:fs';
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
  {
    version: 2,
    description: 'change log identity: peer logs as revision sources, cursors bound to a log',
    sql: `
      -- A revision's source is one change log of one peer, not just the peer: when a
      -- peer's store is recreated (a new log), what came from its old log is no longer
      -- "its own" and is offered back to it. Rows of earlier versions name no log ('').
      -- revisions.source now refers to peer_logs.id; the existing values keep meaning
      -- the same device because each device gets a peer log with its own id.
      -- retired = 1: the peer has since announced another log, so this one never
      -- comes back unless the peer's store was restored from an older copy.
      CREATE TABLE peer_logs (
        id INTEGER PRIMARY KEY,
        device INTEGER NOT NULL REFERENCES devices(id),
        log TEXT NOT NULL,
        retired INTEGER NOT NULL DEFAULT 0,
        UNIQUE (device, log)
      );
      INSERT INTO peer_logs (id, device, log) SELECT id, id, '' FROM devices;

      -- SQLite cannot change a foreign key in place: rebuild the change log with
      -- source referring to peer_logs, keeping every seq and the sequence counter.
      CREATE TEMP TABLE kept_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'revisions';
      CREATE TABLE revisions_v2 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        rev TEXT NOT NULL,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        parents TEXT NOT NULL,
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
        source INTEGER REFERENCES peer_logs(id)
      );
      INSERT INTO revisions_v2 SELECT * FROM revisions;
      DROP TABLE revisions;
      ALTER TABLE revisions_v2 RENAME TO revisions;
      CREATE INDEX revisions_by_record ON revisions(collection, record_id, head);
      DELETE FROM sqlite_sequence WHERE name IN ('revisions', 'revisions_v2');
      INSERT INTO sqlite_sequence (name, seq) SELECT 'revisions', seq FROM kept_sequence;
      DROP TABLE kept_sequence;

      -- A cursor is a position in one log of the peer, with the peer's checkpoint token
      -- for that position; a cursor of an earlier version names no log and restarts.
      ALTER TABLE devices ADD COLUMN cursor_log TEXT NOT NULL DEFAULT '';
      ALTER TABLE devices ADD COLUMN cursor_check TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 3,
    description: 'change log epochs: checkpoint tokens tell a restored store from the original',
    sql: `
      -- Each start of a store begins an epoch at the next position of its change log,
      -- with a random id that salts the checkpoint tokens of the positions it writes.
      -- A store restored from an older copy starts a new epoch where the copy ends, so
      -- a position it fills again has another token than the original gave a peer,
      -- even when the same revision lands there. Positions written before the first
      -- epoch keep their tokens.
      CREATE TABLE log_epochs (
        first_seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL
      );
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
  // A database with data that an upgrade is about to change is copied first, whole
  // and consistent, beside itself: `<file>.v<version>.bak` (kept until deleted).
  if (current > 0 && latest > current && db.name !== ':memory:' && !db.memory) {
    const copy = `${db.name}.v${current}.bak`;
    if (!existsSync(copy)) {
      rmSync(`${copy}.tmp`, { force: true });
      db.prepare('VACUUM INTO ?').run(`${copy}.tmp`);
      renameSync(`${copy}.tmp`, copy);
    }
  }
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
