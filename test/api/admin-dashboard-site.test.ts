/**
 * The admin port serves the built dashboard at `/` beside the API: its files,
 * index.html for the app's pages, and JSON errors under `/api/` as before.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { buildAdminApi } from '../../src/hub/admin-api/server.js';
import type { Hub } from '../../src/hub/hub.js';
import { startTestHub } from '../fixtures/nodes.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-admin-site-');
after(() => dir.remove());

const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;
let hub: Hub;
let app: FastifyInstance;

before(async () => {
  hub = await startTestHub(join(dir.path, 'hub'));
  // A small built site of its own, so the test does not depend on the real build's file names.
  const site = join(dir.path, 'site');
  mkdirSync(join(site, 'assets'), { recursive: true });
  writeFileSync(
    join(site, 'index.html'),
    '<!doctype html><title>t</title><script type="module" src="/assets/app-1a2b.js"></script>',
  );
  writeFileSync(join(site, 'assets', 'app-1a2b.js'), SCRIPT);
  app = buildAdminApi(hub, { dashboard: site });
});
after(async () => {
  await app.close();
  await hub.stop();
});

describe('the dashboard on the admin port', () => {
  it('serves the page at / to anyone, with a policy that allows no inline or foreign script', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /app-1a2b\.js/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-frame-options'], 'DENY');
  });

  it("answers the app's pages with index.html, so a page can be reloaded", async () => {
    for (const url of ['/devices', '/devices/', '/overview?x=1']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.body, /app-1a2b\.js/, url);
    }
  });

  it('serves assets for good, gzipped when asked; a missing asset is 404', async () => {
    const plain = await app.inject({ method: 'GET', url: '/assets/app-1a2b.js' });
    assert.equal(plain.statusCode, 200);
    assert.equal(plain.body, SCRIPT);
    assert.match(String(plain.headers['content-type']), /^text\/javascript/);
    assert.match(String(plain.headers['cache-control']), /immutable/);
    const zipped = await app.inject({
      method: 'GET',
      url: '/assets/app-1a2b.js',
      headers: { 'accept-encoding': 'gzip, br' },
    });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(zipped.rawPayload).toString(), SCRIPT);
    assert.ok(zipped.rawPayload.length < SCRIPT.length / 10);
    assert.equal((await app.inject({ method: 'GET', url: '/assets/app-old.js' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/assets/../../index.html' })).statusCode, 200);
  });

  it('leaves /api/ to the API: unknown routes are JSON errors, data needs a credential', async () => {
    const unknown = await app.inject({ method: 'GET', url: '/api/nope' });
    assert.equal(unknown.statusCode, 401, 'signed out, not even which paths exist');
    assert.equal(JSON.parse(unknown.body).code, 'UNAUTHORIZED');
    assert.equal(
      (await app.inject({ method: 'GET', url: '/api' })).statusCode,
      401,
      'the API root, signed out',
    );
    assert.equal((await app.inject({ method: 'GET', url: '/api/devices' })).statusCode, 401);
    const post = await app.inject({ method: 'POST', url: '/devices' });
    assert.equal(post.statusCode, 404, 'only GET and HEAD reach the pages');
    assert.equal(JSON.parse(post.body).code, 'ROUTE_NOT_FOUND');
  });

  it('serves no page with dashboard: false', async () => {
    const bare = buildAdminApi(hub, { dashboard: false });
    try {
      const res = await bare.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 404);
      assert.equal(JSON.parse(res.body).code, 'ROUTE_NOT_FOUND');
    } finally {
      await bare.close();
    }
  });
});
