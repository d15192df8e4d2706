import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import * as shared from '../../src/http/schemas.js';
import { canonicalJson } from '../../src/sync/canonical.js';
import { MAX_RECORD_ID_LENGTH, randomDeviceId } from '../../src/sync/ids.js';
import { tempDir } from '../helpers.js';
import { authed, bothApis, makeConflict } from './helpers.js';

const dir = tempDir('trosyn-request-bodies-');
const collections = {
  tickets: { conflict: 'manual' as const },
  docs: { conflict: 'merge' as const },
};
let apis: Awaited<ReturnType<typeof bothApis>>;
let admin: ReturnType<typeof authed>;
let local: ReturnType<typeof authed>;
before(async () => {
  apis = await bothApis(dir.path, {}, collections);
  admin = authed(apis.admin.app, apis.admin.token);
  local = authed(apis.local.app, apis.local.token);
});
after(async () => {
  await apis.close();
  dir.remove();
});

function json<T>(schema: z.ZodType<T>, body: string): T {
  return schema.parse(JSON.parse(body));
}

const JSON_TYPE = { 'content-type': 'application/json' };

describe('record ids of every documented length are reachable over HTTP', () => {
  // Each is exactly its length in UTF-16 code units, the unit the engine's limit counts.
  const ids = [
    'a'.repeat(101),
    'b'.repeat(200),
    'c'.repeat(MAX_RECORD_ID_LENGTH),
    // Slashes stay percent-encoded in the path (three characters each) until the id is read.
    '/'.repeat(MAX_RECORD_ID_LENGTH),
    `${'%é ?#'.repeat(51)}x`,
    '🙂'.repeat(MAX_RECORD_ID_LENGTH / 2),
  ];

  it('the ids are the lengths they claim', () => {
    assert.deepEqual(
      ids.map((id) => id.length),
      [101, 200, 256, 256, 256, 256],
    );
  });

  it('local API: put, get, list, history, revert, delete', async () => {
    for (const id of ids) {
      const url = `/api/records/notes/${encodeURIComponent(id)}`;
      const what = `id of ${id.length} characters starting ${JSON.stringify(id.slice(0, 3))}`;
      const put = await local({ method: 'PUT', url, payload: { n: 1 } });
      assert.equal(put.statusCode, 200, `${what}: ${put.body.slice(0, 200)}`);
      assert.equal(json(shared.writeResult, put.body).id, id, what);
      const firstRev = json(shared.writeResult, put.body).rev;
      assert.equal((await local({ method: 'PUT', url, payload: { n: 2 } })).statusCode, 200, what);
      const got = json(shared.recordView, (await local({ method: 'GET', url })).body);
      assert.deepEqual([got.id, got.body], [id, { n: 2 }], what);
      const history = json(shared.history, (await local({ method: 'GET', url: `${url}/history` })).body);
      assert.equal(history.history.length, 2, what);
      const reverted = await local({ method: 'POST', url: `${url}/revert`, payload: { rev: firstRev } });
      assert.equal(reverted.statusCode, 200, what);
      assert.deepEqual(json(shared.writeResult, reverted.body).record.body, { n: 1 }, what);
      const deleted = await local({ method: 'DELETE', url });
      assert.equal(deleted.statusCode, 200, what);
      assert.equal((await local({ method: 'GET', url })).statusCode, 404, what);
    }
    const page = json(
      shared.recordsPage,
      (
        await local({
          method: 'GET',
          url: `/api/records/notes?after=${encodeURIComponent(ids[0] as string)}`,
        })
      ).body,
    );
    assert.deepEqual(page.records, [], 'all deleted; the long `after` cursor is accepted');
  });

  it('both APIs: read a record with a 256-character id and resolve its conflict', async () => {
    const id = `${'/'.repeat(100)}${'d'.repeat(MAX_RECORD_ID_LENGTH - 100)}`;
    const url = (rest: string) => `/api/${rest}/tickets/${encodeURIComponent(id)}`;
    for (const [call, replica] of [
      [admin, apis.hub.replica],
      [local, apis.child.replica],
    ] as const) {
      await makeConflict(replica, dir.path, collections, 'tickets', id);
      const got = await call({ method: 'GET', url: url('records') });
      assert.equal(got.statusCode, 200);
      assert.equal(json(shared.recordView, got.body).conflict, 'open');
      assert.equal((await call({ method: 'GET', url: `${url('records')}/history` })).statusCode, 200);
      const resolved = await call({
        method: 'POST',
        url: `${url('conflicts')}/resolve`,
        payload: { body: { settled: true } },
      });
      assert.equal(resolved.statusCode, 200, resolved.body);
      assert.equal(json(shared.writeResult, resolved.body).record.conflict, 'none');
    }
  });
});

