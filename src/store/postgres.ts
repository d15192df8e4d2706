import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { StorageAdapter } from './adapter.js';
import { checkpointToken, issuedToken } from './checkpoint.js';
import { StoreClosedError, StoreCorruptError, StoreWriteError, UnknownAncestorError } from './errors.js';
import { type PostgresConnection, type PostgresTarget, PostgresWakeups } from './postgres-connection.js';
import { openMigrated } from './postgres-migrations.js';
import { POSTGRES_STORE_MIGRATIONS } from './postgres-schema.js';
import { EMPTY_CURSOR, headRecord } from './types.js';
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

export interface PostgresStoreOptions {
  /**
   * The database: `postgres://user:password@host:port/database` (`?host=/dir` for a
   * unix socket), or a node-postgres pool config. The password never appears in a
   * message or log.
   */
  connection: PostgresConnection;
  /**
   * The PostgreSQL schema that holds the store's tables (created if missing), so a
   * hub's store and registry, or several stores, can share one database. Default
   * `trosyn_store`.
   */
  schema?: string;
  /** Connections the store opens at most. Default 4. */
  maxConnections?: number;
  /**
   * Its owner has run on this database before, so the schema must be there: a
   * missing or empty one fails with STORE_MISSING instead of starting afresh.
   * Default false.
   */
  mustExist?: boolean;
  logger?: Logger;
  clock?: Clock;
}

/** Revision columns in the order every query selects them; rows are read as arrays. */
const REV_COLUMNS =
  'seq, rev, collection, record_id, parents, vv, hlc, author, hub, deleted, body_hash, body, fields, pruned, head, local, source';
type RevisionRow = [
  seq: number,
  rev: string,
  collection: string,
  recordId: string,
  parents: string,
  vv: string,
  hlc: string,
  author: number,
  hub: boolean,
  deleted: boolean,
  bodyHash: string,
  body: string | null,
  fields: string | null,
  pruned: boolean,
  head: boolean,
  local: boolean,
  source: number | null,
];

interface RecordRow {
  collection: string;
  id: string;
  rev: string;
  deleted: boolean;
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

/** Upper bound on rows read per changesSince call, as a multiple of its limit (as in SqliteStore). */
const MAX_SCAN_FACTOR = 16;

/** One row per record: a single head, or for a conflicted record the winning head joined with its resolution. */
const RECORD_SELECT = `SELECT v.collection, v.record_id AS id, coalesce(x.rev, v.rev) AS rev, coalesce(x.deleted, v.deleted) AS deleted,
    coalesce(x.hlc, v.hlc) AS hlc, coalesce(x.body, v.body) AS body, coalesce(x.conflict, 0) AS conflict, coalesce(x.seq, v.seq) AS seq
  FROM revisions v LEFT JOIN resolutions x ON x.collection = v.collection AND x.id = v.record_id
  WHERE v.head AND (x.id IS NULL OR v.seq = x.rev_seq)`;

const UPSERT_RESOLUTION = `INSERT INTO resolutions (collection, id, rev, rev_seq, deleted, hlc, body, conflict, seq)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev, rev_seq = excluded.rev_seq, deleted = excluded.deleted,
    hlc = excluded.hlc, body = excluded.body, conflict = excluded.conflict, seq = excluded.seq`;

const UPDATE_CONFLICT =
  'UPDATE conflicts SET status = $2, strategy = $3, heads = $4, winner = $5, updated_at = $6 WHERE id = $1';

/** Anything that runs a query: the pool, or the connection of a transaction. */
type Queryable = Pick<pg.ClientBase, 'query'>;

/** One write transaction: its connection, the log head it holds, and what it added to the caches. */
interface Tx {
  client: pg.PoolClient;
  latest: number;
  addedDevices: string[];
  addedPeerLogs: string[];
}

/**
 * The StorageAdapter on PostgreSQL, for a hub whose data outgrows one machine and
 * for several hub processes sharing one database.
 *
 * Concurrency: every write transaction (READ COMMITTED) first locks the single row
 * of `log_head` (`SELECT ... FOR UPDATE`), then allocates positions from it and
 * writes the new head back before it commits. Writers of all processes therefore
 * take turns, as SQLite's one writer does: the heads a reducer sees cannot change
 * under it (each statement after the lock sees every earlier writer's commit), and
 * positions become visible strictly in order, so a reader that has seen position n
 * never later finds a smaller one appear (a plain sequence could commit 11 before
 * 10, and a cursor past 11 would skip 10 for good). Reads that span several queries
 * (changesSince) run in one REPEATABLE READ snapshot, which holds a prefix of the log.
 */
export class PostgresStore implements StorageAdapter {
  private readonly options: PostgresStoreOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private db: PostgresTarget | undefined;
  private starting: Promise<void> | undefined;
  /** Device ID <-> devices.id, cached (an id, once committed, never changes or returns). */
  private readonly deviceIds = new Map<string, number>();
  private readonly deviceKeys = new Map<number, DeviceId>();
  /** (device, log) <-> peer_logs.id, cached. */
  private readonly peerLogIds = new Map<string, number>();
  private readonly peerLogDevices = new Map<number, DeviceId>();
  private readonly peerLogsById = new Map<number, PeerLog>();
  /** Secret of this store that salts checkpoint tokens. */
  private salt = '';
  /** Write transactions this adapter committed: log_head.commits less these is what others committed. */
  private ownCommits = 0;
  /** Told when any process commits a write (LISTEN on the schema's channel). */
  private readonly wakeups: PostgresWakeups;

