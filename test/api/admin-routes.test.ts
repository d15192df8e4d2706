/**
 * The admin routes against a fake AdminPort, through fastify's inject(): no hub, no
 * TLS, no socket. Each route is checked to call the port's one operation for it
 * (so every change takes the path that records and publishes it) and to answer in
 * its documented shape.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AdminPort } from '../../src/hub/admin-api/port.js';
import * as s from '../../src/hub/admin-api/schemas.js';
import { buildAdminApi } from '../../src/hub/admin-api/server.js';
import type { HubEvent, HubStatus } from '../../src/hub/events.js';
import type { DeviceRecord, GroupRecord } from '../../src/hub/registry-backend.js';
import { RegistryError } from '../../src/hub/registry.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import { fixedClock } from '../helpers.js';
import { authed } from './helpers.js';

const TOKEN = 'tsa_fake-token';
const known = randomDeviceId() as DeviceId;

function record(deviceId: DeviceId, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    deviceId,
    name: 'front desk',
    group: 'default',
    state: 'pending',
    firstSeen: 1,
    lastSeen: null,
    lastAddress: null,
    appVersion: null,
    pairedAt: 1,
    revokedAt: null,
    ...over,
  };
}

/** An AdminPort that keeps its state in memory and writes down every call. */
class FakeAdminPort implements AdminPort {
  readonly calls: string[] = [];
  started = true;
  devices = new Map<DeviceId, DeviceRecord>([[known, record(known)]]);
  groups: GroupRecord[] = [{ name: 'default', description: '', read: ['*'], write: ['*'] }];
  listeners = new Set<(e: HubEvent) => void>();

