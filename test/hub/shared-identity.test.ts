/**
 * The hub identity shared by the hub processes on one database: recorded by the
 * first, sealed with the identity key file, taken by a later process with a fresh
 * data directory; refused with a named code wherever it cannot be the same.
 * The settings are a real registry (SQLite here; the logic does not depend on the
 * backend), the identities real key pairs in real directories.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DeviceRegistry } from '../../src/hub/registry.js';
import {
  HUB_ID_SETTING,
  openIdentity,
  SEALED_IDENTITY_SETTING,
  sealIdentity,
  sharedHubIdentity,
} from '../../src/hub/shared-identity.js';
import { SqliteRegistryBackend } from '../../src/hub/sqlite-registry.js';
import {
  createIdentity,
  hasIdentity,
  loadOrCreateIdentity,
  writeIdentity,
} from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-shared-identity-');
after(() => dir.remove());
let n = 0;

async function registry(): Promise<DeviceRegistry> {
  const r = new DeviceRegistry({
    backend: new SqliteRegistryBackend({ path: join(dir.path, `registry-${++n}.db`) }),
  });
  await r.start();
  return r;
}

function keyFile(text: string): string {
  const path = join(dir.path, `key-${++n}`);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** One hub process's view: its own data directory's identity/ and, maybe, a key file. */
function process_(settings: DeviceRegistry, keyPath?: string) {
  const identityDir = join(dir.path, `data-${++n}`, 'identity');
  const own = () => loadOrCreateIdentity(identityDir);
  return {
    identityDir,
    identity: () =>
      sharedHubIdentity({
        settings,
        local: async () => (hasIdentity(identityDir) ? own() : undefined),
        create: own,
        keep: async (identity) => writeIdentity(identityDir, identity),
        ...(keyPath !== undefined && { keyFile: keyPath }),
      }),
  };
}

const SECRET = 'q3Yc8mVZk3Hf1d9uT0pW4rE7sA2xB5nL6jG8hK1mN0o=';

describe('one hub identity for every hub process on a database', () => {
  it('the first process records and seals its identity; a second with a fresh directory and the key takes it', async () => {
    const settings = await registry();
    const key = keyFile(`${SECRET}\n`);
    const first = await process_(settings, key).identity();
    assert.equal(await settings.getSetting(HUB_ID_SETTING), first.deviceId);
    const sealed = (await settings.getSetting(SEALED_IDENTITY_SETTING)) as string;
    const keyBody = first.keyPem.split('\n').slice(1, -2).join('');
    assert.ok(keyBody.length > 40 && !sealed.includes(keyBody.slice(0, 40)), 'the key is not in the clear');

    const second = process_(settings, key);
    const taken = await second.identity();
    assert.equal(taken.deviceId, first.deviceId);
    assert.equal(taken.keyPem, first.keyPem);
    assert.equal(
      readFileSync(join(second.identityDir, 'key.pem'), 'utf8'),
      first.keyPem,
      'kept in its directory',
    );
    // Started again, it reads its own directory: the same identity.
    assert.equal((await second.identity()).deviceId, first.deviceId);
    await settings.stop();
  });

  it('a process without the key, or with another key, is refused with a named code', async () => {
    const settings = await registry();
    await process_(settings, keyFile(SECRET)).identity();
    await assert.rejects(process_(settings).identity(), { code: 'HUB_IDENTITY_NOT_SHARED' });
    const other = keyFile('another-secret-of-at-least-32-bytes-length!');
    const refused = process_(settings, other);
    await assert.rejects(refused.identity(), { code: 'HUB_IDENTITY_KEY_WRONG' });
    assert.equal(hasIdentity(refused.identityDir), false, 'nothing written');
    await settings.stop();
  });

  it("a data directory holding another hub's identity is refused: its children would refuse it", async () => {
    const settings = await registry();
    const key = keyFile(SECRET);
    await process_(settings, key).identity();
    const stranger = process_(settings, key);
    writeIdentity(stranger.identityDir, await createIdentity('stranger'));
    await assert.rejects(stranger.identity(), { code: 'HUB_IDENTITY_CONFLICT' });
    await settings.stop();
  });

  it('a hub first run without a key seals its identity when restarted with one', async () => {
    const settings = await registry();
    const first = process_(settings);
    const id = (await first.identity()).deviceId;
    assert.equal(
      await settings.getSetting(SEALED_IDENTITY_SETTING),
      undefined,
      'nothing sealed without a key',
    );
    await assert.rejects(process_(settings, keyFile(SECRET)).identity(), { code: 'HUB_IDENTITY_NOT_SHARED' });
    const key = keyFile(SECRET);
    const again = await sharedHubIdentity({
      settings,
      local: () => loadOrCreateIdentity(first.identityDir),
      create: () => assert.fail('the identity exists'),
      keep: () => assert.fail('the identity exists'),
      keyFile: key,
    });
    assert.equal(again.deviceId, id);
    assert.equal((await process_(settings, key).identity()).deviceId, id, 'a second process takes it now');
    await settings.stop();
  });

  it('a short or missing key file is IDENTITY_KEY_UNREADABLE; a sealed identity altered does not open', async () => {
    const settings = await registry();
    await assert.rejects(process_(settings, keyFile('too short')).identity(), {
      code: 'IDENTITY_KEY_UNREADABLE',
      message: /at least 32/,
    });
    await assert.rejects(process_(settings, join(dir.path, 'absent')).identity(), {
      code: 'IDENTITY_KEY_UNREADABLE',
      message: /ENOENT/,
    });
    const a = await createIdentity('a');
    const b = await createIdentity('b');
    const secret = Buffer.from(SECRET);
    const sealed = JSON.parse(sealIdentity(a, secret)) as Record<string, string>;
    assert.equal(openIdentity(JSON.stringify(sealed), secret).keyPem, a.keyPem);
    // Another certificate put in place of the sealed one's: the hash no longer binds.
    const swapped = JSON.stringify({ ...sealed, hubId: b.deviceId, certPem: b.certPem });
    assert.throws(() => openIdentity(swapped, secret), { code: 'HUB_IDENTITY_KEY_WRONG' });
    assert.throws(() => openIdentity('{"v":2}', secret), { code: 'HUB_IDENTITY_KEY_WRONG' });
    await settings.stop();
  });
});