  constructor(options: PostgresStoreOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.wakeups = new PostgresWakeups(this.schema, this.logger);
  }

  /** The database as `postgres://user@host:port/database`, without the password. */
  get label(): string {
    return this.db?.label ?? 'PostgreSQL';
  }

  get schema(): string {
    return this.options.schema ?? 'trosyn_store';
  }

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    this.starting ??= this.connect().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async connect(): Promise<void> {
    this.db = await openMigrated(this.options.connection, {
      schema: this.schema,
      maxConnections: this.options.maxConnections ?? 4,
      logger: this.logger,
      steps: POSTGRES_STORE_MIGRATIONS,
      now: this.clock.now(),
      what: 'store',
      ...(this.options.mustExist && { mustExist: true }),
      // A store gets its change log identity and checkpoint secret when first started
      // (the first of two processes wins). Each start begins an epoch at the next
      // position, replacing one a copy of this database already had there: this may
      // be that copy restored. Under the log lock, so no position is written meanwhile.
      prepare: async (target) => {
        await this.writeOn(target, async (tx) => {
          const init = 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING';
          await tx.client.query(init, ['log_salt', randomBytes(16).toString('hex')]);
          await tx.client.query(init, ['log_id', randomBytes(16).toString('hex')]);
          await tx.client.query(init, ['log_created', String(this.clock.now())]);
          await tx.client.query(
            'INSERT INTO log_epochs (first_seq, id) VALUES ($1, $2) ON CONFLICT (first_seq) DO UPDATE SET id = excluded.id',
            [tx.latest + 1, randomBytes(16).toString('hex')],
          );
        });
        this.salt = (await metaValue(target.pool, 'log_salt')) ?? '';
      },
    });
    this.wakeups.open(this.db);
  }

  /**
   * Calls `listener` soon after any process (this one too) commits a write to this
   * store: a wake-up to look, carrying nothing. Returns the unsubscribe function.
   */
  onCommit(listener: () => void): () => void {
    return this.wakeups.subscribe(listener);
  }

  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    await this.wakeups.close();
    this.deviceIds.clear();
    this.deviceKeys.clear();
    this.peerLogIds.clear();
    this.peerLogDevices.clear();
    this.peerLogsById.clear();
    await db.pool.end();
  }

  private open(): PostgresTarget {
    if (!this.db) throw new StoreClosedError();
    return this.db;
  }

  private get pool(): pg.Pool {
    return this.open().pool;
  }

