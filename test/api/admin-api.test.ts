import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  ADMIN_TOKEN_SETTING,
  buildAdminApi,
  ensureAdminToken,
  resetAdminToken,
} from '../../src/hub/admin-api/server.js';
import * as s from '../../src/hub/admin-api/schemas.js';
import { createHub } from '../../src/hub/factory.js';
import type { Hub, HubEvent } from '../../src/hub/hub.js';
import { createLogger } from '../../src/observability/logger.js';
import * as shared from '../../src/http/schemas.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { transfer } from '../../src/sync/transfer.js';
import { openReplica } from '../../src/index.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import { FakeClock, tempDir } from '../helpers.js';
import { authed, makeConflict, operations, type RouteCall } from './helpers.js';

const dir = tempDir('trosyn-admin-api-');
after(() => dir.remove());

const collections = { tickets: { conflict: 'manual' as const } };
let hub: Hub;
let app: FastifyInstance;
let token: string;
let call: ReturnType<typeof authed>;
const events: HubEvent[] = [];

before(async () => {
  hub = createHub({
    discovery: false,
    dataDir: join(dir.path, 'hub'),
    host: '127.0.0.1',
    port: 0,
    synchronous: 'off',
    requireApproval: true,
    collections,
  });
  await hub.start();
  hub.on('event', (e) => events.push(e));
  token = (await ensureAdminToken(hub.registry)) as string;
  // Generous: the route loop below sends many wrong tokens from one address.
  app = buildAdminApi(hub, { authFailureLimit: { burst: 1000, perMinute: 1000 } });
  call = authed(app, token);
});
after(async () => {
  await app.close();
  await hub.stop();
});

function json<T>(schema: z.ZodType<T>, body: string): T {
  return schema.parse(JSON.parse(body));
}

const knownDevice = randomDeviceId();

/** Every admin route, with parameters that exist. */
function routeTable(): RouteCall[] {
  const d = knownDevice;
  return [
    { method: 'GET', url: '/api/status', path: '/api/status' },
    { method: 'POST', url: '/api/backups', path: '/api/backups' },
    { method: 'GET', url: '/api/session', path: '/api/session' },
    { method: 'DELETE', url: '/api/session', path: '/api/session' },
    { method: 'GET', url: '/api/devices', path: '/api/devices' },
    { method: 'GET', url: `/api/devices/${d}`, path: '/api/devices/{id}' },
    { method: 'PATCH', url: `/api/devices/${d}`, path: '/api/devices/{id}', payload: { name: 'x' } },
    { method: 'POST', url: `/api/devices/${d}/approve`, path: '/api/devices/{id}/approve' },
    { method: 'POST', url: `/api/devices/${d}/revoke`, path: '/api/devices/{id}/revoke' },
    { method: 'POST', url: '/api/pairing-codes', path: '/api/pairing-codes', payload: {} },
    { method: 'GET', url: '/api/pairing-codes', path: '/api/pairing-codes' },
    { method: 'GET', url: '/api/groups', path: '/api/groups' },
    {
      method: 'PUT',
      url: '/api/groups/x',
      path: '/api/groups/{name}',
      payload: { read: ['*'], write: [] },
    },
    { method: 'DELETE', url: '/api/groups/x', path: '/api/groups/{name}' },
    { method: 'GET', url: '/api/settings', path: '/api/settings' },
    { method: 'PUT', url: '/api/settings', path: '/api/settings', payload: {} },
    { method: 'GET', url: '/api/events', path: '/api/events' },
    { method: 'GET', url: '/api/events/log', path: '/api/events/log' },
    { method: 'GET', url: '/api/metrics/history', path: '/api/metrics/history' },
    { method: 'GET', url: '/api/collections', path: '/api/collections' },
    { method: 'GET', url: '/api/records/notes', path: '/api/records/{collection}' },
    { method: 'GET', url: '/api/records/notes/n1', path: '/api/records/{collection}/{id}' },
    {
      method: 'GET',
      url: '/api/records/notes/n1/history',
      path: '/api/records/{collection}/{id}/history',
    },
    {
      method: 'POST',
      url: '/api/records/notes/n1/revert',
      path: '/api/records/{collection}/{id}/revert',
      payload: { rev: 'abcd' },
    },
    { method: 'GET', url: '/api/conflicts', path: '/api/conflicts' },
    { method: 'GET', url: '/api/conflicts/1', path: '/api/conflicts/{conflictId}' },
    {
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      path: '/api/conflicts/{collection}/{id}/resolve',
      payload: { rev: 'abcd' },
    },
    { method: 'GET', url: '/api/files', path: '/api/files' },
    { method: 'GET', url: '/api/files/transfers', path: '/api/files/transfers' },
    { method: 'GET', url: '/api/files/a.txt/content', path: '/api/files/{name}/content' },
    { method: 'GET', url: '/api/files/a.txt/history', path: '/api/files/{name}/history' },
    // Outside /api, as Prometheus expects, behind the same token.
    { method: 'GET', url: '/metrics', path: '/metrics' },
  ];
}

