import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type OpenReplicaOptions, openReplica } from '../../src/index.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceId, JsonObject, Seq } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { type ChangeEvent, Replica } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, FakeClock, tempDir } from '../helpers.js';
import { buildRevision } from '../../src/sync/testing/revisions.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;

async function replica(options: Partial<OpenReplicaOptions> = {}): Promise<Replica> {
  return openReplica({
    path: join(dir.path, `r${++n}.db`),
    deviceId: randomDeviceId(),
    synchronous: 'off',
    ...options,
  });
}

/** Hub and child exchange everything both ways. */
async function sync(child: Replica, hub: Replica): Promise<void> {
  await transfer(child, hub);
  await transfer(hub, child);
}

describe('Replica lifecycle', () => {
  it('start and stop are idempotent; stop before start is safe; use before start is refused', async () => {
    const r = await replica();
    await r.start();
    await r.stop();
    await r.stop();
    await assert.rejects(r.get('notes', 'x'), { code: 'NOT_STARTED' });
    await r.start();
    assert.equal(r.isStarted(), true);
    await r.stop();
  });

  it('two starts at once start once; a stop during a start waits for it', async () => {
    const clock = new FakeClock();
    const path = join(dir.path, 'concurrent.db');
    const r = new Replica({
      store: new SqliteStore({ path, synchronous: 'off', clock }),
      deviceId: randomDeviceId(),
      clock,
      retention: { maxRevisions: 2 },
      pruneEveryMs: 3_600_000,
      watchExternalWritesMs: 250,
    });
    await Promise.all([r.start(), r.start()]);
    assert.equal(clock.pending(), 2, 'one pruning timer and one watcher, not two of each');
    await Promise.all([r.stop(), r.start(), r.stop()]);
    assert.equal(r.isStarted(), false);
    assert.equal(clock.pending(), 0, 'a stopped replica holds no timer');
    await r.start();
    await r.put('notes', 'n', { v: 1 });
    await r.stop();
  });

  it('refuses a store that belongs to another device', async () => {
    const path = join(dir.path, 'owned.db');
    const r = await openReplica({ path, deviceId: randomDeviceId() });
    await r.stop();
    await assert.rejects(openReplica({ path, deviceId: randomDeviceId() }), {
      code: 'INVALID_OPTION',
    });
  });
});

describe('Replica records', () => {
  it('put, get, list, delete, and a change event for each', async () => {
    const r = await replica();
    const events: ChangeEvent[] = [];
    const off = r.subscribe((e) => events.push(e));
    const w = await r.put('notes', 'n1', { title: 'one' });
    await r.create('notes', { title: 'two' });
    assert.deepEqual((await r.get('notes', 'n1'))?.body, { title: 'one' });
    assert.equal((await r.list('notes')).length, 2);
    await r.delete('notes', 'n1');
    assert.equal(await r.get('notes', 'n1'), undefined);
    assert.equal((await r.list('notes')).length, 1);
    assert.equal(events.length, 3);
    assert.equal(events[0]?.rev, w.rev);
    assert.equal(events[0]?.origin, 'local');
    assert.equal(events[2]?.deleted, true);
    off();
    await r.put('notes', 'n3', { x: 1 });
    assert.equal(events.length, 3);
    await r.stop();
  });

  it('bad input gets a named error and loses nothing', async () => {
    const r = await replica({ maxRecordBytes: 100 });
    await r.put('notes', 'keep', { v: 1 });
    const bad: Array<[Promise<unknown>, string]> = [
      [r.put('notes', 'x', [1, 2] as never), 'INVALID_BODY'],
      [r.put('notes', 'x', null as never), 'INVALID_BODY'],
      [r.put('notes', 'x', { pad: 'y'.repeat(200) }), 'RECORD_TOO_LARGE'],
      [r.put('bad name', 'x', {}), 'INVALID_COLLECTION'],
      [r.put('_system', 'x', {}), 'INVALID_COLLECTION'],
      [r.put('notes', '', {}), 'INVALID_RECORD_ID'],
      [r.put('notes', 'a\nb', {}), 'INVALID_RECORD_ID'],
      [r.put('notes', 'keep', { when: new Date() } as never), 'INVALID_BODY'],
      [
        r.writeMany([
          { op: 'put', collection: 'notes', id: 'w1', body: { ok: true } },
          { op: 'put', collection: 'notes', id: 'w2', body: { pad: 'z'.repeat(500) } },
        ]),
        'RECORD_TOO_LARGE',
      ],
    ];
    for (const [promise, code] of bad) await assert.rejects(promise, { code });
    assert.deepEqual((await r.get('notes', 'keep'))?.body, { v: 1 });
    assert.equal(await r.get('notes', 'w1'), undefined, 'a failed writeMany stores none of its writes');
    assert.equal((await r.stats()).revisions, 1);
    await r.stop();
  });
});

