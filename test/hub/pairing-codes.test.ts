import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { DeviceRegistry } from '../../src/hub/registry.js';
import { REGISTRY_MIGRATIONS } from '../../src/hub/sqlite-registry.js';
import { registryAt as openRegistryAt } from '../fixtures/registry.js';
import { runMigrations } from '../../src/store/migrations.js';
import type { DeviceId } from '../../src/store/types.js';
import { CODE_ALPHABET } from '../../src/transport/pairing-code.js';
import { FakeClock, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;

function registryAt(path: string, options: Parameters<typeof openRegistryAt>[1] = {}) {
  return openRegistryAt(path, { clock: new FakeClock(), ...options });
}

async function freshRegistry(
  options: Parameters<typeof openRegistryAt>[1] = {},
): Promise<{ registry: DeviceRegistry; path: string }> {
  const path = join(dir.path, `hub-${++n}.db`);
  const registry = registryAt(path, options);
  await registry.start();
  return { registry, path };
}

const deviceId = (c: string) => c.repeat(64) as DeviceId;
const device = (id: DeviceId) => ({ deviceId: id, name: 'laptop' });
const plain = (code: string) => code.replace(/-/g, '');

/** Every pairing code row of hub.db, read with a connection of its own. */
function codeRows(path: string): Array<{ lookup: string; secret: string | null; state: string }> {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT lookup, secret, state FROM pairing_codes ORDER BY id').all() as Array<{
      lookup: string;
      secret: string | null;
      state: string;
    }>;
  } finally {
    db.close();
  }
}

/** Whether the text appears anywhere in hub.db or its write-ahead log, as bytes on disk. */
function onDisk(path: string, text: string): boolean {
  return [path, `${path}-wal`].some((p) => existsSync(p) && readFileSync(p).includes(Buffer.from(text)));
}

/** A random source that yields `first` (indices into the alphabet) before falling back to `then`. */
function scripted(first: string, then: () => number) {
  const queue = [...first].map((c) => CODE_ALPHABET.indexOf(c));
  return (max: number) => {
    const next = queue.shift();
    return next === undefined ? then() % max : next;
  };
}

