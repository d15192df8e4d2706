/**
 * A store written by an earlier schema opens with this build: the change log
 * identity migration keeps every revision, its source, the sequence counter and
 * (as a cursor that names no log) every cursor.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, runMigrations } from '../../src/store/migrations.js';
import { makeRevision } from '../../src/store/testing/adapter-suite.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceId, Seq } from '../../src/store/types.js';
import { lwwResolver } from '../../src/sync/conflict.js';
import { createReducer } from '../../src/sync/reducer.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { tempDir } from '../helpers.js';

describe('store migrations', () => {
  it('version 1 -> latest: revisions, sources, the sequence counter and cursors survive', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'old.db');
      const peer = randomDeviceId() as DeviceId;
      const author = randomDeviceId() as DeviceId;
      // A store as version 1 wrote it: devices interned, a received revision whose
      // source is the peer's devices.id, a cursor, and a counter past the last row.
      const db = new Database(path);
      runMigrations(db, MIGRATIONS.slice(0, 1), 1);
      db.prepare('INSERT INTO devices (id, device_id, cursor) VALUES (1, ?, 42), (2, ?, 0)').run(
        peer,
        author,
      );
      const own = makeRevision('notes', 'own', { v: 1 }, author);
      const received = makeRevision('notes', 'theirs', { v: 2 }, author);
      const insert = db.prepare(
        `INSERT INTO revisions (seq, rev, collection, record_id, parents, vv, hlc, author, hub, deleted, body_hash, body, head, local, source)
         VALUES (?, ?, 'notes', ?, '', ?, ?, 2, 0, 0, ?, ?, 1, 0, ?)`,
      );
      insert.run(1, own.rev, 'own', '2:1', own.hlc, own.bodyHash, JSON.stringify(own.body), null);
      insert.run(
        2,
        received.rev,
        'theirs',
        '2:1',
        received.hlc,
        received.bodyHash,
        JSON.stringify(received.body),
        1,
      );
      db.prepare("UPDATE sqlite_sequence SET seq = 50 WHERE name = 'revisions'").run();
      db.close();

      const store = new SqliteStore({ path });
      await store.start();
      try {
        const check = new Database(path, { readonly: true });
        assert.equal(check.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
        assert.deepEqual(
          check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'revisions_v2'").get(),
          { n: 0 },
        );
        check.close();
        assert.equal(await store.latestSeq(), 50, 'the sequence counter is kept');
        assert.equal((await store.getRevision('notes', 'theirs', received.rev))?.source, peer);
        assert.equal((await store.getRevision('notes', 'own', own.rev))?.source, undefined);
        assert.deepEqual(await store.getCursor(peer), { log: '', seq: 42, check: '' });
        assert.match((await store.changeLog()).id, /^[0-9a-f]{32}$/, 'the old store gets an identity');
        // Received from a log of the peer that names no log: offered back to its current log.
        const toPeer = await store.changesSince({
          since: 0 as Seq,
          limit: 10,
          maxBytes: 1 << 20,
          excludeSource: { device: peer, log: 'a'.repeat(32) },
        });
        assert.equal(toPeer.revisions.length, 2);
        // New writes go after the kept counter, and sources of new peer logs are accepted.
        const next = makeRevision('notes', 'new', { v: 3 }, author);
        const result = await store.apply({
          revisions: [{ revision: next, local: false }],
          source: { device: peer, log: 'b'.repeat(32) },
          cursor: { log: 'b'.repeat(32), seq: 1 as Seq, check: 'x' },
          reduce: createReducer(() => lwwResolver),
          now: 1,
        });
        assert.equal(result.applied[0]?.seq, 51);
        assert.equal((await store.getRevision('notes', 'new', next.rev))?.source, peer);
      } finally {
        await store.stop();
      }
    } finally {
      dir.remove();
    }
  });

  it('an upgrade copies the database first, beside itself, once; a newer database is refused', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'old.db');
      const db = new Database(path);
      runMigrations(db, MIGRATIONS.slice(0, 1), 1);
      db.prepare('INSERT INTO devices (id, device_id, cursor) VALUES (1, ?, 7)').run(randomDeviceId());
      db.close();
      const store = new SqliteStore({ path });
      await store.start();
      await store.stop();
      const copy = new Database(`${path}.v1.bak`, { readonly: true });
      try {
        assert.equal(
          copy.pragma('user_version', { simple: true }),
          1,
          'the copy is the database before the upgrade',
        );
        assert.equal(copy.prepare('SELECT cursor FROM devices WHERE id = 1').pluck().get(), 7);
      } finally {
        copy.close();
      }
      // Already at the latest version: no copy is made.
      const fresh = join(dir.path, 'fresh.db');
      const s2 = new SqliteStore({ path: fresh });
      await s2.start();
      await s2.stop();
      await s2.start();
      await s2.stop();
      assert.equal(existsSync(`${fresh}.v${LATEST_SCHEMA_VERSION}.bak`), false);

      const newer = new Database(fresh);
      newer.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
      newer.close();
      await assert.rejects(new SqliteStore({ path: fresh }).start(), { code: 'STORE_SCHEMA_TOO_NEW' });
    } finally {
      dir.remove();
    }
  });
});
