import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { open } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { TrosynError } from '../errors.js';
import { APP_VERSION } from '../version.js';
import { onPostgres } from './hub-store.js';
import { DataDirLock } from './data-dir.js';

/**
 * What a backup holds, in `manifest.json`, written last: a directory without it is
 * a backup that did not finish.
 */
export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  /** The app version that made it. */
  appVersion: string;
  createdAt: number;
  role: 'hub' | 'child';
  /** The device whose data directory it is (the SHA-256 of its certificate). */
  deviceId: string;
  /** The store's change log identity at the backup, and its latest position. */
  changeLog: { id: string; latestSeq: number };
  /** Each database's schema version (PRAGMA user_version). */
  schemas: Record<string, number>;
  /** Every file of the backup but the manifest, with its size and SHA-256. */
  files: { path: string; bytes: number; sha256: string }[];
}

export const BACKUP_FORMAT = 'trosyn-sync-backup/1';
const MANIFEST = 'manifest.json';

/** A node's SQLite databases (those present): backed up with SQLite's online backup, checked by the doctor. */
export const NODE_DATABASES = ['trosyn.db', 'hub.db', 'files.db', join('chunks', 'index.db')];
const DATABASES = NODE_DATABASES;

/** The bytes a backup holds, by its manifest. */
export function backupBytes(manifest: BackupManifest): number {
  return manifest.files.reduce((n, f) => n + f.bytes, 0);
}
/** Small files copied as they are (those present). */
const PLAIN_FILES = [
  join('identity', 'cert.pem'),
  join('identity', 'key.pem'),
  'config.json',
  'hub.json',
  'api-token',
];
/** Files that hold secrets: owner-readable only, in the backup as in the data directory. */
const SECRET = new Set([join('identity', 'key.pem'), 'api-token']);
/** The agent's lock files: present in any directory an agent (or a restore) has locked. */
const LOCK_FILES = new Set(['agent.lock', 'agent.lock.json', 'agent.lock-journal']);

export class BackupError extends TrosynError {}

/** A backup or restore of a hub whose data is in PostgreSQL, which these commands do not copy. */
function sqliteOnly(what: 'backup' | 'restore', dataDir: string): BackupError {
  return new BackupError(
    'STORE_SQLITE_ONLY',
    `${dataDir} is a hub whose records and registry are in PostgreSQL, and ${what} copies SQLite files only: back the database up with pg_dump or base backups, and this directory (identity, config.json, chunks) with a file copy (docs/DEPLOY.md)`,
    { dataDir },
  );
}

export interface BackupProgress {
  /** What is being copied: a database, the packs. */
  step: string;
  done: number;
  total: number;
}

/**
 * Backs up the node in `dataDir` into `out` (which must not exist or be empty), while
 * its agent runs and writes go on: the databases through SQLite's online backup, each
 * a consistent copy; the chunk packs up to the last byte the copied chunk index
 * names (packs are only appended to, so those bytes do not change); the identity and
 * configuration. Each copied database passes `PRAGMA integrity_check`, and every file
 * is listed with its SHA-256 in the manifest, written last. The backup is made in
 * `<out>.partial` and renamed when complete.
 */
