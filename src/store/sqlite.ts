import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { ownerOnly } from './owner-only.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import { SqliteWakeups } from './sqlite-wakeups.js';
import type { StorageAdapter } from './adapter.js';
import { checkpointToken, issuedToken } from './checkpoint.js';
import {
  StoreClosedError,
  StoreCorruptError,
  StoreMissingError,
  StoreOpenError,
  StoreWriteError,
  UnknownAncestorError,
} from './errors.js';
import { EMPTY_CURSOR, headRecord } from './types.js';
import { migrate } from './migrations.js';
import type {
  AppliedRevision,
  ApplyInput,
  ApplyResult,
  ChangeBatch,
  ChangeLogInfo,
  ChangesQuery,
  ConflictRecord,
  ConflictStatus,
  DeviceId,
  IncomingRevision,
  JsonObject,
  ListQuery,
  PeerCursor,
  PeerLog,
  RecordView,
  ReduceOutcome,
  RejectedRevision,
  Resettler,
  RetentionPolicy,
  RevId,
  Revision,
  Seq,
  StoredRevision,
  StoreStats,
  VersionVector,
} from './types.js';

export interface SqliteStoreOptions {
  /** Path of the database file (created with owner-only permissions), or ':memory:'. */
  path: string;
  /**
   * How hard each commit waits for the disk. `full` (default) survives power loss;
   * `normal` survives a killed process but may lose the last commits on power loss;
   * `off` is for throwaway test data only.
   */
  synchronous?: 'full' | 'normal' | 'off';
  /**
   * The store must already exist: a missing or empty file fails with STORE_MISSING
   * instead of becoming a new, empty store (for a node that has run before, whose
   * store was lost). Default false.
   */
  mustExist?: boolean;
  /** How long (ms) to wait for another process's write lock before failing. Default 5000. */
  busyTimeoutMs?: number;
  /** SQLite page cache in MiB. Default 32. */
  cacheMiB?: number;
  logger?: Logger;
  clock?: Clock;
}

/**
 * Revision columns in the order every query selects them; rows are read as arrays
 * (`.raw()`), which costs far less than building an object per row.
 */
const REVISION_INSERT_COLUMNS =
  'rev, collection, record_id, parents, vv, hlc, author, hub, deleted, body_hash, body, fields, pruned, head, local, source';
const REV_COLUMNS = `seq, ${REVISION_INSERT_COLUMNS}`;
/** Values a revision's row is inserted with: every column but its seq. */
const INSERT_COLUMNS = REVISION_INSERT_COLUMNS.split(',').length;
type RevisionRow = [
  seq: number,
  rev: string,
  collection: string,
  recordId: string,
  parents: string,
  vv: string,
  hlc: string,
  author: number,
  hub: number,
  deleted: number,
  bodyHash: string,
  body: string | null,
  fields: string | null,
  pruned: number,
  head: number,
  local: number,
  source: number | null,
];

interface RecordRow {
  collection: string;
  id: string;
  rev: string;
  deleted: number;
  hlc: string;
  body: string | null;
  conflict: number;
  seq: number;
}

interface ConflictRow {
  id: number;
  collection: string;
  record_id: string;
  status: 'open' | 'auto' | 'resolved';
  strategy: string;
  heads: string;
  winner: string;
  opened_at: number;
  updated_at: number;
  resolved_at: number | null;
  resolved_by: string | null;
}

const CONFLICT_CODE: Record<ConflictStatus, number> = { none: 0, open: 1, auto: 2 };
const CONFLICT_NAME: ConflictStatus[] = ['none', 'open', 'auto'];

/**
 * Upper bound on rows read per changesSince call, as a multiple of its limit, when
 * the collection filter (a read scope) skips most of them. The peer's own revisions
 * are skipped inside SQLite and do not count.
 */
const MAX_SCAN_FACTOR = 16;

/**
 * Records looked up per statement when a batch is applied. Each lookup of a
 * record's heads costs a few microseconds of statement overhead, more than the
 * index probe itself; a slice of a batch costs one statement in all. A short slice
 * takes the smallest statement it fits, padded: five new records cost 6.7 µs with
 * 8 keys, 12 with 32 and 38 with 128 (each key's probe runs, padding included).
 */
const LOOKUP_SIZES = [8, 32, 128] as const;
const LOOKUP_KEYS = LOOKUP_SIZES[LOOKUP_SIZES.length - 1] as number;
const lookupSql = (keys: number) => {
  const list = Array(keys).fill('?').join(',');
  return `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = ? AND record_id IN (${list}) AND (head = 1 OR rev IN (${list}))`;
};

/**
 * Revisions a batch's apply inserts with one statement. Each statement costs about
 * a microsecond besides its rows; 25 rows a statement took 3.4 us a revision
 * against 4.2 for one (the revisions table and its index, durable commits).
 */