  /** Runs `fn` in a write transaction holding the log lock (see the class comment). */
  private async write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.writeOn(this.open(), fn);
  }

  private async writeOn<T>(target: PostgresTarget, fn: (tx: Tx) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await target.pool.connect();
    } catch (err) {
      throw this.writeError(target, err);
    }
    const tx: Tx = { client, latest: 0, addedDevices: [], addedPeerLogs: [] };
    let broken = false;
    try {
      await client.query('BEGIN');
      const head = await client.query<{ latest: number }>('SELECT latest FROM log_head FOR UPDATE');
      tx.latest = head.rows[0]?.latest ?? 0;
      const result = await fn(tx);
      // One round trip: the head, and a payload-free wake-up for the other processes
      // (delivered at commit; notifications of one transaction fold into one).
      await client.query(
        `UPDATE log_head SET latest = ${Math.trunc(tx.latest)}, commits = commits + 1; NOTIFY ${this.schema}`,
      );
      await client.query('COMMIT');
      this.ownCommits++;
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      for (const device of tx.addedDevices) {
        const id = this.deviceIds.get(device);
        this.deviceIds.delete(device);
        if (id !== undefined) this.deviceKeys.delete(id);
      }
      for (const key of tx.addedPeerLogs) {
        const id = this.peerLogIds.get(key);
        this.peerLogIds.delete(key);
        if (id !== undefined) {
          this.peerLogDevices.delete(id);
          this.peerLogsById.delete(id);
        }
      }
      throw this.writeError(target, err);
    } finally {
      client.release(broken);
    }
  }

  /** A consistent snapshot for reads of several queries. */
  private async snapshot<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Maps a full disk, an I/O error, a read-only server or a lost connection to
   * STORE_WRITE_FAILED, damage to STORE_CORRUPT; passes everything else on (a
   * reducer's own error, say). Never with the password in the message.
   */
  private writeError(target: PostgresTarget, err: unknown): unknown {
    if (err instanceof Error && !('severity' in err) && !isConnectionError(err)) return err;
    const code = err instanceof Error && 'code' in err ? String(err.code) : '';
    if (code === 'XX001' || code === 'XX002')
      return new StoreCorruptError(target.label, target.sanitize(err));
    if (
      code.startsWith('53') ||
      code.startsWith('58') ||
      code.startsWith('08') ||
      code.startsWith('57P') ||
      code === '25006' ||
      isConnectionError(err)
    ) {
      const clean = target.sanitize(err);
      this.logger.error({ err: clean, db: target.label }, 'store write failed');
      return new StoreWriteError(clean);
    }
    return err;
  }

  // --- the small ids of devices and peer logs ------------------------------------------

  private remember(device: string, id: number): void {
    this.deviceIds.set(device, id);
    this.deviceKeys.set(id, device as DeviceId);
  }

  private rememberPeerLog(device: DeviceId, log: string, id: number): void {
    this.peerLogIds.set(`${device}\u0000${log}`, id);
    this.peerLogDevices.set(id, device);
    this.peerLogsById.set(id, { device, log });
  }

  /** The peer log behind a small id (another process may have added it). */
  private async peerLogOf(id: number, db: Queryable): Promise<PeerLog> {
    const known = this.peerLogsById.get(id);
    if (known) return known;
    await this.peerLogDevice(id, db);
    return this.peerLogsById.get(id) as PeerLog;
  }

  /** The small id of a device; adds it on first sight (inside the transaction). */
  private async deviceRef(tx: Tx, device: string): Promise<number> {
    const known = this.deviceIds.get(device);
    if (known !== undefined) return known;
    const inserted = await tx.client.query<{ id: number }>(
      'INSERT INTO devices (device_id) VALUES ($1) ON CONFLICT (device_id) DO NOTHING RETURNING id',
      [device],
    );
    let id = inserted.rows[0]?.id;
    if (id === undefined) {
      const row = await tx.client.query<{ id: number }>('SELECT id FROM devices WHERE device_id = $1', [
        device,
      ]);
      id = row.rows[0]?.id as number;
    } else {
      tx.addedDevices.push(device);
    }
    this.remember(device, id);
    return id;
  }

  /** The device ID behind a small id (another process may have added it). */
  private async deviceKey(id: number, db: Queryable = this.pool): Promise<DeviceId> {
    const known = this.deviceKeys.get(id);
    if (known !== undefined) return known;
    const { rows } = await db.query<{ device_id: string }>('SELECT device_id FROM devices WHERE id = $1', [
      id,
    ]);
    const device = rows[0]?.device_id;
    if (device === undefined) throw new Error(`store refers to unknown device #${id}`);
    this.remember(device, id);
    return device as DeviceId;
  }

  /** The small id of a peer log; adds it on first sight (inside the transaction). */
  private async peerLogRef(tx: Tx, source: PeerLog): Promise<number> {
    const key = `${source.device}\u0000${source.log}`;
    const known = this.peerLogIds.get(key);
    if (known !== undefined) return known;
    const device = await this.deviceRef(tx, source.device);
    const inserted = await tx.client.query<{ id: number }>(
      'INSERT INTO peer_logs (device, log) VALUES ($1, $2) ON CONFLICT (device, log) DO NOTHING RETURNING id',
      [device, source.log],
    );
    let id = inserted.rows[0]?.id;
    if (id === undefined) {
      const row = await tx.client.query<{ id: number }>(
        'SELECT id FROM peer_logs WHERE device = $1 AND log = $2',
        [device, source.log],
      );
      id = row.rows[0]?.id as number;
    } else {
      tx.addedPeerLogs.push(key);
    }
    this.rememberPeerLog(source.device, source.log, id);
    return id;
  }

  /** The device of a peer log (another process may have added it). */
  private async peerLogDevice(id: number, db: Queryable): Promise<DeviceId> {
    const known = this.peerLogDevices.get(id);
    if (known !== undefined) return known;
    const { rows } = await db.query<{ device: number; log: string }>(
      'SELECT device, log FROM peer_logs WHERE id = $1',
      [id],
    );
    const row = rows[0];
    if (row === undefined) throw new Error(`store refers to unknown peer log #${id}`);
    const device = await this.deviceKey(row.device, db);
    this.rememberPeerLog(device, row.log, id);
    return device;
  }

  /** The small id of a peer log without adding it; -1 (matches nothing) when unknown. */
  private async findPeerLog(source: PeerLog | undefined, db: Queryable = this.pool): Promise<number> {
    if (source === undefined) return -1;
    const known = this.peerLogIds.get(`${source.device}\u0000${source.log}`);
    if (known !== undefined) return known;
    const { rows } = await db.query<{ id: number }>(
      'SELECT p.id FROM peer_logs p JOIN devices d ON d.id = p.device WHERE d.device_id = $1 AND p.log = $2',
      [source.device, source.log],
    );
    return rows[0]?.id ?? -1;
  }

  private async encodeVector(tx: Tx, vv: VersionVector): Promise<string> {
    let out = '';
    for (const device in vv) out += `${out ? ',' : ''}${await this.deviceRef(tx, device)}:${vv[device]}`;
    return out;
  }

  private async decodeVector(text: string, db: Queryable): Promise<VersionVector> {
    const vv: VersionVector = {};
    for (const pair of text.split(',')) {
      const colon = pair.indexOf(':');
      vv[await this.deviceKey(Number(pair.slice(0, colon)), db)] = Number(pair.slice(colon + 1));
    }
    return vv;
  }

  private async toRevision(row: RevisionRow, db: Queryable): Promise<Revision> {
    const r: Revision = {
      rev: row[1] as RevId,
      collection: row[2],
      id: row[3],
      parents: row[4] === '' ? [] : (row[4].split(',') as RevId[]),
      vv: await this.decodeVector(row[5], db),
      hlc: row[6],
      author: await this.deviceKey(row[7], db),
      hub: row[8],
      deleted: row[9],
      bodyHash: row[10],
      body: row[11] === null ? null : (JSON.parse(row[11]) as JsonObject),
    };
    if (row[12] !== null) r.fields = JSON.parse(row[12]) as Record<string, string>;
    if (row[13]) r.pruned = true;
    return r;
  }

  private async toStored(row: RevisionRow, db: Queryable): Promise<StoredRevision> {
    const r = (await this.toRevision(row, db)) as StoredRevision;
    r.seq = row[0] as Seq;
    r.head = row[14];
    r.local = row[15];
    r.source = row[16] === null ? undefined : await this.peerLogDevice(row[16], db);
    return r;
  }

  private async revisionRows(db: Queryable, sql: string, values: unknown[]): Promise<RevisionRow[]> {
    const result = await db.query<RevisionRow>({ text: sql, values, rowMode: 'array' });
    return result.rows;
  }

  private async storedRows(db: Queryable, sql: string, values: unknown[]): Promise<StoredRevision[]> {
    const out: StoredRevision[] = [];
    for (const row of await this.revisionRows(db, sql, values)) out.push(await this.toStored(row, db));
    return out;
  }

  /** The checkpoint token of `seq` (see StorageAdapter.checkpoint), as SqliteStore computes it. */
  private async token(db: Queryable, seq: number): Promise<string> {
    if (seq === 0) return '';
    const { rows } = await db.query<{ rev: string | null; epoch: string | null; log: string | null }>(
      `SELECT (SELECT rev FROM revisions WHERE seq = $1) AS rev,
              (SELECT id FROM log_epochs WHERE first_seq <= $1 ORDER BY first_seq DESC LIMIT 1) AS epoch,
              (SELECT value FROM meta WHERE key = 'log_id') AS log`,
      [seq],
    );
    const rev = rows[0]?.rev ?? null;
    // Past the end of the log: a value no real position's token can take.
    if (rev === null) return 'none';
    return checkpointToken(this.salt, seq, rev, rows[0]?.epoch ?? undefined, rows[0]?.log ?? '');
  }

  // --- writes ---------------------------------------------------------------------------

  /**
   * One batch costs a handful of round trips, not several per revision: the heads
   * of every record of the batch (and any of its revisions already stored) are read
   * in one query, the batch's own effects on them are followed in memory, and the
   * new revisions go in with one INSERT at the end. Only conflict bookkeeping and a
   * parent that is neither a head nor in the batch take a query of their own.
   */
  async apply(input: ApplyInput): Promise<ApplyResult> {
    return this.write(async (tx): Promise<ApplyResult> => {
      const db = tx.client;
      const applied: AppliedRevision[] = [];
      const rejected: RejectedRevision[] = [];
      let duplicates = 0;
      const source = input.source === undefined ? null : await this.peerLogRef(tx, input.source);
      const records = await this.batchRecords(db, input.revisions);
      const firstNew = tx.latest + 1;
      const rows = new NewRevisionRows();
      const unheaded: number[] = [];
      for (const { revision: r, local, bodyText } of input.revisions) {
        const record = records.get(recordKey(r.collection, r.id)) as BatchRecord;
        if (record.revs.has(r.rev)) {
          duplicates++;
          continue;
        }
        const heads = record.heads;
        let missing: string | undefined;
        for (const p of r.parents) {
          if (record.revs.has(p)) continue;
          const known = await db.query(
            'SELECT 1 FROM revisions WHERE collection = $1 AND record_id = $2 AND rev = $3',
            [r.collection, r.id, p],
          );
          if (known.rowCount === 0) {
            missing = p;
            break;
          }
          record.revs.add(p);
        }
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
        const seq = ++tx.latest as Seq;
        rows.add(seq, r, {
          vv: await this.encodeVector(tx, r.vv),
          author: await this.deviceRef(tx, r.author),
          body: r.body === null ? null : (bodyText ?? JSON.stringify(r.body)),
          head: isHead,
          local,
          source,
        });
        record.revs.add(r.rev);
        if (outcome.kind !== 'head') {
          applied.push({ revision: r, seq, outcome: outcome.kind });
          continue;
        }
        for (const h of heads) {
          if (!outcome.supersedes.includes(h.rev)) continue;
          if (h.seq >= firstNew) rows.unhead(h.seq);
          else unheaded.push(h.seq);
        }
        record.heads = [
          ...heads.filter((h) => !outcome.supersedes.includes(h.rev)),
          { ...r, seq, head: true, local, source: input.source?.device },
        ];
        const { resolution } = outcome;
        if (outcome.heads.length > 1) {
          const winnerSeq =
            resolution.winner === r.rev ? seq : (heads.find((h) => h.rev === resolution.winner)?.seq ?? seq);
          await db.query(UPSERT_RESOLUTION, [
            r.collection,
            r.id,
            resolution.winner,
            winnerSeq,
            resolution.deleted,
            outcome.hlc,
            resolution.derived && resolution.body !== null ? JSON.stringify(resolution.body) : null,
            CONFLICT_CODE[outcome.conflict],
            seq,
          ]);
        } else if (heads.length > 1) {
          await db.query('DELETE FROM resolutions WHERE collection = $1 AND id = $2', [r.collection, r.id]);
        }
        if (heads.length > 1 || outcome.conflict !== 'none')
          await this.recordConflict(db, r, outcome, input.now);
        applied.push({ revision: r, seq, outcome: 'head', record: headRecord(r, outcome, seq) });
      }
      await rows.insert(db);
      if (unheaded.length > 0)
        await db.query('UPDATE revisions SET head = false WHERE seq = ANY($1::bigint[])', [unheaded]);
      if (input.source !== undefined && input.cursor !== undefined)
        await this.writeCursor(tx, input.source.device, input.cursor);
      return { applied, duplicates, rejected };
    });
  }

  /** The current heads of every record of a batch, and which of the batch's revisions each already has. */
  private async batchRecords(
    db: Queryable,
    revisions: ApplyInput['revisions'],
  ): Promise<Map<string, BatchRecord>> {
    const records = new Map<string, BatchRecord>();
    const collections: string[] = [];
    const ids: string[] = [];
    for (const { revision: r } of revisions) {
      const key = recordKey(r.collection, r.id);
      if (records.has(key)) continue;
      records.set(key, { heads: [], revs: new Set() });
      collections.push(r.collection);
      ids.push(r.id);
    }
    if (records.size === 0) return records;
    const found = await this.storedRows(
      db,
      `SELECT ${REV_COLUMNS} FROM revisions
       WHERE (collection, record_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
         AND (head OR rev = ANY($3::text[]))`,
      [collections, ids, revisions.map(({ revision }) => revision.rev)],
    );
    for (const row of found) {
      const record = records.get(recordKey(row.collection, row.id));
      if (record === undefined) continue;
      record.revs.add(row.rev);
      if (row.head) record.heads.push(row);
    }
    return records;
  }

  private async writeCursor(tx: Tx, peer: DeviceId, c: PeerCursor): Promise<void> {
    const device = await this.deviceRef(tx, peer);
    const before = await tx.client.query<{ cursor_log: string }>(
      'SELECT cursor_log FROM devices WHERE id = $1',
      [device],
    );
    const log = before.rows[0]?.cursor_log ?? '';
    // The peer moved to another log: the old one must never come back.
    if (log !== '' && log !== c.log)
      await tx.client.query(
        'INSERT INTO peer_logs (device, log, retired) VALUES ($1, $2, true) ON CONFLICT (device, log) DO UPDATE SET retired = true',
        [device, log],
      );
    // A cursor for another log replaces the recorded one; for the same log it only moves forward.
    await tx.client.query(
      'UPDATE devices SET cursor = $1, cursor_log = $2, cursor_check = $3 WHERE id = $4 AND (cursor_log <> $2 OR cursor < $1)',
      [c.seq, c.log, c.check, device],
    );
  }

  private async recordConflict(
    db: Queryable,
    r: Revision,
    outcome: Extract<ReduceOutcome, { kind: 'head' }>,
    now: number,
  ): Promise<void> {
    const active = await db.query<{ id: number }>(
      "SELECT id FROM conflicts WHERE collection = $1 AND record_id = $2 AND status <> 'resolved'",
      [r.collection, r.id],
    );
    const activeId = active.rows[0]?.id;
    if (outcome.conflict === 'none') {
      if (activeId !== undefined)
        await db.query(
          "UPDATE conflicts SET status = 'resolved', resolved_at = $1, updated_at = $1, resolved_by = $2 WHERE id = $3",
          [now, r.rev, activeId],
        );
      return;
    }
    const heads = JSON.stringify(outcome.heads);
    if (activeId !== undefined)
      await db.query(UPDATE_CONFLICT, [
        activeId,
        outcome.conflict,
        outcome.strategy,
        heads,
        outcome.resolution.winner,
        now,
      ]);
    else
      await db.query(
        `INSERT INTO conflicts (collection, record_id, status, strategy, heads, winner, opened_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
        [r.collection, r.id, outcome.conflict, outcome.strategy, heads, outcome.resolution.winner, now],
      );
  }

  async rotateChangeLog(now: number): Promise<ChangeLogInfo> {
    const info = { id: randomBytes(16).toString('hex'), createdAt: now };
    await this.write(async (tx) => {
      await setMetaOn(tx.client, 'log_id', info.id);
      await setMetaOn(tx.client, 'log_created', String(info.createdAt));
    });
    this.logger.warn({ log: info.id }, 'change log has a new identity; peers restart from its beginning');
    return info;
  }

  async setCursor(peer: DeviceId, cursor: PeerCursor): Promise<void> {
    await this.setCursors([[peer, cursor]]);
  }

  async setCursors(cursors: ReadonlyArray<readonly [DeviceId, PeerCursor]>): Promise<void> {
    await this.write(async (tx) => {
      for (const [peer, cursor] of cursors) await this.writeCursor(tx, peer, cursor);
    });
  }

  async resettle(collection: string, settle: Resettler, now: number): Promise<RecordView[]> {
    return this.write(async (tx) => {
      const db = tx.client;
      const ids = await db.query<{ record_id: string }>(
        "SELECT record_id FROM conflicts WHERE collection = $1 AND status <> 'resolved' ORDER BY record_id",
        [collection],
      );
      const changed: RecordView[] = [];
      for (const { record_id: id } of ids.rows) {
        const heads = (
          await this.storedRows(
            db,
            `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = $1 AND record_id = $2 AND head`,
            [collection, id],
          )
        ).sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));
        const active = await db.query<{ id: number }>(
          "SELECT id FROM conflicts WHERE collection = $1 AND record_id = $2 AND status <> 'resolved'",
          [collection, id],
        );
        const activeId = active.rows[0]?.id;
        if (heads.length < 2 || activeId === undefined) continue;
        const before = await recordRow(db, collection, id);
        const { resolution, hlc, conflict, strategy } = settle(heads);
        const winner = heads.find((h) => h.rev === resolution.winner);
        if (!winner)
          throw new Error(`the resettled winner ${resolution.winner} is not a head of ${collection}/${id}`);
        // No new revision: the record keeps its position in the log, only its verdict changes.
        const kept = await db.query<{ seq: number }>(
          'SELECT seq FROM resolutions WHERE collection = $1 AND id = $2',
          [collection, id],
        );
        const seq = kept.rows[0]?.seq ?? Math.max(...heads.map((h) => h.seq));
        await db.query(UPSERT_RESOLUTION, [
          collection,
          id,
          resolution.winner,
          winner.seq,
          resolution.deleted,
          hlc,
          resolution.derived && resolution.body !== null ? JSON.stringify(resolution.body) : null,
          CONFLICT_CODE[conflict],
          seq,
        ]);
        await db.query(UPDATE_CONFLICT, [
          activeId,
          conflict,
          strategy,
          JSON.stringify(heads.map((h) => h.rev)),
          resolution.winner,
          now,
        ]);
        const after = await recordRow(db, collection, id);
        if (after && JSON.stringify(after) !== JSON.stringify(before)) changed.push(toRecordView(after));
      }
      return changed;
    });
  }

  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    this.open();
    if (policy.maxRevisions === undefined && policy.maxAgeMs === undefined) return 0;
    const max = policy.maxRevisions ?? Number.MAX_SAFE_INTEGER;
    const cutoff =
      policy.maxAgeMs === undefined
        ? ''
        : Math.max(0, now - policy.maxAgeMs)
            .toString(16)
            .padStart(12, '0');
    return this.write(async (tx) => {
      const result = await tx.client.query(
        `UPDATE revisions SET body = NULL, pruned = true WHERE seq IN (
           SELECT seq FROM (
             SELECT seq, head, hlc, row_number() OVER (PARTITION BY collection, record_id ORDER BY hlc DESC, rev DESC) AS rn
             FROM revisions WHERE NOT pruned
           ) ranked WHERE NOT head AND (rn > $1 OR hlc < $2)
         ) AND body IS NOT NULL`,
        [max, cutoff],
      );
      return result.rowCount ?? 0;
    });
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.write((tx) => setMetaOn(tx.client, key, value));
  }

  // --- reads ----------------------------------------------------------------------------

  async heads(collection: string, id: string): Promise<StoredRevision[]> {
    return this.storedRows(
      this.pool,
      `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = $1 AND record_id = $2 AND head`,
      [collection, id],
    );
  }

  async getRecord(collection: string, id: string): Promise<RecordView | undefined> {
    const row = await recordRow(this.pool, collection, id);
    return row ? toRecordView(row) : undefined;
  }

  async listRecords(collection: string, query: ListQuery): Promise<RecordView[]> {
    const { rows } = await this.pool.query<RecordRow>(
      `${RECORD_SELECT} AND v.collection = $1 AND v.record_id > $2 AND (NOT coalesce(x.deleted, v.deleted) OR $3)
       ORDER BY v.record_id LIMIT $4`,
      [collection, query.after ?? '', query.includeDeleted === true, query.limit],
    );
    return rows.map(toRecordView);
  }

  async listCollections(): Promise<string[]> {
    const { rows } = await this.pool.query<{ collection: string }>(
      'SELECT DISTINCT collection FROM revisions WHERE head ORDER BY collection',
    );
    return rows.map((r) => r.collection);
  }

  async history(collection: string, id: string): Promise<StoredRevision[]> {
    return this.storedRows(
      this.pool,
      `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = $1 AND record_id = $2 ORDER BY hlc, rev`,
      [collection, id],
    );
  }

  async getRevision(collection: string, id: string, rev: RevId): Promise<StoredRevision | undefined> {
    const [found] = await this.storedRows(
      this.pool,
      `SELECT ${REV_COLUMNS} FROM revisions WHERE collection = $1 AND record_id = $2 AND rev = $3`,
      [collection, id, rev],
    );
    return found;
  }

  async changesSince(query: ChangesQuery): Promise<ChangeBatch> {
    return this.snapshot(async (db) => {
      const exclude = await this.findPeerLog(query.excludeSource, db);
      const revisions: Revision[] = [];
      let upTo = query.since;
      let bytes = 0;
      let scanned = 0;
      let stoppedEarly = false;
      const maxScan = query.limit * MAX_SCAN_FACTOR;
      // Read in pages of limit + 1: usually one page is enough, and a read scope that
      // skips most rows reads more pages, up to the scan bound.
      const page = Math.max(1, query.limit) + 1;
      let after: number = query.since;
      // Peer logs the rows read came from (null: written here), when the caller asks.
      const sources = query.origin ? new Set<number | null>() : undefined;
      let next: number | null | undefined;
      scan: for (;;) {
        const rows = await this.revisionRows(
          db,
          `SELECT ${REV_COLUMNS} FROM revisions WHERE seq > $1 AND NOT local AND (source IS NULL OR source <> $2)
           ${query.collectionIn === undefined ? '' : 'AND collection = ANY($4::text[])'} ORDER BY seq LIMIT $3`,
          query.collectionIn === undefined
            ? [after, exclude, page]
            : [after, exclude, page, [...query.collectionIn]],
        );
        for (const row of rows) {
          if (
            revisions.length >= query.limit ||
            (revisions.length > 0 && bytes >= query.maxBytes) ||
            scanned >= maxScan
          ) {
            stoppedEarly = true;
            next = row[16];
            break scan;
          }
          scanned++;
          sources?.add(row[16]);
          // Rows skipped by the query before this one are covered too: upTo moves past them.
          upTo = row[0] as Seq;
          after = row[0];
          if (query.collections && !query.collections(row[2])) continue;
          revisions.push(await this.toRevision(row, db));
          bytes += (row[11]?.length ?? 0) + 64;
        }
        if (rows.length < page) break;
      }
      if (!stoppedEarly) {
        // Nothing left to offer: skip past trailing local-only revisions too.
        const latest = (await latestOn(db)) as Seq;
        if (latest > upTo) upTo = latest;
      }
      const check = await this.token(db, upTo);
      const batch: ChangeBatch = { since: query.since, upTo, revisions, more: stoppedEarly, check };
      if (sources) {
        const logs: PeerLog[] = [];
        for (const id of sources) if (id !== null) logs.push(await this.peerLogOf(id, db));
        batch.origin = {
          logs,
          ...(stoppedEarly && {
            next: next === null || next === undefined ? null : await this.peerLogOf(next, db),
          }),
          bodyBytes: bytes,
        };
      }
      return batch;
    });
  }

  async latestSeq(): Promise<Seq> {
    return (await latestOn(this.pool)) as Seq;
  }

  async countChanges(since: Seq, excludeSource?: PeerLog): Promise<number> {
    const exclude = await this.findPeerLog(excludeSource);
    const { rows } = await this.pool.query<{ n: number }>(
      'SELECT count(*) AS n FROM revisions WHERE seq > $1 AND NOT local AND (source IS NULL OR source <> $2)',
      [since, exclude],
    );
    return rows[0]?.n ?? 0;
  }

  async isRetiredLog(source: PeerLog): Promise<boolean> {
    const { rows } = await this.pool.query<{ retired: boolean }>(
      'SELECT p.retired FROM peer_logs p JOIN devices d ON d.id = p.device WHERE d.device_id = $1 AND p.log = $2',
      [source.device, source.log],
    );
    return rows[0]?.retired === true;
  }

  async changeLog(): Promise<ChangeLogInfo> {
    const { rows } = await this.pool.query<{ key: string; value: string }>(
      "SELECT key, value FROM meta WHERE key IN ('log_id', 'log_created')",
    );
    const get = (key: string) => rows.find((r) => r.key === key)?.value;
    return { id: get('log_id') ?? '', createdAt: Number(get('log_created') ?? 0) };
  }

  async checkpoint(seq: Seq): Promise<string> {
    return this.token(this.pool, seq);
  }

  async issued(log: string, seq: Seq, token: string): Promise<boolean> {
    return issuedToken(this.salt, log, seq, token);
  }

  async getCursor(peer: DeviceId): Promise<PeerCursor> {
    const { rows } = await this.pool.query<{ cursor: number; cursor_log: string; cursor_check: string }>(
      'SELECT cursor, cursor_log, cursor_check FROM devices WHERE device_id = $1',
      [peer],
    );
    const row = rows[0];
    if (!row) return { ...EMPTY_CURSOR };
    return { log: row.cursor_log, seq: row.cursor as Seq, check: row.cursor_check };
  }

  async listConflicts(
    filter: { status?: ConflictRecord['status']; collection?: string } = {},
  ): Promise<ConflictRecord[]> {
    const where: string[] = [];
    const values: string[] = [];
    if (filter.status) {
      values.push(filter.status);
      where.push(`status = $${values.length}`);
    }
    if (filter.collection) {
      values.push(filter.collection);
      where.push(`collection = $${values.length}`);
    }
    const { rows } = await this.pool.query<ConflictRow>(
      `SELECT * FROM conflicts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
      values,
    );
    return rows.map((row) => ({
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

  /** Changes with every write transaction another adapter (process) commits; not with this one's. */
  async dataVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ commits: number }>('SELECT commits FROM log_head');
    return (rows[0]?.commits ?? 0) - this.ownCommits;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return metaValue(this.pool, key);
  }

  async stats(): Promise<StoreStats> {
    return this.snapshot(async (db) => {
      const count = async (sql: string) => (await db.query<{ n: number }>(sql)).rows[0]?.n ?? 0;
      return {
        records: await count(
          `SELECT count(*) AS n FROM revisions v LEFT JOIN resolutions x ON x.collection = v.collection AND x.id = v.record_id
           WHERE v.head AND (x.id IS NULL OR v.seq = x.rev_seq) AND NOT coalesce(x.deleted, v.deleted)`,
        ),
        revisions: await count('SELECT count(*) AS n FROM revisions'),
        latestSeq: (await latestOn(db)) as Seq,
        openConflicts: await count("SELECT count(*) AS n FROM conflicts WHERE status = 'open'"),
      };
    });
  }
}

/** One record of a batch being applied: its heads as the batch goes, and the revisions it is known to have. */
interface BatchRecord {
  heads: StoredRevision[];
  revs: Set<string>;
}

function recordKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

/** The revisions a batch adds, column by column, for one INSERT ... SELECT FROM unnest(...). */
class NewRevisionRows {
  private readonly columns: unknown[][] = Array.from({ length: 17 }, () => []);
  private readonly index = new Map<number, number>();

  add(
    seq: number,
    r: Revision,
    stored: {
      vv: string;
      author: number;
      body: string | null;
      head: boolean;
      local: boolean;
      source: number | null;
    },
  ): void {
    this.index.set(seq, this.columns[0]?.length ?? 0);
    const values = [
      seq,
      r.rev,
      r.collection,
      r.id,
      r.parents.length === 0 ? '' : r.parents.join(','),
      stored.vv,
      r.hlc,
      stored.author,
      r.hub,
      r.deleted,
      r.bodyHash,
      stored.body,
      r.fields === undefined ? null : JSON.stringify(r.fields),
      r.pruned === true,
      stored.head,
      stored.local,
      stored.source,
    ];
    values.forEach((value, i) => this.columns[i]?.push(value));
  }

  /** A revision of this batch is superseded by a later one of the same batch. */
  unhead(seq: number): void {
    const at = this.index.get(seq);
    if (at !== undefined) (this.columns[14] as unknown[])[at] = false;
  }

  async insert(db: Queryable): Promise<void> {
    if (this.index.size === 0) return;
    await db.query(
      `INSERT INTO revisions (${REV_COLUMNS})
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::integer[], $9::boolean[], $10::boolean[], $11::text[], $12::text[], $13::text[], $14::boolean[],
         $15::boolean[], $16::boolean[], $17::integer[])`,
      this.columns,
    );
  }
}

async function latestOn(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ latest: number }>('SELECT latest FROM log_head');
  return rows[0]?.latest ?? 0;
}

async function metaValue(db: Queryable, key: string): Promise<string | undefined> {
  const { rows } = await db.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
  return rows[0]?.value;
}

async function setMetaOn(db: Queryable, key: string, value: string): Promise<void> {
  await db.query(
    'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    [key, value],
  );
}

async function recordRow(db: Queryable, collection: string, id: string): Promise<RecordRow | undefined> {
  const { rows } = await db.query<RecordRow>(`${RECORD_SELECT} AND v.collection = $1 AND v.record_id = $2`, [
    collection,
    id,
  ]);
  return rows[0];
}

function toRecordView(row: RecordRow): RecordView {
  return {
    collection: row.collection,
    id: row.id,
    rev: row.rev as RevId,
    deleted: row.deleted,
    body: row.deleted || row.body === null ? null : (JSON.parse(row.body) as JsonObject),
    hlc: row.hlc,
    conflict: CONFLICT_NAME[row.conflict] ?? 'none',
    seq: row.seq as Seq,
  };
}

/** node-postgres's word that the connection could not be made or was lost. */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = 'code' in err ? String(err.code) : '';
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT'].includes(code) ||
    /Connection terminated|connection timeout/i.test(err.message)
  );
}
