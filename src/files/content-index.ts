import { existsSync, mkdirSync } from 'node:fs';
import { ownerOnly } from '../store/owner-only.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Startable } from '../lifecycle.js';
import { StoreClosedError } from '../store/errors.js';
import { type Migration, runMigrations } from '../store/migrations.js';
import type { FileBody } from './file-body.js';

/** A file version whose content this node does not have in full yet. */
export interface PendingVersion {
  collection: string;
  id: string;
  rev: string;
  /** The device that wrote it: the hub fetches a version from its author. */
  author: string;
  body: FileBody;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'file versions waiting for their content, and how far the change log was read',
    sql: `
      CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE pending (
        rev TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL
      );
    `,
  },
];

/**
 * How far the read position may run ahead of the one written down when a look finds
 * no version: a look that finds nothing writes nothing, so a child applying many
 * small batches (each a look) does not commit to this file for each. After a crash
 * the log is read again from the position written down: at most this many
 * positions, through the store's collection filter.
 */
export const SCANNED_WRITE_EVERY = 10_000;

function prepareStatements(db: Database.Database) {
  return {
    getState: db.prepare<[string], { value: string }>('SELECT value FROM state WHERE key = ?'),
    setState: db.prepare<[string, string]>(
      'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    add: db.prepare<[string, string, string, string, string]>(
      'INSERT OR IGNORE INTO pending (rev, collection, record_id, author, body) VALUES (?, ?, ?, ?, ?)',
    ),
    pending: db.prepare<
      [],
      { rev: string; collection: string; record_id: string; author: string; body: string }
    >('SELECT * FROM pending ORDER BY rowid'),
    done: db.prepare<[string]>('DELETE FROM pending WHERE rev = ?'),
  };
}

/**
 * Which file versions still lack content here (`files.db` in the data directory),
 * and how far the change log has been read for new ones. Kept apart from the sync
 * store: a version is found again from the change log if the process dies between
 * storing the record and noting it here, because the read position written down
 * moves only after (and never past a version not yet noted). One process uses the
 * file (its agent): the read position and its key are kept in memory as well.
 */
export class ContentIndex implements Startable {
  private db: Database.Database | undefined;
  private stmts: ReturnType<typeof prepareStatements> | undefined;
  /** The read position, and the one last written down. */
  private scanned = 0;
  private written = 0;
  private key: string | undefined;

  constructor(private readonly path: string) {}

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    if (this.path !== ':memory:' && !existsSync(dirname(this.path)))
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const db = new Database(this.path);
    ownerOnly(this.path);
    db.pragma('journal_mode = WAL');
    runMigrations(db, MIGRATIONS, Date.now());
    const stmts = prepareStatements(db);
    this.scanned = this.written = Number(stmts.getState.get('scanned')?.value ?? 0);
    this.key = stmts.getState.get('scan-key')?.value;
    this.db = db;
    this.stmts = stmts;
  }

  /** Writes the read position down and closes the file. */
  async stop(): Promise<void> {
    const { db, stmts } = this;
    this.db = undefined;
    this.stmts = undefined;
    if (!db || !stmts) return;
    try {
      if (this.scanned !== this.written) stmts.setState.run('scanned', String(this.scanned));
    } catch {
      // A full or read-only disk: the next start reads the log again from the position written down.
    } finally {
      db.close();
    }
  }

  private get sql(): { db: Database.Database; s: ReturnType<typeof prepareStatements> } {
    if (!this.db || !this.stmts) throw new StoreClosedError();
    return { db: this.db, s: this.stmts };
  }

  private assertOpen(): void {
    if (!this.db) throw new StoreClosedError();
  }

  /** The change log position read up to. */
  scannedSeq(): number {
    this.assertOpen();
    return this.scanned;
  }

  /** What the read position was read under (the change log and the collections fetched), or undefined. */
  scanKey(): string | undefined {
    this.assertOpen();
    return this.key;
  }

  /**
   * Reads the change log from its start again, under `key`. Versions already noted
   * stay; those the new read finds again are noted once.
   */
  restartScan(key: string): void {
    const { db, s } = this.sql;
    db.transaction(() => {
      s.setState.run('scan-key', key);
      s.setState.run('scanned', '0');
    })();
    this.key = key;
    this.scanned = this.written = 0;
  }

  /**
   * Notes versions found in the log up to `seq`, then moves the read position, in
   * one transaction. With no version to note, the position moves in memory only
   * until it is SCANNED_WRITE_EVERY past the one written down (or the index stops).
   */
  addScanned(versions: readonly PendingVersion[], seq: number): void {
    const { db, s } = this.sql;
    if (versions.length === 0 && seq >= this.written && seq - this.written < SCANNED_WRITE_EVERY) {
      this.scanned = seq;
      return;
    }
    db.transaction(() => {
      for (const v of versions) s.add.run(v.rev, v.collection, v.id, v.author, JSON.stringify(v.body));
      s.setState.run('scanned', String(seq));
    })();
    this.scanned = this.written = seq;
  }

  /** Versions still waiting, oldest noted first. */
  pending(): PendingVersion[] {
    return this.sql.s.pending.all().map((r) => ({
      rev: r.rev,
      collection: r.collection,
      id: r.record_id,
      author: r.author,
      body: JSON.parse(r.body) as FileBody,
    }));
  }

  /** A version's content is all here. */
  done(rev: string): void {
    this.sql.s.done.run(rev);
  }
}