export async function backupNode(
  dataDir: string,
  out: string,
  onProgress?: (p: BackupProgress) => void,
  now: () => number = Date.now,
): Promise<BackupManifest> {
  const cert = join(dataDir, 'identity', 'cert.pem');
  if (onPostgres(dataDir)) throw sqliteOnly('backup', dataDir);
  if (!existsSync(cert) || !existsSync(join(dataDir, 'trosyn.db')))
    throw new BackupError('NO_NODE', `${dataDir} holds no Trosyn Sync node to back up`, { dataDir });
  if (existsSync(out) && readdirSync(out).length > 0)
    throw new BackupError('BACKUP_TARGET_NOT_EMPTY', `${out} is not empty: back up into a new directory`, {
      out,
    });
  const work = `${out.replace(/[/\\]+$/, '')}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const role = existsSync(join(dataDir, 'hub.db')) ? 'hub' : 'child';
  const schemas: Record<string, number> = {};
  // The chunk index first: the packs are then copied up to what this copy names.
  const order = [...DATABASES].sort(
    (a, b) => Number(b.startsWith('chunks')) - Number(a.startsWith('chunks')),
  );
  for (const name of order) {
    const from = join(dataDir, name);
    if (!existsSync(from)) continue;
    const to = join(work, name);
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    const src = new Database(from, { readonly: true, fileMustExist: true });
    try {
      await src.backup(to, {
        progress: ({ totalPages, remainingPages }) => {
          onProgress?.({ step: name, done: totalPages - remainingPages, total: totalPages });
          return 256;
        },
      });
    } finally {
      src.close();
    }
    const copy = new Database(to);
    try {
      const check = copy.pragma('integrity_check', { simple: true });
      if (check !== 'ok')
        throw new BackupError(
          'BACKUP_CORRUPT',
          `the copy of ${name} fails its integrity check: ${String(check)}`,
        );
      schemas[name] = copy.pragma('user_version', { simple: true }) as number;
      // A single file: no write-ahead log beside it.
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
  }
  await copyPacks(dataDir, work, onProgress);
  for (const name of PLAIN_FILES) {
    const from = join(dataDir, name);
    if (!existsSync(from)) continue;
    mkdirSync(dirname(join(work, name)), { recursive: true, mode: 0o700 });
    copyFileSync(from, join(work, name));
    if (SECRET.has(name)) chmodSync(join(work, name), 0o600);
  }
  const store = new Database(join(work, 'trosyn.db'), { readonly: true });
  let changeLog: BackupManifest['changeLog'];
  let deviceId: string;
  try {
    const meta = (key: string) =>
      store.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get(key) ?? '';
    deviceId = meta('device_id');
    const latest = store.prepare<[], number | null>('SELECT max(seq) FROM revisions').pluck().get() ?? 0;
    changeLog = { id: meta('log_id'), latestSeq: latest };
  } finally {
    store.close();
  }
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    appVersion: APP_VERSION,
    createdAt: now(),
    role,
    deviceId,
    changeLog,
    schemas,
    files: [],
  };
  for (const path of listFiles(work)) manifest.files.push({ path, ...(await digest(join(work, path))) });
  writeDurably(join(work, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(out, { recursive: true, force: true });
  renameSync(work, out);
  return manifest;
}

/** Copies each pack the copied index names, up to the end of its last chunk there. */
async function copyPacks(
  dataDir: string,
  work: string,
  onProgress?: (p: BackupProgress) => void,
): Promise<void> {
  const index = join(work, 'chunks', 'index.db');
  if (!existsSync(index)) return;
  const db = new Database(index, { readonly: true });
  let packs: { pack: string; end: number }[];
  try {
    packs = db
      .prepare<[], { pack: string; end: number }>(
        'SELECT pack, max(offset + length) AS "end" FROM chunks GROUP BY pack ORDER BY pack',
      )
      .all();
  } finally {
    db.close();
  }
  const total = packs.reduce((n, p) => n + p.end, 0);
  let done = 0;
  mkdirSync(join(work, 'chunks', 'packs'), { recursive: true, mode: 0o700 });
  for (const { pack, end } of packs) {
    const from = join(dataDir, 'chunks', 'packs', pack);
    if (!existsSync(from) || statSync(from).size < end)
      throw new BackupError(
        'BACKUP_SOURCE_CHANGED',
        `chunk pack ${pack} changed while it was backed up (a collection compacted it): run the backup again`,
        { pack },
      );
    await copyPrefix(from, join(work, 'chunks', 'packs', pack), end, (n) => {
      done += n;
      onProgress?.({ step: 'chunks', done, total });
    });
  }
}

/** Copies the first `bytes` of a file without holding the event loop: a running hub keeps serving. */
async function copyPrefix(
  from: string,
  to: string,
  bytes: number,
  onCopied: (n: number) => void,
): Promise<void> {
  const src = await open(from, 'r');
  try {
    const dst = await open(to, 'w', 0o600);
    try {
      const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
      for (let at = 0; at < bytes;) {
        const { bytesRead: n } = await src.read(buf, 0, Math.min(buf.length, bytes - at), at);
        if (n === 0)
          throw new BackupError('BACKUP_SOURCE_CHANGED', `${from} ended early while it was copied`);
        await dst.write(buf, 0, n);
        at += n;
        onCopied(n);
      }
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

function listFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) =>
      relative(root, join(e.parentPath ?? e.path, e.name))
        .split(sep)
        .join('/'),
    )
    .filter((p) => p !== MANIFEST)
    .sort();
}

async function digest(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const file = await open(path, 'r');
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  let bytes = 0;
  try {
    for (;;) {
      const { bytesRead: n } = await file.read(buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    await file.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

function writeDurably(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks a backup: its manifest, and every file's size and SHA-256. */
export async function checkBackup(dir: string): Promise<BackupManifest> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new BackupError('BACKUP_NOT_FOUND', `${dir} is not a directory`, { dir });
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) {
    const partial = dir.endsWith('.partial') || existsSync(join(dir, 'trosyn.db'));
    throw new BackupError(
      partial ? 'BACKUP_INCOMPLETE' : 'BACKUP_FOREIGN',
      partial
        ? `${dir} has no manifest.json: the backup did not finish; use another backup`
        : `${dir} is not a Trosyn Sync backup (no manifest.json)`,
      { dir },
    );
  }
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as BackupManifest;
  } catch {
    throw new BackupError('BACKUP_CORRUPT', `${path} is not valid JSON`, { dir });
  }
  if (manifest.format !== BACKUP_FORMAT)
    throw new BackupError(
      'BACKUP_FOREIGN',
      `${dir} is not a backup this version reads (format ${JSON.stringify(manifest.format)}, expected ${BACKUP_FORMAT})`,
      { dir },
    );
  for (const f of manifest.files ?? []) {
    const file = join(dir, ...f.path.split('/'));
    if (f.path.includes('..') || !existsSync(file))
      throw new BackupError('BACKUP_INCOMPLETE', `${dir} lacks ${f.path}, which its manifest lists`, {
        dir,
        file: f.path,
      });
    const got = await digest(file);
    if (got.bytes !== f.bytes || got.sha256 !== f.sha256)
      throw new BackupError(
        'BACKUP_CORRUPT',
        `${f.path} in ${dir} is not what was backed up (${got.bytes} bytes, SHA-256 ${got.sha256.slice(0, 12)}…; expected ${f.bytes}, ${f.sha256.slice(0, 12)}…)`,
        { dir, file: f.path },
      );
  }
  if (!manifest.files?.some((f) => f.path === 'trosyn.db') || !manifest.deviceId)
    throw new BackupError('BACKUP_INCOMPLETE', `${dir} holds no store (trosyn.db)`, { dir });
  return manifest;
}

/**
 * Restores a checked backup into `dataDir`: refused while an agent runs there
 * (DATA_DIR_LOCKED), into a directory that holds anything unless `force` (then its
 * node files are replaced), and into one that holds another device's identity even
 * with `force` (RESTORE_OTHER_DEVICE). The files are copied to a new directory
 * beside it and moved into place last.
 */
export async function restoreNode(
  backupDir: string,
  dataDir: string,
  options: { force?: boolean } = {},
): Promise<BackupManifest> {
  const manifest = await checkBackup(backupDir);
  // Held while restoring: refused if an agent runs there, and none may start meanwhile.
  const lock = new DataDirLock(dataDir, manifest.role);
  await lock.start();
  try {
    const existing = readdirSync(dataDir).filter((f) => !LOCK_FILES.has(f));
    if (existing.length > 0 && onPostgres(dataDir)) throw sqliteOnly('restore', dataDir);
    if (existing.length > 0) {
      if (!options.force)
        throw new BackupError(
          'RESTORE_TARGET_NOT_EMPTY',
          `${dataDir} is not empty: restore into an empty directory, or give --force to replace the node in it`,
          { dataDir },
        );
      const cert = join(dataDir, 'identity', 'cert.pem');
      if (
        existsSync(cert) &&
        readFileSync(cert, 'utf8') !== readFileSync(join(backupDir, 'identity', 'cert.pem'), 'utf8')
      )
        throw new BackupError(
          'RESTORE_OTHER_DEVICE',
          `${dataDir} holds another device than the backup's (${manifest.deviceId.slice(0, 12)}…): restore into an empty directory`,
          { dataDir },
        );
    }
    for (const name of [...DATABASES, ...PLAIN_FILES]) {
      rmSync(join(dataDir, name), { force: true });
      for (const suffix of ['-wal', '-shm', '-journal'])
        rmSync(join(dataDir, `${name}${suffix}`), { force: true });
    }
    rmSync(join(dataDir, 'chunks'), { recursive: true, force: true });
    rmSync(join(dataDir, 'agent.json'), { force: true });
    for (const f of manifest.files) {
      const to = join(dataDir, ...f.path.split('/'));
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      copyFileSync(join(backupDir, ...f.path.split('/')), to);
      if (SECRET.has(f.path.split('/').join(sep))) chmodSync(to, 0o600);
    }
  } finally {
    await lock.stop();
  }
  return manifest;
}
