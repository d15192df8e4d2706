/**
 * The local API's routes against a fake LocalPort, through fastify's inject(): no
 * hub and no connection, a real replica (in memory) for the records. Each sync
 * control is one port call, and a paused agent refuses "sync now" with a reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalPort } from '../../src/child/local-api/port.js';
import { buildLocalApi, ensureApiToken } from '../../src/child/local-api/server.js';
import type { SyncStatus } from '../../src/child/sync-status.js';
import { openReplica } from '../../src/index.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { tempDir } from '../helpers.js';
import { authed } from './helpers.js';

class FakeLocalPort implements LocalPort {
  readonly calls: string[] = [];
  state: SyncStatus['state'] = 'synced';
  constructor(private readonly replica: Replica) {}
  isStarted(): boolean {
    return true;
  }
  records(): Replica {
    return this.replica;
  }
  async status(): Promise<SyncStatus> {
    this.calls.push('status');
    return {
      state: this.state,
      connection: { state: 'connected', attempts: 0 },
      hubId: 'a'.repeat(64) as DeviceId,
      deviceId: this.replica.deviceId,
      pending: 0,
      files: { pending: 0, bytesHere: 0, bytesTotal: 0, busy: false },
      refused: [],
    };
  }
  syncNow(): void {
    this.calls.push('syncNow');
  }
  async pause(): Promise<void> {
    this.calls.push('pause');
    this.state = 'paused';
  }
  async resume(): Promise<void> {
    this.calls.push('resume');
    this.state = 'synced';
  }
}

describe('local routes over a fake port', () => {
  const dir = tempDir();
  let replica: Replica;
  let port: FakeLocalPort;
  let call: ReturnType<typeof authed>;
  let close: () => Promise<void>;

  before(async () => {
    replica = await openReplica({ path: ':memory:', deviceId: randomDeviceId() });
    port = new FakeLocalPort(replica);
    const app = buildLocalApi(port, { dataDir: dir.path });
    call = authed(app, ensureApiToken(dir.path));
    close = async () => {
      await app.close();
      await replica.stop();
      dir.remove();
    };
  });
  after(() => close());

  it('writes and reads go to the port’s records', async () => {
    const put = await call({ method: 'PUT', url: '/api/records/notes/n1', payload: { text: 'hi' } });
    assert.equal(put.statusCode, 200);
    assert.deepEqual((await replica.get('notes', 'n1'))?.body, { text: 'hi' });
    const got = await call({ method: 'GET', url: '/api/records/notes/n1' });
    assert.deepEqual(JSON.parse(got.body).body, { text: 'hi' });
  });

  it('pause, sync now while paused (409 SYNC_PAUSED), resume and sync now: one port call each', async () => {
    port.calls.length = 0;
    assert.equal((await call({ method: 'POST', url: '/api/sync/pause' })).statusCode, 200);
    const refused = await call({ method: 'POST', url: '/api/sync/now' });
    assert.equal(refused.statusCode, 409);
    assert.equal(JSON.parse(refused.body).code, 'SYNC_PAUSED');
    assert.equal((await call({ method: 'POST', url: '/api/sync/resume' })).statusCode, 200);
    assert.equal((await call({ method: 'POST', url: '/api/sync/now' })).statusCode, 202);
    assert.deepEqual(port.calls, ['pause', 'status', 'status', 'resume', 'status', 'status', 'syncNow']);
  });
});
