import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import type { Migration } from '../store/migrations.js';
import type { DeviceId } from '../store/types.js';
import {
  CODE_ALPHABET,
  CODE_LENGTH,
  CODE_LOOKUP_LENGTH,
  formatCode,
  normalizeCode,
} from '../transport/pairing-code.js';

/** A pairing code as the hub keeps it while it is active. */
export interface PairingCodeRecord {
  codeId: number;
  /** The first group of the code, sent in the exchange to find it; the rest stays secret. */
  lookup: string;
  /** The whole normalised code: the PAKE password. */
  secret: string;
  group: string;
  createdAt: number;
  expiresAt: number;
  failedAttempts: number;
  state: 'active' | 'used' | 'burned' | 'expired';
  usedBy: DeviceId | null;
}

/** A pairing code as listed: never its secret (erased anyway once the code is spent). */
export type ListedPairingCode = Omit<PairingCodeRecord, 'secret'>;

/**
 * How a pairing confirmation ended, decided in one transaction against the code's
 * state at that moment (not the state when the session started).
 */
export type PairingAttemptOutcome<T> =
  /** The tag was right and the code still active: it is now used, and `accepted` ran. */
  | { outcome: 'paired'; result: T }
  /** The tag was wrong and counted against the code, which may now be burned. */
  | { outcome: 'wrong-code'; codeState: 'active' | 'burned' }
  /** The code was used, burned or expired meanwhile: the tag was not looked at. */
  | { outcome: 'code-invalid' };

export interface PairingCodesOptions {
  clock: Clock;
  logger: Logger;
  /** Wrong guesses after which a code is burned. */
  maxAttempts: number;
  /** Source of each character's index in the alphabet; tests pass one to force collisions. */
  random?: (max: number) => number;
}

interface CodeRow {
  id: number;
  lookup: string;
  secret: string | null;
  grp: string;
  created_at: number;
  expires_at: number;
  failed_attempts: number;
  state: 'active' | 'used' | 'burned' | 'expired';
  used_by: string | null;
}

/**
 * Schema step 2 of hub.db: a spent code keeps no secret, and no two active codes
 * share a lookup group. The table is rebuilt because SQLite cannot change a CHECK
 * constraint in place; with secure_delete on, the old table's pages are zeroed.
 */
export const PAIRING_CODES_MIGRATION: Migration = {
  version: 2,
  description: 'pairing codes: secrets erased once spent, lookups unique among active codes',
  sql: `
    CREATE TABLE pairing_codes_v2 (
      id INTEGER PRIMARY KEY,
      lookup TEXT NOT NULL,
      -- The whole code while the code is active; NULL once it is used, burned or expired.
      secret TEXT,
      grp TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      failed_attempts INTEGER NOT NULL DEFAULT 0,
      state TEXT NOT NULL CHECK (state IN ('active', 'used', 'burned', 'expired')),
      used_by TEXT,
      used_at INTEGER,
      CHECK ((state = 'active') = (secret IS NOT NULL))
    );
    INSERT INTO pairing_codes_v2
      SELECT id, lookup, CASE WHEN state = 'active' THEN secret END, grp, created_at, expires_at,
             failed_attempts, state, used_by, used_at
      FROM pairing_codes;
    -- An older active code whose lookup a newer one shares could never be found again.
    UPDATE pairing_codes_v2 SET state = 'expired', secret = NULL
      WHERE state = 'active' AND EXISTS (
        SELECT 1 FROM pairing_codes_v2 AS newer
        WHERE newer.lookup = pairing_codes_v2.lookup AND newer.state = 'active' AND newer.id > pairing_codes_v2.id
      );
    DROP TABLE pairing_codes;
    ALTER TABLE pairing_codes_v2 RENAME TO pairing_codes;
    CREATE UNIQUE INDEX pairing_codes_active_lookup ON pairing_codes(lookup) WHERE state = 'active';
  `,
};

/**
 * The hub's pairing codes, in hub.db. A code's secret is kept only while the code
 * can still be used; a code's lookup group finds exactly one active code.
 */
export class PairingCodes {
  private readonly db: Database.Database;
  private readonly options: PairingCodesOptions;

  constructor(db: Database.Database, options: PairingCodesOptions) {
    this.db = db;
    this.options = options;
  }

  /**
   * Marks active codes past their expiry as expired and erases their secrets. Runs
   * before every read of the codes and at start, so an expired code's text stays
   * on disk only until the hub next looks at its codes.
   */
  expire(): number {
    const changes = this.expireStale();
    if (changes > 0) this.flushErased();
    return changes;
  }