describe('history and revert', () => {
  it('lists every revision and reverts to any, including a delete', async () => {
    const clock = new FakeClock();
    const r = await replica({ clock });
    const v1 = await r.put('docs', 'd', { text: 'v1' });
    clock.advance(1000);
    await r.put('docs', 'd', { text: 'v2' });
    clock.advance(1000);
    const gone = await r.delete('docs', 'd');
    const history = await r.history('docs', 'd');
    assert.deepEqual(
      history.map((h) => h.body?.text ?? null),
      ['v1', 'v2', null],
    );
    assert.equal(history[0]?.author, r.deviceId);
    assert.equal(history[0]?.time, clock.time - 2000);
    assert.equal(history[2]?.current, true);
    const back = await r.revert('docs', 'd', v1.rev.slice(0, 10));
    assert.deepEqual((await r.get('docs', 'd'))?.body, { text: 'v1' });
    assert.deepEqual(back.record.body, { text: 'v1' });
    await r.revert('docs', 'd', gone.rev);
    assert.equal(await r.get('docs', 'd'), undefined);
    assert.equal((await r.history('docs', 'd')).length, 5);
    await assert.rejects(r.revert('docs', 'd', 'ffff'), { code: 'REVISION_NOT_FOUND' });
    await assert.rejects(r.revert('docs', 'nope', 'ffff'), { code: 'RECORD_NOT_FOUND' });
    await r.stop();
  });

  it('retention drops old bodies by count and age, never a head; a pruned revision cannot be restored', async () => {
    const clock = new FakeClock();
    const r = await replica({ clock, retention: { maxRevisions: 2 } });
    const first = await r.put('docs', 'd', { v: 0 });
    for (let i = 1; i <= 4; i++) {
      clock.advance(1000);
      await r.put('docs', 'd', { v: i });
    }
    assert.equal(await r.prune(), 3);
    const h = await r.history('docs', 'd');
    assert.deepEqual(
      h.map((e) => e.pruned),
      [true, true, true, false, false],
    );
    await assert.rejects(r.revert('docs', 'd', first.rev), { code: 'REVISION_PRUNED' });
    clock.advance(60_000);
    assert.equal(await r.prune({ maxAgeMs: 30_000 }), 1);
    assert.deepEqual((await r.get('docs', 'd'))?.body, { v: 4 });
    await r.stop();
  });
});

