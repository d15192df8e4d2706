import type { Migration } from '../store/migrations.js';

/** The schema steps of hub.db. Never edit a step that has shipped; append one. */
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
  {
    // A spent code keeps no secret, and no two active codes share a lookup group. The
    // table is rebuilt because SQLite cannot change a CHECK constraint in place; with
    // secure_delete on, the old table's pages are zeroed.
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
  },
  {
    // Only hashes of the secrets: a copy of hub.db lets no one sign in.
    version: 3,
    description: 'dashboard sign-in links and sessions',
    sql: `
      CREATE TABLE admin_sign_in_links (
        secret_sha256 TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE admin_sessions (
        secret_sha256 TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('link', 'token'))
      ) WITHOUT ROWID;
    `,
  },
  {
    // The hub's event log. AUTOINCREMENT: an id is never given twice, also after
    // retention has dropped every older event, so a client's Last-Event-ID stays meaningful.
    version: 4,
    description: 'hub events, kept for the event log and the stream resume',
    sql: `
      CREATE TABLE hub_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        device_id TEXT,
        -- the whole event as JSON, as the event stream sends it
        data TEXT NOT NULL
      );
      CREATE INDEX hub_events_at ON hub_events(at);
      CREATE INDEX hub_events_device ON hub_events(device_id, id);
      CREATE INDEX hub_events_type ON hub_events(type, id);
    `,
  },
];
