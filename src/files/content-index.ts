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
 * Which file versions still lack content here (`files.db` in the data directory),
 * and how far the change log has been read for new ones. Kept apart from the sync
 * store: a version is found again from the change log if the process dies between
 * storing the record and noting it here, because the read position moves only after.
 */
export class ContentIndex implements Startable {
  private db: Database.Database | undefined;

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
    this.db = db;
  }

  async stop(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }

  private get sql(): Database.Database {
    if (!this.db) throw new StoreClosedError();
    return this.db;
  }

  /** The change log position read up to. */
  scannedSeq(): number {
    const row = this.sql
      .prepare<[], { value: string }>("SELECT value FROM state WHERE key = 'scanned'")
      .get();
    return Number(row?.value ?? 0);
  }

  /** What the read position was read under (the change log and the collections fetched), or undefined. */
  scanKey(): string | undefined {
    return this.sql.prepare<[], { value: string }>("SELECT value FROM state WHERE key = 'scan-key'").get()
      ?.value;
  }

  /**
   * Reads the change log from its start again, under `key`. Versions already noted
   * stay; those the new read finds again are noted once.
   */
  restartScan(key: string): void {
    const set = this.sql.prepare(
      'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.sql.transaction(() => {
      set.run('scan-key', key);
      set.run('scanned', '0');
    })();
  }

  /** Notes versions found in the log up to `seq`, then moves the read position, in one transaction. */
  addScanned(versions: readonly PendingVersion[], seq: number): void {
    const add = this.sql.prepare(
      'INSERT OR IGNORE INTO pending (rev, collection, record_id, author, body) VALUES (?, ?, ?, ?, ?)',
    );
    const mark = this.sql.prepare(
      "INSERT INTO state (key, value) VALUES ('scanned', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.sql.transaction(() => {
      for (const v of versions) add.run(v.rev, v.collection, v.id, v.author, JSON.stringify(v.body));
      mark.run(String(seq));
    })();
  }

  /** Versions still waiting, oldest noted first. */
  pending(): PendingVersion[] {
    return this.sql
      .prepare<[], { rev: string; collection: string; record_id: string; author: string; body: string }>(
        'SELECT * FROM pending ORDER BY rowid',
      )
      .all()
      .map((r) => ({
        rev: r.rev,
        collection: r.collection,
        id: r.record_id,
        author: r.author,
        body: JSON.parse(r.body) as FileBody,
      }));
  }

  /** A version's content is all here. */
  done(rev: string): void {
    this.sql.prepare('DELETE FROM pending WHERE rev = ?').run(rev);
  }
}
