import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TrosynError } from '../../src/errors.js';
import { openReplica } from '../../src/index.js';
import type { SyncMessage } from '../../src/protocol/sync-messages.js';
import { createChannelPair } from '../../src/sync/channel.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { SyncSession, type SyncSessionOptions } from '../../src/sync/session.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;
const open = (role: 'hub' | 'child' = 'child') =>
  openReplica({
    path: join(dir.path, `s${++n}.db`),
    deviceId: randomDeviceId(),
    role,
    synchronous: 'off',
  });

/** Connects a child to the hub with one session at each end. */
async function connect(hub: Replica, child: Replica, options: Partial<SyncSessionOptions> = {}) {
  const [hubEnd, childEnd] = createChannelPair<SyncMessage>();
  const atHub = new SyncSession({
    replica: hub,
    channel: hubEnd,
    peer: child.deviceId,
    ...options,
  });
  const atChild = new SyncSession({
    replica: child,
    channel: childEnd,
    peer: hub.deviceId,
    ...options,
  });
  await Promise.all([atHub.start(), atChild.start()]);
  return { atHub, atChild, close: () => atChild.stop() };
}

describe('SyncSession over an in-memory channel', () => {
  it('catches up both ways, then relays live writes from one child to the others through the hub', async () => {
    const hub = await open('hub');
    const [a, b, c] = await Promise.all([open(), open(), open()]);
    await hub.put('notes', 'from-hub', { v: 1 });
    await a.put('notes', 'from-a-offline', { v: 1 });
    const links = await Promise.all([a, b, c].map((x) => connect(hub, x)));
    await Promise.all(links.map((l) => l.atChild.whenCaughtUp()));
    await eventually(
      async () => (await c.get('notes', 'from-a-offline')) !== undefined,
      5000,
      'offline write relayed',
    );
    for (const x of [a, b, c]) assert.ok(await x.get('notes', 'from-hub'));

    const w = await a.put('notes', 'live', { text: 'hello' });
    for (const x of [b, c]) {
      await eventually(async () => (await x.get('notes', 'live'))?.rev === w.rev, 5000, 'live write relayed');
    }
    // Echo suppression: A never receives its own writes back.
    assert.equal(links[0]?.atChild.getStats().applied, 1, 'A applied only the hub’s record');
    assert.equal(links[0]?.atChild.getStats().duplicates, 0);
    for (const l of links) await l.close();
    await Promise.all([hub, a, b, c].map((x) => x.stop()));
  });

  it('resumes from cursors after a reconnect: only new changes cross', async () => {
    const hub = await open('hub');
    const child = await open();
    for (let i = 0; i < 50; i++) await hub.put('notes', `n${i}`, { i });
    let link = await connect(hub, child, { batchSize: 7 });
    await link.atChild.whenCaughtUp();
    assert.equal(link.atChild.getStats().applied, 50);
    await link.close();
    for (let i = 50; i < 55; i++) await hub.put('notes', `n${i}`, { i });
    link = await connect(hub, child, { batchSize: 7 });
    await link.atChild.whenCaughtUp();
    assert.equal(link.atChild.getStats().applied, 5);
    assert.equal(link.atChild.getStats().duplicates, 0);
    assert.equal((await child.list('notes', { limit: 100 })).length, 55);
    await link.close();
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a push-only session sends but does not receive', async () => {
    const hub = await open('hub');
    const child = await open();
    await hub.put('notes', 'h', { v: 1 });
    await child.put('notes', 'c', { v: 1 });
    const [hubEnd, childEnd] = createChannelPair<SyncMessage>();
    const atHub = new SyncSession({
      replica: hub,
      channel: hubEnd,
      peer: child.deviceId,
      live: false,
    });
    const atChild = new SyncSession({
      replica: child,
      channel: childEnd,
      peer: hub.deviceId,
      receive: false,
      live: false,
    });
    await Promise.all([atHub.start(), atChild.start()]);
    await Promise.all([atHub.whenCaughtUp(), atChild.whenCaughtUp()]);
    assert.ok(await hub.get('notes', 'c'));
    assert.equal(await child.get('notes', 'h'), undefined);
    await atChild.stop();
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('the peer’s refusals are reported to the writer, and the rest of its batch arrives', async () => {
    const hub = await open('hub');
    const child = await open();
    const link = await connect(hub, child, {
      admit: (r) =>
        r.collection === 'policies'
          ? new TrosynError('SCOPE_WRITE_DENIED', 'policies are read-only here')
          : undefined,
    });
    const refused: string[] = [];
    link.atChild.on('refused', (list) => refused.push(...list.map((r) => `${r.collection}:${r.code}`)));
    await child.writeMany([
      { op: 'put', collection: 'policies', id: 'p', body: { v: 1 } },
      { op: 'put', collection: 'notes', id: 'n', body: { v: 1 } },
    ]);
    await eventually(() => refused.length > 0, 5000, 'refusal reported');
    assert.deepEqual(refused, ['policies:SCOPE_WRITE_DENIED']);
    assert.ok(await hub.get('notes', 'n'));
    assert.equal(await hub.get('policies', 'p'), undefined);
    await link.close();
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a protocol violation gets an error message and closes only that session', async () => {
    const hub = await open('hub');
    const child = await open();
    const [hubEnd, rogue] = createChannelPair<SyncMessage>();
    const atHub = new SyncSession({ replica: hub, channel: hubEnd, peer: child.deviceId });
    const received: SyncMessage[] = [];
    rogue.onMessage((m) => {
      received.push(m);
    });
    await atHub.start();
    const closed = new Promise<Error | undefined>((resolve) => atHub.once('closed', resolve));
    await rogue.send({ type: 'sync.changes', since: 100, upTo: 120, more: false, revisions: [] });
    const cause = await closed;
    assert.equal((cause as { code?: string })?.code, 'SYNC_GAP');
    await eventually(() => received.some((m) => m.type === 'error'), 2000, 'error frame');
    assert.equal(hub.isStarted(), true);
    await Promise.all([hub.stop(), child.stop()]);
  });
});