const INSERT_ROWS = 25;
/** The values of one revision's row, in REVISION_INSERT_COLUMNS order. */
type RevisionValues = [
  string,
  string,
  string,
  string,
  string,
  string,
  number,
  number,
  number,
  string,
  string | null,
  string | null,
  number,
  number,
  number,
  number | null,
];
const ROW_PARAMS = `(${Array(INSERT_COLUMNS).fill('?').join(', ')})`;

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database.Database) {
  // One row per record: a single head, or for a conflicted record the winning head
  // joined with its resolution.
  const RECORD_SELECT = `SELECT v.collection, v.record_id AS id, coalesce(x.rev, v.rev) AS rev, coalesce(x.deleted, v.deleted) AS deleted,
         coalesce(x.hlc, v.hlc) AS hlc, coalesce(x.body, v.body) AS body, coalesce(x.conflict, 0) AS conflict, coalesce(x.seq, v.seq) AS seq
       FROM revisions v LEFT JOIN resolutions x ON x.collection = v.collection AND x.id = v.record_id
       WHERE v.head = 1 AND (x.id IS NULL OR v.seq = x.rev_seq)`;
  return {
    hasRev: db
      .prepare<[string, string, string], number>(
        'SELECT seq FROM revisions WHERE collection = ? AND record_id = ? AND rev = ?',
      )
      .pluck(),
    heads: db
      .prepare<[string, string], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = ? AND record_id = ? AND head = 1`,
      )
      .raw(),
    // The heads of a record and, in the same probe, the incoming revision if already stored.
    headsOrRev: db
      .prepare<[string, string, string], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = ? AND record_id = ? AND (head = 1 OR rev = ?)`,
      )
      .raw(),
    // The same probe for 8, 32 or 128 records of one collection at once (padded by
    // repeating a key): one statement per batch slice instead of one per revision.
    headsOrRevMany: LOOKUP_SIZES.map((keys) => db.prepare<string[], RevisionRow>(lookupSql(keys)).raw()),
    // Positional parameters: named ones cost a measurable share of each insert.
    insertRev: db.prepare<RevisionValues>(
      `INSERT INTO revisions (${REVISION_INSERT_COLUMNS}) VALUES ${ROW_PARAMS}`,
    ),
    insertRevs: db.prepare<unknown[]>(
      `INSERT INTO revisions (${REVISION_INSERT_COLUMNS}) VALUES ${Array(INSERT_ROWS).fill(ROW_PARAMS).join(', ')}`,
    ),
    unhead: db.prepare<[number]>('UPDATE revisions SET head = 0 WHERE seq = ?'),
    upsertResolution: db.prepare<
      [string, string, string, number, number, string, string | null, number, number]
    >(
      `INSERT INTO resolutions (collection, id, rev, rev_seq, deleted, hlc, body, conflict, seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev, rev_seq = excluded.rev_seq, deleted = excluded.deleted,
         hlc = excluded.hlc, body = excluded.body, conflict = excluded.conflict, seq = excluded.seq`,
    ),
    deleteResolution: db.prepare<[string, string]>('DELETE FROM resolutions WHERE collection = ? AND id = ?'),
    getRecord: db.prepare<[string, string], RecordRow>(
      `${RECORD_SELECT} AND v.collection = ? AND v.record_id = ?`,
    ),
    listRecords: db.prepare<[string, string, number, number], RecordRow>(
      `${RECORD_SELECT} AND v.collection = ? AND v.record_id > ? AND (coalesce(x.deleted, v.deleted) = 0 OR ?) ORDER BY v.record_id LIMIT ?`,
    ),
    collections: db
      .prepare<[], string>('SELECT DISTINCT collection FROM revisions WHERE head = 1 ORDER BY collection')
      .pluck(),
    history: db
      .prepare<[string, string], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = ? AND record_id = ? ORDER BY hlc, rev`,
      )
      .raw(),
    getRev: db
      .prepare<[string, string, string], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = ? AND record_id = ? AND rev = ?`,
      )
      .raw(),
    revAt: db.prepare<[number], string>('SELECT rev FROM revisions WHERE seq = ?').pluck(),
    epochAt: db
      .prepare<[number], string>(
        'SELECT id FROM log_epochs WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1',
      )
      .pluck(),
    // The peer's own revisions are skipped inside SQLite, so they are never read into JavaScript.
    changes: db
      .prepare<[number, number], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE seq > ? AND local = 0 AND (source IS NULL OR source != ?) ORDER BY seq`,
      )
      .raw(),
    // The same, of the collections in a JSON array only; `+collection` keeps the walk in seq order
    // (an index lookup by collection would sort every row of a large collection on each call).
    changesIn: db
      .prepare<[number, number, string], RevisionRow>(
        `SELECT ${REV_COLUMNS} FROM revisions WHERE seq > ? AND local = 0 AND (source IS NULL OR source != ?)
           AND +collection IN (SELECT value FROM json_each(?)) ORDER BY seq`,
      )
      .raw(),
    latestSeq: db.prepare<[], number>("SELECT seq FROM sqlite_sequence WHERE name = 'revisions'").pluck(),
    countChanges: db
      .prepare<[number, number], number>(
        'SELECT count(*) FROM revisions WHERE seq > ? AND local = 0 AND (source IS NULL OR source != ?)',
      )
      .pluck(),
    deviceById: db.prepare<[number], string>('SELECT device_id FROM devices WHERE id = ?').pluck(),
    deviceByKey: db.prepare<
      [string],
      { id: number; cursor: number; cursor_log: string; cursor_check: string }
    >('SELECT id, cursor, cursor_log, cursor_check FROM devices WHERE device_id = ?'),
    allDevices: db.prepare<[], { id: number; device_id: string }>('SELECT id, device_id FROM devices'),
    insertDevice: db.prepare<[string]>('INSERT INTO devices (device_id) VALUES (?)'),
    // A cursor for another log replaces the recorded one; for the same log it only moves forward.
    setCursor: db.prepare<[number, string, string, number, string, number]>(
      'UPDATE devices SET cursor = ?, cursor_log = ?, cursor_check = ? WHERE id = ? AND (cursor_log != ? OR cursor < ?)',
    ),
    peerLogByKey: db
      .prepare<[number, string], number>('SELECT id FROM peer_logs WHERE device = ? AND log = ?')
      .pluck(),
    peerLogById: db.prepare<[number], { device: number; log: string }>(
      'SELECT device, log FROM peer_logs WHERE id = ?',
    ),
    allPeerLogs: db.prepare<[], { id: number; device: number; log: string }>(
      'SELECT id, device, log FROM peer_logs',
    ),
    insertPeerLog: db.prepare<[number, string]>('INSERT INTO peer_logs (device, log) VALUES (?, ?)'),
    retirePeerLog: db.prepare<[number, string]>(
      'INSERT INTO peer_logs (device, log, retired) VALUES (?, ?, 1) ON CONFLICT (device, log) DO UPDATE SET retired = 1',
    ),
    peerLogRetired: db
      .prepare<[number, string], number>('SELECT retired FROM peer_logs WHERE device = ? AND log = ?')
      .pluck(),
    activeConflict: db.prepare<[string, string], ConflictRow>(
      "SELECT * FROM conflicts WHERE collection = ? AND record_id = ? AND status != 'resolved'",
    ),
    insertConflict: db.prepare(
      `INSERT INTO conflicts (collection, record_id, status, strategy, heads, winner, opened_at, updated_at)
       VALUES (@collection, @record_id, @status, @strategy, @heads, @winner, @now, @now)`,
    ),
    updateConflict: db.prepare(
      'UPDATE conflicts SET status = @status, strategy = @strategy, heads = @heads, winner = @winner, updated_at = @now WHERE id = @id',
    ),
    resolveConflict: db.prepare<[number, number, string, number]>(
      "UPDATE conflicts SET status = 'resolved', resolved_at = ?, updated_at = ?, resolved_by = ? WHERE id = ?",
    ),
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    setMeta: db.prepare<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
  };
}

/**
 * The embedded StorageAdapter: one SQLite file per node, in WAL mode. Writes are
 * serialised by SQLite; other processes (the CLI) may read and write the same file.
 */
export class SqliteStore implements StorageAdapter {
  private readonly options: SqliteStoreOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private db: Database.Database | undefined;
  private stmts: Statements | undefined;
  /** Runs a function in a transaction: made once, as each `db.transaction` builds five wrappers. */
  private tx: Database.Transaction<(fn: () => unknown) => unknown> | undefined;
  /** Device ID <-> devices.id, cached; rows refer to devices by the small id. */
  private readonly deviceIds = new Map<string, number>();
  private readonly deviceKeys = new Map<number, DeviceId>();
  /** (device, log) <-> peer_logs.id, cached; revisions.source refers to a peer log by the small id. */
  private readonly peerLogIds = new Map<string, number>();
  private readonly peerLogDevices = new Map<number, DeviceId>();
  /** Devices and peer logs added by the running transaction, forgotten again if it rolls back. */
  private addedDevices: string[] = [];
  private addedPeerLogs: string[] = [];
  /** Secret of this store that salts checkpoint tokens. */
  private salt = '';
  /** The epoch of this start is still to be written: the disk refused it at start (see `start`). */
  private epochPending = false;
  /** Wake-ups on any process's commit to the file (see sqlite-wakeups.ts). */
  private readonly wakeups: SqliteWakeups;

  constructor(options: SqliteStoreOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.wakeups = new SqliteWakeups(this.logger);
  }

  get path(): string {
    return this.options.path;
  }

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    const { path } = this.options;
    if (this.options.mustExist && path !== ':memory:') {
      const size = existsSync(path) ? statSync(path).size : -1;
      if (size <= 0) throw new StoreMissingError(path, size === 0 ? 'empty' : 'missing');
    }
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') {
        const dir = dirname(path);
        if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
      }
      db = new Database(path);
      ownerOnly(path);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${(this.options.synchronous ?? 'full').toUpperCase()}`);
      db.pragma(`busy_timeout = ${this.options.busyTimeoutMs ?? 5000}`);
      db.pragma(`cache_size = -${(this.options.cacheMiB ?? 32) * 1024}`);
      const applied = migrate(db, this.clock.now());
      if (applied.length > 0) this.logger.info({ path, applied }, 'store schema migrated');
      this.stmts = prepareStatements(db);
    } catch (err) {
      db?.close();
      if (err instanceof Error && 'code' in err && err.code === 'STORE_SCHEMA_TOO_NEW') throw err;
      if (isCorruption(err)) throw new StoreCorruptError(path, err);
      throw new StoreOpenError(path, err);
    }
    this.db = db;
    this.tx = db.transaction((fn: () => unknown) => fn());
    for (const row of this.stmts.allDevices.all()) this.remember(row.device_id, row.id);
    for (const row of this.stmts.allPeerLogs.all())
      this.rememberPeerLog(this.deviceKey(row.device), row.log, row.id);
    // A store gets its change log identity and checkpoint secret when first started
    // (also a store of an earlier version); OR IGNORE keeps the first of two processes'.
    // Each start begins an epoch at the next position (see migration 3): replacing one
    // that a copy of this store already had there, since this may be that copy restored.
    const init = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
    this.epochPending = false;
    try {
      db.transaction(() => {
        init.run('log_salt', randomBytes(16).toString('hex'));
        init.run('log_id', randomBytes(16).toString('hex'));
        init.run('log_created', String(this.clock.now()));
        this.beginEpoch();
      }).immediate();
    } catch (err) {
      // A full or read-only disk. A store that already has its identity still serves
      // reads (the CLI's get, ls and status; a backup); the epoch then begins with the
      // first write that succeeds, before its first revision. A new store cannot start.
      const error = this.writeError(err);
      if (!(error instanceof StoreWriteError) || this.stmts.getMeta.get('log_salt') === undefined) {
        this.db = undefined;
        this.stmts = undefined;
        this.tx = undefined;
        db.close();
        throw error;
      }
      this.epochPending = true;
    }
    this.salt = this.stmts.getMeta.get('log_salt') ?? '';
    if (path !== ':memory:') this.wakeups.open(path);
  }

  /** Begins an epoch of the change log at its next position (inside a write transaction). */
  private beginEpoch(): void {
    const { db, s } = this.open();
    db.prepare('INSERT OR REPLACE INTO log_epochs (first_seq, id) VALUES (?, ?)').run(
      (s.latestSeq.get() ?? 0) + 1,
      randomBytes(16).toString('hex'),
    );
  }

  async stop(): Promise<void> {
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    this.stmts = undefined;
    this.tx = undefined;
    this.wakeups.close();
    this.deviceIds.clear();
    this.deviceKeys.clear();
    this.peerLogIds.clear();
    this.peerLogDevices.clear();
    db.close();
  }

  private open(): {
    db: Database.Database;
    s: Statements;
    tx: Database.Transaction<(fn: () => unknown) => unknown>;
  } {
    if (!this.db || !this.stmts || !this.tx) throw new StoreClosedError();
    return { db: this.db, s: this.stmts, tx: this.tx };
  }

  private remember(device: string, id: number): void {
    this.deviceIds.set(device, id);
    this.deviceKeys.set(id, device as DeviceId);
  }

  private rememberPeerLog(device: DeviceId, log: string, id: number): void {
    this.peerLogIds.set(`${device}\u0000${log}`, id);
    this.peerLogDevices.set(id, device);
  }

  /** The small id of a peer log; adds it on first sight (inside the caller's transaction). */
  private peerLogRef(source: PeerLog): number {
    const key = `${source.device}\u0000${source.log}`;
    const known = this.peerLogIds.get(key);
    if (known !== undefined) return known;
    const { s } = this.open();
    const device = this.deviceRef(source.device);
    let id = s.peerLogByKey.get(device, source.log);
    if (id === undefined) {
      id = Number(s.insertPeerLog.run(device, source.log).lastInsertRowid);
      this.addedPeerLogs.push(key);
    }
    this.rememberPeerLog(source.device, source.log, id);
    return id;
  }

  /** The device of a peer log (another process may have added it). */
  private peerLogDevice(id: number): DeviceId {
    const known = this.peerLogDevices.get(id);
    if (known !== undefined) return known;
    const row = this.open().s.peerLogById.get(id);
    if (row === undefined) throw new Error(`store refers to unknown peer log #${id}`);
    const device = this.deviceKey(row.device);
    this.rememberPeerLog(device, row.log, id);
    return device;
  }

  /** The device and log of a peer log's small id. */
  private peerLogOf(id: number): PeerLog {
    const device = this.peerLogDevice(id);
    const row = this.open().s.peerLogById.get(id);
    if (row === undefined) throw new Error(`store refers to unknown peer log #${id}`);
    return { device, log: row.log };
  }

  /** The small id of a peer log without adding it; -1 (matches nothing) when unknown. */
  private findPeerLog(source: PeerLog): number {
    const known = this.peerLogIds.get(`${source.device}\u0000${source.log}`);
    if (known !== undefined) return known;
    const { s } = this.open();
    const device = this.deviceIds.get(source.device) ?? s.deviceByKey.get(source.device)?.id;
    return device === undefined ? -1 : (s.peerLogByKey.get(device, source.log) ?? -1);
  }

  private token(seq: number, rev: string | undefined): string {
    if (seq === 0) return '';
    // Past the end of the log: a value no real position's token can take.
    if (rev === undefined) return 'none';
    const { s } = this.open();
    return checkpointToken(this.salt, seq, rev, s.epochAt.get(seq), s.getMeta.get('log_id') ?? '');
  }

  /** The small id of a device; adds it on first sight (inside the caller's transaction). */
  private deviceRef(device: string): number {
    const known = this.deviceIds.get(device);
    if (known !== undefined) return known;
    const { s } = this.open();
    const row = s.deviceByKey.get(device);
    let id: number;
    if (row) {
      id = row.id;
    } else {
      id = Number(s.insertDevice.run(device).lastInsertRowid);
      this.addedDevices.push(device);
    }
    this.remember(device, id);
    return id;
  }

  /** The device ID behind a small id (another process may have added it). */
  private deviceKey(id: number): DeviceId {
    const known = this.deviceKeys.get(id);
    if (known !== undefined) return known;
    const device = this.open().s.deviceById.get(id);
    if (device === undefined) throw new Error(`store refers to unknown device #${id}`);
    this.remember(device, id);
    return device as DeviceId;
  }

  /** Runs `fn` in a write transaction; on failure, forgets devices the transaction added. */
  private write<T>(fn: () => T): T {
    const { tx } = this.open();
    this.addedDevices = [];
    this.addedPeerLogs = [];
    try {
      const result = tx.immediate(() => {
        if (this.epochPending) this.beginEpoch();
        return fn();
      }) as T;
      this.epochPending = false;
      return result;
    } catch (err) {
      for (const device of this.addedDevices) {
        const id = this.deviceIds.get(device);
        this.deviceIds.delete(device);
        if (id !== undefined) this.deviceKeys.delete(id);
      }
      for (const key of this.addedPeerLogs) {
        const id = this.peerLogIds.get(key);
        this.peerLogIds.delete(key);
        if (id !== undefined) this.peerLogDevices.delete(id);
      }
      throw this.writeError(err);
    } finally {
      this.addedDevices = [];
      this.addedPeerLogs = [];
    }
  }

  private encodeVector(vv: VersionVector): string {
    let out = '';
    for (const device in vv) out += `${out ? ',' : ''}${this.deviceRef(device)}:${vv[device]}`;
    return out;
  }

  private decodeVector(text: string): VersionVector {
    const vv: VersionVector = {};
    for (const pair of text.split(',')) {
      const colon = pair.indexOf(':');
      vv[this.deviceKey(Number(pair.slice(0, colon)))] = Number(pair.slice(colon + 1));
    }
    return vv;
  }

  async apply(input: ApplyInput): Promise<ApplyResult> {
    const { s } = this.open();
    return this.write((): ApplyResult => {
      const applied: AppliedRevision[] = [];
      const rejected: RejectedRevision[] = [];
      let duplicates = 0;
      const source = input.source === undefined ? null : this.peerLogRef(input.source);
      const prefetched = this.prefetchHeads(s, input.revisions);
      // Rows go in INSERT_ROWS at a time, held back until a read or a write needs them in.
      const held = new HeldRevisions(s);
      for (let i = 0; i < input.revisions.length; i++) {
        const { revision: r, local, bodyText } = input.revisions[i] as IncomingRevision;
        // The rows read up front hold for the first revision of each record in the
        // batch; a later one sees what the earlier ones wrote, so it asks again.
        let rows = prefetched[i];
        if (rows === undefined) {
          held.flush();
          rows = s.headsOrRev.all(r.collection, r.id, r.rev);
        }
        let duplicate = false;
        const heads: StoredRevision[] = [];
        for (const row of rows) {
          if (row[1] === r.rev) duplicate = true;
          else if (row[14] === 1) heads.push(this.toStored(row));
        }
        if (duplicate) {
          duplicates++;
          continue;
        }
        // Parents are usually the current heads; anything else is looked up through the record's index.
        const missing = r.parents.find((p) => {
          if (heads.some((h) => h.rev === p)) return false;
          held.flush();
          return s.hasRev.get(r.collection, r.id, p) === undefined;
        });
        if (missing !== undefined) {
          const err = new UnknownAncestorError(r.rev, missing);
          rejected.push({
            rev: r.rev,
            collection: r.collection,
            id: r.id,
            code: err.code,
            message: err.message,
          });
          continue;
        }
        const outcome = input.reduce(heads, r);
        const isHead = outcome.kind === 'head';
        const values: RevisionValues = [
          r.rev,
          r.collection,
          r.id,
          r.parents.length === 0 ? '' : r.parents.join(','),
          this.encodeVector(r.vv),
          r.hlc,
          this.deviceRef(r.author),
          r.hub ? 1 : 0,
          r.deleted ? 1 : 0,
          r.bodyHash,
          r.body === null ? null : (bodyText ?? JSON.stringify(r.body)),
          r.fields === undefined ? null : JSON.stringify(r.fields),
          r.pruned ? 1 : 0,
          isHead ? 1 : 0,
          local ? 1 : 0,
          source,
        ];
        const entry: AppliedRevision =
          outcome.kind === 'head'
            ? { revision: r, seq: 0 as Seq, outcome: 'head', record: headRecord(r, outcome, 0 as Seq) }
            : { revision: r, seq: 0 as Seq, outcome: outcome.kind };
        applied.push(held.add(values, entry));
        if (outcome.kind !== 'head') continue;
        const { resolution } = outcome;
        for (const h of heads) if (outcome.supersedes.includes(h.rev)) s.unhead.run(h.seq);
        if (outcome.heads.length > 1) {
          // The resolution names the winner's position: this revision's must be known now.
          held.flush();
          const seq = entry.seq;
          const winnerSeq =
            resolution.winner === r.rev ? seq : (heads.find((h) => h.rev === resolution.winner)?.seq ?? seq);
          s.upsertResolution.run(
            r.collection,
            r.id,
            resolution.winner,
            winnerSeq,
            resolution.deleted ? 1 : 0,
            outcome.hlc,
            resolution.derived && resolution.body !== null ? JSON.stringify(resolution.body) : null,
            CONFLICT_CODE[outcome.conflict],
            seq,
          );
        } else if (heads.length > 1) {
          s.deleteResolution.run(r.collection, r.id);
        }
        if (heads.length > 1 || outcome.conflict !== 'none') this.recordConflict(s, r, outcome, input.now);
      }
      held.flush();
      if (input.source !== undefined && input.cursor !== undefined)
        this.writeCursor(s, input.source.device, input.cursor);
      return { applied, duplicates, rejected };
    });
  }

  /**
   * The rows `headsOrRev` would return for the first revision of each record in
   * `revisions` (its heads, and itself if stored), read up to LOOKUP_KEYS records a
   * statement; by position in `revisions`. Later revisions of a record are left
   * out (undefined): the revisions before them in the batch change their heads.
   */
  private prefetchHeads(
    s: Statements,
    revisions: readonly IncomingRevision[],
  ): (RevisionRow[] | undefined)[] {
    const out: (RevisionRow[] | undefined)[] = new Array(revisions.length);
    if (revisions.length < 2) return out;
    // First occurrence of each record, grouped by collection.
    const byCollection = new Map<string, Map<string, number>>();
    for (let i = 0; i < revisions.length; i++) {
      const r = (revisions[i] as IncomingRevision).revision;
      let ids = byCollection.get(r.collection);
      if (ids === undefined) byCollection.set(r.collection, (ids = new Map()));
      if (!ids.has(r.id)) ids.set(r.id, i);
    }
    for (const [collection, ids] of byCollection) {
      const firsts = [...ids.values()];
      for (let start = 0; start < firsts.length; start += LOOKUP_KEYS) {
        const slice = firsts.slice(start, start + LOOKUP_KEYS);
        const size = LOOKUP_SIZES.findIndex((keys) => keys >= slice.length);
        const keys = LOOKUP_SIZES[size] as number;
        const found = new Map<string, RevisionRow[]>();
        const params: string[] = new Array(1 + 2 * keys);
        params[0] = collection;
        for (let k = 0; k < keys; k++) {
          // Short slices repeat their last record: the same key twice matches the same rows once.
          const r = (revisions[slice[Math.min(k, slice.length - 1)] as number] as IncomingRevision).revision;
          params[1 + k] = r.id;
          params[1 + keys + k] = r.rev;
        }
        for (const row of (s.headsOrRevMany[size] as Database.Statement<string[], RevisionRow>).all(
          ...params,
        )) {
          const list = found.get(row[3]);
          if (list === undefined) found.set(row[3], [row]);
          else list.push(row);
        }
        for (const i of slice) out[i] = found.get((revisions[i] as IncomingRevision).revision.id) ?? [];
      }
    }
    return out;
  }

  private writeCursor(s: Statements, peer: DeviceId, c: PeerCursor): void {
    const device = this.deviceRef(peer);
    const before = s.deviceByKey.get(peer);
    // The peer moved to another log: the old one must never come back.
    if (before && before.cursor_log !== '' && before.cursor_log !== c.log)
      s.retirePeerLog.run(device, before.cursor_log);
    s.setCursor.run(c.seq, c.log, c.check, device, c.log, c.seq);
  }

  private recordConflict(
    s: Statements,
    r: Revision,
    outcome: Extract<ReduceOutcome, { kind: 'head' }>,
    now: number,
  ): void {
    const active = s.activeConflict.get(r.collection, r.id);
    if (outcome.conflict === 'none') {
      if (active) s.resolveConflict.run(now, now, r.rev, active.id);
      return;
    }
    const row = {
      collection: r.collection,
      record_id: r.id,
      status: outcome.conflict,
      strategy: outcome.strategy,
      heads: JSON.stringify(outcome.heads),
      winner: outcome.resolution.winner,
      now,
    };
    if (active) s.updateConflict.run({ ...row, id: active.id });
    else s.insertConflict.run(row);
  }

  /** Maps SQLite's disk-full and I/O errors to a named error; passes everything else on. */
  private writeError(err: unknown): unknown {
    if (isCorruption(err)) return new StoreCorruptError(this.options.path, err);
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    if (
      code.startsWith('SQLITE_FULL') ||
      code.startsWith('SQLITE_IOERR') ||
      code.startsWith('SQLITE_READONLY')
    ) {
      this.logger.error({ err }, 'store write failed');
      return new StoreWriteError(err);
    }
    return err;
  }

  async heads(collection: string, id: string): Promise<StoredRevision[]> {
    const { s } = this.open();
    return s.heads.all(collection, id).map((row) => this.toStored(row));
  }

  async getRecord(collection: string, id: string): Promise<RecordView | undefined> {
    const { s } = this.open();
    const row = s.getRecord.get(collection, id);
    return row ? toRecordView(row) : undefined;
  }

  async listRecords(collection: string, query: ListQuery): Promise<RecordView[]> {
    const { s } = this.open();
    return s.listRecords
      .all(collection, query.after ?? '', query.includeDeleted ? 1 : 0, query.limit)
      .map(toRecordView);
  }

  async listCollections(): Promise<string[]> {
    return this.open().s.collections.all();
  }

  async history(collection: string, id: string): Promise<StoredRevision[]> {
    const { s } = this.open();
    return s.history.all(collection, id).map((row) => this.toStored(row));
  }

  async getRevision(collection: string, id: string, rev: RevId): Promise<StoredRevision | undefined> {
    const row = this.open().s.getRev.get(collection, id, rev);
    return row ? this.toStored(row) : undefined;
  }

  async changesSince(query: ChangesQuery): Promise<ChangeBatch> {
    const { s, tx } = this.open();
    const exclude = query.excludeSource === undefined ? -1 : this.findPeerLog(query.excludeSource);
    return tx((): ChangeBatch => {
      const revisions: Revision[] = [];
      let upTo = query.since;
      let bytes = 0;
      let scanned = 0;
      let stoppedEarly = false;
      const maxScan = query.limit * MAX_SCAN_FACTOR;
      // Peer logs the rows read came from (null: written here), when the caller asks.
      const sources = query.origin ? new Set<number | null>() : undefined;
      let next: number | null | undefined;
      const rows =
        query.collectionIn === undefined
          ? s.changes.iterate(query.since, exclude)
          : s.changesIn.iterate(query.since, exclude, JSON.stringify(query.collectionIn));
      for (const row of rows) {
        if (
          revisions.length >= query.limit ||
          (revisions.length > 0 && bytes >= query.maxBytes) ||
          scanned >= maxScan
        ) {
          stoppedEarly = true;
          next = row[16];
          break;
        }
        scanned++;
        sources?.add(row[16]);
        // Rows skipped by SQLite before this one are covered too: upTo moves past them.
        upTo = row[0] as Seq;
        if (query.collections && !query.collections(row[2])) continue;
        revisions.push(this.toRevision(row));
        bytes += (row[11]?.length ?? 0) + 64;
      }
      if (!stoppedEarly) {
        // Nothing left to offer: skip past trailing local-only revisions too.
        const latest = (s.latestSeq.get() ?? 0) as Seq;
        if (latest > upTo) upTo = latest;
      }
      const check = this.token(upTo, upTo === 0 ? undefined : s.revAt.get(upTo));
      const batch: ChangeBatch = { since: query.since, upTo, revisions, more: stoppedEarly, check };
      if (sources) {
        const logs: PeerLog[] = [];
        for (const id of sources) if (id !== null) logs.push(this.peerLogOf(id));
        batch.origin = {
          logs,
          ...(stoppedEarly && { next: next === null || next === undefined ? null : this.peerLogOf(next) }),
          bodyBytes: bytes,
        };
      }
      return batch;
    }) as ChangeBatch;
  }

  async latestSeq(): Promise<Seq> {
    return (this.open().s.latestSeq.get() ?? 0) as Seq;
  }

  async countChanges(since: Seq, excludeSource?: PeerLog): Promise<number> {
    const exclude = excludeSource === undefined ? -1 : this.findPeerLog(excludeSource);
    return this.open().s.countChanges.get(since, exclude) ?? 0;
  }

  async isRetiredLog(source: PeerLog): Promise<boolean> {
    const { s } = this.open();
    const device = this.deviceIds.get(source.device) ?? s.deviceByKey.get(source.device)?.id;
    return device !== undefined && s.peerLogRetired.get(device, source.log) === 1;
  }

  async changeLog(): Promise<ChangeLogInfo> {
    const { s } = this.open();
    return { id: s.getMeta.get('log_id') ?? '', createdAt: Number(s.getMeta.get('log_created') ?? 0) };
  }

  async rotateChangeLog(now: number): Promise<ChangeLogInfo> {
    const { s } = this.open();
    const info = { id: randomBytes(16).toString('hex'), createdAt: now };
    this.write(() => {
      s.setMeta.run('log_id', info.id);
      s.setMeta.run('log_created', String(info.createdAt));
    });
    this.logger.warn({ log: info.id }, 'change log has a new identity; peers restart from its beginning');
    return info;
  }

  async checkpoint(seq: Seq): Promise<string> {
    const { s } = this.open();
    return this.token(seq, seq === 0 ? undefined : s.revAt.get(seq));
  }

  async issued(log: string, seq: Seq, token: string): Promise<boolean> {
    this.open();
    return issuedToken(this.salt, log, seq, token);
  }

  async getCursor(peer: DeviceId): Promise<PeerCursor> {
    const row = this.open().s.deviceByKey.get(peer);
    if (!row) return { ...EMPTY_CURSOR };
    return { log: row.cursor_log, seq: row.cursor as Seq, check: row.cursor_check };
  }

  async setCursor(peer: DeviceId, cursor: PeerCursor): Promise<void> {
    await this.setCursors([[peer, cursor]]);
  }

  async setCursors(cursors: ReadonlyArray<readonly [DeviceId, PeerCursor]>): Promise<void> {
    const { s } = this.open();
    this.write(() => {
      for (const [peer, cursor] of cursors) this.writeCursor(s, peer, cursor);
    });
  }

  async listConflicts(
    filter: { status?: ConflictRecord['status']; collection?: string } = {},
  ): Promise<ConflictRecord[]> {
    const { db } = this.open();
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.collection) {
      where.push('collection = ?');
      params.push(filter.collection);
    }
    const sql = `SELECT * FROM conflicts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return (db.prepare(sql).all(...params) as ConflictRow[]).map((row) => ({
      conflictId: row.id,
      collection: row.collection,
      id: row.record_id,
      status: row.status,
      strategy: row.strategy,
      heads: JSON.parse(row.heads) as RevId[],
      winner: row.winner as RevId,
      openedAt: row.opened_at,
      updatedAt: row.updated_at,
      resolvedAt: row.resolved_at,
      resolvedBy: row.resolved_by as RevId | null,
    }));
  }

  async resettle(collection: string, settle: Resettler, now: number): Promise<RecordView[]> {
    const { db, s } = this.open();
    const ids = db
      .prepare<[string], string>(
        "SELECT record_id FROM conflicts WHERE collection = ? AND status != 'resolved' ORDER BY record_id",
      )
      .pluck()
      .all(collection);
    const resolutionSeq = db
      .prepare<[string, string], number>('SELECT seq FROM resolutions WHERE collection = ? AND id = ?')
      .pluck();
    return this.write(() => {
      const changed: RecordView[] = [];
      for (const id of ids) {
        const heads = s.heads
          .all(collection, id)
          .map((row) => this.toStored(row))
          .sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));
        const active = s.activeConflict.get(collection, id);
        if (heads.length < 2 || !active) continue;
        const before = s.getRecord.get(collection, id);
        const { resolution, hlc, conflict, strategy } = settle(heads);
        const winner = heads.find((h) => h.rev === resolution.winner);
        if (!winner)
          throw new Error(`the resettled winner ${resolution.winner} is not a head of ${collection}/${id}`);
        // No new revision: the record keeps its position in the log, only its verdict changes.
        const seq = resolutionSeq.get(collection, id) ?? Math.max(...heads.map((h) => h.seq));
        s.upsertResolution.run(
          collection,
          id,
          resolution.winner,
          winner.seq,
          resolution.deleted ? 1 : 0,
          hlc,
          resolution.derived && resolution.body !== null ? JSON.stringify(resolution.body) : null,
          CONFLICT_CODE[conflict],
          seq,
        );
        s.updateConflict.run({
          id: active.id,
          collection,
          record_id: id,
          status: conflict,
          strategy,
          heads: JSON.stringify(heads.map((h) => h.rev)),
          winner: resolution.winner,
          now,
        });
        const after = s.getRecord.get(collection, id);
        if (after && JSON.stringify(after) !== JSON.stringify(before)) changed.push(toRecordView(after));
      }
      return changed;
    });
  }

  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    const { db } = this.open();
    if (policy.maxRevisions === undefined && policy.maxAgeMs === undefined) return 0;
    const max = policy.maxRevisions ?? Number.MAX_SAFE_INTEGER;
    const cutoff =
      policy.maxAgeMs === undefined
        ? ''
        : Math.max(0, now - policy.maxAgeMs)
            .toString(16)
            .padStart(12, '0');
    return this.write(
      () =>
        db
          .prepare(
            `UPDATE revisions SET body = NULL, pruned = 1 WHERE seq IN (
               SELECT seq FROM (
                 SELECT seq, head, hlc, row_number() OVER (PARTITION BY collection, record_id ORDER BY hlc DESC, rev DESC) AS rn
                 FROM revisions WHERE pruned = 0
               ) WHERE head = 0 AND (rn > @max OR hlc < @cutoff)
             ) AND body IS NOT NULL`,
          )
          .run({ max, cutoff }).changes,
    );
  }

  /**
   * Calls `listener` soon after any process (this one too) commits to the file: a
   * wake-up to look, carrying nothing. None for an in-memory database, which no
   * other process can write.
   */
  onCommit(listener: () => void): (() => void) | undefined {
    if (this.options.path === ':memory:') return undefined;
    return this.wakeups.subscribe(listener);
  }

  async dataVersion(): Promise<number> {
    return this.open().s.dataVersion.get() as number;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.open().s.getMeta.get(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.open().s.setMeta.run(key, value);
  }

  async stats(): Promise<StoreStats> {
    const { db, s } = this.open();
    const count = (sql: string) => db.prepare(sql).pluck().get() as number;
    return {
      records: count(
        `SELECT count(*) FROM (${'SELECT 1 FROM revisions v LEFT JOIN resolutions x ON x.collection = v.collection AND x.id = v.record_id WHERE v.head = 1 AND (x.id IS NULL OR v.seq = x.rev_seq) AND coalesce(x.deleted, v.deleted) = 0'})`,
      ),
      revisions: count('SELECT count(*) FROM revisions'),
      latestSeq: (s.latestSeq.get() ?? 0) as Seq,
      openConflicts: count("SELECT count(*) FROM conflicts WHERE status = 'open'"),
    };
  }

  private toRevision(row: RevisionRow): Revision {
    const r: Revision = {
      rev: row[1] as RevId,
      collection: row[2],
      id: row[3],
      parents: row[4] === '' ? [] : (row[4].split(',') as RevId[]),
      vv: this.decodeVector(row[5]),
      hlc: row[6],
      author: this.deviceKey(row[7]),
      hub: row[8] === 1,
      deleted: row[9] === 1,
      bodyHash: row[10],
      body: row[11] === null ? null : (JSON.parse(row[11]) as JsonObject),
    };
    if (row[12] !== null) r.fields = JSON.parse(row[12]) as Record<string, string>;
    if (row[13] === 1) r.pruned = true;
    return r;
  }

  private toStored(row: RevisionRow): StoredRevision {
    const r = this.toRevision(row) as StoredRevision;
    r.seq = row[0] as Seq;
    r.head = row[14] === 1;
    r.local = row[15] === 1;
    r.source = row[16] === null ? undefined : this.peerLogDevice(row[16]);
    return r;
  }
}

/**
 * Revisions an apply has decided to insert, held back to go in INSERT_ROWS rows a
 * statement: each full set goes in at once, the rest on `flush`, one row a
 * statement. Their positions follow in order (one transaction, one writer), so
 * each entry learns its seq when its row goes in. The apply flushes before every
 * read of the revisions table and every write that needs a held row's position.
 */
class HeldRevisions {
  /** The held rows' values, one after another: the parameters of `insertRevs`. */
  private readonly params: unknown[] = new Array(INSERT_ROWS * INSERT_COLUMNS);
  private readonly rows: RevisionValues[] = [];
  private readonly entries: AppliedRevision[] = [];

  constructor(private readonly s: Statements) {}

  /** Holds one revision's row; `entry` (and its record) get the row's seq when it goes in. */
  add(values: RevisionValues, entry: AppliedRevision): AppliedRevision {
    const at = this.rows.length * INSERT_COLUMNS;
    for (let k = 0; k < INSERT_COLUMNS; k++) this.params[at + k] = values[k];
    this.rows.push(values);
    this.entries.push(entry);
    if (this.rows.length === INSERT_ROWS) {
      this.placed(Number(this.s.insertRevs.run(this.params).lastInsertRowid));
      this.rows.length = 0;
      this.entries.length = 0;
    }
    return entry;
  }

  /** Inserts the rows still held. */
  flush(): void {
    for (let i = 0; i < this.rows.length; i++) {
      const seq = Number(this.s.insertRev.run(...(this.rows[i] as RevisionValues)).lastInsertRowid);
      setSeq(this.entries[i] as AppliedRevision, seq);
    }
    this.rows.length = 0;
    this.entries.length = 0;
  }

  /** Gives the held entries their positions, the last of which is `last`. */
  private placed(last: number): void {
    const first = last - this.entries.length + 1;
    for (let i = 0; i < this.entries.length; i++) setSeq(this.entries[i] as AppliedRevision, first + i);
  }
}

function setSeq(entry: AppliedRevision, seq: number): void {
  entry.seq = seq as Seq;
  if (entry.record) entry.record.seq = seq as Seq;
}

function toRecordView(row: RecordRow): RecordView {
  return {
    collection: row.collection,
    id: row.id,
    rev: row.rev as RevId,
    deleted: row.deleted === 1,
    body: row.deleted === 1 || row.body === null ? null : (JSON.parse(row.body) as JsonObject),
    hlc: row.hlc,
    conflict: CONFLICT_NAME[row.conflict] ?? 'none',
    seq: row.seq as Seq,
  };
}

/** SQLite's own word that the file is damaged or is not a database. */
function isCorruption(err: unknown): boolean {
  const code = err instanceof Error && 'code' in err ? String(err.code) : '';
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/**
 * The adapter's methods, each of which reports a damaged file as STORE_CORRUPT
 * whichever query finds it (damage in the middle of a file shows only when a query
 * reads that page).
 */
const ADAPTER_METHODS = [
  'heads',
  'getRecord',
  'listRecords',
  'listCollections',
  'history',
  'getRevision',
  'changesSince',
  'latestSeq',
  'countChanges',
  'changeLog',
  'checkpoint',
  'isRetiredLog',
  'getCursor',
  'listConflicts',
  'dataVersion',
  'getMeta',
  'setMeta',
  'stats',
] as const satisfies readonly (keyof SqliteStore)[];
for (const name of ADAPTER_METHODS) {
  const method = SqliteStore.prototype[name] as (...args: unknown[]) => Promise<unknown>;
  Object.defineProperty(SqliteStore.prototype, name, {
    value: async function (this: SqliteStore, ...args: unknown[]) {
      try {
        return await method.apply(this, args);
      } catch (err) {
        throw isCorruption(err) ? new StoreCorruptError(this.path, err) : err;
      }
    },
    writable: true,
    configurable: true,
  });
}