describe('pairing codes in the registry', () => {
  it('no two active codes share a lookup: a colliding draw is drawn again, and each code keeps its own failures', async () => {
    let counter = 0;
    // The second code's first draw repeats the first code's lookup exactly.
    const { registry, path } = await freshRegistry({
      randomInt: scripted('AAAA11111111AAAA22222222', () => counter++),
      maxCodeAttempts: 3,
    });
    const first = await registry.issueCode();
    const second = await registry.issueCode();
    assert.equal(plain(first.code), 'AAAA11111111');
    assert.notEqual(plain(second.code).slice(0, 4), 'AAAA', 'the colliding draw was not kept');
    const lookups = (await registry.activePairingCodes()).map((c) => c.lookup);
    assert.equal(new Set(lookups).size, 2);

    // The lookup names the first code; wrong guesses against it do not touch the second.
    const found = await registry.findActiveCode('AAAA');
    assert.equal(found?.secret, 'AAAA11111111');
    for (let i = 0; i < 3; i++) {
      const outcome = await registry.settlePairingAttempt(found?.codeId ?? -1, {
        tagMatched: false,
        device: device(deviceId('1')),
      });
      assert.equal(outcome.outcome, 'wrong-code');
    }
    const [secondListed, firstListed] = await registry.listCodes();
    assert.equal(firstListed?.state, 'burned');
    assert.equal(secondListed?.state, 'active');
    assert.equal(secondListed?.failedAttempts, 0);

    // Once the first is burned its lookup is free again.
    const third = registryAt(path, { randomInt: scripted('AAAA33333333', () => counter++) });
    await registry.stop();
    await third.start();
    assert.equal(plain((await third.issueCode()).code), 'AAAA33333333');
    await third.stop();
  });

  it('hub.db itself refuses a second active code with a taken lookup', async () => {
    const { registry, path } = await freshRegistry();
    const { code } = await registry.issueCode();
    await registry.stop();
    const db = new Database(path);
    assert.throws(
      () =>
        db
          .prepare(
            "INSERT INTO pairing_codes (lookup, secret, grp, created_at, expires_at, state) VALUES (?, 'X', 'default', 0, 9e15, 'active')",
          )
          .run(plain(code).slice(0, 4)),
      /UNIQUE/,
    );
    db.close();
  });

  it('a code used, burned or expired keeps no secret in hub.db, in its rows or anywhere in its bytes', async () => {
    const clock = new FakeClock();
    const { registry, path } = await freshRegistry({ clock, maxCodeAttempts: 3 });
    const used = await registry.issueCode();
    const burned = await registry.issueCode();
    const expired = await registry.issueCode({ ttlMs: 60_000 });
    const kept = await registry.issueCode({ ttlMs: 3_600_000 });
    for (const c of [used, burned, expired, kept])
      assert.ok(onDisk(path, plain(c.code)), 'stored while active');

    const usedId = (await registry.findActiveCode(used.code.slice(0, 4)))?.codeId ?? -1;
    const outcome = await registry.settlePairingAttempt(usedId, {
      tagMatched: true,
      device: device(deviceId('a')),
    });
    assert.equal(outcome.outcome, 'paired');
    const burnedId = (await registry.findActiveCode(burned.code.slice(0, 4)))?.codeId ?? -1;
    for (let i = 0; i < 3; i++)
      await registry.settlePairingAttempt(burnedId, { tagMatched: false, device: device(deviceId('b')) });
    clock.advance(60_000);
    // Listing is one of the moments an expired code is erased.
    assert.deepEqual(
      (await registry.listCodes()).map((c) => c.state),
      ['active', 'expired', 'burned', 'used'],
    );

    const rows = codeRows(path);
    assert.deepEqual(
      rows.map((r) => [r.state, r.secret]),
      [
        ['used', null],
        ['burned', null],
        ['expired', null],
        ['active', plain(kept.code)],
      ],
    );
    for (const spent of [used, burned, expired])
      assert.equal(onDisk(path, plain(spent.code)), false, `${spent.code} is gone from the file`);
    assert.ok(onDisk(path, plain(kept.code)), 'the active code is still there');

    await registry.stop();
    for (const spent of [used, burned, expired]) assert.equal(onDisk(path, plain(spent.code)), false);
  });

  it('an expired code is erased when a code is looked up, and when the registry starts', async () => {
    const clock = new FakeClock();
    const { registry, path } = await freshRegistry({ clock });
    const a = await registry.issueCode({ ttlMs: 60_000 });
    clock.advance(60_000);
    assert.equal(await registry.findActiveCode('ZZZZ'), undefined);
    assert.deepEqual(
      codeRows(path).map((r) => [r.state, r.secret]),
      [['expired', null]],
    );

    const b = await registry.issueCode({ ttlMs: 60_000 });
    await registry.stop();
    clock.advance(60_000);
    // Nothing lists or looks up codes: starting is enough.
    const again = registryAt(path, { clock });
    await again.start();
    assert.deepEqual(
      codeRows(path).map((r) => [r.state, r.secret]),
      [
        ['expired', null],
        ['expired', null],
      ],
    );
    await again.stop();
    for (const c of [a, b]) assert.equal(onDisk(path, plain(c.code)), false);
  });

  it('a hub.db from before the erasure is cleaned on start: spent codes lose their secret, shadowed duplicates retire', async () => {
    const path = join(dir.path, `old-${++n}.db`);
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    runMigrations(db, REGISTRY_MIGRATIONS.slice(0, 1), 0);
    const insert = db.prepare(
      'INSERT INTO pairing_codes (lookup, secret, grp, created_at, expires_at, state) VALUES (?, ?, ?, 0, ?, ?)',
    );
    const far = 9_000_000_000_000;
    insert.run('USED', 'USED11111111', 'default', far, 'used');
    insert.run('BURN', 'BURN22222222', 'default', far, 'burned');
    insert.run('DUPE', 'DUPE33333333', 'default', far, 'active');
    insert.run('DUPE', 'DUPE44444444', 'default', far, 'active');
    insert.run('LIVE', 'LIVE55555555', 'default', far, 'active');
    db.close();
    assert.ok(onDisk(path, 'USED11111111'));

    const registry = registryAt(path);
    await registry.start();
    assert.deepEqual(
      codeRows(path).map((r) => [r.lookup, r.state, r.secret]),
      [
        ['USED', 'used', null],
        ['BURN', 'burned', null],
        ['DUPE', 'expired', null],
        ['DUPE', 'active', 'DUPE44444444'],
        ['LIVE', 'active', 'LIVE55555555'],
      ],
    );
    assert.equal(
      (await registry.findActiveCode('DUPE'))?.secret,
      'DUPE44444444',
      'the newer code, as before',
    );
    await registry.stop();
    for (const gone of ['USED11111111', 'BURN22222222', 'DUPE33333333'])
      assert.equal(onDisk(path, gone), false, `${gone} is gone from the file`);
  });

  it('activePairingCodes lists the codes that can still be used, never their secret', async () => {
    const clock = new FakeClock();
    const { registry } = await freshRegistry({ clock });
    assert.deepEqual(await registry.activePairingCodes(), []);
    await registry.putGroup({ name: 'sales', description: '', read: ['*'], write: ['*'] });
    const short = await registry.issueCode({ ttlMs: 60_000 });
    const sales = await registry.issueCode({ group: 'sales' });
    const spent = await registry.issueCode();
    await registry.settlePairingAttempt(
      (await registry.findActiveCode(spent.code.slice(0, 4)))?.codeId ?? -1,
      {
        tagMatched: true,
        device: device(deviceId('c')),
      },
    );
    const active = await registry.activePairingCodes();
    assert.deepEqual(
      active.map((c) => c.lookup),
      [sales.code.slice(0, 4), short.code.slice(0, 4)],
    );
    assert.ok(active.every((c) => !('secret' in c) && !JSON.stringify(c).includes(plain(short.code))));
    assert.deepEqual(
      (await registry.activePairingCodes({ group: 'sales' })).map((c) => c.lookup),
      [sales.code.slice(0, 4)],
    );
    clock.advance(60_000);
    assert.deepEqual(
      (await registry.activePairingCodes()).map((c) => c.lookup),
      [sales.code.slice(0, 4)],
    );
    await registry.stop();
  });

  it('a confirmation for a code spent meanwhile is code-invalid whatever its tag, and is not counted', async () => {
    const { registry } = await freshRegistry({ maxCodeAttempts: 3 });
    const { code } = await registry.issueCode();
    const codeId = (await registry.findActiveCode(code.slice(0, 4)))?.codeId ?? -1;
    for (let i = 0; i < 3; i++)
      await registry.settlePairingAttempt(codeId, { tagMatched: false, device: device(deviceId('d')) });
    for (const tagMatched of [true, false])
      assert.deepEqual(
        await registry.settlePairingAttempt(codeId, { tagMatched, device: device(deviceId('e')) }),
        {
          outcome: 'code-invalid',
        },
      );
    assert.equal((await registry.listCodes())[0]?.failedAttempts, 3);
    assert.equal(await registry.get(deviceId('e')), undefined);
    await registry.stop();
  });
});