  /** A new code whose lookup group no other active code has. */
  issue(options: { ttlMs: number; group: string }): { code: string; expiresAt: number; group: string } {
    const taken = this.db.prepare<[string], { id: number }>(
      "SELECT id FROM pairing_codes WHERE lookup = ? AND state = 'active'",
    );
    const insert = this.db.prepare(
      "INSERT INTO pairing_codes (lookup, secret, grp, created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, 'active')",
    );
    const issued = this.db
      .transaction(() => {
        // Expired codes first, so their lookups are free again and their secrets go.
        const expired = this.expireStale();
        let code: string;
        // One pair.start names one code: a lookup shared by two active codes would let
        // one code's wrong guesses burn the other and leave the older unreachable.
        do code = this.draw();
        while (taken.get(code.slice(0, CODE_LOOKUP_LENGTH)));
        const now = this.options.clock.now();
        const expiresAt = now + options.ttlMs;
        insert.run(code.slice(0, CODE_LOOKUP_LENGTH), code, options.group, now, expiresAt);
        return { code: formatCode(code), expiresAt, group: options.group, expired };
      })
      .immediate();
    if (issued.expired > 0) this.flushErased();
    return { code: issued.code, expiresAt: issued.expiresAt, group: issued.group };
  }

  /** The active code with this lookup group, if any. */
  findActive(lookup: string): PairingCodeRecord | undefined {
    this.expire();
    const row = this.db
      .prepare<[string], CodeRow>("SELECT * FROM pairing_codes WHERE lookup = ? AND state = 'active'")
      .get(normalizeCode(lookup));
    return row ? this.toRecord(row) : undefined;
  }

  /**
   * Settles a pairing confirmation against the code as it is now. A code that is no
   * longer active answers `code-invalid` whether the tag was right or not, so a
   * session opened before the code was burned learns nothing from its tag. A right
   * tag spends the code and runs `accepted` (registering the device) in the same
   * transaction; a wrong one counts, and the last allowed one burns the code.
   */
  settle<T>(
    codeId: number,
    attempt: { tagMatched: boolean; deviceId: DeviceId },
    accepted: (group: string) => T,
  ): PairingAttemptOutcome<T> {
    const outcome = this.db
      .transaction((): PairingAttemptOutcome<T> => {
        const now = this.options.clock.now();
        const row = this.db
          .prepare<[number], CodeRow>('SELECT * FROM pairing_codes WHERE id = ?')
          .get(codeId);
        if (!row || row.state !== 'active' || row.expires_at <= now) return { outcome: 'code-invalid' };
        if (attempt.tagMatched) {
          this.db
            .prepare(
              "UPDATE pairing_codes SET state = 'used', secret = NULL, used_by = ?, used_at = ? WHERE id = ?",
            )
            .run(attempt.deviceId, now, codeId);
          return { outcome: 'paired', result: accepted(row.grp) };
        }
        const burned = row.failed_attempts + 1 >= this.options.maxAttempts;
        this.db
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
    if (outcome.outcome === 'wrong-code' && outcome.codeState === 'burned')
      this.options.logger.warn({ codeId }, 'pairing code burned after too many wrong guesses');
    if (outcome.outcome === 'paired' || (outcome.outcome === 'wrong-code' && outcome.codeState === 'burned'))
      this.flushErased();
    return outcome;
  }

  /** The newest codes (at most 100), any state, without secrets. */
  list(): ListedPairingCode[] {
    this.expire();
    return this.db
      .prepare<[], CodeRow>('SELECT * FROM pairing_codes ORDER BY id DESC LIMIT 100')
      .all()
      .map((row) => this.toListed(row));
  }

  /** Every code that can still be used, newest first, without secrets. */
  active(filter: { group?: string } = {}): ListedPairingCode[] {
    this.expire();
    return this.db
      .prepare<[], CodeRow>("SELECT * FROM pairing_codes WHERE state = 'active' ORDER BY id DESC")
      .all()
      .map((row) => this.toListed(row))
      .filter((c) => filter.group === undefined || c.group === filter.group);
  }

  private expireStale(): number {
    return this.db
      .prepare(
        "UPDATE pairing_codes SET state = 'expired', secret = NULL WHERE state = 'active' AND expires_at <= ?",
      )
      .run(this.options.clock.now()).changes;
  }

  private draw(): string {
    const random = this.options.random ?? randomInt;
    let code = '';
    for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[random(CODE_ALPHABET.length)];
    return code;
  }

  /**
   * Moves erased secrets out of the write-ahead log too: until a checkpoint, the
   * WAL still holds the page images written while the code was active. Best effort:
   * a reader in another process (the CLI) can hold the log, and the next
   * checkpoint then finishes the job.
   */
  private flushErased(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  private toListed(row: CodeRow): ListedPairingCode {
    const { secret: _secret, ...rest } = this.toRecord(row);
    return rest;
  }

  private toRecord(row: CodeRow): PairingCodeRecord {
    const expired = row.state === 'active' && row.expires_at <= this.options.clock.now();
    return {
      codeId: row.id,
      lookup: row.lookup,
      secret: row.secret ?? '',
      group: row.grp,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      failedAttempts: row.failed_attempts,
      state: expired ? 'expired' : row.state,
      usedBy: row.used_by as DeviceId | null,
    };
  }
}
