import { existsSync, mkdirSync } from 'node:fs';
import { ownerOnly } from '../store/owner-only.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, systemClock } from '../lifecycle.js';
import { StoreClosedError } from '../store/errors.js';
import { runMigrations } from '../store/migrations.js';
import type { DeviceId } from '../store/types.js';
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
import { REGISTRY_MIGRATIONS } from './registry-migrations.js';

export { REGISTRY_MIGRATIONS } from './registry-migrations.js';

export interface SqliteRegistryOptions {
  /** Path of the registry database, `hub.db` in the hub's data directory (created owner-only). */
  path: string;
  /** Only for the schema migrations' timestamps. */
  clock?: Clock;
}

/** The registry in SQLite (`hub.db`, WAL), shared safely with the CLI's processes. */
export class SqliteRegistryBackend implements RegistryBackend {
  private readonly options: SqliteRegistryOptions;
  private db: Database.Database | undefined;

  constructor(options: SqliteRegistryOptions) {
    this.options = options;
  }

  get path(): string {
    return this.options.path;
  }

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    const dir = dirname(this.options.path);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Database(this.options.path);
    try {
      // Only when needed: a read-only disk refuses even a chmod that changes nothing.
      ownerOnly(this.options.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      // Deleted and overwritten content (a spent code's secret) is zeroed on disk, not
      // just unlinked from the B-tree where a file reader could still find it.
      db.pragma('secure_delete = ON');
      runMigrations(db, REGISTRY_MIGRATIONS, (this.options.clock ?? systemClock).now());
    } catch (err) {
      db.close();
      throw err;
    }
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

  // --- devices ---------------------------------------------------------------------

  async getDevice(deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    return this.device(deviceId);
  }

  private device(deviceId: DeviceId): DeviceRecord | undefined {
    const row = this.sql
      .prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_id = ?')
      .get(deviceId);
    return row ? toDevice(row) : undefined;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return this.sql
      .prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY paired_at, device_id')
      .all()
      .map(toDevice);
  }

  async putDevice(device: NewDevice, now: number): Promise<DeviceRecord> {
    return this.upsertDevice(device, now);
  }

  private upsertDevice(device: NewDevice, now: number): DeviceRecord {
    this.sql
      .prepare(
        `INSERT INTO devices (device_id, name, grp, state, first_seen, last_seen, last_address, app_version, paired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, grp = excluded.grp, paired_at = excluded.paired_at`,
      )
      .run(
        device.deviceId,
        device.name,
        device.group,
        device.state,
        now,
        now,
        device.address ?? null,
        device.appVersion ?? null,
        now,
      );
    return this.device(device.deviceId) as DeviceRecord;
  }

  async updateDevice(deviceId: DeviceId, patch: DevicePatch): Promise<DeviceRecord | undefined> {
    const sets: string[] = [];
    const values: unknown[] = [];
    const column = { name: 'name', group: 'grp', state: 'state', revokedAt: 'revoked_at' } as const;
    for (const key of Object.keys(column) as (keyof typeof column)[]) {
      if (patch[key] === undefined) continue;
      sets.push(`${column[key]} = ?`);
      values.push(patch[key]);
    }
    if (sets.length > 0)
      this.sql.prepare(`UPDATE devices SET ${sets.join(', ')} WHERE device_id = ?`).run(...values, deviceId);
    return this.device(deviceId);
  }

  async touchDevice(
    deviceId: DeviceId,
    seen: { at: number; address: string; appVersion?: string },
  ): Promise<void> {
    this.sql
      .prepare(
        'UPDATE devices SET last_seen = ?, last_address = ?, app_version = coalesce(?, app_version) WHERE device_id = ?',
      )
      .run(seen.at, seen.address, seen.appVersion ?? null, deviceId);
  }

  // --- groups ------------------------------------------------------------------------

  async listGroups(): Promise<GroupRecord[]> {
    return this.sql
      .prepare<[], { name: string; description: string; read: string; write: string }>(
        'SELECT * FROM groups ORDER BY name',
      )
      .all()
      .map((g) => ({
        name: g.name,
        description: g.description,
        read: JSON.parse(g.read) as string[],
        write: JSON.parse(g.write) as string[],
      }));
  }

  async putGroup(group: GroupRecord): Promise<GroupRecord> {
    this.sql
      .prepare(
        `INSERT INTO groups (name, description, read, write) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, read = excluded.read, write = excluded.write`,
      )
      .run(group.name, group.description, JSON.stringify(group.read), JSON.stringify(group.write));
    return (await this.listGroups()).find((g) => g.name === group.name) as GroupRecord;
  }

  async deleteGroup(
    name: string,
    now: number,
  ): Promise<{ deleted: boolean; devices: number; activeCodes: number }> {
    return this.sql
      .transaction(() => {
        const devices = this.sql
          .prepare<[string], { n: number }>(
            "SELECT count(*) AS n FROM devices WHERE grp = ? AND state != 'revoked'",
          )
          .get(name)?.n as number;
        const activeCodes = this.sql
          .prepare<[string, number], { n: number }>(
            "SELECT count(*) AS n FROM pairing_codes WHERE grp = ? AND state = 'active' AND expires_at > ?",
          )
          .get(name, now)?.n as number;
        if (devices > 0 || activeCodes > 0) return { deleted: false, devices, activeCodes };
        const deleted = this.sql.prepare('DELETE FROM groups WHERE name = ?').run(name).changes === 1;
        return { deleted, devices, activeCodes };
      })
      .immediate();
  }

  // --- pairing codes -----------------------------------------------------------------

  async insertCode(
    code: { group: string; createdAt: number; expiresAt: number; lookupLength: number },
    draw: () => string,
  ): Promise<string> {
    const taken = this.sql.prepare<[string], { id: number }>(
      "SELECT id FROM pairing_codes WHERE lookup = ? AND state = 'active'",
    );
    const insert = this.sql.prepare(
      "INSERT INTO pairing_codes (lookup, secret, grp, created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, 'active')",
    );
    const { text, expired } = this.sql
      .transaction(() => {
        // Expired codes first, so their lookups are free again and their secrets go.
        const expired = this.expireStale(code.createdAt);
        let text: string;
        // One pair.start names one code: a lookup shared by two active codes would let
        // one code's wrong guesses burn the other and leave the older unreachable.
        do text = draw();
        while (taken.get(text.slice(0, code.lookupLength)));
        insert.run(text.slice(0, code.lookupLength), text, code.group, code.createdAt, code.expiresAt);
        return { text, expired };
      })
      .immediate();
    if (expired > 0) this.flushErased();
    return text;
  }

  async findActiveCode(lookup: string, now: number): Promise<PairingCodeRecord | undefined> {
    await this.expireCodes(now);
    const row = this.sql
      .prepare<[string], CodeRow>("SELECT * FROM pairing_codes WHERE lookup = ? AND state = 'active'")
      .get(lookup);
    return row ? toCode(row, now) : undefined;
  }

  async settleCode(
    codeId: number,
    attempt: { tagMatched: boolean; deviceId: DeviceId; now: number; maxAttempts: number },
    register: (group: string, existing: DeviceRecord | undefined) => NewDevice,
  ): Promise<PairingAttemptOutcome<DeviceRecord>> {
    const { now } = attempt;
    const outcome = this.sql
      .transaction((): PairingAttemptOutcome<DeviceRecord> => {
        const row = this.sql
          .prepare<[number], CodeRow>('SELECT * FROM pairing_codes WHERE id = ?')
          .get(codeId);
        if (!row || row.state !== 'active' || row.expires_at <= now) return { outcome: 'code-invalid' };
        if (attempt.tagMatched) {
          const device = register(row.grp, this.device(attempt.deviceId));
          this.sql
            .prepare(
              "UPDATE pairing_codes SET state = 'used', secret = NULL, used_by = ?, used_at = ? WHERE id = ?",
            )
            .run(attempt.deviceId, now, codeId);
          return { outcome: 'paired', result: this.upsertDevice(device, now) };
        }
        const burned = row.failed_attempts + 1 >= attempt.maxAttempts;
        this.sql
          .prepare(
            `UPDATE pairing_codes SET failed_attempts = failed_attempts + 1,
               state = CASE WHEN ? THEN 'burned' ELSE state END,
               secret = CASE WHEN ? THEN NULL ELSE secret END
             WHERE id = ?`,
          )
          .run(burned ? 1 : 0, burned ? 1 : 0, codeId);
        return { outcome: 'wrong-code', codeState: burned ? 'burned' : 'active' };
      })
      .immediate();
    if (outcome.outcome === 'paired' || (outcome.outcome === 'wrong-code' && outcome.codeState === 'burned'))
      this.flushErased();
    return outcome;
  }

  async expireCodes(now: number): Promise<number> {
    const changes = this.expireStale(now);
    if (changes > 0) this.flushErased();
    return changes;
  }

  async listCodes(now: number, limit: number): Promise<ListedPairingCode[]> {
    await this.expireCodes(now);
    return this.sql
      .prepare<[number], CodeRow>('SELECT * FROM pairing_codes ORDER BY id DESC LIMIT ?')
      .all(limit)
      .map((row) => toListed(row, now));
  }

  async activeCodes(now: number): Promise<ListedPairingCode[]> {
    await this.expireCodes(now);
    return this.sql
      .prepare<[], CodeRow>("SELECT * FROM pairing_codes WHERE state = 'active' ORDER BY id DESC")
      .all()
      .map((row) => toListed(row, now));
  }

  private expireStale(now: number): number {
    return this.sql
      .prepare(
        "UPDATE pairing_codes SET state = 'expired', secret = NULL WHERE state = 'active' AND expires_at <= ?",
      )
      .run(now).changes;
  }

  /**
   * Moves erased secrets out of the write-ahead log too: until a checkpoint, the
   * WAL still holds the page images written while the code was active. Best effort:
   * a reader in another process (the CLI) can hold the log, and the next
   * checkpoint then finishes the job.
   */
  private flushErased(): void {
    this.sql.pragma('wal_checkpoint(TRUNCATE)');
  }

  // --- settings ----------------------------------------------------------------------

  async getSetting(key: string): Promise<string | undefined> {
    return this.sql.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key)
      ?.value;
  }