describe('conflicts between replicas', () => {
  async function concurrentEdit(strategy: 'lww' | 'manual' | 'merge' | 'hub-wins') {
    const clock = new FakeClock();
    const collections = { c: { conflict: strategy } };
    const hub = await replica({ role: 'hub', clock, collections });
    const a = await replica({ clock, collections });
    const b = await replica({ clock, collections });
    await a.put('c', 'k', { title: 'base', n: 0 });
    await sync(a, hub);
    await sync(b, hub);
    clock.advance(10);
    await a.put('c', 'k', { title: 'from A', n: 0 });
    clock.advance(10);
    await b.put('c', 'k', { title: 'base', n: 2 });
    for (const r of [a, b, a]) await sync(r, hub);
    return { hub, a, b, stop: () => Promise.all([hub, a, b].map((r) => r.stop())) };
  }

  it('lww: the later write wins everywhere, the loser stays in history, the conflict is recorded', async () => {
    const { hub, a, b, stop } = await concurrentEdit('lww');
    for (const r of [hub, a, b]) {
      assert.deepEqual((await r.get('c', 'k'))?.body, { title: 'base', n: 2 });
      const conflicts = await r.conflicts();
      assert.equal(conflicts.length, 1);
      assert.equal(conflicts[0]?.status, 'auto');
      const history = await r.history('c', 'k');
      assert.ok(
        history.some((h) => h.body?.title === 'from A' && h.head),
        'the loser is kept',
      );
    }
    await stop();
  });

  it('merge: both sides’ changes survive, on every replica', async () => {
    const { hub, a, b, stop } = await concurrentEdit('merge');
    for (const r of [hub, a, b]) assert.deepEqual((await r.get('c', 'k'))?.body, { title: 'from A', n: 2 });
    await stop();
  });

  it('merge: a field named __proto__ is plain data, merged like any other', async () => {
    const clock = new FakeClock();
    const collections = { c: { conflict: 'merge' as const } };
    const hub = await replica({ role: 'hub', clock, collections });
    const a = await replica({ clock, collections });
    const b = await replica({ clock, collections });
    // As a JSON parser gives it: an own field, not a prototype.
    const body = (text: string) => JSON.parse(text) as JsonObject;
    await a.put('c', 'k', body('{"__proto__":{"v":0},"n":0}'));
    await sync(a, hub);
    await sync(b, hub);
    clock.advance(10);
    await a.put('c', 'k', body('{"__proto__":{"v":1},"n":0}'));
    clock.advance(10);
    await b.put('c', 'k', body('{"__proto__":{"v":0},"n":2}'));
    for (const r of [a, b, a]) await sync(r, hub);
    for (const r of [hub, a, b]) {
      const merged = (await r.get('c', 'k'))?.body as JsonObject;
      assert.ok(Object.hasOwn(merged, '__proto__'), 'the field is an own field');
      assert.equal(JSON.stringify(merged), '{"__proto__":{"v":1},"n":2}');
      assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    }
    assert.equal(({} as { v?: unknown }).v, undefined, 'Object.prototype is untouched');
    await Promise.all([hub, a, b].map((r) => r.stop()));
  });

  it('manual: the conflict stays open until resolved; resolving dominates both sides everywhere', async () => {
    const { hub, a, b, stop } = await concurrentEdit('manual');
    for (const r of [hub, a, b]) {
      const open = await r.conflicts({ status: 'open' });
      assert.equal(open.length, 1);
      assert.equal((await r.get('c', 'k'))?.conflict, 'open');
    }
    await assert.rejects(a.resolve('c', 'nope', { body: {} }), { code: 'NO_CONFLICT' });
    const fixed = await a.resolve('c', 'k', { body: { title: 'agreed', n: 1 } });
    for (const r of [a, b, a]) await sync(r, hub);
    for (const r of [hub, a, b]) {
      assert.equal((await r.conflicts({ status: 'open' })).length, 0);
      const rec = await r.get('c', 'k');
      assert.equal(rec?.rev, fixed.rev);
      assert.equal(rec?.conflict, 'none');
      assert.equal((await r.conflicts({ status: 'resolved' }))[0]?.resolvedBy, fixed.rev);
    }
    await stop();
  });

  it('hub-wins: the hub’s concurrent write beats a later child write', async () => {
    const clock = new FakeClock();
    const collections = { policy: { conflict: 'hub-wins' as const } };
    const hub = await replica({ role: 'hub', clock, collections });
    const child = await replica({ clock, collections });
    await hub.put('policy', 'p', { v: 'hub' });
    clock.advance(1000);
    await child.put('policy', 'p', { v: 'child' });
    await sync(child, hub);
    assert.deepEqual((await hub.get('policy', 'p'))?.body, { v: 'hub' });
    assert.deepEqual((await child.get('policy', 'p'))?.body, { v: 'hub' });
    await Promise.all([hub.stop(), child.stop()]);
  });
});

