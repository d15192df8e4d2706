/**
 * The admin routes against a fake AdminPort, through fastify's inject(): no hub, no
 * TLS, no socket. Each route is checked to call the port's one operation for it
 * (so every change takes the path that records and publishes it) and to answer in
 * its documented shape.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import type { ContentProgress, PeerTransfer } from '../../src/files/content-sync.js';
import { FileStore } from '../../src/files/file-store.js';
import { NodeFiles } from '../../src/files/node-files.js';
import { fileHistory, fileList } from '../../src/http/schemas.js';
import { openReplica } from '../../src/index.js';
import type { AdminPort } from '../../src/hub/admin-api/port.js';
import * as s from '../../src/hub/admin-api/schemas.js';
import { buildAdminApi } from '../../src/hub/admin-api/server.js';
import type { HubEvent, HubStatus } from '../../src/hub/events.js';
import type { DeviceRecord, GroupRecord } from '../../src/hub/registry-backend.js';
import { RegistryError } from '../../src/hub/registry.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { EMPTY_POLICY } from '../../src/sync/policy.js';
import type { SettingsChange } from '../../src/hub/settings.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import type { Replica } from '../../src/sync/replica.js';
import { MemorySignInStore } from '../fixtures/sign-in-store.js';
import { fixedClock, tempDir } from '../helpers.js';
import { authed, noise } from './helpers.js';

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
  async deleteGroup(name: string) {
    this.calls.push(`deleteGroup ${name}`);
    if (name === 'default')
      throw new RegistryError('GROUP_IS_DEFAULT', 'the default group cannot be deleted');
    this.groups = this.groups.filter((g) => g.name !== name);
  }
  policy = { ...EMPTY_POLICY };
  requireApproval = false;
  async settings() {
    this.calls.push('settings');
    return { requireApproval: this.requireApproval, policy: this.policy };
  }
  async updateSettings(change: SettingsChange) {
    this.calls.push(`updateSettings ${JSON.stringify(change)}`);
    if (change.requireApproval !== undefined) this.requireApproval = change.requireApproval;
    const { requireApproval: _a, ...policy } = change;
    this.policy = { ...this.policy, ...policy, version: this.policy.version + 1 };
    return { requireApproval: this.requireApproval, policy: this.policy, resettled: 0 };
  }
  async deviceSync(deviceId: DeviceId) {
    this.calls.push(`deviceSync ${deviceId.slice(0, 8)}`);
    return {
      hubLatestSeq: 12,
      caughtUp: null,
      toDevice: { ackedUpTo: 10, behind: 2 },
      fromDevice: { appliedUpTo: 4, deviceLatest: null, behind: null },
      lastError: { at: 3, code: 'HEARTBEAT_TIMEOUT', message: 'no answer' },
      refusedByHub: {
        at: 2,
        total: 1,
        latest: [{ rev: 'r1', collection: 'hr', id: 'x', code: 'SCOPE_WRITE_DENIED', message: 'no' }],
      },
      refusedByDevice: null,
      lastSessionEndedAt: 3,
      clock: { offsetMs: -600_000, rttMs: 2, at: 3 },
      throttled: { since: 1, until: 2, batches: 3, revisions: 40, heldMs: 900 },
    };
  }
  deviceClock(deviceId: DeviceId) {
    return deviceId === known ? { offsetMs: -600_000, rttMs: 2, at: 3 } : null;
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
  backupNow(): never {
    throw new Error('backups are tested with a real hub (test/ops/backup-schedule.test.ts)');
  }
  metricsText(): never {
    throw new Error('the metrics are tested with a real hub (test/observability/metrics.test.ts)');
  }
  get eventLog(): never {
    throw new Error('the event routes are tested with a real hub (test/api/event-log.test.ts)');
  }
  metricsHistory(window: '1h' | '24h') {
    this.calls.push(`metricsHistory ${window}`);
    return { window, stepMs: 10_000, samples: [] };
  }
  /** Real files over a real replica and chunk store, set by the file tests. */
  nodeFiles: NodeFiles | undefined;
  get files(): NodeFiles {
    if (!this.nodeFiles) throw new Error('no files in this test');
    return this.nodeFiles;
  }
  transfers: { progress: ContentProgress; devices: PeerTransfer[] } = {
    progress: { pending: 0, bytesHere: 0, bytesTotal: 0, busy: false, files: [] },
    devices: [],
  };
  fileTransfers() {
    this.calls.push('fileTransfers');
    return this.transfers;
  }
  readonly signIns = new MemorySignInStore();
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
      const listed = s.devices.parse(JSON.parse(list.body)).devices;
      assert.equal(listed.length, 1);
      assert.deepEqual(listed[0]?.clock, port.deviceClock(known), "the device's clock as the port gave it");
      const one = await call({ method: 'GET', url: `/api/devices/${formatDeviceId(known)}` });
      const detail = s.deviceDetail.parse(JSON.parse(one.body));
      assert.equal(detail.deviceId, known);
      assert.deepEqual(detail.sync, await port.deviceSync(known), 'the sync report as the port gave it');
    })();
    assert.deepEqual(calls, [
      'status',
      'listDevices {"state":"pending","group":"default"}',
      `getDevice ${known.slice(0, 8)}`,
      `deviceSync ${known.slice(0, 8)}`,
      `deviceSync ${known.slice(0, 8)}`,
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
      const deleted = await call({ method: 'DELETE', url: '/api/groups/hr' });
      assert.equal(deleted.statusCode, 204);
      assert.equal(deleted.body, '');
      const refused = await call({ method: 'DELETE', url: '/api/groups/default' });
      assert.equal(refused.statusCode, 409);
      assert.equal(JSON.parse(refused.body).code, 'GROUP_IS_DEFAULT');
    })();
    assert.deepEqual(calls, [
      'issuePairingCode {"ttlMs":300000,"group":"hr"}',
      'listPairingCodes',
      'listGroups',
      'putGroup hr',
      'deleteGroup hr',
      'deleteGroup default',
    ]);
  });

  it('settings go through the port; a bad change is 400 before it reaches the port', async () => {
    const calls = await took(async () => {
      const got = await call({ method: 'GET', url: '/api/settings' });
      assert.equal(s.settings.parse(JSON.parse(got.body)).policy.version, port.policy.version);
      const put = await call({
        method: 'PUT',
        url: '/api/settings',
        payload: { collections: { tickets: { conflict: 'manual' } }, requireApproval: true },
      });
      assert.equal(put.statusCode, 200);
      assert.deepEqual(s.settings.parse(JSON.parse(put.body)).policy.collections, {
        tickets: { conflict: 'manual' },
      });
      for (const payload of [
        { collections: { tickets: { conflict: 'newest' } } },
        { retention: { maxRevisions: 0 } },
        { hubOnly: [''] },
      ]) {
        const bad = await call({ method: 'PUT', url: '/api/settings', payload });
        assert.equal(bad.statusCode, 400, JSON.stringify(payload));
      }
    })();
    assert.deepEqual(calls, [
      'settings',
      'updateSettings {"collections":{"tickets":{"conflict":"manual"}},"requireApproval":true}',
    ]);
  });

  it('on loopback it answers only to loopback names (a DNS-rebinding page is refused); signed out, an unknown /api path is 401', async () => {
    for (const host of ['127.0.0.1:17701', 'localhost:17701', '[::1]:17701', 'localhost']) {
      const ok = await call({ method: 'GET', url: '/api/status', headers: { host } });
      assert.equal(ok.statusCode, 200, host);
    }
    for (const host of ['evil.example:17701', 'evil.example', '10.0.0.5:17701']) {
      for (const url of ['/api/status', '/']) {
        const refused = await call({ method: 'GET', url, headers: { host } });
        assert.equal(refused.statusCode, 403, `${host} ${url}`);
        assert.equal(JSON.parse(refused.body).code, 'HOST_NOT_ALLOWED');
      }
    }
    // Listening on every address (HTTPS on the LAN), any name is the admin's to use.
    const lan = buildAdminApi(port, { host: '::', clock: fixedClock(() => 1) });
    const named = await authed(
      lan,
      TOKEN,
    )({ method: 'GET', url: '/api/status', headers: { host: 'hub.office:17701' } });
    assert.equal(named.statusCode, 200);
    await lan.close();

    const signedOut = await app.inject({ method: 'GET', url: '/api/no-such-thing' });
    assert.equal(signedOut.statusCode, 401);
    assert.equal(JSON.parse(signedOut.body).code, 'UNAUTHORIZED');
    const signedIn = await call({ method: 'GET', url: '/api/no-such-thing' });
    assert.equal(signedIn.statusCode, 404);
    assert.equal(JSON.parse(signedIn.body).code, 'ROUTE_NOT_FOUND');
    const wrongMethod = await call({ method: 'DELETE', url: '/api/status' });
    assert.equal(wrongMethod.statusCode, 405);
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

describe('admin file routes over a fake port with real files', () => {
  const dir = tempDir('trosyn-admin-files-');
  const port = new FakeAdminPort();
  const app = buildAdminApi(port, { clock: fixedClock(() => 1) });
  const call = authed(app, TOKEN);
  let replica: Replica;
  let chunks: DiskChunkStore;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const v1 = noise(200_000, 5);
  const v2 = noise(150_000, 6);

  before(async () => {
    replica = await openReplica({ path: ':memory:', deviceId: randomDeviceId() });
    chunks = new DiskChunkStore({ dir: join(dir.path, 'chunks'), fsync: false });
    await chunks.start();
    port.nodeFiles = new NodeFiles(replica, new FileStore(chunks));
    const chunked = async function* (bytes: Buffer) {
      yield bytes;
    };
    await port.nodeFiles.putStream(chunked(v1), { name: 'policies/handbook.pdf' });
    await port.nodeFiles.putStream(chunked(v2), { name: 'policies/handbook.pdf' });
  });
  after(async () => {
    await app.close();
    await chunks.stop();
    await replica.stop();
    dir.remove();
  });

  it('lists the hub’s files and a file’s versions, with whether each is here', async () => {
    const list = fileList.parse(JSON.parse((await call({ method: 'GET', url: '/api/files' })).body));
    assert.deepEqual(
      list.files.map((f) => [f.name, f.sha256, f.here, f.type]),
      [['policies/handbook.pdf', sha(v2), true, 'application/pdf']],
    );
    const history = fileHistory.parse(
      JSON.parse((await call({ method: 'GET', url: '/api/files/policies%2Fhandbook.pdf/history' })).body),
    );
    assert.deepEqual(
      history.history.map((h) => h.file?.sha256),
      [sha(v1), sha(v2)],
    );
    const other = await call({ method: 'GET', url: '/api/files?collection=nothing' });
    assert.deepEqual(JSON.parse(other.body), { files: [] });
  });

  it('downloads a version whole or by range, as the local API does', async () => {
    const url = '/api/files/policies%2Fhandbook.pdf/content';
    const whole = await call({ method: 'GET', url });
    assert.equal(whole.statusCode, 200);
    assert.ok(whole.rawPayload.equals(v2));
    assert.equal(whole.headers['etag'], `"${sha(v2)}"`);
    const [firstRev] = fileHistory.parse(
      JSON.parse((await call({ method: 'GET', url: '/api/files/policies%2Fhandbook.pdf/history' })).body),
    ).history;
    const old = await call({
      method: 'GET',
      url: `${url}?rev=${firstRev?.rev.slice(0, 6)}`,
      headers: { range: 'bytes=-500' },
    });
    assert.equal(old.statusCode, 206);
    assert.equal(old.headers['content-range'], `bytes ${v1.length - 500}-${v1.length - 1}/${v1.length}`);
    assert.ok(old.rawPayload.equals(v1.subarray(v1.length - 500)));
    const outside = await call({ method: 'GET', url, headers: { range: `bytes=${v2.length}-` } });
    assert.equal(outside.statusCode, 416);
    assert.equal(outside.headers['content-range'], `bytes */${v2.length}`);
    const bad = await call({ method: 'GET', url: '/api/files/a%2F..%2Fb/content' });
    assert.equal(bad.statusCode, 400);
    assert.equal(JSON.parse(bad.body).code, 'INVALID_FILE_NAME');
  });

  it('transfers: the port’s progress, each device with its readable ID; the hub has no upload route', async () => {
    const peer = randomDeviceId();
    port.transfers = {
      progress: {
        pending: 1,
        bytesHere: 5,
        bytesTotal: 50,
        busy: true,
        files: [{ collection: 'files', name: 'x.pdf', rev: 'a'.repeat(64), bytesHere: 5, bytesTotal: 50 }],
      },
      devices: [{ peer, bytesIn: 5, bytesOut: 7, waiting: 1 }],
    };
    port.calls.length = 0;
    const res = await call({ method: 'GET', url: '/api/files/transfers' });
    assert.equal(res.statusCode, 200);
    const body = s.fileTransfers.parse(JSON.parse(res.body));
    assert.deepEqual(body.progress, port.transfers.progress);
    assert.deepEqual(body.devices, [
      { deviceId: peer, readableId: formatDeviceId(peer), name: null, bytesIn: 5, bytesOut: 7, waiting: 1 },
    ]);
    assert.deepEqual(port.calls, ['fileTransfers']);
    const put = await call({ method: 'PUT', url: '/api/files/x.pdf', payload: Buffer.from('x') });
    assert.equal(put.statusCode, 404, 'files are written on the devices, not through the admin API');
  });
});