  async setSetting(key: string, value: string, options: SettingWrite = {}): Promise<void> {
    const write = () =>
      this.sql
        .prepare(
          'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);
    if (options.durable ?? true) write();
    else this.relaxed(write);
  }

  // --- dashboard sign-in ---------------------------------------------------------------

  async putSignInLink(link: { hash: string; createdAt: number; expiresAt: number }): Promise<void> {
    this.sql
      .transaction(() => {
        this.dropExpiredSignIns(link.createdAt);
        this.sql
          .prepare('INSERT INTO admin_sign_in_links (secret_sha256, created_at, expires_at) VALUES (?, ?, ?)')
          .run(link.hash, link.createdAt, link.expiresAt);
      })
      .immediate();
  }

  async takeSignInLink(hash: string, now: number): Promise<boolean> {
    // One statement: of two processes spending the same link, one deletes the row.
    return (
      this.sql
        .prepare('DELETE FROM admin_sign_in_links WHERE secret_sha256 = ? AND expires_at > ?')
        .run(hash, now).changes === 1
    );
  }

  async putAdminSession(session: AdminSessionRecord): Promise<void> {
    this.sql
      .transaction(() => {
        this.dropExpiredSignIns(session.createdAt);
        this.sql
          .prepare(
            'INSERT INTO admin_sessions (secret_sha256, created_at, expires_at, via) VALUES (?, ?, ?, ?)',
          )
          .run(session.hash, session.createdAt, session.expiresAt, session.via);
      })
      .immediate();
  }

  async getAdminSession(hash: string, now: number): Promise<AdminSessionRecord | undefined> {
    const row = this.sql
      .prepare<
        [string, number],
        { secret_sha256: string; created_at: number; expires_at: number; via: AdminSessionRecord['via'] }
      >('SELECT * FROM admin_sessions WHERE secret_sha256 = ? AND expires_at > ?')
      .get(hash, now);
    return (
      row && { hash: row.secret_sha256, createdAt: row.created_at, expiresAt: row.expires_at, via: row.via }
    );
  }

  async deleteAdminSession(hash: string): Promise<void> {
    this.sql.prepare('DELETE FROM admin_sessions WHERE secret_sha256 = ?').run(hash);
  }

  // --- hub events ---------------------------------------------------------------------

  async appendEvents(events: readonly Omit<StoredEvent, 'id'>[]): Promise<number[]> {
    const insert = this.sql.prepare('INSERT INTO hub_events (at, type, device_id, data) VALUES (?, ?, ?, ?)');
    return this.relaxed(() =>
      events.map((e) => Number(insert.run(e.at, e.type, e.deviceId, e.data).lastInsertRowid)),
    );
  }

  /**
   * Runs `fn` in a transaction whose commit does not wait for the disk (WAL with
   * synchronous NORMAL): it is in the WAL, safe from a killed process, and made
   * durable by the next commit that waits (every other write) or checkpoint.
   */
  private relaxed<T>(fn: () => T): T {
    const db = this.sql;
    db.pragma('synchronous = NORMAL');
    try {
      return db.transaction(fn)();
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  async listEvents(query: StoredEventQuery): Promise<StoredEvent[]> {
    const where: string[] = [];
    const values: (string | number)[] = [];
    if (query.deviceId !== undefined) {
      where.push('device_id = ?');
      values.push(query.deviceId);
    }
    if (query.types !== undefined && query.types.length > 0) {
      where.push(`type IN (${query.types.map(() => '?').join(', ')})`);
      values.push(...query.types);
    }
    for (const [value, clause] of [
      [query.since, 'at >= ?'],
      [query.until, 'at < ?'],
      [query.afterId, 'id > ?'],
      [query.beforeId, 'id < ?'],
    ] as const) {
      if (value === undefined) continue;
      where.push(clause);
      values.push(value);
    }
    const sql = `SELECT id, at, type, device_id, data FROM hub_events
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`;
    return this.sql
      .prepare<
        (string | number)[],
        { id: number; at: number; type: string; device_id: string | null; data: string }
      >(sql)
      .all(...values, query.limit)
      .map((r) => ({ id: r.id, at: r.at, type: r.type, deviceId: r.device_id, data: r.data }));
  }

  async eventBounds(): Promise<{ oldest: number | undefined; latest: number }> {
    const oldest = this.sql
      .prepare<[], { id: number }>('SELECT id FROM hub_events ORDER BY id LIMIT 1')
      .get()?.id;
    // AUTOINCREMENT keeps the highest id ever given here, even once its row is gone.
    const latest =
      this.sql.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'hub_events'").get()
        ?.seq ?? 0;
    return { oldest, latest };
  }

  async pruneEvents(before: number, limit: number): Promise<number> {
    return this.sql
      .prepare(
        'DELETE FROM hub_events WHERE id IN (SELECT id FROM hub_events WHERE at < ? ORDER BY id LIMIT ?)',
      )
      .run(before, limit).changes;
  }

  private dropExpiredSignIns(now: number): void {
    this.sql.prepare('DELETE FROM admin_sign_in_links WHERE expires_at <= ?').run(now);
    this.sql.prepare('DELETE FROM admin_sessions WHERE expires_at <= ?').run(now);
  }
}
