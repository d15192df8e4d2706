import { accessSync, constants, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LifecycleGuard, type Startable } from '../lifecycle.js';
import { DataDirLockedError, DataDirNotADirectoryError, DataDirNotWritableError } from './errors.js';

/** The lock file: an SQLite database whose exclusive lock the running agent holds. */
export const LOCK_FILE = 'agent.lock';
/** Who holds the lock, for the message another agent gets. */
const HOLDER_FILE = 'agent.lock.json';

/**
 * Makes sure `dir` is a directory this process can write in, creating it (owner
 * only) if it is missing. Throws DATA_DIR_NOT_A_DIRECTORY or DATA_DIR_NOT_WRITABLE.
 */
export function prepareDataDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new DataDirNotADirectoryError(dir);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DataDirNotWritableError(dir, err);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (mkdirErr) {
      if ((mkdirErr as NodeJS.ErrnoException).code === 'ENOTDIR') throw new DataDirNotADirectoryError(dir);
      throw new DataDirNotWritableError(dir, mkdirErr);
    }
    isDir = true;
  }
  if (!isDir) throw new DataDirNotADirectoryError(dir);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new DataDirNotWritableError(dir, err);
  }
}

/**
 * One agent per data directory: held from the agent's start to its stop. The lock
 * is the operating system's (SQLite's exclusive lock on `agent.lock`), so it goes
 * away with the process however the process ends: a killed agent leaves no stale
 * lock. The CLI's one-shot commands do not take it; they share the store through
 * SQLite as before.
 */
export class DataDirLock implements Startable {
  private db: Database.Database | undefined;

  constructor(
    private readonly dir: string,
    private readonly role: 'hub' | 'child',
  ) {}

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    prepareDataDir(this.dir);
    let db: Database.Database;
    try {
      db = new Database(join(this.dir, LOCK_FILE), { timeout: 0 });
    } catch (err) {
      throw new DataDirNotWritableError(this.dir, err);
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // The exclusive lock is taken by the first write and kept until the connection closes.
      db.exec('CREATE TABLE IF NOT EXISTS agent (started_at INTEGER); BEGIN EXCLUSIVE; COMMIT;');
    } catch (err) {
      db.close();
      if (String((err as { code?: string }).code).startsWith('SQLITE_BUSY'))
        throw new DataDirLockedError(this.dir, readHolder(this.dir));
      throw new DataDirNotWritableError(this.dir, err);
    }
    this.db = db;
    writeFileSync(
      join(this.dir, HOLDER_FILE),
      `${JSON.stringify({ pid: process.pid, role: this.role, since: Date.now() })}\n`,
      { mode: 0o600 },
    );
  }

  async stop(): Promise<void> {
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    if (readHolder(this.dir)?.pid === process.pid) rmSync(join(this.dir, HOLDER_FILE), { force: true });
    db.close();
  }
}

function readHolder(dir: string): { pid?: number; role?: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, HOLDER_FILE), 'utf8')) as { pid?: number; role?: string };
  } catch {
    return undefined;
  }
}

/**
 * An agent's lifecycle: one start or stop at a time (LifecycleGuard), all of it
 * while holding the data directory's lock, which a failed start gives back.
 */
export class LockedLifecycle {
  private readonly guard = new LifecycleGuard();

  constructor(private readonly lock: DataDirLock) {}

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  start(fn: () => Promise<void>): Promise<void> {
    return this.guard.start(async () => {
      await this.lock.start();
      try {
        await fn();
      } catch (err) {
        await this.lock.stop();
        throw err;
      }
    });
  }

  stop(fn: () => Promise<void>): Promise<void> {
    return this.guard.stop(async () => {
      try {
        await fn();
      } finally {
        await this.lock.stop();
      }
    });
  }
}