describe('admin API: authentication', () => {
  it('the OpenAPI document needs the token, is valid JSON, and has a path for every route', async () => {
    for (const url of ['/api/', '/api/openapi.json'])
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401, `${url} signed out`);
    const index = await call({ method: 'GET', url: '/api/' });
    assert.equal(index.statusCode, 200, 'the API root answers, and says where the document is');
    assert.equal((JSON.parse(index.body) as { openapi: string }).openapi, '/api/openapi.json');
    const res = await call({ method: 'GET', url: '/api/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = JSON.parse(res.body) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown>; summary?: string }>>;
      components: { securitySchemes: Record<string, { scheme: string }> };
      security: unknown[];
    };
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.components.securitySchemes['bearer']?.scheme, 'bearer');
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.deepEqual(
      operations(doc),
      [...routeTable().map((r) => `${r.method} ${r.path}`), 'POST /api/session'].sort(),
      'every route, and the sign-in (which takes the token in its body)',
    );
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        assert.ok(op.summary, `${method} ${path} has a summary`);
        assert.ok(
          Object.keys(op.responses).some((c) => c.startsWith('2')),
          `${method} ${path} documents its success`,
        );
        assert.ok(op.responses['401'], `${method} ${path} documents 401`);
      }
    }
  });

  it('every /api route answers 401 UNAUTHORIZED without a token and with a wrong one', async () => {
    for (const route of routeTable()) {
      for (const headers of [
        {},
        { authorization: 'Bearer tsa_wrong' },
        { authorization: `Basic ${token}` },
      ]) {
        const res = await app.inject({
          method: route.method,
          url: route.url,
          headers,
          ...(route.payload !== undefined && { payload: route.payload as object }),
        });
        assert.equal(res.statusCode, 401, `${route.method} ${route.url} with ${JSON.stringify(headers)}`);
        assert.equal(JSON.parse(res.body).code, 'UNAUTHORIZED');
        assert.equal(res.headers['www-authenticate'], 'Bearer');
      }
    }
    // No route takes the token from the query (it would land in logs and browser history).
    for (const url of [`/api/status?token=${token}`, `/api/events?token=${token}`]) {
      const viaQuery = await app.inject({ method: 'GET', url });
      assert.equal(viaQuery.statusCode, 401, url.replace(token, '<token>'));
    }
  });

  it('the token is stored only as its SHA-256; the plaintext is never in the registry file', async () => {
    assert.match(token, /^tsa_[A-Za-z0-9_-]{43}$/);
    const hash = createHash('sha256').update(token).digest('hex');
    assert.equal(await hub.registry.getSetting(ADMIN_TOKEN_SETTING), hash);
    assert.equal(await ensureAdminToken(hub.registry), undefined, 'shown once: not returned again');

    // A separate hub, so the file can be read after it is closed and checkpointed.
    const other = createHub({
      discovery: false,
      dataDir: join(dir.path, 'hashed'),
      host: '127.0.0.1',
      port: 0,
    });
    await other.start();
    const plain = (await ensureAdminToken(other.registry)) as string;
    const plainHash = createHash('sha256').update(plain).digest('hex');
    await other.stop();
    const files = ['hub.db', 'hub.db-wal', 'hub.db-shm']
      .map((f) => join(dir.path, 'hashed', f))
      .filter((f) => existsSync(f));
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    assert.ok(bytes.includes(plainHash), 'the hash is stored (so the search below can find text)');
    assert.ok(!bytes.includes(plain), 'the token itself is not');
    assert.ok(!bytes.includes(plain.slice(4)), 'nor its random part');
  });

  it('resetting the token retires the old one at once', async () => {
    const first = await resetAdminToken(hub.registry);
    assert.equal((await authed(app, first)({ method: 'GET', url: '/api/status' })).statusCode, 200);
    const second = await resetAdminToken(hub.registry);
    assert.notEqual(first, second);
    assert.equal((await authed(app, first)({ method: 'GET', url: '/api/status' })).statusCode, 401);
    assert.equal((await authed(app, second)({ method: 'GET', url: '/api/status' })).statusCode, 200);
    token = second;
    call = authed(app, token);
  });

  it('wrong tokens are rate-limited per address: 429 RATE_LIMITED, even for the right token, until one refills', async () => {
    const clock = new FakeClock();
    const limited = buildAdminApi(hub, { authFailureLimit: { burst: 3, perMinute: 6 }, clock });
    const from = (remoteAddress: string, bearer: string) =>
      limited.inject({
        method: 'GET',
        url: '/api/status',
        remoteAddress,
        headers: { authorization: `Bearer ${bearer}` },
      });
    for (let i = 0; i < 3; i++) assert.equal((await from('10.0.0.5', 'tsa_guess')).statusCode, 401);
    const blocked = await from('10.0.0.5', 'tsa_guess');
    assert.equal(blocked.statusCode, 429);
    assert.equal(JSON.parse(blocked.body).code, 'RATE_LIMITED');
    assert.equal(blocked.headers['retry-after'], '10');
    assert.equal(
      (await from('10.0.0.5', token)).statusCode,
      429,
      'locked out: a right guess is not confirmed',
    );
    assert.equal((await from('10.0.0.6', token)).statusCode, 200, 'other addresses are not affected');
    // Missing tokens are not guesses and do not count.
    const none = await limited.inject({ method: 'GET', url: '/api/status', remoteAddress: '10.0.0.6' });
    assert.equal(none.statusCode, 401);
    clock.advance(10_000);
    assert.equal((await from('10.0.0.5', token)).statusCode, 200);
    await limited.close();
  });

  it('never writes a token to the log, from the header or the query', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'trace',
      destination: { write: (line: string) => lines.push(line) },
    });
    const logged = buildAdminApi(hub, { logger });
    const secret = await resetAdminToken(hub.registry);
    const wrong = 'tsa_wrong-guess-that-should-not-be-logged';
    await logged.inject({
      method: 'GET',
      url: '/api/status',
      headers: { authorization: `Bearer ${secret}` },
    });
    await logged.inject({ method: 'GET', url: '/api/status', headers: { authorization: `Bearer ${wrong}` } });
    await logged.inject({ method: 'GET', url: `/api/events?token=${wrong}` });
    await logged.inject({ method: 'GET', url: `/api/nothing?token=${secret}` });
    const original = hub.status.bind(hub);
    hub.status = async () => {
      throw new Error('boom');
    };
    await logged.inject({
      method: 'GET',
      url: `/api/status`,
      headers: { authorization: `Bearer ${secret}` },
    });
    hub.status = original;
    await logged.close();
    const text = lines.join('');
    assert.ok(text.includes('wrong token') && text.includes('request failed'), 'the requests were logged');
    assert.ok(!text.includes(secret) && !text.includes(wrong), 'but no token');
    token = secret;
    call = authed(app, token);
  });

  it('a hub that is not started answers 503 NOT_STARTED', async () => {
    const stopped = createHub({
      discovery: false,
      dataDir: join(dir.path, 'never'),
      host: '127.0.0.1',
      port: 0,
    });
    const api = buildAdminApi(stopped);
    const res = await authed(api, token)({ method: 'GET', url: '/api/status' });
    assert.equal(res.statusCode, 503);
    assert.equal(JSON.parse(res.body).code, 'NOT_STARTED');
    await api.close();
  });
});

