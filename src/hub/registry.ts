import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TrosynError } from '../errors.js';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import { StoreClosedError } from '../store/errors.js';
import { type Migration, runMigrations } from '../store/migrations.js';
import type { DeviceId } from '../store/types.js';
import type { AuthDecision, Authenticator, PeerCredentials } from '../transport/authenticator.js';
import {
  type ListedPairingCode,
  type PairingAttemptOutcome,
  type PairingCodeRecord,
  PAIRING_CODES_MIGRATION,
  PairingCodes,
} from './pairing-codes.js';
import { assertScopePattern } from './scopes.js';

export type { ListedPairingCode, PairingAttemptOutcome, PairingCodeRecord } from './pairing-codes.js';

/** A device the hub knows of. */
export interface DeviceRecord {
  deviceId: DeviceId;
  name: string;
  /** Device group (department); decides the device's read and write scopes. */
  group: string;
  /** pending: paired, waiting for an admin; approved: may sync; revoked: never again. */
  state: 'pending' | 'approved' | 'revoked';
  firstSeen: number;
  lastSeen: number | null;
  lastAddress: string | null;
  appVersion: string | null;
  pairedAt: number;
  revokedAt: number | null;
}

/** Which collections a group's devices may read and write; `*` matches every collection. */
export interface GroupRecord {
  name: string;
  description: string;
  read: string[];
  write: string[];
}

export interface DeviceRegistryOptions {
  /** Path of the registry database (created owner-only). */
  path: string;
  /** Paired devices wait for an admin's approval before they sync. Default false. */
  requireApproval?: boolean;
  /** Wrong guesses after which a pairing code is burned. Default 3. */
  maxCodeAttempts?: number;
  /** Source of pairing codes' characters (an index below `max`). Default crypto.randomInt; tests force collisions with it. */
  randomInt?: (max: number) => number;
  clock?: Clock;
  logger?: Logger;
}

/** Unknown device, wrong state, or a bad group: a named error with a stable code. */
export class RegistryError extends TrosynError {}

