import type pg from 'pg';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import { StoreClosedError } from '../store/errors.js';
import { inTransaction, type PostgresConnection, type PostgresTarget } from '../store/postgres-connection.js';
import { openMigrated } from '../store/postgres-migrations.js';
import type { DeviceId } from '../store/types.js';
import { POSTGRES_REGISTRY_MIGRATIONS } from './postgres-registry-migrations.js';
import type {
  AdminSessionRecord,
  DevicePatch,
  DeviceRecord,
  GroupRecord,
  ListedPairingCode,
  NewDevice,
  PairingAttemptOutcome,
  PairingCodeRecord,
  RegistryBackend,
  SettingWrite,
  StoredEvent,
  StoredEventQuery,
} from './registry-backend.js';
import { type CodeRow, type DeviceRow, toCode, toDevice, toListed } from './registry-rows.js';

export interface PostgresRegistryOptions {
  /** The database (see PostgresStoreOptions.connection); the password never appears in a message or log. */
  connection: PostgresConnection;
  /** The PostgreSQL schema of the registry's tables (created if missing). Default `trosyn_hub`. */
  schema?: string;
  /** Connections the registry opens at most. Default 4. */
  maxConnections?: number;
  /** The hub has run on this database: a missing schema fails with STORE_MISSING. Default false. */
  mustExist?: boolean;
  /** Only for the schema migrations' timestamps. */
  clock?: Clock;
  logger?: Logger;
}

type Queryable = Pick<pg.ClientBase, 'query'>;

/** serialization_failure and deadlock_detected: the transaction lost to a concurrent one and may run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 20;
/**
 * A commit that does not wait for the WAL flush (SettingWrite.durable false, events):
 * a crashed server loses at most the last few, never a half transaction.
 */
const RELAXED_COMMIT = 'SET LOCAL synchronous_commit = off';

/**
 * The hub registry on PostgreSQL, for several hub processes sharing one database.
 *
 * Concurrency: every write runs as a SERIALIZABLE transaction, retried (up to 20
 * times) when PostgreSQL reports that it lost to a concurrent one. Its rules read
 * and then write (a group is deleted only while no device is in it; a code is spent
 * or burned only while still active; a lookup is drawn again while taken), and
 * SERIALIZABLE makes each such check hold at its commit without naming every row to
 * lock. Event ids come from a locked counter row, so they commit in order. Reads run
 * as single statements.
 */
export class PostgresRegistryBackend implements RegistryBackend {
  private readonly options: PostgresRegistryOptions;
  private readonly logger: Logger;
  private db: PostgresTarget | undefined;

  constructor(options: PostgresRegistryOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
  }

  /** The database as `postgres://user@host:port/database`, without the password. */
  get label(): string {
    return this.db?.label ?? 'PostgreSQL';
  }