describe('admin API: status and devices', () => {
  const pendingId = randomDeviceId();

  before(async () => {
    await hub.registry.register({ deviceId: knownDevice, name: 'front desk', group: 'default' });
    await hub.registry.register({ deviceId: pendingId, name: 'laptop 7', group: 'default' });
  });

  it('GET /api/status returns the hub status with its readable ID', async () => {
    const res = await call({ method: 'GET', url: '/api/status' });
    assert.equal(res.statusCode, 200);
    const status = json(s.hubStatus, res.body);
    assert.equal(status.deviceId, hub.deviceId);
    assert.equal(status.readableId, formatDeviceId(hub.deviceId));
    assert.equal(status.syncPort, hub.port);
    assert.ok(status.devices.pending >= 2);
  });

  it('GET /api/devices lists devices and filters by state and group', async () => {
    const all = json(s.devices, (await call({ method: 'GET', url: '/api/devices' })).body).devices;
    assert.ok(all.some((d) => d.deviceId === knownDevice && d.readableId === formatDeviceId(knownDevice)));
    const pending = json(s.devices, (await call({ method: 'GET', url: '/api/devices?state=pending' })).body);
    assert.ok(pending.devices.every((d) => d.state === 'pending'));
    const none = json(s.devices, (await call({ method: 'GET', url: '/api/devices?group=nobody' })).body);
    assert.deepEqual(none.devices, []);
    const bad = await call({ method: 'GET', url: '/api/devices?state=sleeping' });
    assert.equal(bad.statusCode, 400);
    assert.equal(JSON.parse(bad.body).code, 'INVALID_REQUEST');
  });

  it('GET /api/devices/:id accepts the hex and the readable form; unknown is 404, malformed is 400', async () => {
    for (const id of [pendingId, formatDeviceId(pendingId), formatDeviceId(pendingId).toLowerCase()]) {
      const res = await call({ method: 'GET', url: `/api/devices/${id}` });
      assert.equal(res.statusCode, 200, id);
      const d = json(s.deviceDetail, res.body);
      assert.equal(d.deviceId, pendingId);
      assert.equal(d.session, null);
      assert.equal(d.connected, false);
    }
    const unknown = await call({ method: 'GET', url: `/api/devices/${randomDeviceId()}` });
    assert.equal(unknown.statusCode, 404);
    assert.equal(JSON.parse(unknown.body).code, 'DEVICE_NOT_FOUND');
    const typo = formatDeviceId(pendingId).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    const bad = await call({ method: 'GET', url: `/api/devices/${typo}` });
    assert.equal(bad.statusCode, 400);
    assert.equal(JSON.parse(bad.body).code, 'INVALID_DEVICE_ID');
  });

  it('approve and revoke change the registry and publish events; a revoked device cannot be approved', async () => {
    const approved = await call({ method: 'POST', url: `/api/devices/${formatDeviceId(pendingId)}/approve` });
    assert.equal(approved.statusCode, 200);
    assert.equal(json(s.device, approved.body).state, 'approved');
    assert.equal((await hub.registry.get(pendingId as DeviceId))?.state, 'approved');
    assert.ok(events.some((e) => e.type === 'device-approved' && e.deviceId === pendingId));

    const revoked = await call({ method: 'POST', url: `/api/devices/${pendingId}/revoke` });
    assert.equal(revoked.statusCode, 200);
    assert.equal(json(s.device, revoked.body).state, 'revoked');
    assert.equal((await hub.registry.get(pendingId as DeviceId))?.state, 'revoked');
    assert.ok(events.some((e) => e.type === 'device-revoked' && e.deviceId === pendingId));

    const again = await call({ method: 'POST', url: `/api/devices/${pendingId}/approve` });
    assert.equal(again.statusCode, 409);
    assert.equal(JSON.parse(again.body).code, 'DEVICE_REVOKED');
    const missing = await call({ method: 'POST', url: `/api/devices/${randomDeviceId()}/revoke` });
    assert.equal(missing.statusCode, 404);
  });

  it('PATCH renames and moves a device; a bad group changes nothing', async () => {
    await hub.putGroup({ name: 'sales', description: '', read: ['*'], write: ['sales.*'] });
    const res = await call({
      method: 'PATCH',
      url: `/api/devices/${knownDevice}`,
      payload: { name: '  Reception PC ', group: 'sales' },
    });
    assert.equal(res.statusCode, 200);
    const d = json(s.device, res.body);
    assert.equal(d.name, 'Reception PC');
    assert.equal(d.group, 'sales');
    assert.ok(events.some((e) => e.type === 'device-updated' && e.deviceId === knownDevice));

    const badGroup = await call({
      method: 'PATCH',
      url: `/api/devices/${knownDevice}`,
      payload: { name: 'Renamed', group: 'nope' },
    });
    assert.equal(badGroup.statusCode, 404);
    assert.equal(JSON.parse(badGroup.body).code, 'GROUP_NOT_FOUND');
    assert.equal((await hub.registry.get(knownDevice))?.name, 'Reception PC', 'not renamed either');

    const blank = await call({
      method: 'PATCH',
      url: `/api/devices/${knownDevice}`,
      payload: { name: '   ' },
    });
    assert.equal(JSON.parse(blank.body).code, 'INVALID_NAME');
    assert.equal(blank.statusCode, 400);
    const empty = await call({ method: 'PATCH', url: `/api/devices/${knownDevice}`, payload: {} });
    assert.equal(empty.statusCode, 400);
    assert.equal(JSON.parse(empty.body).code, 'INVALID_REQUEST');
  });
});

