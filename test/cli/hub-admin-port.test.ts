/**
 * `trosyn-sync hub` and its admin port: a certificate the admin gives is served
 * and its fingerprint printed; options that do not go together fail at once.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { createIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';
import { freePort, hubArgs, runText as run, startAgent } from '../e2e/helpers.js';

const dir = tempDir('trosyn-cli-admin-port-');
after(() => dir.remove());

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe('trosyn-sync hub: the admin port', () => {
  it("serves --http-cert over HTTPS and prints the URL with the certificate's fingerprint", async () => {
    const mine = await createIdentity('hub.office.lan');
    const cert = join(dir.path, 'admin-cert.pem');
    const key = join(dir.path, 'admin-key.pem');
    writeFileSync(cert, mine.certPem);
    writeFileSync(key, mine.keyPem, { mode: 0o600 });
    const adminPort = await freePort();
    const hub = startAgent([
      ...hubArgs(join(dir.path, 'tls'), await freePort()),
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(adminPort),
      '--http-cert',
      cert,
      '--http-key',
      key,
    ]);
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub');
      assert.equal(started.adminUrl, `https://127.0.0.1:${adminPort}`);
      const fingerprint = started.adminCertificateSha256 as string;
      assert.equal(
        fingerprint.replace(/:/g, '').toLowerCase(),
        mine.deviceId,
        'the fingerprint of the given certificate',
      );
      assert.equal(await servedFingerprint(adminPort), fingerprint);
    } finally {
      await hub.kill();
    }
  });

  it('refuses options that do not go together, and a key that is not the certificate’s', async () => {
    const mine = await createIdentity('a');
    const other = await createIdentity('b');
    const cert = join(dir.path, 'c.pem');
    const wrongKey = join(dir.path, 'k.pem');
    writeFileSync(cert, mine.certPem);
    writeFileSync(wrongKey, other.keyPem, { mode: 0o600 });
    const base = [
      ...hubArgs(join(dir.path, 'bad'), await freePort()),
      '--http-port',
      String(await freePort()),
    ];

    const alone = await run([...base, '--http-cert', cert]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /USAGE: --http-cert and --http-key go together/);

    const both = await run([...base, '--http-cert', cert, '--http-key', wrongKey, '--insecure-http']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /USAGE: --insecure-http cannot be combined with --http-cert/);

    const mismatched = await run([...base, '--http-cert', cert, '--http-key', wrongKey]);
    assert.equal(mismatched.code, 1);
    assert.match(mismatched.stderr, /^trosyn-sync: ADMIN_CERTIFICATE_INVALID: the admin key \(--http-key\)/m);

    const missing = await run([...base, '--http-cert', join(dir.path, 'nope.pem'), '--http-key', wrongKey]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ADMIN_CERTIFICATE_INVALID: cannot read --http-cert/);
  });
});