  get schema(): string {
    return this.options.schema ?? 'trosyn_hub';
  }

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    const target = await openMigrated(this.options.connection, {
      schema: this.schema,
      maxConnections: this.options.maxConnections ?? 4,
      logger: this.logger,
      steps: POSTGRES_REGISTRY_MIGRATIONS,
      now: (this.options.clock ?? systemClock).now(),
      what: 'registry',
      ...(this.options.mustExist && { mustExist: true }),
    });
    if (this.db) {
      // Another start() finished first.
      await target.pool.end();
      return;
    }
    this.db = target;
  }

  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await db?.pool.end();
  }

  private get pool(): pg.Pool {
    if (!this.db) throw new StoreClosedError();
    return this.db.pool;
  }

  /** Runs `fn` in a SERIALIZABLE transaction, again from the start while it loses to a concurrent one. */
  private async serializable<T>(fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.pool;
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(pool, 'BEGIN ISOLATION LEVEL SERIALIZABLE', fn);
      } catch (err) {
        const code = err instanceof Error && 'code' in err ? String(err.code) : '';
        if (!RETRYABLE.has(code) || attempt >= MAX_ATTEMPTS) throw err;
      }
      // A little random wait, so two that collided do not collide again at once.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }

  // --- devices ---------------------------------------------------------------------

  async getDevice(deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    return device(this.pool, deviceId);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const { rows } = await this.pool.query<DeviceRow>('SELECT * FROM devices ORDER BY paired_at, device_id');
    return rows.map(toDevice);
  }

  async putDevice(record: NewDevice, now: number): Promise<DeviceRecord> {
    return this.serializable((db) => upsertDevice(db, record, now));
  }

  async updateDevice(deviceId: DeviceId, patch: DevicePatch): Promise<DeviceRecord | undefined> {
    const sets: string[] = [];
    const values: unknown[] = [deviceId];
    const column = { name: 'name', group: 'grp', state: 'state', revokedAt: 'revoked_at' } as const;
    for (const key of Object.keys(column) as (keyof typeof column)[]) {
      if (patch[key] === undefined) continue;
      values.push(patch[key]);
      sets.push(`${column[key]} = $${values.length}`);
    }
    return this.serializable(async (db) => {
      if (sets.length > 0)
        await db.query(`UPDATE devices SET ${sets.join(', ')} WHERE device_id = $1`, values);
      return device(db, deviceId);
    });
  }

  async touchDevice(
    deviceId: DeviceId,
    seen: { at: number; address: string; appVersion?: string },
  ): Promise<void> {
    await this.serializable((db) =>
      db.query(
        'UPDATE devices SET last_seen = $1, last_address = $2, app_version = coalesce($3, app_version) WHERE device_id = $4',
        [seen.at, seen.address, seen.appVersion ?? null, deviceId],
      ),
    );
  }

  // --- groups ------------------------------------------------------------------------

  async listGroups(): Promise<GroupRecord[]> {
    const { rows } = await this.pool.query<{
      name: string;
      description: string;
      read: string;
      write: string;
    }>('SELECT * FROM groups ORDER BY name');
    return rows.map(toGroup);
  }

  async putGroup(group: GroupRecord): Promise<GroupRecord> {
    const { rows } = await this.serializable((db) =>
      db.query<{ name: string; description: string; read: string; write: string }>(
        `INSERT INTO groups (name, description, read, write) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, read = excluded.read, write = excluded.write
         RETURNING *`,
        [group.name, group.description, JSON.stringify(group.read), JSON.stringify(group.write)],
      ),
    );
    return toGroup(rows[0] as { name: string; description: string; read: string; write: string });
  }

  async deleteGroup(
    name: string,
    now: number,
  ): Promise<{ deleted: boolean; devices: number; activeCodes: number }> {
    return this.serializable(async (db) => {
      const devices = await count(
        db,
        "SELECT count(*) AS n FROM devices WHERE grp = $1 AND state <> 'revoked'",
        [name],
      );
      const activeCodes = await count(
        db,
        "SELECT count(*) AS n FROM pairing_codes WHERE grp = $1 AND state = 'active' AND expires_at > $2",
        [name, now],
      );
      if (devices > 0 || activeCodes > 0) return { deleted: false, devices, activeCodes };
      const deleted = (await db.query('DELETE FROM groups WHERE name = $1', [name])).rowCount === 1;
      return { deleted, devices, activeCodes };
    });
  }

  // --- pairing codes -----------------------------------------------------------------

  async insertCode(
    code: { group: string; createdAt: number; expiresAt: number; lookupLength: number },
    draw: () => string,
  ): Promise<string> {
    return this.serializable(async (db) => {
      // Expired codes first, so their lookups are free again and their secrets go.
      await expireStale(db, code.createdAt);
      let text: string;
      // One pair.start names one code: a lookup shared by two active codes would let
      // one code's wrong guesses burn the other and leave the older unreachable.
      for (;;) {
        text = draw();
        const taken = await db.query("SELECT 1 FROM pairing_codes WHERE lookup = $1 AND state = 'active'", [
          text.slice(0, code.lookupLength),
        ]);
        if (taken.rowCount === 0) break;
      }
      await db.query(
        "INSERT INTO pairing_codes (lookup, secret, grp, created_at, expires_at, state) VALUES ($1, $2, $3, $4, $5, 'active')",
        [text.slice(0, code.lookupLength), text, code.group, code.createdAt, code.expiresAt],
      );
      return text;
    });
  }

  async findActiveCode(lookup: string, now: number): Promise<PairingCodeRecord | undefined> {
    await this.expireCodes(now);
    const { rows } = await this.pool.query<CodeRow>(
      "SELECT * FROM pairing_codes WHERE lookup = $1 AND state = 'active'",
      [lookup],
    );
    return rows[0] ? toCode(rows[0], now) : undefined;
  }

  async settleCode(
    codeId: number,
    attempt: { tagMatched: boolean; deviceId: DeviceId; now: number; maxAttempts: number },
    register: (group: string, existing: DeviceRecord | undefined) => NewDevice,
  ): Promise<PairingAttemptOutcome<DeviceRecord>> {
    const { now } = attempt;
    return this.serializable(async (db): Promise<PairingAttemptOutcome<DeviceRecord>> => {
      const { rows } = await db.query<CodeRow>('SELECT * FROM pairing_codes WHERE id = $1', [codeId]);
      const row = rows[0];
      if (!row || row.state !== 'active' || row.expires_at <= now) return { outcome: 'code-invalid' };
      if (attempt.tagMatched) {
        const registered = register(row.grp, await device(db, attempt.deviceId));
        await db.query(
          "UPDATE pairing_codes SET state = 'used', secret = NULL, used_by = $1, used_at = $2 WHERE id = $3",
          [attempt.deviceId, now, codeId],
        );
        return { outcome: 'paired', result: await upsertDevice(db, registered, now) };
      }
      const burned = row.failed_attempts + 1 >= attempt.maxAttempts;
      await db.query(
        `UPDATE pairing_codes SET failed_attempts = failed_attempts + 1,
           state = CASE WHEN $1 THEN 'burned' ELSE state END,
           secret = CASE WHEN $1 THEN NULL ELSE secret END
         WHERE id = $2`,
        [burned, codeId],
      );
      return { outcome: 'wrong-code', codeState: burned ? 'burned' : 'active' };
    });
  }

  async expireCodes(now: number): Promise<number> {
    return this.serializable((db) => expireStale(db, now));
  }

  async listCodes(now: number, limit: number): Promise<ListedPairingCode[]> {
    await this.expireCodes(now);
    const { rows } = await this.pool.query<CodeRow>('SELECT * FROM pairing_codes ORDER BY id DESC LIMIT $1', [
      limit,
    ]);
    return rows.map((row) => toListed(row, now));
  }

  async activeCodes(now: number): Promise<ListedPairingCode[]> {
    await this.expireCodes(now);
    const { rows } = await this.pool.query<CodeRow>(
      "SELECT * FROM pairing_codes WHERE state = 'active' ORDER BY id DESC",
    );
    return rows.map((row) => toListed(row, now));
  }

  // --- settings ----------------------------------------------------------------------

  async getSetting(key: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [
      key,
    ]);
    return rows[0]?.value;
  }

  async setSetting(key: string, value: string, options: SettingWrite = {}): Promise<void> {
    await this.serializable(async (db) => {
      if (!(options.durable ?? true)) await db.query(RELAXED_COMMIT);
      await db.query(
        'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      );
    });
  }

  // --- dashboard sign-in ---------------------------------------------------------------

  async putSignInLink(link: { hash: string; createdAt: number; expiresAt: number }): Promise<void> {
    await this.serializable(async (db) => {
      await dropExpiredSignIns(db, link.createdAt);
      await db.query(
        'INSERT INTO admin_sign_in_links (secret_sha256, created_at, expires_at) VALUES ($1, $2, $3)',
        [link.hash, link.createdAt, link.expiresAt],
      );
    });
  }

  async takeSignInLink(hash: string, now: number): Promise<boolean> {
    // Of two spending the same link at once, one deletes the row; the other, run
    // again after losing, finds it gone.
    const { rowCount } = await this.serializable((db) =>
      db.query('DELETE FROM admin_sign_in_links WHERE secret_sha256 = $1 AND expires_at > $2', [hash, now]),
    );
    return rowCount === 1;
  }

  async putAdminSession(session: AdminSessionRecord): Promise<void> {
    await this.serializable(async (db) => {
      await dropExpiredSignIns(db, session.createdAt);
      await db.query(
        'INSERT INTO admin_sessions (secret_sha256, created_at, expires_at, via) VALUES ($1, $2, $3, $4)',
        [session.hash, session.createdAt, session.expiresAt, session.via],
      );
    });
  }

  async getAdminSession(hash: string, now: number): Promise<AdminSessionRecord | undefined> {
    const { rows } = await this.pool.query<{
      secret_sha256: string;
      created_at: number;
      expires_at: number;
      via: AdminSessionRecord['via'];
    }>('SELECT * FROM admin_sessions WHERE secret_sha256 = $1 AND expires_at > $2', [hash, now]);
    const row = rows[0];
    return (
      row && { hash: row.secret_sha256, createdAt: row.created_at, expiresAt: row.expires_at, via: row.via }
    );
  }

  async deleteAdminSession(hash: string): Promise<void> {
    await this.serializable((db) => db.query('DELETE FROM admin_sessions WHERE secret_sha256 = $1', [hash]));
  }

  // --- hub events ---------------------------------------------------------------------

  async appendEvents(events: readonly Omit<StoredEvent, 'id'>[]): Promise<number[]> {
    if (events.length === 0) {
      if (!this.db) throw new StoreClosedError();
      return [];
    }
    return this.serializable(async (db) => {
      await db.query(RELAXED_COMMIT);
      const { rows } = await db.query<{ latest: number }>(
        'UPDATE event_head SET latest = latest + $1 RETURNING latest',
        [events.length],
      );
      const first = (rows[0]?.latest ?? 0) - events.length + 1;
      const ids = events.map((_, i) => first + i);
      await db.query(
        `INSERT INTO hub_events (id, at, type, device_id, data)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[])`,
        [
          ids,
          events.map((e) => e.at),
          events.map((e) => e.type),
          events.map((e) => e.deviceId),
          events.map((e) => e.data),
        ],
      );
      return ids;
    });
  }

  async listEvents(query: StoredEventQuery): Promise<StoredEvent[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      values.push(value);
      where.push(clause.replace('?', `$${values.length}`));
    };
    if (query.deviceId !== undefined) add('device_id = ?', query.deviceId);
    if (query.types !== undefined && query.types.length > 0) add('type = ANY(?::text[])', query.types);
    if (query.since !== undefined) add('at >= ?', query.since);
    if (query.until !== undefined) add('at < ?', query.until);
    if (query.afterId !== undefined) add('id > ?', query.afterId);
    if (query.beforeId !== undefined) add('id < ?', query.beforeId);
    values.push(query.limit);
    const { rows } = await this.pool.query<{
      id: number;
      at: number;
      type: string;
      device_id: string | null;
      data: string;
    }>(
      `SELECT id, at, type, device_id, data FROM hub_events
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${values.length}`,
      values,
    );
    return rows.map((r) => ({ id: r.id, at: r.at, type: r.type, deviceId: r.device_id, data: r.data }));
  }

  async eventBounds(): Promise<{ oldest: number | undefined; latest: number }> {
    const { rows } = await this.pool.query<{ oldest: number | null; latest: number }>(
      'SELECT (SELECT min(id) FROM hub_events) AS oldest, (SELECT latest FROM event_head) AS latest',
    );
    return { oldest: rows[0]?.oldest ?? undefined, latest: rows[0]?.latest ?? 0 };
  }

  async pruneEvents(before: number, limit: number): Promise<number> {
    const { rowCount } = await this.serializable((db) =>
      db.query(
        'DELETE FROM hub_events WHERE id IN (SELECT id FROM hub_events WHERE at < $1 ORDER BY id LIMIT $2)',
        [before, limit],
      ),
    );
    return rowCount ?? 0;
  }
}