  isStarted(): boolean {
    return this.started;
  }
  async status(): Promise<HubStatus> {
    this.calls.push('status');
    return {
      deviceId: known,
      name: 'fake hub',
      version: '0.0.0',
      startedAt: 1,
      syncPort: 17700,
      devices: { approved: 0, pending: 1, revoked: 0 },
      connected: [],
      store: { records: 0, revisions: 0, latestSeq: 0 as never, openConflicts: 0 },
      discovery: [],
    };
  }
  async listDevices(filter: { state?: DeviceRecord['state']; group?: string } = {}) {
    this.calls.push(`listDevices ${JSON.stringify(filter)}`);
    return [...this.devices.values()];
  }
  async getDevice(deviceId: DeviceId) {
    this.calls.push(`getDevice ${deviceId.slice(0, 8)}`);
    return this.devices.get(deviceId);
  }
  connectedChildren() {
    return [];
  }
  async approve(deviceId: DeviceId) {
    this.calls.push(`approve ${deviceId.slice(0, 8)}`);
    const d = record(deviceId, { state: 'approved' });
    this.devices.set(deviceId, d);
    return d;
  }
  async revoke(deviceId: DeviceId) {
    this.calls.push(`revoke ${deviceId.slice(0, 8)}`);
    const d = record(deviceId, { state: 'revoked', revokedAt: 2 });
    this.devices.set(deviceId, d);
    return d;
  }
  async updateDevice(deviceId: DeviceId, change: { name?: string; group?: string }) {
    this.calls.push(`updateDevice ${deviceId.slice(0, 8)} ${JSON.stringify(change)}`);
    if (change.group === 'nope')
      throw new RegistryError('GROUP_NOT_FOUND', 'no group "nope"; create it first');
    const d = { ...(this.devices.get(deviceId) as DeviceRecord), ...change };
    this.devices.set(deviceId, d);
    return d;
  }
  async listGroups() {
    this.calls.push('listGroups');
    return this.groups;
  }
  async putGroup(group: GroupRecord) {
    this.calls.push(`putGroup ${group.name}`);
    this.groups.push(group);
    return group;
  }
  async issuePairingCode(options: { ttlMs?: number; group?: string }) {
    this.calls.push(`issuePairingCode ${JSON.stringify(options)}`);
    return {
      code: 'AAAA-BBBB-CCCC',
      expiresAt: 5,
      group: options.group ?? 'default',
      qr: 'trosyn-sync://pair?x',
    };
  }
  async listPairingCodes() {
    this.calls.push('listPairingCodes');
    return [];
  }
  subscribe(listener: (e: HubEvent) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  records(): never {
    throw new Error('the record routes are tested with a real replica elsewhere');
  }
  async verifyAdminToken(token: string) {
    return token === TOKEN;
  }
  async ensureAdminToken() {
    return undefined;
  }
}

describe('admin routes over a fake port', () => {
  const port = new FakeAdminPort();
  const app = buildAdminApi(port, { clock: fixedClock(() => 1) });
  const call = authed(app, TOKEN);
  after(() => app.close());
  const took = (fn: () => Promise<unknown>) => async () => {
    port.calls.length = 0;
    await fn();
    return [...port.calls];
  };

  it('status and devices read through the port', async () => {
    const calls = await took(async () => {
      const status = await call({ method: 'GET', url: '/api/status' });
      assert.equal(status.statusCode, 200);
      assert.equal(s.hubStatus.parse(JSON.parse(status.body)).readableId, formatDeviceId(known));
      const list = await call({ method: 'GET', url: '/api/devices?state=pending&group=default' });
      assert.equal(s.devices.parse(JSON.parse(list.body)).devices.length, 1);
      const one = await call({ method: 'GET', url: `/api/devices/${formatDeviceId(known)}` });
      assert.equal(s.deviceDetail.parse(JSON.parse(one.body)).deviceId, known);
    })();
    assert.deepEqual(calls, [
      'status',
      'listDevices {"state":"pending","group":"default"}',
      `getDevice ${known.slice(0, 8)}`,
    ]);
  });

  it('approve, revoke and a patch are one port call each', async () => {
    const short = known.slice(0, 8);
    const calls = await took(async () => {
      assert.equal((await call({ method: 'POST', url: `/api/devices/${known}/approve` })).statusCode, 200);
      const patched = await call({
        method: 'PATCH',
        url: `/api/devices/${known}`,
        payload: { name: 'reception', group: 'hr' },
      });
      assert.equal(JSON.parse(patched.body).name, 'reception');
      const refused = await call({
        method: 'PATCH',
        url: `/api/devices/${known}`,
        payload: { group: 'nope' },
      });
      assert.equal(refused.statusCode, 404);
      assert.equal(JSON.parse(refused.body).code, 'GROUP_NOT_FOUND');
      assert.equal((await call({ method: 'POST', url: `/api/devices/${known}/revoke` })).statusCode, 200);
    })();
    assert.deepEqual(calls, [
      `getDevice ${short}`,
      `approve ${short}`,
      `getDevice ${short}`,
      `updateDevice ${short} {"name":"reception","group":"hr"}`,
      `getDevice ${short}`,
      `updateDevice ${short} {"group":"nope"}`,
      `getDevice ${short}`,
      `revoke ${short}`,
    ]);
  });

  it('an unknown device is 404 before anything changes', async () => {
    const calls = await took(async () => {
      const res = await call({ method: 'POST', url: `/api/devices/${randomDeviceId()}/approve` });
      assert.equal(res.statusCode, 404);
      assert.equal(JSON.parse(res.body).code, 'DEVICE_NOT_FOUND');
    })();
    assert.equal(calls.length, 1);
    assert.match(calls[0] as string, /^getDevice /);
  });

  it('pairing codes and groups go through the port', async () => {
    const calls = await took(async () => {
      const issued = await call({
        method: 'POST',
        url: '/api/pairing-codes',
        payload: { ttlMinutes: 5, group: 'hr' },
      });
      assert.equal(issued.statusCode, 201);
      assert.equal(s.pairingCodeIssued.parse(JSON.parse(issued.body)).qr, 'trosyn-sync://pair?x');
      await call({ method: 'GET', url: '/api/pairing-codes' });
      await call({ method: 'GET', url: '/api/groups' });
      const put = await call({
        method: 'PUT',
        url: '/api/groups/hr',
        payload: { read: ['hr.*'], write: [] },
      });
      assert.deepEqual(JSON.parse(put.body), { name: 'hr', description: '', read: ['hr.*'], write: [] });
    })();
    assert.deepEqual(calls, [
      'issuePairingCode {"ttlMs":300000,"group":"hr"}',
      'listPairingCodes',
      'listGroups',
      'putGroup hr',
    ]);
  });

  it('the token is the port’s to check; a port not started answers 503 before any check', async () => {
    const wrong = await authed(app, 'tsa_wrong')({ method: 'GET', url: '/api/status' });
    assert.equal(wrong.statusCode, 401);
    port.started = false;
    try {
      const calls = await took(async () => {
        const res = await call({ method: 'GET', url: '/api/status' });
        assert.equal(res.statusCode, 503);
        assert.equal(JSON.parse(res.body).code, 'NOT_STARTED');
      })();
      assert.deepEqual(calls, []);
    } finally {
      port.started = true;
    }
  });
});
