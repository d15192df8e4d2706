import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isTrosynError, TrosynError } from '../errors.js';
import type { Clock, Startable, Timer } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import { backupBytes as sizeOf, backupNode, type BackupManifest } from './backup.js';

export interface BackupScheduleOptions {
  /** The node's data directory. */
  dataDir: string;
  /** Where the backups go, one directory each (`backup-YYYYMMDD-HHMMSS`). */
  dir: string;
  /** Time between backups (ms). */
  everyMs: number;
  /** Backups kept; older ones are deleted after each new one. */
  keep: number;
  /** The first backup of a node that has none (or is overdue) waits this long after start (ms). Default 60 s. */
  firstDelayMs?: number;
  clock: Clock;
  logger?: Logger;
  /** Told of every run, done or failed. */
  onRun?: (run: BackupRun) => void;
}

/** One scheduled backup: where it went and how big it is, or why it failed. */
export type BackupRun =
  | { ok: true; at: number; dir: string; bytes: number; durationMs: number }
  | { ok: false; at: number; code: string; message: string; durationMs: number };

/** What `status` shows of the schedule. */
export interface BackupScheduleStatus {
  dir: string;
  everyHours: number;
  keep: number;
  /** The newest complete backup in `dir`, made by this schedule or before. */
  last: { at: number; dir: string; bytes: number } | null;
  /** The last run that failed, if it is newer than the last backup. */
  lastError: { at: number; code: string; message: string } | null;
  /** When the next backup is due (ms). */
  nextAt: number | null;
  running: boolean;
}

/** A backup asked of a hub that makes no scheduled backups. */
export class BackupsNotScheduledError extends TrosynError {
  constructor() {
    super(
      'BACKUPS_NOT_SCHEDULED',
      'this hub makes no scheduled backups: start it with --backup-dir DIR, or run `trosyn-sync backup --out DIR`',
    );
  }
}

const NAME = /^backup-\d{8}-\d{6}(-\d+)?$/;

/**
 * Backs a running node up every `everyMs` into `dir`, keeping the newest `keep`:
 * the online backup of backup.ts (the agent keeps serving while it copies). The
 * schedule survives restarts: the next backup is due `everyMs` after the newest one
 * found in `dir`.
 */
export class BackupSchedule implements Startable {
  private readonly o: BackupScheduleOptions;
  private readonly logger: Logger;
  private timer: Timer | undefined;
  private running: Promise<BackupRun> | undefined;
  private last: BackupScheduleStatus['last'] = null;
  private lastError: BackupScheduleStatus['lastError'] = null;
  private nextAt: number | null = null;
  private started = false;

  constructor(options: BackupScheduleOptions) {
    this.o = options;
    this.logger = options.logger ?? silentLogger;
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    this.last = newestBackup(this.o.dir);
    const now = this.o.clock.now();
    const due = this.last ? this.last.at + this.o.everyMs : now;
    this.schedule(Math.max(due, now + (this.o.firstDelayMs ?? 60_000)));
  }

  async stop(): Promise<void> {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.nextAt = null;
    // A backup under way finishes: its copy is consistent only once complete.
    await this.running?.catch(() => undefined);
  }

  status(): BackupScheduleStatus {
    return {
      dir: this.o.dir,
      everyHours: this.o.everyMs / 3600_000,
      keep: this.o.keep,
      last: this.last,
      lastError: this.lastError,
      nextAt: this.nextAt,
      running: this.running !== undefined,
    };
  }

  /** Makes a backup now (or waits for the one under way), then the schedule goes on from it. */
  runNow(): Promise<BackupRun> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(at: number): void {
    this.timer?.cancel();
    if (!this.started) return;
    this.nextAt = at;
    this.timer = this.o.clock.setTimeout(
      () => {
        this.runNow().catch(() => undefined);
      },
      Math.max(0, at - this.o.clock.now()),
    );
  }

  private async run(): Promise<BackupRun> {
    const at = this.o.clock.now();
    const out = this.freeName(at);
    let run: BackupRun;
    try {
      const manifest = await backupNode(this.o.dataDir, out, undefined, () => this.o.clock.now());
      const bytes = sizeOf(manifest);
      run = { ok: true, at, dir: out, bytes, durationMs: this.o.clock.now() - at };
      this.last = { at: manifest.createdAt, dir: out, bytes };
      this.lastError = null;
      this.logger.info({ dir: out, bytes, ms: run.durationMs }, 'backup made');
      this.prune();
    } catch (err) {
      rmSync(`${out}.partial`, { recursive: true, force: true });
      const code = isTrosynError(err) ? err.code : 'BACKUP_FAILED';
      const message = (err as Error).message;
      run = { ok: false, at, code, message, durationMs: this.o.clock.now() - at };
      this.lastError = { at, code, message };
      this.logger.error({ err, dir: out }, 'backup failed');
    }
    this.o.onRun?.(run);
    // After a failure, try again in an hour (or at the interval, if shorter).
    this.schedule(this.o.clock.now() + (run.ok ? this.o.everyMs : Math.min(this.o.everyMs, 3600_000)));
    return run;
  }

  /** `backup-YYYYMMDD-HHMMSS` (UTC) of `at`, with a suffix if taken. */
  private freeName(at: number): string {
    const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    let name = `backup-${stamp}`;
    for (let i = 2; existsSync(join(this.o.dir, name)); i++) name = `backup-${stamp}-${i}`;
    return join(this.o.dir, name);
  }

  /** Deletes the oldest complete backups beyond `keep`, and unfinished ones left by a crash. */
  private prune(): void {
    const all = completeBackups(this.o.dir);
    for (const old of all.slice(0, Math.max(0, all.length - this.o.keep))) {
      rmSync(old.dir, { recursive: true, force: true });
      this.logger.info({ dir: old.dir }, 'old backup deleted');
    }
    for (const name of readdirSync(this.o.dir))
      if (name.endsWith('.partial') && NAME.test(name.slice(0, -'.partial'.length)))
        rmSync(join(this.o.dir, name), { recursive: true, force: true });
  }
}

/** The complete scheduled backups in `dir` (those with a manifest), oldest first. */
function completeBackups(dir: string): { dir: string; manifest: BackupManifest }[] {
  const found: { dir: string; manifest: BackupManifest }[] = [];
  if (!existsSync(dir)) return found;
  for (const name of readdirSync(dir)) {
    if (!NAME.test(name)) continue;
    try {
      const manifest = JSON.parse(readFileSync(join(dir, name, 'manifest.json'), 'utf8')) as BackupManifest;
      found.push({ dir: join(dir, name), manifest });
    } catch {
      // Not complete (no manifest): not a backup to count or keep.
    }
  }
  return found.sort((a, b) => a.manifest.createdAt - b.manifest.createdAt);
}

/** The newest complete scheduled backup in `dir`, or null. */
export function newestBackup(dir: string): BackupScheduleStatus['last'] {
  const newest = completeBackups(dir).at(-1);
  return newest ? { at: newest.manifest.createdAt, dir: newest.dir, bytes: sizeOf(newest.manifest) } : null;
}