async function device(db: Queryable, deviceId: DeviceId): Promise<DeviceRecord | undefined> {
  const { rows } = await db.query<DeviceRow>('SELECT * FROM devices WHERE device_id = $1', [deviceId]);
  return rows[0] ? toDevice(rows[0]) : undefined;
}

async function upsertDevice(db: Queryable, record: NewDevice, now: number): Promise<DeviceRecord> {
  const { rows } = await db.query<DeviceRow>(
    `INSERT INTO devices (device_id, name, grp, state, first_seen, last_seen, last_address, app_version, paired_at)
     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $5)
     ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, grp = excluded.grp, paired_at = excluded.paired_at
     RETURNING *`,
    [
      record.deviceId,
      record.name,
      record.group,
      record.state,
      now,
      record.address ?? null,
      record.appVersion ?? null,
    ],
  );
  return toDevice(rows[0] as DeviceRow);
}

async function count(db: Queryable, sql: string, values: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(sql, values);
  return rows[0]?.n ?? 0;
}

async function expireStale(db: Queryable, now: number): Promise<number> {
  const { rowCount } = await db.query(
    "UPDATE pairing_codes SET state = 'expired', secret = NULL WHERE state = 'active' AND expires_at <= $1",
    [now],
  );
  return rowCount ?? 0;
}

async function dropExpiredSignIns(db: Queryable, now: number): Promise<void> {
  await db.query('DELETE FROM admin_sign_in_links WHERE expires_at <= $1', [now]);
  await db.query('DELETE FROM admin_sessions WHERE expires_at <= $1', [now]);
}

function toGroup(g: { name: string; description: string; read: string; write: string }): GroupRecord {
  return {
    name: g.name,
    description: g.description,
    read: JSON.parse(g.read) as string[],
    write: JSON.parse(g.write) as string[],
  };
}
