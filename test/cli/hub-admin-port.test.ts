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
import { freePort, hubArgs, runCli, runText as run, startAgent } from '../e2e/helpers.js';

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

  it('prints a one-time sign-in link at start, and `dashboard-link` makes more, each good once', async () => {
    const data = join(dir.path, 'links');
    const adminPort = await freePort();
    const hub = startAgent([...hubArgs(data, await freePort()), '--http-port', String(adminPort)]);
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub');
      const base = `http://127.0.0.1:${adminPort}`;
      assert.equal(started.adminUrl, base, 'loopback by default');
      const atStart = String(started.signInUrl);
      assert.match(atStart, new RegExp(`^${base}/#signin=tsl_[A-Za-z0-9_-]{43}$`));
      const made = await runCli(['dashboard-link', '--data', data]);
      assert.equal(made.hubRunning, true);
      const link = String(made.url);
      assert.match(link, new RegExp(`^${base}/#signin=tsl_`));
      assert.notEqual(link, atStart);
      const post = (secret: string) =>
        fetch(`${base}/api/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-trosyn-csrf': '1' },
          body: JSON.stringify({ link: secret }),
        });
      for (const url of [atStart, link]) {
        const secret = url.split('#signin=')[1] as string;
        assert.equal((await post(secret)).status, 201, 'the link signs in');
        assert.equal((await post(secret)).status, 401, 'once');
      }
    } finally {
      await hub.kill();
    }
    const stopped = await runCli(['dashboard-link', '--data', data]);
    assert.equal(stopped.hubRunning, false, 'a link can be made for a hub that is not running');
    const notHub = await run(['dashboard-link', '--data', join(dir.path, 'nothing')]);
    assert.equal(notHub.code, 1);
    assert.match(notHub.stderr, /NOT_A_HUB/);
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