/** The schema steps of hub.db. */
export const REGISTRY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, groups, pairing codes, settings',
    sql: `
      CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        grp TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'revoked')),
        first_seen INTEGER NOT NULL,
        last_seen INTEGER,
        last_address TEXT,
        app_version TEXT,
        paired_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) WITHOUT ROWID;

      CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        read TEXT NOT NULL,
        write TEXT NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO groups (name, description, read, write) VALUES ('default', 'Devices not placed in a group', '["*"]', '["*"]');

      CREATE TABLE pairing_codes (
        id INTEGER PRIMARY KEY,
        lookup TEXT NOT NULL,
        secret TEXT NOT NULL,
        grp TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('active', 'used', 'burned')),
        used_by TEXT,
        used_at INTEGER
      );
      CREATE INDEX pairing_codes_lookup ON pairing_codes(lookup, state);

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  PAIRING_CODES_MIGRATION,
];

interface DeviceRow {
  device_id: string;
  name: string;
  grp: string;
  state: DeviceRecord['state'];
  first_seen: number;
  last_seen: number | null;
  last_address: string | null;
  app_version: string | null;
  paired_at: number;
  revoked_at: number | null;
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The hub's registry of devices, groups and pairing codes, and the Authenticator
 * the sync service consults for every connection: approved devices sync, unknown
 * ones may only attempt pairing, pending and revoked ones are refused with a code
 * that tells them why.
 */
export class DeviceRegistry implements Startable, Authenticator {
  private readonly options: DeviceRegistryOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private db: Database.Database | undefined;
  private codes: PairingCodes | undefined;

  constructor(options: DeviceRegistryOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  isStarted(): boolean {
    return this.db !== undefined;
  }

  async start(): Promise<void> {
    if (this.db) return;
    const dir = dirname(this.options.path);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Database(this.options.path);
    chmodSync(this.options.path, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    // Deleted and overwritten content (a spent code's secret) is zeroed on disk, not
    // just unlinked from the B-tree where a file reader could still find it.
    db.pragma('secure_delete = ON');
    runMigrations(db, REGISTRY_MIGRATIONS, this.clock.now());
    const codes = new PairingCodes(db, {
      clock: this.clock,
      logger: this.logger,
      maxAttempts: this.options.maxCodeAttempts ?? 3,
      ...(this.options.randomInt && { random: this.options.randomInt }),
    });
    codes.expire();
    this.db = db;
    this.codes = codes;
  }

  async stop(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    this.codes = undefined;
  }

  private get sql(): Database.Database {
    if (!this.db) throw new StoreClosedError();
    return this.db;
  }

  private get pairingCodes(): PairingCodes {
    if (!this.codes) throw new StoreClosedError();
    return this.codes;
  }

  // --- authentication ------------------------------------------------------------

  authenticate(peer: PeerCredentials): AuthDecision {
    const device = this.get(peer.deviceId);
    if (!device) return { allow: 'pairing' };
    switch (device.state) {
      case 'approved':
        return { allow: 'sync' };
      case 'pending':
        return {
          deny: 'DEVICE_PENDING_APPROVAL',
          reason: 'this device is paired and waits for an admin to approve it',
        };
      case 'revoked':
        return {
          deny: 'DEVICE_REVOKED',
          reason: 'this device was revoked by the hub admin and can no longer sync',
        };
    }
  }

  // --- devices -----------------------------------------------------------------------

  get(deviceId: DeviceId): DeviceRecord | undefined {
    const row = this.sql
      .prepare<[string], DeviceRow>('SELECT * FROM devices WHERE device_id = ?')
      .get(deviceId);
    return row ? toDevice(row) : undefined;
  }

  list(filter: { state?: DeviceRecord['state']; group?: string } = {}): DeviceRecord[] {
    const rows = this.sql.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY paired_at, device_id').all();
    return rows
      .map(toDevice)
      .filter(
        (d) => (!filter.state || d.state === filter.state) && (!filter.group || d.group === filter.group),
      );
  }

  /** Adds a device that just proved knowledge of a pairing code. */
  register(input: {
    deviceId: DeviceId;
    name: string;
    group: string;
    appVersion?: string;
    address?: string;
  }): DeviceRecord {
    const now = this.clock.now();
    const existing = this.get(input.deviceId);
    if (existing?.state === 'revoked') {
      throw new RegistryError('DEVICE_REVOKED', 'this device was revoked and cannot pair again', {
        deviceId: input.deviceId,
      });
    }
    const state = this.requireApproval ? 'pending' : 'approved';
    this.sql
      .prepare(
        `INSERT INTO devices (device_id, name, grp, state, first_seen, last_seen, last_address, app_version, paired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, grp = excluded.grp, paired_at = excluded.paired_at`,
      )
      .run(
        input.deviceId,
        input.name,
        input.group,
        state,
        now,
        now,
        input.address ?? null,
        input.appVersion ?? null,
        now,
      );
    this.logger.info({ deviceId: input.deviceId, state, group: input.group }, 'device paired');
    return this.get(input.deviceId) as DeviceRecord;
  }

  approve(deviceId: DeviceId): DeviceRecord {
    const device = this.require(deviceId);
    if (device.state === 'revoked')
      throw new RegistryError(
        'DEVICE_REVOKED',
        'a revoked device cannot be approved; it must pair again with a new identity',
      );
    this.sql.prepare("UPDATE devices SET state = 'approved' WHERE device_id = ?").run(deviceId);
    return this.require(deviceId);
  }

  /** Revokes for good: the device is refused from now on, whatever it presents. */
  revoke(deviceId: DeviceId): DeviceRecord {
    this.require(deviceId);
    this.sql
      .prepare("UPDATE devices SET state = 'revoked', revoked_at = ? WHERE device_id = ?")
      .run(this.clock.now(), deviceId);
    this.logger.warn({ deviceId }, 'device revoked');
    return this.require(deviceId);
  }

  rename(deviceId: DeviceId, name: string): DeviceRecord {
    this.require(deviceId);
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 128)
      throw new RegistryError('INVALID_NAME', 'a device name has 1 to 128 characters');
    this.sql.prepare('UPDATE devices SET name = ? WHERE device_id = ?').run(trimmed, deviceId);
    return this.require(deviceId);
  }

  setGroup(deviceId: DeviceId, group: string): DeviceRecord {
    this.require(deviceId);
    this.requireGroup(group);
    this.sql.prepare('UPDATE devices SET grp = ? WHERE device_id = ?').run(group, deviceId);
    return this.require(deviceId);
  }

  /** Records that a device connected (last seen, address, app version). */
  touch(deviceId: DeviceId, seen: { address: string; appVersion?: string }): void {
    this.sql
      .prepare(
        'UPDATE devices SET last_seen = ?, last_address = ?, app_version = coalesce(?, app_version) WHERE device_id = ?',
      )
      .run(this.clock.now(), seen.address, seen.appVersion ?? null, deviceId);
  }

  private require(deviceId: DeviceId): DeviceRecord {
    const device = this.get(deviceId);
    if (!device)
      throw new RegistryError('DEVICE_NOT_FOUND', `no device ${deviceId} is registered`, { deviceId });
    return device;
  }

  // --- groups and scopes -------------------------------------------------------------

  listGroups(): GroupRecord[] {
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

  getGroup(name: string): GroupRecord | undefined {
    return this.listGroups().find((g) => g.name === name);
  }

  /** Creates or replaces a group's scopes. */
  putGroup(group: GroupRecord): GroupRecord {
    if (!GROUP_NAME.test(group.name))
      throw new RegistryError('INVALID_GROUP', `invalid group name ${JSON.stringify(group.name)}`);
    for (const pattern of [...group.read, ...group.write]) assertScopePattern(pattern);
    this.sql
      .prepare(
        `INSERT INTO groups (name, description, read, write) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, read = excluded.read, write = excluded.write`,
      )
      .run(group.name, group.description, JSON.stringify(group.read), JSON.stringify(group.write));
    return this.getGroup(group.name) as GroupRecord;
  }

  private requireGroup(name: string): GroupRecord {
    const group = this.getGroup(name);
    if (!group)
      throw new RegistryError('GROUP_NOT_FOUND', `no group ${JSON.stringify(name)}; create it first`, {
        group: name,
      });
    return group;
  }

  // --- pairing codes -----------------------------------------------------------------

  /**
   * A new single-use pairing code, `XXXX-XXXX-XXXX` in Crockford base32: the first
   * group finds the code (no other active code has it), the 40-bit rest is the
   * secret the PAKE protects.
   */
  issueCode(options: { ttlMs?: number; group?: string } = {}): {
    code: string;
    expiresAt: number;
    group: string;
  } {
    const group = options.group ?? 'default';
    this.requireGroup(group);
    return this.pairingCodes.issue({ ttlMs: options.ttlMs ?? 10 * 60_000, group });
  }

  /** The active, unexpired code with this lookup group, if any. */
  findActiveCode(lookup: string): PairingCodeRecord | undefined {
    return this.pairingCodes.findActive(lookup);
  }

  /**
   * Settles a pairing confirmation (see PairingCodes.settle): with a right tag and
   * a code still active, spends the code and registers the device in its group, in
   * one transaction.
   */
  settlePairingAttempt(
    codeId: number,
    attempt: {
      tagMatched: boolean;
      device: { deviceId: DeviceId; name: string; appVersion?: string; address?: string };
    },
  ): PairingAttemptOutcome<DeviceRecord> {
    const { device } = attempt;
    return this.pairingCodes.settle(
      codeId,
      { tagMatched: attempt.tagMatched, deviceId: device.deviceId },
      (group) => this.register({ ...device, group }),
    );
  }

  /** The newest codes (at most 100) and their state, never the code itself. */
  listCodes(): ListedPairingCode[] {
    return this.pairingCodes.list();
  }

  /**
   * The codes that can still be used (active, unexpired), newest first, never the
   * code itself; `group` keeps only that group's. A hub that starts issues a code
   * only when this is empty, so restarts do not pile up live codes.
   */
  activePairingCodes(filter: { group?: string } = {}): ListedPairingCode[] {
    return this.pairingCodes.active(filter);
  }

  // --- settings ------------------------------------------------------------------------

  /** A hub setting (admin token hash, approval mode, ...), or undefined. */
  getSetting(key: string): string | undefined {
    return this.sql.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key)
      ?.value;
  }

  setSetting(key: string, value: string): void {
    this.sql
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      )
      .run(key, value);
  }

  /** Whether newly paired devices wait for approval: the stored setting, else the start option. */
  get requireApproval(): boolean {
    const stored = this.getSetting('require_approval');
    return stored ? stored === 'true' : (this.options.requireApproval ?? false);
  }

  setRequireApproval(on: boolean): void {
    this.setSetting('require_approval', String(on));
  }
}

function toDevice(row: DeviceRow): DeviceRecord {
  return {
    deviceId: row.device_id as DeviceId,
    name: row.name,
    group: row.grp,
    state: row.state,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    lastAddress: row.last_address,
    appVersion: row.app_version,
    pairedAt: row.paired_at,
    revokedAt: row.revoked_at,
  };
}
