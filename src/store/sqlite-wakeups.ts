import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

/** Changes to the database's files within this long make one wake-up (ms). */
export const WAKE_COALESCE_MS = 5;
/** After a wake-up, changes within this long make one more, at its end (ms). */
export const WAKE_GAP_MS = 100;

/**
 * Payload-free wake-ups when any process commits to an SQLite file: SQLite's
 * counterpart of PostgreSQL's LISTEN/NOTIFY (postgres-connection.ts).
 *
 * A commit in WAL mode writes the `-wal` file, and a checkpoint the database file,
 * so a watch on their folder (inotify on Linux, ReadDirectoryChangesW on Windows,
 * FSEvents on macOS) sees every commit, this process's own too. The first change
 * wakes the subscribers WAKE_COALESCE_MS later; changes after that wake-up and
 * within WAKE_GAP_MS make one more at the gap's end. A quiet agent thus hears of
 * another process's commit within milliseconds, and one committing a thousand
 * times a second is woken at most about ten times a second, not a thousand (each
 * wake-up costs its replica a look). The watch carries nothing: the woken replica
 * asks SQLite's `data_version` whether another connection committed.
 *
 * While the store is open and someone subscribed, the folder is watched. A watch
 * that fails (the folder gone, the system's watch limit reached) is tried again
 * every `retryMs`, and the subscribers are woken once it is back, for what was
 * missed; until then the replica's look on the clock still finds every write.
 */
export class SqliteWakeups {
  private readonly listeners = new Set<() => void>();
  private path: string | undefined;
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;
  /** A change came after the last wake-up, within its gap. */
  private missed = false;
  private retry: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** Calls `listener` on every wake-up from now on; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    this.watch(false);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.unwatch();
    };
  }

  /** The database at `path` is open: watch it from now on (once anyone subscribed). */
  open(path: string): void {
    this.path = path;
    this.watch(false);
  }

  /** The database closes: the watch ends. */
  close(): void {
    this.path = undefined;
    this.unwatch();
  }

  private watch(again: boolean): void {
    const path = this.path;
    if (this.watcher || path === undefined || this.listeners.size === 0) return;
    const name = basename(path);
    const ours = (file: string | Buffer | null) =>
      // Some platforms give no name: then any change in the folder counts.
      file === null || file.toString() === name || file.toString().startsWith(`${name}-`);
    try {
      const watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (ours(file)) this.changed();
      });
      watcher.on('error', (err) => this.lost(watcher, err));
      this.watcher = watcher;
    } catch (err) {
      this.lost(undefined, err);
      return;
    }
    if (again) {
      this.logger.info({ path }, 'watching the store for other processes’ writes again');
      this.warned = false;
      this.wake();
    }
  }

  private lost(watcher: FSWatcher | undefined, err: unknown): void {
    if (watcher && this.watcher !== watcher) return;
    watcher?.close();
    this.watcher = undefined;
    if (this.path === undefined) return;
    if (!this.warned)
      this.logger.warn(
        { err, path: this.path },
        'cannot watch the store for other processes’ writes; looking on the clock until it can',
      );
    this.warned = true;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.watch(true), this.retryMs);
    this.retry.unref();
  }

  private unwatch(): void {
    clearTimeout(this.retry);
    clearTimeout(this.pending);
    this.pending = undefined;
    this.missed = false;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private changed(): void {
    if (this.pending) {
      this.missed = true;
      return;
    }
    this.pending = setTimeout(() => {
      this.missed = false;
      this.wake();
      this.pending = setTimeout(() => {
        this.pending = undefined;
        if (this.missed) this.changed();
      }, WAKE_GAP_MS);
      this.pending.unref();
    }, WAKE_COALESCE_MS);
    this.pending.unref();
  }

  private wake(): void {
    for (const l of this.listeners) l();
  }
}