describe('JSON bodies with __proto__ and constructor keys', () => {
  const text =
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},' +
    '"nested":{"__proto__":{"isAdmin":true}},"list":[{"__proto__":null}]}';

  /** The document as data: JSON.parse defines `__proto__` as an own property. */
  const expected = JSON.parse(text) as Record<string, unknown>;

  function assertPrototypesUntouched(): void {
    const probe = {} as Record<string, unknown>;
    assert.equal(probe.polluted, undefined, 'Object.prototype gained no property');
    assert.equal(probe.isAdmin, undefined);
    assert.equal(Object.getPrototypeOf(probe), Object.prototype);
    assert.ok(!Object.hasOwn(Object.prototype, 'polluted') && !Object.hasOwn(Object.prototype, 'isAdmin'));
  }

  function assertSameDocument(body: unknown, what: string): void {
    const record = body as Record<string, unknown>;
    assert.ok(Object.hasOwn(record, '__proto__'), `${what}: __proto__ is an own field`);
    assert.equal(
      Object.getPrototypeOf(record),
      Object.prototype,
      `${what}: the record's prototype is untouched`,
    );
    // Records are stored with sorted keys: compare the canonical text, which keeps every key.
    assert.equal(canonicalJson(record), canonicalJson(expected), `${what}: same document`);
  }

  it('are accepted as plain data: stored, read back, listed and in history, the same document', async () => {
    assert.ok(Object.hasOwn(expected, '__proto__'), 'the reference parse keeps __proto__ as data');
    const url = '/api/records/notes/proto';
    const put = await local({ method: 'PUT', url, headers: JSON_TYPE, payload: text });
    assert.equal(put.statusCode, 200, put.body);
    assertPrototypesUntouched();
    // Parsed here the same safe way: the wire text carries the keys.
    assertSameDocument(JSON.parse(put.body).record.body, 'the write result');
    assertSameDocument(JSON.parse((await local({ method: 'GET', url })).body).body, 'GET');
    const listed = JSON.parse((await local({ method: 'GET', url: '/api/records/notes?after=prons' })).body);
    assert.equal(listed.records[0].id, 'proto');
    assertSameDocument(listed.records[0].body, 'the list');
    const history = JSON.parse((await local({ method: 'GET', url: `${url}/history` })).body);
    assertSameDocument(history.history[0].body, 'history');
    const stored = await apis.child.replica.get('notes', 'proto');
    assertSameDocument(stored?.body, 'the replica');
    const created = await local({
      method: 'POST',
      url: '/api/records/notes',
      headers: JSON_TYPE,
      payload: text,
    });
    assert.equal(created.statusCode, 201, created.body);
    assertSameDocument(JSON.parse(created.body).record.body, 'POST');
    assertPrototypesUntouched();
  });

  it('are accepted by the admin API too (resolving a conflict with such a body)', async () => {
    await makeConflict(apis.hub.replica, dir.path, collections, 'tickets', 'proto');
    const res = await admin({
      method: 'POST',
      url: '/api/conflicts/tickets/proto/resolve',
      headers: JSON_TYPE,
      payload: `{"body":${text}}`,
    });
    assert.equal(res.statusCode, 200, res.body);
    assertSameDocument((await apis.hub.replica.get('tickets', 'proto'))?.body, 'the hub replica');
    assertPrototypesUntouched();
  });

  it('a merge collection keeps a top-level __proto__ field as data too', async () => {
    const res = await local({
      method: 'PUT',
      url: '/api/records/docs/d1',
      headers: JSON_TYPE,
      payload: text,
    });
    assert.equal(res.statusCode, 200, res.body);
    assertSameDocument((await apis.child.replica.get('docs', 'd1'))?.body, 'the merge collection');
    assertPrototypesUntouched();
  });
});

describe('action routes take an empty body sent as application/json', () => {
  it('local API: sync pause, resume and now', async () => {
    for (const [url, status] of [
      ['/api/sync/pause', 200],
      ['/api/sync/resume', 200],
      ['/api/sync/now', 202],
    ] as const) {
      const res = await local({ method: 'POST', url, headers: JSON_TYPE, payload: '' });
      assert.equal(res.statusCode, status, `${url}: ${res.body}`);
      // And without any body or type, as before.
      assert.equal((await local({ method: 'POST', url })).statusCode, status, url);
    }
  });

  it('admin API: approve, revoke and a pairing code with the defaults', async () => {
    const deviceId = randomDeviceId();
    await apis.hub.registry.register({ deviceId, name: 'front desk', group: 'default' });
    for (const action of ['approve', 'revoke']) {
      const res = await admin({
        method: 'POST',
        url: `/api/devices/${deviceId}/${action}`,
        headers: JSON_TYPE,
        payload: '',
      });
      assert.equal(res.statusCode, 200, `${action}: ${res.body}`);
    }
    assert.equal((await apis.hub.registry.get(deviceId))?.state, 'revoked');
    const code = await admin({ method: 'POST', url: '/api/pairing-codes', headers: JSON_TYPE, payload: '' });
    assert.equal(code.statusCode, 201, code.body);
    assert.equal(JSON.parse(code.body).group, 'default');
  });

  it('a route that needs a body still refuses an empty one, saying a body is needed', async () => {
    const res = await local({ method: 'PUT', url: '/api/records/notes/e', headers: JSON_TYPE, payload: '' });
    assert.equal(res.statusCode, 400);
    const body = JSON.parse(res.body) as { code: string; details: { issues: Array<{ where: string }> } };
    assert.equal(body.code, 'INVALID_REQUEST');
    assert.equal(body.details.issues[0]?.where, 'body');
  });
});
