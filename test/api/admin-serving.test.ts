import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { AdminApiServer } from '../../src/hub/admin-api/server.js';
import { adminServing, isLoopbackHost } from '../../src/hub/admin-api/serving.js';
import type { Hub } from '../../src/hub/hub.js';
import { createIdentity } from '../../src/transport/identity.js';
import { startTestHub } from '../fixtures/nodes.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-admin-serving-');
after(() => dir.remove());
let n = 0;

/** The certificate a TLS server presents on 127.0.0.1:`port`, as its SHA-256 fingerprint. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** GET over https, trusting nothing but the pinned fingerprint (as an admin checking the browser's warning). */
function httpsGet(port: number, path: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

/** A plain-HTTP request to `port`; rejects when the server does not speak HTTP. */
function httpGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/status' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(3000, () => req.destroy(new Error('timed out')));
    req.once('error', reject);
    req.end();
  });
}

describe('where the admin port listens', () => {
  it('tells loopback addresses from the rest', () => {
    for (const host of [
      '127.0.0.1',
      '127.3.2.1',
      '::1',
      '[::1]',
      'localhost',
      '::ffff:127.0.0.1',
      '0:0:0:0:0:0:0:1',
    ])
      assert.equal(isLoopbackHost(host), true, host);
    for (const host of [
      '::',
      '0.0.0.0',
      '192.168.1.10',
      'fe80::1',
      '::ffff:10.0.0.1',
      'hub.office.lan',
      '128.0.0.1',
    ])
      assert.equal(isLoopbackHost(host), false, host);
  });

  it('serves plain HTTP on loopback, HTTPS with the hub certificate elsewhere, plain HTTP elsewhere only when asked', () => {
    assert.deepEqual(adminServing({ host: '127.0.0.1' }), { scheme: 'http', insecure: false });
    assert.deepEqual(adminServing({ host: '::1' }), { scheme: 'http', insecure: false });
    for (const host of ['0.0.0.0', '::', '192.168.1.10'])
      assert.deepEqual(adminServing({ host }), { scheme: 'https', tls: 'hub', insecure: false }, host);
    assert.deepEqual(adminServing({ host: '192.168.1.10', insecureHttp: true }), {
      scheme: 'http',
      insecure: true,
    });
    const given = { certPem: 'c', keyPem: 'k' };
    assert.deepEqual(adminServing({ host: '127.0.0.1', tls: given }), {
      scheme: 'https',
      tls: given,
      insecure: false,
    });
    assert.throws(() => adminServing({ host: '::', tls: given, insecureHttp: true }), {
      code: 'INVALID_OPTION',
    });
  });

  describe('with a running hub', () => {
    let hub: Hub;
    let token = '';
    after(async () => hub?.stop());

    it('listens on 127.0.0.1 by default', async () => {
      hub = await startTestHub(join(dir.path, `hub-${++n}`));
      const server = new AdminApiServer(
        hub,
        { port: 0 },
        { hubCertificate: () => ({ certPem: '', keyPem: '' }) },
      );
      await server.start();
      token = server.takeCreatedToken() as string;
      try {
        assert.equal(server.address().address, '127.0.0.1');
        assert.equal(server.scheme, 'http');
        assert.equal(server.certificateSha256, undefined);
        assert.equal(await httpGet(server.port), 401, 'plain HTTP, the API behind its token');
      } finally {
        await server.stop();
      }
    });

    it("serves HTTPS with the hub's own certificate, whose fingerprint is the hub's device ID", async () => {
      const tlsHub = await startTestHub(join(dir.path, `hub-${++n}`), {
        adminApi: { host: '127.0.0.1', port: 0, tls: 'hub' },
      });
      try {
        const admin = tlsHub.adminApi as AdminApiServer;
        const ownToken = tlsHub.takeCreatedAdminToken() as string;
        assert.equal(admin.scheme, 'https');
        const fingerprint = admin.certificateSha256 as string;
        assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
        assert.equal(fingerprint.replace(/:/g, '').toLowerCase(), tlsHub.deviceId);
        assert.equal(
          await servedFingerprint(admin.port),
          fingerprint,
          'the certificate served is the one printed',
        );
        await assert.rejects(httpGet(admin.port), 'plain HTTP is not answered');
        assert.equal((await httpsGet(admin.port, '/api/status', ownToken)).status, 200);
        assert.equal((await httpsGet(admin.port, '/api/status', 'tsa_wrong')).status, 401);
      } finally {
        await tlsHub.stop();
      }
    });

    it("serves HTTPS with the admin's certificate; a key of another certificate fails the start", async () => {
      const mine = await createIdentity('hub.office.lan');
      const other = await createIdentity('someone-else');
      const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0, tls: mine });
      await server.start();
      try {
        assert.equal(await servedFingerprint(server.port), server.certificateSha256);
        assert.equal((await httpsGet(server.port, '/api/status', token)).status, 200);
        assert.equal((server.certificateSha256 as string).replace(/:/g, '').toLowerCase(), mine.deviceId);
      } finally {
        await server.stop();
      }
      assert.throws(
        () => new AdminApiServer(hub, { port: 0, tls: { certPem: mine.certPem, keyPem: other.keyPem } }),
        { code: 'ADMIN_CERTIFICATE_INVALID' },
      );
      assert.throws(
        () => new AdminApiServer(hub, { port: 0, tls: { certPem: 'not a cert', keyPem: mine.keyPem } }),
        {
          code: 'ADMIN_CERTIFICATE_INVALID',
        },
      );
    });

    it('plain HTTP on a LAN address is marked insecure; on loopback it is not', () => {
      const cert = { hubCertificate: () => ({ certPem: '', keyPem: '' }) };
      assert.equal(
        new AdminApiServer(hub, { host: '192.168.1.10', insecureHttp: true }, cert).insecure,
        true,
      );
      assert.equal(new AdminApiServer(hub, { host: '192.168.1.10' }, cert).scheme, 'https');
      assert.equal(new AdminApiServer(hub, { host: '127.0.0.1', insecureHttp: true }, cert).insecure, false);
    });
  });
});
