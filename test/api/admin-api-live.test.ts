import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { AdminApiServer, ensureAdminToken } from '../../src/hub/admin-api/server.js';
import { deviceDetail } from '../../src/hub/admin-api/schemas.js';
import { childOf, pairedChildOf, startTestHub, testHub } from '../fixtures/nodes.js';
import type { Hub, HubInit } from '../../src/hub/hub.js';
import { nodeReplica } from '../../src/sync/node-replica.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import { loadOrCreateIdentity } from '../../src/transport/identity.js';
import { eventually, tempDir } from '../helpers.js';
import { SseClient } from './helpers.js';

const dir = tempDir('trosyn-admin-live-');
after(() => dir.remove());
let n = 0;

const startHub = (options: Partial<HubInit> = {}) => startTestHub(join(dir.path, `hub-${++n}`), options);
const childFor = (hub: Hub, dataDir: string) => childOf(hub, dataDir, { name: 'reception' });

describe('admin API over a real socket, with a hub and a child over mutual TLS', () => {
  it('streams hub events as SSE; approve lets a child in, revoke disconnects it; the listener goes away with the client', async () => {
    const hub = await startHub({ requireApproval: true });
    const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0, eventHeartbeatMs: 200 });
    await server.start();
    const token = server.takeCreatedToken() as string;
    assert.ok(token, 'the first start creates the admin token');
    const base = `http://127.0.0.1:${server.port}`;
    const headers = { authorization: `Bearer ${token}` };
    const baseline = hub.eventLog.subscribers;

    const stream = new SseClient(`${base}/api/events`, headers);
    await eventually(() => stream.comments.includes('connected'), 5000, 'the stream opened');
    assert.equal(hub.eventLog.subscribers, baseline + 1);
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    await eventually(() => stream.comments.includes('heartbeat'), 5000, 'a heartbeat comment');

    // A paired device waiting for approval: the hub refuses it until an admin approves.
    const childDir = join(dir.path, 'child');
    // Made as `trosyn-sync pair` makes a new node: its identity together with its store.
    const childId = (await loadOrCreateIdentity(join(childDir, 'identity'))).deviceId;
    const store = nodeReplica({ dataDir: childDir, deviceId: childId, role: 'child', synchronous: 'off' });
    await store.start();
    await store.stop();
    // The admin knows it as front-desk; the child still offers its default name.
    await hub.registry.register({ deviceId: childId, name: 'front-desk', group: 'default' });
    const child = childFor(hub, childDir);
    await child.start();
    const approve = await fetch(`${base}/api/devices/${formatDeviceId(childId)}/approve`, {
      method: 'POST',
      headers,
    });
    assert.equal(approve.status, 200);
    assert.equal((await hub.registry.get(childId))?.state, 'approved');
    child.syncNow();

    const connected = await stream.next(
      (e) => e.event === 'device-connected' && JSON.parse(e.data).session.deviceId === childId,
      'device-connected event',
    );
    assert.equal(JSON.parse(connected.data).type, 'device-connected');
    assert.equal(JSON.parse(connected.data).session.name, 'front-desk', 'events use the registry name');
    const approved = stream.events.find((e) => e.event === 'device-approved');
    assert.equal(JSON.parse(approved?.data ?? '{}').name, 'front-desk');
    const status = (await (await fetch(`${base}/api/status`, { headers })).json()) as {
      connected: Array<{ name: string }>;
    };
    assert.deepEqual(
      status.connected.map((c) => c.name),
      ['front-desk'],
      'status shows the registry name, not the one the child offers',
    );

    // Record changes made by the child show up as the hub relays them.
    await stream.next(
      (e) => e.event === 'sync-completed' && JSON.parse(e.data).session.deviceId === childId,
      'sync-completed event',
    );
    await child.replica.put('notes', 'n1', { text: 'hello' });
    await eventually(
      async () => (await hub.replica.get('notes', 'n1')) !== undefined,
      10_000,
      'the write reached the hub',
    );
    await hub.replica.put('notes', 'h1', { text: 'from the hub' });
    await eventually(
      async () => (await child.replica.get('notes', 'h1')) !== undefined,
      10_000,
      'the write reached the child',
    );
    await eventually(async () => (await child.status()).state === 'synced', 10_000, 'in sync again');
    // The live changes show as sync-progress, the last of a burst always sent: the stream
    // ends up with where the device stands now (the hub's write acknowledged by the child).
    const hubLatest = await hub.replica.latestSeq();
    await stream.next((e) => {
      if (e.event !== 'sync-progress') return false;
      const session = JSON.parse(e.data).session;
      return session.deviceId === childId && session.stats.ackedUpTo >= hubLatest;
    }, 'a sync-progress event with the hub write acknowledged');
    const device = deviceDetail.parse(
      await (await fetch(`${base}/api/devices/${childId}`, { headers })).json(),
    );
    assert.equal(device.connected, true);
    assert.equal(device.session?.deviceId, childId);

    const revoke = await fetch(`${base}/api/devices/${childId}/revoke`, { method: 'POST', headers });
    assert.equal(revoke.status, 200);
    assert.equal((await hub.registry.get(childId))?.state, 'revoked');
    await eventually(() => hub.connectedChildren().length === 0, 5000, 'the revoked child is disconnected');
    const gone = await stream.next(
      (e) => e.event === 'device-disconnected' && JSON.parse(e.data).deviceId === childId,
      'device-disconnected event',
    );
    assert.equal(JSON.parse(gone.data).code, 'DEVICE_REVOKED');
    // Events keep their order: by the disconnection, every event of the connection is here.
    // Its initial sync completed once; the live changes after it are no new completion
    // (a hub with a thousand children would log a thousand events a write).
    assert.equal(
      stream.events.filter(
        (e) => e.event === 'sync-completed' && JSON.parse(e.data).session.deviceId === childId,
      ).length,
      1,
      'one sync-completed for the connection',
    );
    assert.equal(JSON.parse(gone.data).name, 'front-desk');
    await eventually(
      async () => (await child.status()).connection.lastError?.code === 'DEVICE_REVOKED',
      5000,
      'the child learns why',
    );

    stream.close();
    await eventually(() => hub.eventLog.subscribers === baseline, 5000, 'the listener was removed');

    await child.stop();
    await server.stop();
    await hub.stop();
  });

  it("a device's sync details: how far behind each way, the writes the hub refused and why", async () => {
    const hub = await startHub();
    const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0 });
    await server.start();
    const headers = { authorization: `Bearer ${server.takeCreatedToken() as string}` };
    const base = `http://127.0.0.1:${server.port}`;
    const detail = async (id: string) =>
      deviceDetail.parse(await (await fetch(`${base}/api/devices/${id}`, { headers })).json());
    const stream = new SseClient(`${base}/api/events`, headers);
    await eventually(() => stream.comments.includes('connected'), 5000, 'the stream opened');

    await hub.putGroup({ name: 'front', description: '', read: ['*'], write: ['notes'] });
    for (let i = 0; i < 5; i++) await hub.replica.put('notes', `hub-${i}`, { i });
    const childDir = join(dir.path, 'details-child');
    const child = await pairedChildOf(hub, childDir, { name: 'reception' });
    const childId = (await loadOrCreateIdentity(join(childDir, 'identity'))).deviceId;
    await hub.updateDevice(childId, { group: 'front' });
    const never = await detail(childId);
    assert.deepEqual(
      { ...never.sync, hubLatestSeq: 0 },
      {
        hubLatestSeq: 0,
        caughtUp: null,
        toDevice: { ackedUpTo: null, behind: null },
        fromDevice: { appliedUpTo: 0, deviceLatest: null, behind: null },
        lastError: null,
        refusedByHub: null,
        refusedByDevice: null,
        lastSessionEndedAt: null,
        clock: null,
        throttled: null,
      },
      'not seen since the hub started: nothing known of its position',
    );

    // Written before it connects (as the CLI writes): one write in scope, two outside it.
    const offline = nodeReplica({ dataDir: childDir, deviceId: childId, role: 'child', synchronous: 'off' });
    await offline.start();
    await offline.put('notes', 'mine', { ok: true });
    await offline.put('hr', 'salary', { secret: 1 });
    await offline.put('hr', 'bonus', { secret: 2 });
    await offline.stop();
    await child.start();
    const refused = await stream.next(
      (e) => e.event === 'writes-refused' && JSON.parse(e.data).deviceId === childId,
      'writes-refused event',
    );
    assert.deepEqual(
      { ...JSON.parse(refused.data), at: 0 },
      {
        type: 'writes-refused',
        deviceId: childId,
        by: 'hub',
        count: 2,
        codes: ['SCOPE_WRITE_DENIED'],
        collections: ['hr'],
        at: 0,
      },
    );
    await eventually(
      async () => {
        const { sync } = await detail(childId);
        return sync.caughtUp === true && sync.toDevice.behind === 0;
      },
      10_000,
      'the child caught up and acknowledged every position (its own writes echoed included)',
    );
    const live = (await detail(childId)).sync;
    const hubLatest = await hub.replica.latestSeq();
    assert.equal(live.hubLatestSeq, hubLatest);
    assert.equal(live.fromDevice.behind, 0);
    assert.equal(live.fromDevice.deviceLatest, await child.replica.latestSeq());
    assert.equal(live.refusedByHub?.total, 2);
    assert.deepEqual(live.refusedByHub?.latest.map((r) => [r.collection, r.id, r.code]).sort(), [
      ['hr', 'bonus', 'SCOPE_WRITE_DENIED'],
      ['hr', 'salary', 'SCOPE_WRITE_DENIED'],
    ]);
    assert.match(live.refusedByHub?.latest[0]?.message ?? '', /group front may not write collection hr/);
    assert.equal(live.refusedByDevice, null);

    // Offline: the hub still knows where the device stood, and the hub's log grows past it.
    await child.stop();
    await eventually(() => hub.connectedChildren().length === 0, 5000, 'the child is gone');
    await hub.replica.put('notes', 'while-away', { i: 9 });
    const away = (await detail(childId)).sync;
    assert.equal(away.caughtUp, null);
    assert.equal(away.toDevice.ackedUpTo, hubLatest);
    assert.equal(away.toDevice.behind, 1, 'one new position for it');
    assert.equal(away.fromDevice.deviceLatest, null);
    assert.equal(away.fromDevice.appliedUpTo, live.fromDevice.appliedUpTo, 'kept in the store');
    assert.ok(away.lastSessionEndedAt !== null);
    assert.equal(away.refusedByHub?.total, 2, 'the refusals are kept');

    stream.close();
    await server.stop();
    await hub.stop();
  });

  it('a device whose group is gone may read and write nothing (not everything) until it is moved', async () => {
    const hub = await startHub();
    await hub.replica.put('notes', 'from-hub', { i: 1 });
    const childDir = join(dir.path, 'ghost-child');
    const child = await pairedChildOf(hub, childDir, { name: 'ghost' });
    const childId = (await loadOrCreateIdentity(join(childDir, 'identity'))).deviceId;
    // The registry takes a device into any group by name; this one names a group that does not exist.
    await hub.registry.register({ deviceId: childId, name: 'ghost', group: 'ghost' });
    await child.start();
    await child.replica.put('notes', 'from-child', { i: 2 });
    await eventually(
      async () => (await hub.deviceSync(childId)).refusedByHub?.total === 1,
      10_000,
      'the write is refused',
    );
    assert.equal((await hub.deviceSync(childId)).refusedByHub?.latest[0]?.code, 'SCOPE_WRITE_DENIED');
    assert.equal(await hub.replica.get('notes', 'from-child'), undefined);
    await eventually(async () => (await hub.deviceSync(childId)).caughtUp === true, 10_000, 'caught up');
    assert.equal(await child.replica.get('notes', 'from-hub'), undefined, 'nothing to read');
    await child.stop();
    await hub.stop();
  });

  it('wrong tokens get 401 on the event stream; stopping the server ends open streams', async () => {
    const hub = await startHub();
    const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0 });
    await server.start();
    const token = server.takeCreatedToken() as string;
    const base = `http://127.0.0.1:${server.port}`;
    const baseline = hub.eventLog.subscribers;

    const wrong = new SseClient(`${base}/api/events`, { authorization: 'Bearer tsa_nope' });
    await eventually(() => wrong.ended, 5000, 'refused');
    assert.equal(wrong.status, 401);

    const stream = new SseClient(`${base}/api/events`, { authorization: `Bearer ${token}` });
    await eventually(() => stream.comments.includes('connected'), 5000, 'connected');
    assert.equal(stream.status, 200);
    await hub.putGroup({ name: 'sales', description: '', read: ['*'], write: ['*'] });
    const e = await stream.next((x) => x.event === 'scopes-changed', 'scopes-changed event');
    assert.deepEqual({ ...JSON.parse(e.data), at: 0 }, { type: 'scopes-changed', group: 'sales', at: 0 });
    assert.match(String(e.id), /^\d+$/, 'a kept event carries its id');

    // stop() must not wait for the endless response: it ends it.
    await server.stop();
    await eventually(() => stream.ended, 5000, 'the stream ended');
    assert.equal(hub.eventLog.subscribers, baseline);
    await hub.stop();
  });

  it('lifecycle: stop before start, start twice, stop twice; the port is released; the token is created once', async () => {
    const hub = await startHub();
    const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0 });
    await server.stop();
    assert.equal(server.isStarted(), false);
    await server.start();
    const port = server.port;
    assert.equal(server.address().address, '127.0.0.1');
    await server.start();
    assert.equal(server.port, port);
    const token = server.takeCreatedToken();
    assert.ok(token);
    assert.equal(server.takeCreatedToken(), undefined, 'handed out once');
    const res = await fetch(`http://127.0.0.1:${port}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    await server.stop();
    await server.stop();
    assert.equal(server.isStarted(), false);
    assert.throws(() => server.port, { code: 'NOT_STARTED' });

    // The port is free again, and a restart on it keeps the same token.
    const again = new AdminApiServer(hub, { host: '127.0.0.1', port });
    await again.start();
    assert.equal(again.port, port);
    assert.equal(again.takeCreatedToken(), undefined, 'the token already exists');
    const still = await fetch(`http://127.0.0.1:${port}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(still.status, 200);
    await again.stop();
    await hub.stop();
  });

  it('fails fast: a hub that is not started, a port in use, an invalid port', async () => {
    const stopped = testHub(join(dir.path, 'stopped'));
    await assert.rejects(new AdminApiServer(stopped, { host: '127.0.0.1', port: 0 }).start(), {
      code: 'NOT_STARTED',
    });
    assert.throws(() => new AdminApiServer(stopped, { port: 70_000 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new AdminApiServer(stopped, { host: '' }), { code: 'INVALID_OPTION' });

    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    const hub = await startHub();
    await ensureAdminToken(hub.registry);
    const server = new AdminApiServer(hub, { host: '127.0.0.1', port: taken });
    await assert.rejects(server.start(), (err: { code: string; message: string }) => {
      assert.equal(err.code, 'PORT_IN_USE');
      assert.match(err.message, /in use/);
      return true;
    });
    assert.equal(server.isStarted(), false);
    await server.stop();
    await new Promise((r) => blocker.close(r));
    await hub.stop();
  });
});
