import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DeviceId } from '../../src/store/types.js';
import { deviceIdOf, formatDeviceId, parseDeviceId } from '../../src/transport/device-id.js';
import { createIdentity, loadOrCreateIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';

describe('device IDs', () => {
  const hex64 = fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .map((b) => Buffer.from(b).toString('hex') as DeviceId);

  it('round-trip through the readable form', () => {
    fc.assert(
      fc.property(hex64, (id) => {
        const text = formatDeviceId(id);
        assert.match(text, /^([A-Z2-7]{7}-){7}[A-Z2-7]{7}$/);
        assert.equal(parseDeviceId(text), id);
        assert.equal(parseDeviceId(text.toLowerCase().replace(/-/g, ' ')), id);
        assert.equal(parseDeviceId(id.toUpperCase()), id);
      }),
    );
  });

  it('a single mistyped character is caught by the check characters', () => {
    fc.assert(
      fc.property(hex64, fc.nat(55), fc.nat(30), (id, pos, shift) => {
        const plain = formatDeviceId(id).replace(/-/g, '');
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
        const wrong = alphabet[(alphabet.indexOf(plain[pos] as string) + 1 + shift) % 32] as string;
        const typo = plain.slice(0, pos) + wrong + plain.slice(pos + 1);
        assert.throws(() => parseDeviceId(typo), { code: 'INVALID_DEVICE_ID' });
      }),
    );
  });

  it('refuses garbage', () => {
    for (const bad of ['', 'abc', 'z'.repeat(64), `${'A'.repeat(55)}B`])
      assert.throws(() => parseDeviceId(bad), { code: 'INVALID_DEVICE_ID' });
  });
});

describe('identity', () => {
  it('is a P-256 key with a self-signed certificate whose hash is the device ID', async () => {
    const id = await createIdentity('hub-1');
    const cert = new X509Certificate(id.certPem);
    assert.equal(cert.subject, 'CN=hub-1');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    assert.ok(cert.checkPrivateKey(createPrivateKey(id.keyPem)));
    assert.equal(deviceIdOf(cert.raw), id.deviceId);
  });

  it('is created once in the data directory, owner-only, and loaded after', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'identity');
      const first = await loadOrCreateIdentity(path);
      const again = await loadOrCreateIdentity(path);
      assert.equal(again.deviceId, first.deviceId);
      assert.equal(statSync(join(path, 'key.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(path).mode & 0o777, 0o700);
    } finally {
      dir.remove();
    }
  });

  it('tightens a key file that others can read, and refuses half an identity', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'identity');
      await loadOrCreateIdentity(path);
      const { chmodSync, rmSync } = await import('node:fs');
      chmodSync(join(path, 'key.pem'), 0o644);
      await loadOrCreateIdentity(path);
      assert.equal(statSync(join(path, 'key.pem')).mode & 0o777, 0o600);
      rmSync(join(path, 'cert.pem'));
      await assert.rejects(loadOrCreateIdentity(path), { code: 'IDENTITY_INVALID' });
      writeFileSync(join(path, 'cert.pem'), 'not a certificate');
      await assert.rejects(loadOrCreateIdentity(path), { code: 'IDENTITY_INVALID' });
    } finally {
      dir.remove();
    }
  });
});