describe('admin API: pairing codes and groups', () => {
  it('POST /api/pairing-codes issues a code with its QR text; GET lists codes without the secret', async () => {
    const before = Date.now();
    const res = await call({
      method: 'POST',
      url: '/api/pairing-codes',
      payload: { ttlMinutes: 5, group: 'sales' },
    });
    assert.equal(res.statusCode, 201);
    const issued = json(s.pairingCodeIssued, res.body);
    assert.match(issued.code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    assert.equal(issued.group, 'sales');
    assert.ok(issued.expiresAt >= before + 5 * 60_000 && issued.expiresAt <= Date.now() + 5 * 60_000);
    const qr = new URL(issued.qr);
    assert.equal(qr.protocol, 'trosyn-sync:');
    assert.equal(qr.searchParams.get('code'), issued.code);
    assert.equal(qr.searchParams.get('hub'), hub.deviceId);
    assert.equal(qr.searchParams.get('port'), String(hub.port));

    const plain = await call({ method: 'POST', url: '/api/pairing-codes' });
    assert.equal(plain.statusCode, 201, 'no body means the defaults');
    assert.equal(json(s.pairingCodeIssued, plain.body).group, 'default');

    const list = await call({ method: 'GET', url: '/api/pairing-codes' });
    assert.equal(list.statusCode, 200);
    const codes = json(s.pairingCodes, list.body).codes;
    assert.ok(codes.some((c) => c.lookup === issued.code.slice(0, 4) && c.state === 'active'));
    assert.ok(!list.body.includes(issued.code), 'the whole code is never listed');
    assert.ok(!list.body.includes('secret'));

    const noGroup = await call({ method: 'POST', url: '/api/pairing-codes', payload: { group: 'nope' } });
    assert.equal(noGroup.statusCode, 404);
    assert.equal(JSON.parse(noGroup.body).code, 'GROUP_NOT_FOUND');
    const badTtl = await call({ method: 'POST', url: '/api/pairing-codes', payload: { ttlMinutes: 0 } });
    assert.equal(badTtl.statusCode, 400);
    assert.equal(JSON.parse(badTtl.body).code, 'INVALID_REQUEST');
  });

  it('PUT /api/groups/:name creates a group (through the hub: scopes-changed); GET lists it', async () => {
    const res = await call({
      method: 'PUT',
      url: '/api/groups/hr',
      payload: { description: 'Human resources', read: ['hr.*', 'policies'], write: ['hr.*'] },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(s.group, res.body), {
      name: 'hr',
      description: 'Human resources',
      read: ['hr.*', 'policies'],
      write: ['hr.*'],
    });
    assert.ok(events.some((e) => e.type === 'scopes-changed' && e.group === 'hr'));
    const list = json(s.groups, (await call({ method: 'GET', url: '/api/groups' })).body).groups;
    assert.ok(list.some((g) => g.name === 'hr') && list.some((g) => g.name === 'default'));

    const badName = await call({ method: 'PUT', url: '/api/groups/-bad', payload: { read: [], write: [] } });
    assert.equal(badName.statusCode, 400);
    assert.equal(JSON.parse(badName.body).code, 'INVALID_GROUP');
    const missing = await call({ method: 'PUT', url: '/api/groups/x', payload: { read: ['*'] } });
    assert.equal(missing.statusCode, 400);
    assert.equal(JSON.parse(missing.body).code, 'INVALID_REQUEST');
  });

  it('DELETE /api/groups/:name deletes an unused group; refuses the default group and one in use', async () => {
    await call({ method: 'PUT', url: '/api/groups/temp', payload: { read: ['*'], write: [] } });
    const member = randomDeviceId();
    await hub.registry.register({ deviceId: member, name: 'temp-pc', group: 'temp' });
    const inUse = await call({ method: 'DELETE', url: '/api/groups/temp' });
    assert.equal(inUse.statusCode, 409);
    assert.deepEqual(
      { code: JSON.parse(inUse.body).code, details: JSON.parse(inUse.body).details },
      { code: 'GROUP_IN_USE', details: { group: 'temp', devices: 1, activeCodes: 0 } },
    );
    assert.match(JSON.parse(inUse.body).message, /1 device\(s\) are in it/);
    await hub.updateDevice(member, { group: 'default' });
    const issued = await call({ method: 'POST', url: '/api/pairing-codes', payload: { group: 'temp' } });
    assert.equal(issued.statusCode, 201);
    const codeHolds = await call({ method: 'DELETE', url: '/api/groups/temp' });
    assert.equal(JSON.parse(codeHolds.body).code, 'GROUP_IN_USE', 'an active code would put a device in it');
    assert.match(JSON.parse(codeHolds.body).message, /active pairing code/);
    assert.ok(
      (await hub.listGroups()).some((g) => g.name === 'temp'),
      'nothing was deleted',
    );

    const defaultGroup = await call({ method: 'DELETE', url: '/api/groups/default' });
    assert.equal(defaultGroup.statusCode, 409);
    assert.equal(JSON.parse(defaultGroup.body).code, 'GROUP_IS_DEFAULT');

    await call({ method: 'PUT', url: '/api/groups/unused', payload: { read: ['*'], write: [] } });
    events.length = 0;
    const deleted = await call({ method: 'DELETE', url: '/api/groups/unused' });
    assert.equal(deleted.statusCode, 204);
    assert.ok(!(await hub.listGroups()).some((g) => g.name === 'unused'));
    assert.ok(events.some((e) => e.type === 'scopes-changed' && e.group === 'unused' && e.deleted === true));
    const again = await call({ method: 'DELETE', url: '/api/groups/unused' });
    assert.equal(again.statusCode, 404);
    assert.equal(JSON.parse(again.body).code, 'GROUP_NOT_FOUND');
    const badName = await call({ method: 'DELETE', url: `/api/groups/${'x'.repeat(65)}` });
    assert.equal(badName.statusCode, 400);
  });
});

describe('admin API: records and conflicts', () => {
  it('lists collections and pages through records with a next cursor', async () => {
    for (let i = 0; i < 5; i++) await hub.replica.put('notes', `n${i}`, { i });
    const cols = json(shared.collections, (await call({ method: 'GET', url: '/api/collections' })).body);
    assert.ok(cols.collections.includes('notes'));

    const seen: string[] = [];
    let url = '/api/records/notes?limit=2';
    let pages = 0;
    for (;;) {
      const res = await call({ method: 'GET', url });
      assert.equal(res.statusCode, 200);
      const page = json(shared.recordsPage, res.body);
      seen.push(...page.records.map((r) => r.id));
      pages++;
      if (page.next === null) break;
      url = `/api/records/notes?limit=2&after=${encodeURIComponent(page.next)}`;
    }
    assert.deepEqual(seen, ['n0', 'n1', 'n2', 'n3', 'n4']);
    assert.equal(pages, 3);
    const bad = await call({ method: 'GET', url: '/api/records/notes?limit=0' });
    assert.equal(bad.statusCode, 400);
  });

  it('gets a record and its history; ids with slashes work URL-encoded; unknown is 404', async () => {
    await hub.replica.put('notes', 'a/b c', { v: 1 });
    await hub.replica.put('notes', 'a/b c', { v: 2 });
    const one = await call({ method: 'GET', url: `/api/records/notes/${encodeURIComponent('a/b c')}` });
    assert.equal(one.statusCode, 200);
    assert.deepEqual(json(shared.recordView, one.body).body, { v: 2 });
    const hist = await call({
      method: 'GET',
      url: `/api/records/notes/${encodeURIComponent('a/b c')}/history`,
    });
    assert.equal(hist.statusCode, 200);
    const entries = json(shared.history, hist.body).history;
    assert.deepEqual(
      entries.map((e) => e.body),
      [{ v: 1 }, { v: 2 }],
    );
    assert.equal(entries[1]?.current, true);
    for (const url of ['/api/records/notes/nope', '/api/records/notes/nope/history']) {
      const res = await call({ method: 'GET', url });
      assert.equal(res.statusCode, 404);
      assert.equal(JSON.parse(res.body).code, 'RECORD_NOT_FOUND');
    }
  });

  it('lists open conflicts and resolves one; resolving again is 409 NO_CONFLICT', async () => {
    await makeConflict(hub.replica, dir.path, collections, 'tickets', 't1');
    const res = await call({ method: 'GET', url: '/api/conflicts?status=open&collection=tickets' });
    assert.equal(res.statusCode, 200);
    const open = json(shared.conflicts, res.body).conflicts;
    assert.equal(open.length, 1);
    const c = open[0] as (typeof open)[number];
    assert.equal(c.heads.length, 2);
    assert.ok(events.some((e) => e.type === 'conflict-opened' && e.id === 't1'));

    const both = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      payload: { rev: c.heads[0], body: {} },
    });
    assert.equal(both.statusCode, 400);
    assert.equal(JSON.parse(both.body).code, 'INVALID_REQUEST');

    const loser = c.heads.find((h) => h !== c.winner) as string;
    const resolved = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      payload: { rev: loser.slice(0, 12) },
    });
    assert.equal(resolved.statusCode, 200);
    const write = json(shared.writeResult, resolved.body);
    assert.equal(write.record.conflict, 'none');
    assert.equal(
      json(shared.conflicts, (await call({ method: 'GET', url: '/api/conflicts?status=open' })).body)
        .conflicts.length,
      0,
    );
    const again = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      payload: { rev: loser },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(JSON.parse(again.body).code, 'NO_CONFLICT');
  });
});

