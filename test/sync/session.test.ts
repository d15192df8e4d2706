import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TrosynError } from '../../src/errors.js';
import { openReplica } from '../../src/index.js';
import type { SyncMessage } from '../../src/protocol/messages.js';
import type { Seq } from '../../src/store/types.js';
import { checkpointToken } from '../../src/store/checkpoint.js';
import { createChannelPair } from '../../src/sync/channel.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { SyncSession, type SyncSessionOptions } from '../../src/sync/session.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;
const open = (
  role: 'hub' | 'child' = 'child',
  path = join(dir.path, `s${++n}.db`),
  deviceId = randomDeviceId(),
) => openReplica({ path, deviceId, role, synchronous: 'off' });

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

  it(
    'the cursor move past a peer’s own change waits cursorFlushMs on the clock, then crosses',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const hub = await open('hub');
      const child = await open();
      // A minute: only the fake clock can make it pass during the test.
      const link = await connect(hub, child, { clock, cursorFlushMs: 60_000 });
      await link.atChild.whenCaughtUp();
      const before = (await child.cursorFor(hub.deviceId)).seq;
      // The child's write lands in the hub's log; only a cursor move comes back for it.
      const acked = once(link.atChild, 'progress');
      await child.put('notes', 'mine', { v: 1 });
      await acked;
      const hubLatest = await hub.latestSeq();
      assert.ok(hubLatest > before);
      clock.advance(59_999);
      // Give a message sent now every chance to arrive and be applied.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal((await child.cursorFor(hub.deviceId)).seq, before, 'held back within cursorFlushMs');
      const moved = once(link.atChild, 'progress');
      clock.advance(1);
      await moved;
      assert.equal((await child.cursorFor(hub.deviceId)).seq, hubLatest, 'sent once the flush time is over');
      assert.equal(link.atChild.getStats().applied, 0, 'a cursor move, no revisions');
      await link.close();
      assert.equal(clock.pending(), 0, 'a closed session leaves no timer');
      await Promise.all([hub.stop(), child.stop()]);
    },
  );

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
    const log = 'f'.repeat(32);
    await rogue.send({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } });
    await rogue.send({ type: 'sync.start', log, latest: 200, from: 0 });
    await rogue.send({
      type: 'sync.changes',
      log,
      since: 100,
      upTo: 120,
      check: '',
      more: false,
      revisions: [],
    });
    const cause = await closed;
    assert.equal((cause as { code?: string })?.code, 'SYNC_GAP');
    await eventually(() => received.some((m) => m.type === 'error'), 2000, 'error frame');
    assert.equal(hub.isStarted(), true);
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a child whose store was recreated gets its own revisions back, and its new writes are not skipped', async () => {
    const hub = await open('hub');
    let child = await open('child');
    const id = child.deviceId;
    for (let i = 0; i < 5; i++) await child.put('notes', `old-${i}`, { i });
    let link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    await child.stop();
    // The same device with a new, empty store: a new log, whose positions start again at 1.
    child = await open('child', join(dir.path, `s${++n}.db`), id);
    const fresh = await child.put('notes', 'new', { v: 1 });
    assert.equal(fresh.seq, 1, 'the new write takes a position the hub has already seen');
    link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    assert.ok(await hub.get('notes', 'new'), 'the new write reached the hub');
    for (let i = 0; i < 5; i++) assert.ok(await child.get('notes', `old-${i}`), `old-${i} came back`);
    assert.equal(link.atChild.getStats().restart, 'other-log', 'the hub had a cursor for the old log');
    await link.close();
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a store rolled back to an older copy takes a new log identity, and its peer restarts from 0', async () => {
    const hub = await open('hub');
    const path = join(dir.path, `s${++n}.db`);
    let child = await open('child', path);
    const id = child.deviceId;
    await child.put('notes', 'a', { v: 1 });
    let link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    await child.stop();
    copyFileSync(path, `${path}.old`);
    child = await open('child', path, id);
    const logBefore = (await child.changeLog()).id;
    for (let i = 0; i < 3; i++) await child.put('notes', `lost-${i}`, { i });
    link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    await child.stop();
    copyFileSync(`${path}.old`, path);
    child = await open('child', path, id);
    assert.equal((await child.changeLog()).id, logBefore, 'a copy keeps its identity until it is found out');
    const reused = await child.put('notes', 'reused', { v: 1 });
    link = await connect(hub, child, { live: false });
    const restarts: string[] = [];
    link.atChild.on('restart', (r) => restarts.push(r));
    await link.atChild.whenCaughtUp();
    assert.notEqual((await child.changeLog()).id, logBefore, 'the rolled-back log took a new identity');
    assert.equal(
      (await hub.get('notes', 'reused'))?.rev,
      reused.rev,
      'the write at a reused position arrived',
    );
    for (let i = 0; i < 3; i++) assert.ok(await child.get('notes', `lost-${i}`), `lost-${i} came back`);
    await link.close();
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a made-up cursor is not believed: the log keeps its identity and only that peer starts over', async () => {
    const hub = await open('hub');
    const child = await open('child');
    const other = await open('child');
    for (let i = 0; i < 5; i++) await hub.put('notes', `n${i}`, { i });
    const link = await connect(hub, other, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    const log = (await hub.changeLog()).id;
    const latest = await hub.latestSeq();
    const genuine = (await other.cursorFor(hub.deviceId)).check;
    assert.equal(genuine.length, 48, 'a token carries its issue mark');
    // Past the end, and at a position the log holds, with tokens the hub never gave.
    for (const cursor of [
      { log, seq: latest + 100, check: 'f'.repeat(48) },
      { log, seq: latest + 1, check: genuine },
      { log, seq: 2, check: '0'.repeat(48) },
      { log, seq: 2, check: genuine.slice(0, 40) },
    ]) {
      const start = await hub.openFor(child.deviceId, cursor as never);
      assert.equal(start.restart, 'unverified', JSON.stringify(cursor));
      assert.equal(start.from, 0);
      assert.equal((await hub.changeLog()).id, log, 'the log keeps its identity');
    }
    // The cursor the hub did give is used as it is; so is one given before tokens had the mark.
    const given = await other.cursorFor(hub.deviceId);
    assert.deepEqual(await hub.openFor(other.deviceId, given), { log, latest, from: given.seq });
    const before = { ...given, check: given.check.slice(0, 32) };
    assert.equal((await hub.openFor(other.deviceId, before)).from, given.seq);
    // A mark made with another store's secret is not this log's either.
    const foreign = checkpointToken('another store', latest + 3, 'r', undefined, log);
    const start = await hub.openFor(child.deviceId, { log, seq: latest + 3, check: foreign } as never);
    assert.equal(start.restart, 'unverified');
    await Promise.all([hub.stop(), child.stop(), other.stop()]);
  });

  it('a peer saying this log was replaced is believed only with a position of the newer log that this node gave it', async () => {
    const path = join(dir.path, `s${++n}.db`);
    const id = randomDeviceId();
    let hub = await open('hub', path, id);
    await hub.put('notes', 'a', { v: 1 });
    const log = (await hub.changeLog()).id;
    const saysReplaced = async (details: Record<string, unknown>) => {
      const [hubEnd, rogue] = createChannelPair<SyncMessage>();
      const atHub = new SyncSession({ replica: hub, channel: hubEnd, peer: randomDeviceId() });
      const restarts: string[] = [];
      atHub.on('restart', (r) => restarts.push(r));
      const started = new Promise<void>((resolve) =>
        rogue.onMessage((m) => {
          if (m.type === 'sync.start') resolve();
        }),
      );
      await atHub.start();
      const closed = new Promise((resolve) => atHub.once('closed', resolve));
      await rogue.send({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } });
      await started;
      await rogue.send({ type: 'error', code: 'CHANGE_LOG_ROLLED_BACK', message: 'replaced', details });
      await closed;
      return restarts;
    };
    assert.deepEqual(await saysReplaced({ log }), [], 'no newer position shown');
    assert.deepEqual(
      await saysReplaced({ log, newer: { log: 'e'.repeat(32), seq: 1, check: 'f'.repeat(48) } }),
      [],
      'a made-up one',
    );
    assert.equal((await hub.changeLog()).id, log, 'the log kept its identity');

    // The real thing: this store moved on to a newer log and gave a position of it,
    // then was restored from a copy of before.
    await hub.stop();
    copyFileSync(path, `${path}.old`);
    hub = await open('hub', path, id);
    const newerLog = (await hub.rotateChangeLog(log)).id;
    await hub.put('notes', 'b', { v: 1 });
    const seq = await hub.latestSeq();
    // The token a batch ending there carried to a peer.
    const { check } = await hub.changesSince({ since: (seq - 1) as Seq });
    const newer = { log: newerLog, seq, check };
    await hub.stop();
    copyFileSync(`${path}.old`, path);
    hub = await open('hub', path, id);
    assert.equal((await hub.changeLog()).id, log);
    assert.deepEqual(await saysReplaced({ log, newer }), ['rolled-back']);
    assert.notEqual((await hub.changeLog()).id, log, 'the restored log took a new identity');
    await hub.stop();
  });

  it('a store restored twice from the same old copy is found out by the log identity it brings back', async () => {
    const hubPath = join(dir.path, `s${++n}.db`);
    let hub = await open('hub', hubPath);
    const hubId = hub.deviceId;
    const child = await open();
    await hub.stop();
    copyFileSync(hubPath, `${hubPath}.old`);
    hub = await open('hub', hubPath, hubId);
    const d1 = await hub.put('notes', 'k', { from: 'first timeline' });
    let link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    // First restore: found by the child's cursor (its position now holds another revision).
    await hub.stop();
    copyFileSync(`${hubPath}.old`, hubPath);
    hub = await open('hub', hubPath, hubId);
    await hub.put('notes', 'other', { from: 'second timeline' });
    link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await link.close();
    // Second restore of the same copy: its log identity is one the child saw replaced.
    await hub.stop();
    copyFileSync(`${hubPath}.old`, hubPath);
    hub = await open('hub', hubPath, hubId);
    const restored = (await hub.changeLog()).id;
    link = await connect(hub, child, { live: false });
    const closed = new Promise<Error | undefined>((resolve) => link.atHub.once('closed', resolve));
    assert.equal(((await closed) as { code?: string } | undefined)?.code, 'CHANGE_LOG_ROLLED_BACK');
    await eventually(
      async () => (await hub.changeLog()).id !== restored,
      2000,
      'the hub takes a new log identity',
    );
    link = await connect(hub, child, { live: false });
    await link.atChild.whenCaughtUp();
    await eventually(
      async () => (await hub.history('notes', 'k')).some((h) => h.rev === d1.rev),
      2000,
      'the lost write is back',
    );
    await link.close();
    await Promise.all([hub.stop(), child.stop()]);
  });
});