describe('applying changes from a peer', () => {
  it('re-delivery changes nothing; a gap is refused whole; own changes are never echoed', async () => {
    const hub = await replica({ role: 'hub' });
    const child = await replica();
    await child.put('notes', 'a', { v: 1 });
    const hubLog = { device: hub.deviceId, log: (await hub.changeLog()).id };
    const childLog = (await child.changeLog()).id;
    const batch = { ...(await child.changesSince({ since: 0 as Seq, peer: hubLog })), log: childLog };
    const first = await hub.applyChanges(child.deviceId, batch);
    const again = await hub.applyChanges(child.deviceId, batch);
    assert.equal(first.applied, 1);
    assert.equal(again.applied, 0);
    assert.equal(again.duplicates, 1);
    const echo = await hub.changesSince({ since: 0 as Seq, peer: { device: child.deviceId, log: childLog } });
    assert.equal(echo.revisions.length, 0, 'the child’s own change is not offered back');
    assert.equal(echo.upTo, await hub.latestSeq());
    await assert.rejects(hub.applyChanges(child.deviceId, { ...batch, since: 50 as Seq, upTo: 60 as Seq }), {
      code: 'SYNC_GAP',
    });
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('a tampered, skewed or local-only revision is refused alone; the rest of the batch applies', async () => {
    const clock = new FakeClock();
    const hub = await replica({ role: 'hub', clock, collections: { memory: { localOnly: true } } });
    const child = await replica({ clock });
    await child.writeMany([
      { op: 'put', collection: 'notes', id: 'good', body: { v: 1 } },
      { op: 'put', collection: 'notes', id: 'evil', body: { v: 1 } },
      { op: 'put', collection: 'memory', id: 'm', body: { v: 1 } },
    ]);
    const batch = {
      ...(await child.changesSince({ since: 0 as Seq, peer: { device: hub.deviceId, log: '' } })),
      log: (await child.changeLog()).id,
    };
    const evil = batch.revisions.find((r) => r.id === 'evil');
    if (evil?.body) evil.body.v = 666;
    const future = buildRevision({
      collection: 'notes',
      id: 'future',
      author: child.deviceId,
      wall: clock.time + 48 * 3600_000,
      body: { v: 1 },
    });
    batch.revisions.push(future);
    const report = await hub.applyChanges(child.deviceId, batch);
    assert.equal(report.applied, 1);
    assert.deepEqual(report.rejected.map((r) => r.code).sort(), [
      'CLOCK_SKEW',
      'INVALID_REVISION',
      'LOCAL_ONLY_COLLECTION',
    ]);
    assert.deepEqual((await hub.get('notes', 'good'))?.body, { v: 1 });
    assert.equal(await hub.get('notes', 'evil'), undefined);
    assert.equal((await hub.cursorFor(child.deviceId)).seq, batch.upTo);
    await Promise.all([hub.stop(), child.stop()]);
  });

  it('local-only collections are never offered to a peer', async () => {
    const r = await replica({ collections: { memory: { localOnly: true } } });
    await r.put('memory', 'secret', { v: 1 });
    await r.put('notes', 'shared', { v: 1 });
    const batch = await r.changesSince({
      since: 0 as Seq,
      peer: { device: randomDeviceId() as DeviceId, log: '' },
    });
    assert.deepEqual(
      batch.revisions.map((x) => x.collection),
      ['notes'],
    );
    await r.stop();
  });
});

describe('timers of a running replica, on its clock', () => {
  /** A write queued behind whatever a timer queued: a replica runs its store work one call at a time. */
  let barriers = 0;
  const afterQueuedWork = (r: Replica) => r.put('barrier', `b${++barriers}`, { n: barriers });

  /**
   * A hub and a child on `store`, and `echo(since)`: the hub's log after `since` for
   * the child, holding only the child's own writes, so a batch of no revisions.
   */
  const echoPair = async (clock: FakeClock, store: SqliteStore) => {
    const hub = await replica({ role: 'hub', clock });
    const child = new Replica({ store, deviceId: randomDeviceId(), clock });
    await child.start();
    const hubLog = (await hub.changeLog()).id;
    const echo = async (since: number) => {
      const batch = await hub.changesSince({
        since: since as Seq,
        peer: { device: child.deviceId, log: (await child.changeLog()).id },
      });
      assert.equal(batch.revisions.length, 0);
      return { ...batch, log: hubLog };
    };
    return { hub, child, echo };
  };

  it(
    'a replica whose store gives no wake-ups looks on its clock, and reports records another writer changed, once, as local changes',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      // An hour: only the fake clock can make this interval pass during the test.
      const every = 3_600_000;
      const path = join(dir.path, 'shared.db');
      const deviceId = randomDeviceId();
      const store = new SqliteStore({ path, synchronous: 'off', clock });
      // As a store that cannot tell of other processes' commits: only the clock finds them.
      Object.defineProperty(store, 'onCommit', { value: undefined });
      const agent = new Replica({ store, deviceId, clock, watchExternalWritesMs: every });
      await agent.start();
      const events: string[] = [];
      agent.subscribe((e) => e.collection === 'notes' && events.push(`${e.origin}:${e.id}`));
      const reported = new Promise<void>((resolve) =>
        agent.subscribe((e) => e.id === 'from-cli-2' && resolve()),
      );
      await agent.put('notes', 'own', { v: 1 });
      // A second writer on the same file, as the CLI is while the agent runs.
      const cli = await openReplica({ path, deviceId, clock, synchronous: 'off' });
      await cli.put('notes', 'from-cli', { v: 1 });
      await cli.put('notes', 'from-cli-2', { v: 1 });
      await cli.stop();
      clock.advance(every - 1);
      await agent.put('notes', 'own-2', { v: 1 });
      assert.deepEqual(events, ['local:own', 'local:own-2'], 'not seen before the interval is over');
      clock.advance(1);
      await reported;
      // The next look finds nothing new: nothing is reported twice.
      clock.advance(every);
      await afterQueuedWork(agent);
      assert.deepEqual(events.sort(), ['local:from-cli', 'local:from-cli-2', 'local:own', 'local:own-2']);
      await agent.stop();
    },
  );

  it(
    "a replica on an SQLite file hears of another process's commit by a wake-up, not its clock, and of its own commits nothing",
    { timeout: 30_000 },
    async () => {
      // The clock never moves: a look on the clock never comes, only the wake-ups.
      const clock = new FakeClock();
      const startedAt = clock.now();
      const path = join(dir.path, 'woken.db');
      const deviceId = randomDeviceId();
      const agent = await openReplica({
        path,
        deviceId,
        clock,
        synchronous: 'off',
        watchExternalWritesMs: 250,
      });
      const events: string[] = [];
      agent.subscribe((e) => e.collection === 'notes' && events.push(`${e.origin}:${e.id}`));
      await agent.put('notes', 'own', { v: 1 });
      // A second writer on the same file, as the CLI is while the agent runs.
      const cli = await openReplica({ path, deviceId, clock, synchronous: 'off' });
      await cli.put('notes', 'from-cli', { v: 1 });
      await eventually(async () => events.includes('local:from-cli'), 10_000, "the CLI's write reported");
      await cli.put('notes', 'from-cli-2', { v: 2 });
      await cli.stop();
      await eventually(async () => events.includes('local:from-cli-2'), 10_000, 'and the next one');
      await agent.put('notes', 'own-2', { v: 1 });
      // Its own commit wakes it too: the look finds nothing another process wrote.
      await sleep(100);
      await afterQueuedWork(agent);
      assert.deepEqual(events, ['local:own', 'local:from-cli', 'local:from-cli-2', 'local:own-2']);
      assert.equal(clock.now(), startedAt, 'the fake clock never moved');
      await agent.stop();
    },
  );

  it(
    'a replica with pruneEveryMs applies its retention at start and on its timer, by count and age, never to a head',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const path = join(dir.path, 'retained.db');
      const deviceId = randomDeviceId();
      const first = await openReplica({ path, deviceId, clock, synchronous: 'off' });
      for (let i = 0; i < 6; i++) {
        clock.advance(1000);
        await first.put('docs', 'd', { v: i });
      }
      await first.stop();
      const hour = 3_600_000;
      const agent = await openReplica({
        path,
        deviceId,
        clock,
        synchronous: 'off',
        retention: { maxRevisions: 4, maxAgeMs: 24 * hour },
        pruneEveryMs: hour,
      });
      const pruned = async () => {
        await afterQueuedWork(agent);
        return (await agent.history('docs', 'd')).map((h) => h.pruned);
      };
      assert.deepEqual(await pruned(), [true, true, false, false, false, false], 'by count, at start');
      await agent.put('docs', 'd', { v: 6 });
      clock.advance(hour - 1);
      assert.deepEqual(
        await pruned(),
        [true, true, false, false, false, false, false],
        'not before the hour',
      );
      clock.advance(1);
      assert.deepEqual(
        await pruned(),
        [true, true, true, false, false, false, false],
        'by count, on the hour',
      );
      clock.advance(24 * hour);
      assert.deepEqual(await pruned(), [true, true, true, true, true, true, false], 'by age; the head stays');
      assert.deepEqual((await agent.get('docs', 'd'))?.body, { v: 6 });
      await agent.stop();
    },
  );

  it(
    'a cursor move that carries no revisions is written a second later on the clock, or at stop',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const path = join(dir.path, 'lazy-cursor.db');
      let store = new SqliteStore({ path, synchronous: 'off', clock });
      const { hub, child, echo } = await echoPair(clock, store);
      await child.put('notes', 'n', { v: 1 });
      await transfer(child, hub);
      const first = await echo(0);
      await child.applyChanges(hub.deviceId, first);
      assert.equal((await child.cursorFor(hub.deviceId)).seq, first.upTo, 'the replica knows at once');
      clock.advance(999);
      await afterQueuedWork(child);
      assert.equal((await store.getCursor(hub.deviceId)).seq, 0, 'the store is not written yet');
      clock.advance(1);
      await afterQueuedWork(child);
      assert.equal((await store.getCursor(hub.deviceId)).seq, first.upTo, 'written a second later');

      await child.put('notes', 'n2', { v: 1 });
      await transfer(child, hub);
      const second = await echo(first.upTo);
      assert.ok(second.upTo > first.upTo);
      await child.applyChanges(hub.deviceId, second);
      await child.stop();
      store = new SqliteStore({ path, synchronous: 'off', clock });
      await store.start();
      assert.equal((await store.getCursor(hub.deviceId)).seq, second.upTo, 'written at stop');
      assert.equal(clock.pending(), 0, 'the stopped replica left no timer');
      await store.stop();
      await hub.stop();
    },
  );

  it(
    'a cursor move whose write fails stays in memory and is written on a later try: the next batch is no gap',
    { timeout: 30_000 },
    async () => {
      const clock = new FakeClock();
      const store = new SqliteStore({
        path: join(dir.path, 'lazy-cursor-fails.db'),
        synchronous: 'off',
        clock,
      });
      const { hub, child, echo } = await echoPair(clock, store);
      // The store refuses cursor writes, as a full disk does, until told otherwise.
      const setCursors = store.setCursors.bind(store);
      let refusals = 0;
      store.setCursors = async (cursors) => {
        if (refusals < 2) {
          refusals++;
          throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        }
        return setCursors(cursors);
      };
      await child.put('notes', 'n', { v: 1 });
      await transfer(child, hub);
      const first = await echo(0);
      await child.applyChanges(hub.deviceId, first);
      clock.advance(1000);
      await afterQueuedWork(child);
      assert.equal(refusals, 1, 'the first write was tried, and refused');
      assert.equal((await child.cursorFor(hub.deviceId)).seq, first.upTo, 'the move is still known');

      await child.put('notes', 'n2', { v: 1 });
      await transfer(child, hub);
      const second = await echo(first.upTo);
      const report = await child.applyChanges(hub.deviceId, second);
      assert.equal(report.cursor, second.upTo, 'the batch after the refused write is taken, not a SYNC_GAP');
      clock.advance(1000);
      await afterQueuedWork(child);
      assert.equal(refusals, 2, 'tried again a second later, and refused again');
      assert.equal((await store.getCursor(hub.deviceId)).seq, 0, 'nothing written yet');
      clock.advance(1000);
      await afterQueuedWork(child);
      assert.equal((await store.getCursor(hub.deviceId)).seq, second.upTo, 'written once the store takes it');
      assert.equal(clock.pending(), 0, 'no further try once written');
      await child.stop();
      await hub.stop();
    },
  );
});