describe('admin API: a conflict in detail, and revert', () => {
  it('a conflict comes with its sides, their common ancestor and, once settled, the resolution', async () => {
    // The hub and a desk share a base, then both edit it before they sync again.
    const desk = await openReplica({
      path: join(dir.path, 'desk-detail.db'),
      deviceId: randomDeviceId(),
      collections,
      synchronous: 'off',
    });
    const base = await hub.replica.put('tickets', 'detail', { title: 'Laptop', status: 'new', owner: 'ana' });
    await transfer(hub.replica, desk);
    const ours = await hub.replica.put('tickets', 'detail', {
      title: 'Laptop',
      status: 'approved',
      owner: 'ana',
    });
    const theirs = await desk.put('tickets', 'detail', { title: 'Laptop 14"', status: 'new', owner: 'ana' });
    await transfer(desk, hub.replica);
    await desk.stop();
    const list = json(
      shared.conflicts,
      (await call({ method: 'GET', url: '/api/conflicts?status=open&collection=tickets' })).body,
    ).conflicts.filter((c) => c.id === 'detail');
    assert.equal(list.length, 1);
    const entry = list[0] as (typeof list)[number];

    const res = await call({ method: 'GET', url: `/api/conflicts/${entry.conflictId}` });
    assert.equal(res.statusCode, 200);
    const detail = json(shared.conflictDetail, res.body);
    assert.deepEqual(detail.conflict, entry);
    assert.deepEqual(
      detail.sides.map((side) => side.rev),
      entry.heads,
      'one side per head, in the order of the heads',
    );
    assert.deepEqual(
      detail.sides.map((side) => side.body?.['status']).sort(),
      ['approved', 'new'],
      'each side with its body',
    );
    assert.equal(detail.ancestor?.rev, base.rev, 'the base both sides edited');
    assert.deepEqual(detail.ancestor?.body, { title: 'Laptop', status: 'new', owner: 'ana' });
    assert.equal(detail.resolution, null, 'open: no resolution yet');
    assert.ok(detail.sides.some((side) => side.rev === ours.rev));
    assert.ok(detail.sides.some((side) => side.rev === theirs.rev));

    const resolved = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/detail/resolve',
      payload: { body: { title: 'Laptop 14"', status: 'approved', owner: 'ana' } },
    });
    assert.equal(resolved.statusCode, 200);
    const settled = json(
      shared.conflictDetail,
      (await call({ method: 'GET', url: `/api/conflicts/${entry.conflictId}` })).body,
    );
    assert.equal(settled.conflict.status, 'resolved');
    assert.equal(settled.resolution?.rev, json(shared.writeResult, resolved.body).rev);
    assert.deepEqual(settled.resolution?.body, { title: 'Laptop 14"', status: 'approved', owner: 'ana' });
    assert.equal(settled.ancestor?.rev, base.rev, 'the sides and their ancestor stay');
  });

  it('a conflict of a record created on two devices has no ancestor; unknown is 404, malformed 400', async () => {
    await makeConflict(hub.replica, dir.path, collections, 'tickets', 'twice');
    const entry = json(
      shared.conflicts,
      (await call({ method: 'GET', url: '/api/conflicts?collection=tickets' })).body,
    ).conflicts.find((c) => c.id === 'twice');
    assert.ok(entry);
    const detail = json(
      shared.conflictDetail,
      (await call({ method: 'GET', url: `/api/conflicts/${entry.conflictId}` })).body,
    );
    assert.equal(detail.ancestor, null);
    assert.equal(detail.sides.length, 2);

    const unknown = await call({ method: 'GET', url: '/api/conflicts/999999' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(JSON.parse(unknown.body).code, 'CONFLICT_NOT_FOUND');
    for (const bad of ['abc', '0', '1.5']) {
      const res = await call({ method: 'GET', url: `/api/conflicts/${bad}` });
      assert.equal(res.statusCode, 400, bad);
      assert.equal(JSON.parse(res.body).code, 'INVALID_REQUEST', bad);
    }
  });

  it('revert writes an old revision again as a new revision by the hub; a tombstone deletes', async () => {
    const first = await hub.replica.put('notes', 'rev-me', { text: 'first' });
    await hub.replica.put('notes', 'rev-me', { text: 'second' });
    const res = await call({
      method: 'POST',
      url: '/api/records/notes/rev-me/revert',
      payload: { rev: first.rev.slice(0, 8) },
    });
    assert.equal(res.statusCode, 200);
    const write = json(shared.writeResult, res.body);
    assert.notEqual(write.rev, first.rev, 'a new revision, not the old one');
    assert.deepEqual(write.record.body, { text: 'first' });
    const history = json(
      shared.history,
      (await call({ method: 'GET', url: '/api/records/notes/rev-me/history' })).body,
    ).history;
    assert.equal(history.length, 3);
    assert.equal(history[2]?.author, hub.deviceId, 'written as the hub');
    assert.equal(history[2]?.current, true);

    await hub.replica.delete('notes', 'rev-me');
    const tombstone = (await hub.replica.history('notes', 'rev-me')).at(-1);
    await hub.replica.put('notes', 'rev-me', { text: 'back' });
    const deleted = await call({
      method: 'POST',
      url: '/api/records/notes/rev-me/revert',
      payload: { rev: tombstone?.rev },
    });
    assert.equal(deleted.statusCode, 200);
    assert.equal(json(shared.writeResult, deleted.body).record.deleted, true);

    for (const [payload, status, code] of [
      [{ rev: 'ffffffff' }, 404, 'REVISION_NOT_FOUND'],
      [{ rev: 'ab' }, 400, 'INVALID_REQUEST'],
      [{}, 400, 'INVALID_REQUEST'],
    ] as const) {
      const bad = await call({ method: 'POST', url: '/api/records/notes/rev-me/revert', payload });
      assert.equal(bad.statusCode, status, JSON.stringify(payload));
      assert.equal(JSON.parse(bad.body).code, code, JSON.stringify(payload));
    }
    const missing = await call({
      method: 'POST',
      url: '/api/records/notes/never/revert',
      payload: { rev: first.rev },
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(JSON.parse(missing.body).code, 'RECORD_NOT_FOUND');
  });
});

describe('admin API: errors', () => {
  it('an unexpected failure is 500 INTERNAL_ERROR with a request ID and nothing of the cause', async () => {
    const original = hub.status.bind(hub);
    hub.status = async () => {
      throw new Error('disk /srv/secret-path exploded');
    };
    try {
      const res = await call({ method: 'GET', url: '/api/status' });
      assert.equal(res.statusCode, 500);
      const body = JSON.parse(res.body) as { code: string; message: string; details: { requestId: string } };
      assert.equal(body.code, 'INTERNAL_ERROR');
      assert.ok(body.details.requestId);
      assert.ok(!res.body.includes('secret-path'));
    } finally {
      hub.status = original;
    }
  });

  it('unknown routes are 404 ROUTE_NOT_FOUND, bad JSON is 400 INVALID_REQUEST, and errors are JSON', async () => {
    const unknown = await call({ method: 'GET', url: '/api/nothing-here?token=abc' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(JSON.parse(unknown.body).code, 'ROUTE_NOT_FOUND');
    assert.ok(!unknown.body.includes('abc'), 'the query is not echoed');
    const badJson = await call({
      method: 'PUT',
      url: '/api/groups/x',
      headers: { 'content-type': 'application/json' },
      payload: '{"read": [',
    });
    assert.equal(badJson.statusCode, 400);
    assert.equal(JSON.parse(badJson.body).code, 'INVALID_REQUEST');
    assert.match(String(badJson.headers['content-type']), /^application\/json/);
  });
});
