/**
 * The acceptance suite every StorageAdapter must pass. A new adapter's test file is
 * only its harness:
 *
 *   runStorageAdapterSuite('postgres', async () => ({ create, reopen, cleanup }));
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { lwwResolver, manualResolver } from '../../sync/conflict.js';
import { createReducer, settleHeads } from '../../sync/reducer.js';
import { verifyRevision, wireRevision } from '../../sync/revision.js';
import type { StorageAdapter } from '../adapter.js';
import type { DeviceId, IncomingRevision, JsonObject, Reducer, Revision, Seq } from '../types.js';
import { buildRevision } from '../../sync/testing/revisions.js';

export interface AdapterHarness {
  /** A new, started adapter on empty storage. */
  create(): Promise<StorageAdapter>;
  /** Stops `adapter` and returns a started adapter on the same storage. */
  reopen(adapter: StorageAdapter): Promise<StorageAdapter>;
  /** Removes everything the harness created. */
  cleanup(): Promise<void>;
  /** A second, started adapter on the same storage (another connection), where the storage allows it. */
  second?(): Promise<StorageAdapter>;
  /**
   * Keeps a copy of `adapter`'s storage as it is now and returns the adapter to go on
   * with (it may have been stopped and reopened) and `restore`, which stops the
   * adapter it is given and returns one started on that copy: a store restored from
   * an older backup. Where the storage allows it.
   */
  copy?(adapter: StorageAdapter): Promise<{
    adapter: StorageAdapter;
    restore(current: StorageAdapter): Promise<StorageAdapter>;
  }>;
  /** Whether the adapter has the optional `dataVersion` capability. */
  dataVersion: boolean;
}

const deviceA = randomBytes(32).toString('hex') as DeviceId;
const deviceB = randomBytes(32).toString('hex') as DeviceId;
let tick = 1_700_000_000_000;

/** A revision written by `author` on top of `parents`. */
export function makeRevision(
  collection: string,
  id: string,
  body: JsonObject | null,
  author: DeviceId = deviceA,
  parents: readonly Revision[] = [],
  hlcWall = ++tick,
): Revision {
  return buildRevision({ collection, id, body, author, parents, wall: hlcWall });
}

const lww: Reducer = createReducer(() => lwwResolver);
const manual: Reducer = createReducer(() => manualResolver);

function incoming(revisions: Revision[], local = false): IncomingRevision[] {
  return revisions.map((revision) => ({ revision, local }));
}

export function runStorageAdapterSuite(name: string, makeHarness: () => Promise<AdapterHarness>): void {
  describe(`StorageAdapter acceptance: ${name}`, () => {
    const withStore = (
      title: string,
      /** May return a reopened adapter, which the harness then stops instead. */
      fn: (store: StorageAdapter, h: AdapterHarness) => Promise<unknown>,
    ): void =>
      void it(title, async () => {
        const h = await makeHarness();
        let store = await h.create();
        try {
          store = ((await fn(store, h)) as StorageAdapter | undefined) ?? store;
        } finally {
          await store.stop();
          await h.cleanup();
        }
      });

    withStore('start and stop are idempotent; stop before start is safe', async (store, h) => {
      await store.start();
      assert.equal(store.isStarted(), true);
      await store.stop();
      await store.stop();
      assert.equal(store.isStarted(), false);
      await assert.rejects(store.latestSeq(), { code: 'STORE_CLOSED' });
      return h.reopen(store);
    });

    withStore('meta values persist across reopen', async (store, h) => {
      await store.setMeta('k', 'v1');
      await store.setMeta('k', 'v2');
      const again = await h.reopen(store);
      assert.equal(await again.getMeta('k'), 'v2');
      assert.equal(await again.getMeta('missing'), undefined);
      return again;
    });

    withStore('apply stores a record; get and list return it', async (store) => {
      const r = makeRevision('notes', 'n1', { title: 'hello' });
      const result = await store.apply({ revisions: incoming([r]), reduce: lww, now: 1 });
      assert.equal(result.applied.length, 1);
      assert.equal(result.applied[0]?.outcome, 'head');
      const rec = await store.getRecord('notes', 'n1');
      assert.deepEqual(rec?.body, { title: 'hello' });
      assert.equal(rec?.rev, r.rev);
      assert.equal(rec?.conflict, 'none');
      assert.deepEqual(await store.listCollections(), ['notes']);
      assert.equal((await store.getRevision('notes', 'n1', r.rev))?.head, true);
    });

    withStore('list pages in id order and hides tombstones unless asked', async (store) => {
      const revs = ['c', 'a', 'e', 'b', 'd'].map((id) => makeRevision('notes', id, { id }));
      await store.apply({ revisions: incoming(revs), reduce: lww, now: 1 });
      const tomb = makeRevision('notes', 'c', null, deviceA, [revs[0] as Revision]);
      await store.apply({ revisions: incoming([tomb]), reduce: lww, now: 1 });
      const page1 = await store.listRecords('notes', { limit: 2 });
      assert.deepEqual(
        page1.map((r) => r.id),
        ['a', 'b'],
      );
      const page2 = await store.listRecords('notes', { limit: 2, after: 'b' });
      assert.deepEqual(
        page2.map((r) => r.id),
        ['d', 'e'],
      );
      const all = await store.listRecords('notes', { limit: 10, includeDeleted: true });
      assert.deepEqual(
        all.map((r) => r.id),
        ['a', 'b', 'c', 'd', 'e'],
      );
      assert.equal(all[2]?.deleted, true);
      assert.equal(all[2]?.body, null);
    });

    withStore('re-applying a revision is a no-op', async (store) => {
      const r = makeRevision('notes', 'n1', { v: 1 });
      await store.apply({ revisions: incoming([r]), reduce: lww, now: 1 });
      const seq = await store.latestSeq();
      const again = await store.apply({ revisions: incoming([r, r]), reduce: lww, now: 1 });
      assert.equal(again.duplicates, 2);
      assert.equal(again.applied.length, 0);
      assert.equal(await store.latestSeq(), seq);
    });

    withStore('a cursor moves with its batch, never backwards within one log', async (store) => {
      const r = makeRevision('notes', 'n1', { v: 1 });
      const fromB = { device: deviceB, log: 'log-b1' };
      await store.apply({
        revisions: incoming([r]),
        source: fromB,
        cursor: { log: 'log-b1', seq: 7 as Seq, check: 'c7' },
        reduce: lww,
        now: 1,
      });
      assert.deepEqual(await store.getCursor(deviceB), { log: 'log-b1', seq: 7, check: 'c7' });
      await store.apply({
        revisions: [],
        source: fromB,
        cursor: { log: 'log-b1', seq: 3 as Seq, check: 'c3' },
        reduce: lww,
        now: 1,
      });
      assert.equal((await store.getCursor(deviceB)).seq, 7);
      await store.setCursor(deviceB, { log: 'log-b1', seq: 9 as Seq, check: 'c9' });
      await store.setCursor(deviceB, { log: 'log-b1', seq: 2 as Seq, check: 'c2' });
      assert.deepEqual(await store.getCursor(deviceB), { log: 'log-b1', seq: 9, check: 'c9' });
      assert.deepEqual(await store.getCursor(deviceA), { log: '', seq: 0, check: '' });
      assert.equal((await store.getRevision('notes', 'n1', r.rev))?.source, deviceB);
    });

    withStore(
      'several cursors set together: each as setCursor would, all kept across reopen',
      async (store, h) => {
        await store.setCursor(deviceB, { log: 'log-b1', seq: 9 as Seq, check: 'c9' });
        await store.setCursors([
          [deviceA, { log: 'log-a1', seq: 5 as Seq, check: 'c5' }],
          // The same log only moves forward; another log replaces it.
          [deviceB, { log: 'log-b1', seq: 4 as Seq, check: 'c4' }],
        ]);
        assert.deepEqual(await store.getCursor(deviceB), { log: 'log-b1', seq: 9, check: 'c9' });
        await store.setCursors([[deviceB, { log: 'log-b2', seq: 2 as Seq, check: 'c2' }]]);
        await store.setCursors([]);
        const again = await h.reopen(store);
        assert.deepEqual(await again.getCursor(deviceA), { log: 'log-a1', seq: 5, check: 'c5' });
        assert.deepEqual(await again.getCursor(deviceB), { log: 'log-b2', seq: 2, check: 'c2' });
        return again;
      },
    );

    withStore(
      'a cursor for another log of the peer replaces the old one, even a smaller one',
      async (store) => {
        await store.setCursor(deviceB, { log: 'log-b1', seq: 90 as Seq, check: 'c90' });
        await store.apply({
          revisions: incoming([makeRevision('notes', 'n1', { v: 1 }, deviceB)]),
          source: { device: deviceB, log: 'log-b2' },
          cursor: { log: 'log-b2', seq: 4 as Seq, check: 'c4' },
          reduce: lww,
          now: 1,
        });
        assert.deepEqual(await store.getCursor(deviceB), { log: 'log-b2', seq: 4, check: 'c4' });
        assert.equal(
          await store.isRetiredLog({ device: deviceB, log: 'log-b1' }),
          true,
          'the old log is retired',
        );
        assert.equal(await store.isRetiredLog({ device: deviceB, log: 'log-b2' }), false);
        assert.equal(await store.isRetiredLog({ device: deviceA, log: 'log-b1' }), false, 'per device');
      },
    );

    withStore(
      'a new store has a change log identity that stays across reopen until rotated',
      async (store, h) => {
        const first = await store.changeLog();
        assert.match(first.id, /^[0-9a-f]{32}$/);
        const again = await h.reopen(store);
        assert.deepEqual(await again.changeLog(), first);
        await again.apply({
          revisions: incoming([makeRevision('notes', 'n', { v: 1 })]),
          reduce: lww,
          now: 1,
        });
        const latest = await again.latestSeq();
        const rotated = await again.rotateChangeLog(123);
        assert.notEqual(rotated.id, first.id);
        assert.equal(rotated.createdAt, 123);
        assert.deepEqual(await again.changeLog(), rotated);
        assert.equal(await again.latestSeq(), latest, 'rotation keeps positions and revisions');
        const other = await h.create();
        try {
          assert.notEqual((await other.changeLog()).id, rotated.id, 'every store has its own identity');
        } finally {
          await other.stop();
        }
        return again;
      },
    );

    withStore(
      'checkpoints name a position and its revision, and say nothing past the end',
      async (store, h) => {
        await store.apply({
          revisions: incoming([makeRevision('notes', 'a', { v: 1 }), makeRevision('notes', 'b', { v: 1 })]),
          reduce: lww,
          now: 1,
        });
        assert.equal(await store.checkpoint(0 as Seq), '');
        const one = await store.checkpoint(1 as Seq);
        const two = await store.checkpoint(2 as Seq);
        assert.match(one, /^[0-9a-f]{48}$/);
        assert.notEqual(one, two);
        // Its issue mark: this store gave position 1 of this log, and would know it after losing it.
        const log = (await store.changeLog()).id;
        assert.equal(await store.issued(log, 1 as Seq, one), true);
        assert.equal(await store.issued(log, 2 as Seq, one), false, 'another position');
        assert.equal(await store.issued('f'.repeat(32), 1 as Seq, one), false, 'another log');
        assert.equal(await store.issued(log, 1 as Seq, one.slice(0, 32)), false, 'no mark');
        assert.equal(
          await store.issued(log, 1 as Seq, `${one.slice(0, 32)}${'0'.repeat(16)}`),
          false,
          'made up',
        );
        assert.ok(![one, two, ''].includes(await store.checkpoint(3 as Seq)), 'past the end is no position');
        const batch = await store.changesSince({ since: 0 as Seq, limit: 10, maxBytes: 1 << 20 });
        assert.equal(batch.check, two, 'a batch carries the checkpoint of its end');
        const again = await h.reopen(store);
        assert.equal(await again.checkpoint(1 as Seq), one, 'a checkpoint is stable across reopen');
        // Another store with the same revision at the same position has other tokens (its own secret).
        const other = await h.create();
        try {
          await other.apply({
            revisions: incoming([(await again.history('notes', 'a'))[0] as Revision]),
            reduce: lww,
            now: 1,
          });
          assert.notEqual(await other.checkpoint(1 as Seq), one);
          assert.equal(
            await other.issued((await again.changeLog()).id, 1 as Seq, one),
            false,
            'nor does it take this store’s mark',
          );
        } finally {
          await other.stop();
        }
        return again;
      },
    );

    withStore(
      'a store restored from an older copy gives its refilled positions other checkpoints, even for the same revision',
      async (store, h) => {
        if (!h.copy) return;
        const a = makeRevision('notes', 'a', { v: 1 });
        const b = makeRevision('notes', 'b', { v: 1 });
        const c = makeRevision('notes', 'c', { v: 1 });
        await store.apply({ revisions: incoming([a]), reduce: lww, now: 1 });
        const saved = await h.copy(store);
        let current = saved.adapter;
        const one = await current.checkpoint(1 as Seq);
        await current.apply({ revisions: incoming([b, c]), reduce: lww, now: 1 });
        const three = await current.checkpoint(3 as Seq);
        // Restored, it writes c at position 3 again (after another revision at 2).
        current = await saved.restore(current);
        assert.equal(await current.latestSeq(), 1);
        assert.equal(await current.checkpoint(1 as Seq), one, 'what the copy held keeps its checkpoint');
        await current.apply({
          revisions: incoming([makeRevision('notes', 'd', { v: 1 }), c]),
          reduce: lww,
          now: 1,
        });
        assert.equal(await current.latestSeq(), 3);
        assert.notEqual(
          await current.checkpoint(3 as Seq),
          three,
          'the same revision at a refilled position',
        );
        const restoredThree = await current.checkpoint(3 as Seq);
        current = await h.reopen(current);
        assert.equal(await current.checkpoint(3 as Seq), restoredThree, 'stable across reopen');
        // Restored again from the same copy: other checkpoints again.
        current = await saved.restore(current);
        await current.apply({
          revisions: incoming([makeRevision('notes', 'd', { v: 1 }), c]),
          reduce: lww,
          now: 1,
        });
        assert.ok(![three, restoredThree].includes(await current.checkpoint(3 as Seq)));
        return current;
      },
    );

    withStore('a revision with an unknown parent is refused alone', async (store) => {
      const ghost = makeRevision('notes', 'g', { v: 0 });
      const orphan = makeRevision('notes', 'g', { v: 1 }, deviceA, [ghost]);
      const fine = makeRevision('notes', 'ok', { v: 1 });
      const result = await store.apply({
        revisions: incoming([orphan, fine]),
        reduce: lww,
        now: 1,
      });
      assert.equal(result.applied.length, 1);
      assert.equal(result.rejected.length, 1);
      assert.equal(result.rejected[0]?.code, 'UNKNOWN_ANCESTOR');
      assert.equal(await store.getRecord('notes', 'g'), undefined);
      assert.ok(await store.getRecord('notes', 'ok'));
    });

    withStore('a descendant supersedes its parent; history keeps both, oldest first', async (store) => {
      const r1 = makeRevision('notes', 'n1', { v: 1 });
      const r2 = makeRevision('notes', 'n1', { v: 2 }, deviceA, [r1]);
      await store.apply({ revisions: incoming([r1, r2]), reduce: lww, now: 1 });
      const heads = await store.heads('notes', 'n1');
      assert.deepEqual(
        heads.map((h) => h.rev),
        [r2.rev],
      );
      const history = await store.history('notes', 'n1');
      assert.deepEqual(
        history.map((h) => h.rev),
        [r1.rev, r2.rev],
      );
      assert.deepEqual(
        history.map((h) => h.head),
        [false, true],
      );
      assert.deepEqual((await store.getRecord('notes', 'n1'))?.body, { v: 2 });
    });

    withStore('a stale revision goes to history without changing the record', async (store) => {
      const r1 = makeRevision('notes', 'n1', { v: 1 });
      const r2 = makeRevision('notes', 'n1', { v: 2 }, deviceA, [r1]);
      await store.apply({ revisions: incoming([r1, r2]), reduce: lww, now: 1 });
      const r0 = makeRevision('notes', 'n1', { v: 0 }, deviceA, [], 5);
      const result = await store.apply({ revisions: incoming([r0]), reduce: lww, now: 1 });
      assert.equal(result.applied[0]?.outcome, 'stale');
      assert.equal(result.applied[0]?.record, undefined);
      assert.deepEqual((await store.getRecord('notes', 'n1'))?.body, { v: 2 });
    });

    withStore('concurrent revisions open a conflict; a dominating write resolves it', async (store) => {
      const base = makeRevision('tickets', 't', { s: 'new' });
      const a = makeRevision('tickets', 't', { s: 'a' }, deviceA, [base]);
      const b = makeRevision('tickets', 't', { s: 'b' }, deviceB, [base]);
      await store.apply({ revisions: incoming([base, a, b]), reduce: manual, now: 100 });
      const rec = await store.getRecord('tickets', 't');
      assert.equal(rec?.conflict, 'open');
      const open = await store.listConflicts({ status: 'open' });
      assert.equal(open.length, 1);
      assert.deepEqual(open[0]?.heads, [a.rev, b.rev].sort());
      assert.equal(open[0]?.strategy, 'manual');
      const fix = makeRevision('tickets', 't', { s: 'fixed' }, deviceA, [a, b]);
      await store.apply({ revisions: incoming([fix]), reduce: manual, now: 200 });
      assert.equal((await store.listConflicts({ status: 'open' })).length, 0);
      const resolved = await store.listConflicts({ status: 'resolved' });
      assert.equal(resolved[0]?.resolvedBy, fix.rev);
      assert.equal(resolved[0]?.resolvedAt, 200);
      assert.equal((await store.getRecord('tickets', 't'))?.conflict, 'none');
    });

    withStore(
      'resettle gives conflicted records of one collection the new verdict, in place, and nothing else',
      async (store) => {
        const base = makeRevision('tickets', 't', { s: 'new' });
        const a = makeRevision('tickets', 't', { s: 'a' }, deviceA, [base]);
        const b = makeRevision('tickets', 't', { s: 'b' }, deviceB, [base]);
        const other = makeRevision('notes', 'n', { s: 'x' });
        const otherA = makeRevision('notes', 'n', { s: 'na' }, deviceA, [other]);
        const otherB = makeRevision('notes', 'n', { s: 'nb' }, deviceB, [other]);
        await store.apply({
          revisions: incoming([base, a, b, other, otherA, otherB]),
          reduce: lww,
          now: 100,
        });
        const before = await store.getRecord('tickets', 't');
        assert.equal(before?.conflict, 'auto');
        const latest = await store.latestSeq();
        const changed = await store.resettle(
          'tickets',
          (heads) => settleHeads(manualResolver, heads, 'tickets', 't'),
          300,
        );
        assert.equal(changed.length, 1);
        assert.equal(changed[0]?.conflict, 'open');
        assert.equal(changed[0]?.seq, before?.seq, 'the record keeps its place in the log');
        assert.equal(await store.latestSeq(), latest, 'no revision written');
        const [open] = await store.listConflicts({ status: 'open' });
        assert.equal(open?.strategy, 'manual');
        assert.equal(open?.updatedAt, 300);
        assert.equal(
          (await store.getRecord('notes', 'n'))?.conflict,
          'auto',
          'another collection is untouched',
        );
        // The same verdict again changes nothing.
        assert.deepEqual(
          await store.resettle('tickets', (heads) => settleHeads(manualResolver, heads, 'tickets', 't'), 400),
          [],
        );
      },
    );

    withStore('changesSince bounds batches by count and bytes and reports more', async (store) => {
      const revs = Array.from({ length: 10 }, (_, i) =>
        makeRevision('notes', `n${i}`, { pad: 'x'.repeat(100) }),
      );
      await store.apply({ revisions: incoming(revs), reduce: lww, now: 1 });
      const byCount = await store.changesSince({ since: 0 as Seq, limit: 4, maxBytes: 1 << 20 });
      assert.equal(byCount.revisions.length, 4);
      assert.equal(byCount.more, true);
      const byBytes = await store.changesSince({ since: 0 as Seq, limit: 100, maxBytes: 300 });
      assert.ok(byBytes.revisions.length >= 1 && byBytes.revisions.length < 10);
      let since = 0 as Seq;
      const seen: string[] = [];
      for (let guard = 0; guard < 20; guard++) {
        const b = await store.changesSince({ since, limit: 3, maxBytes: 1 << 20 });
        seen.push(...b.revisions.map((r) => r.rev));
        since = b.upTo;
        if (!b.more) break;
      }
      assert.deepEqual(
        seen,
        revs.map((r) => r.rev),
      );
      assert.equal(since, await store.latestSeq());
    });

    withStore(
      'changesSince leaves out the peer’s own revisions, local-only ones and filtered collections',
      async (store) => {
        const mine = makeRevision('notes', 'mine', { v: 1 });
        const theirs = makeRevision('notes', 'theirs', { v: 1 }, deviceB);
        const secret = makeRevision('memory', 'm', { v: 1 });
        const other = makeRevision('other', 'o', { v: 1 });
        const fromB = { device: deviceB, log: 'log-b1' };
        await store.apply({ revisions: incoming([mine]), reduce: lww, now: 1 });
        await store.apply({ revisions: incoming([theirs]), source: fromB, reduce: lww, now: 1 });
        await store.apply({ revisions: incoming([other]), reduce: lww, now: 1 });
        await store.apply({ revisions: incoming([secret], true), reduce: lww, now: 1 });
        const batch = await store.changesSince({
          since: 0 as Seq,
          limit: 100,
          maxBytes: 1 << 20,
          excludeSource: fromB,
          collections: (c) => c !== 'other',
        });
        assert.deepEqual(
          batch.revisions.map((r) => r.rev),
          [mine.rev],
        );
        // The cursor still covers everything examined, including the trailing local-only revision.
        assert.equal(batch.upTo, await store.latestSeq());
        assert.equal(batch.more, false);
      },
    );

    withStore(
      'changesSince of named collections reads only those, in log order, and covers the rest',
      async (store) => {
        const revs = ['a', 'files', 'b', 'files', 'docs', 'c', 'files'].map((c, i) =>
          makeRevision(c, `r${i}`, { v: i }),
        );
        for (const r of revs) await store.apply({ revisions: incoming([r]), reduce: lww, now: 1 });
        const wanted = revs.filter((r) => r.collection === 'files' || r.collection === 'docs');
        const seen: string[] = [];
        let since = 0 as Seq;
        for (let guard = 0; guard < 10; guard++) {
          const b = await store.changesSince({
            since,
            limit: 2,
            maxBytes: 1 << 20,
            collectionIn: ['files', 'docs'],
          });
          assert.ok(b.revisions.length <= 2);
          seen.push(...b.revisions.map((r) => r.rev));
          since = b.upTo;
          if (!b.more) break;
        }
        assert.deepEqual(
          seen,
          wanted.map((r) => r.rev),
        );
        // Past the trailing revision of another collection too.
        assert.equal(since, await store.latestSeq());
        const both = await store.changesSince({
          since: 0 as Seq,
          limit: 100,
          maxBytes: 1 << 20,
          collectionIn: ['files', 'docs'],
          collections: (c) => c !== 'docs',
        });
        assert.deepEqual(
          both.revisions.map((r) => r.collection),
          ['files', 'files', 'files'],
          'the predicate applies on top',
        );
        const none = await store.changesSince({
          since: 0 as Seq,
          limit: 100,
          maxBytes: 1 << 20,
          collectionIn: [],
        });
        assert.deepEqual(none.revisions, []);
        assert.equal(none.upTo, await store.latestSeq());
      },
    );

    withStore(
      'asked for their origin, batches name the peer logs their revisions came from, and the next one when cut short',
      async (store) => {
        const fromB = { device: deviceB, log: 'log-b1' };
        const mine = makeRevision('notes', 'mine', { v: 1 });
        const theirs = makeRevision('notes', 'theirs', { v: 1 }, deviceB);
        const later = makeRevision('notes', 'later', { v: 1 });
        await store.apply({ revisions: incoming([mine]), reduce: lww, now: 1 });
        await store.apply({ revisions: incoming([theirs]), source: fromB, reduce: lww, now: 1 });
        await store.apply({ revisions: incoming([later]), reduce: lww, now: 1 });
        const first = await store.changesSince({
          since: 0 as Seq,
          limit: 1,
          maxBytes: 1 << 20,
          origin: true,
        });
        assert.deepEqual(first.origin?.logs, [], 'written here');
        assert.deepEqual(first.origin?.next, fromB, 'the revision that cut it came from B');
        const all = await store.changesSince({
          since: 0 as Seq,
          limit: 100,
          maxBytes: 1 << 20,
          origin: true,
        });
        assert.deepEqual(all.origin?.logs, [fromB]);
        assert.equal(all.origin?.next, undefined, 'the end of the log');
        assert.ok((all.origin?.bodyBytes ?? 0) > 0);
        const plain = await store.changesSince({ since: 0 as Seq, limit: 100, maxBytes: 1 << 20 });
        assert.equal(plain.origin, undefined, 'only when asked');
      },
    );

    withStore('what came from an older log of a peer is offered back to it', async (store) => {
      const theirs = makeRevision('notes', 'theirs', { v: 1 }, deviceB);
      await store.apply({
        revisions: incoming([theirs]),
        source: { device: deviceB, log: 'log-b1' },
        reduce: lww,
        now: 1,
      });
      const toNewLog = await store.changesSince({
        since: 0 as Seq,
        limit: 100,
        maxBytes: 1 << 20,
        excludeSource: { device: deviceB, log: 'log-b2' },
      });
      assert.deepEqual(
        toNewLog.revisions.map((r) => r.rev),
        [theirs.rev],
        'a peer whose store was recreated gets back its own revisions',
      );
      assert.equal(await store.countChanges(0 as Seq, { device: deviceB, log: 'log-b2' }), 1);
      assert.equal(await store.countChanges(0 as Seq, { device: deviceB, log: 'log-b1' }), 0);
    });

    withStore('countChanges counts what a peer would be sent', async (store) => {
      const mine = [1, 2, 3].map((i) => makeRevision('notes', `m${i}`, { i }));
      await store.apply({ revisions: incoming(mine), reduce: lww, now: 1 });
      const fromB = { device: deviceB, log: 'log-b1' };
      await store.apply({
        revisions: incoming([makeRevision('notes', 'r', { v: 1 }, deviceB)]),
        source: fromB,
        reduce: lww,
        now: 1,
      });
      await store.apply({
        revisions: incoming([makeRevision('memory', 'x', { v: 1 })], true),
        reduce: lww,
        now: 1,
      });
      assert.equal(await store.countChanges(0 as Seq, fromB), 3);
      assert.equal(await store.countChanges(1 as Seq, fromB), 2);
      assert.equal(await store.countChanges(0 as Seq), 4, 'without a peer, received revisions count');
    });

    withStore(
      "dataVersion, where offered, changes on another connection's commit, not on its own",
      async (store, h) => {
        assert.equal(typeof store.dataVersion === 'function', h.dataVersion, 'the capability is as declared');
        if (!store.dataVersion) return;
        const before = await store.dataVersion();
        await store.apply({
          revisions: incoming([makeRevision('notes', 'own', { v: 1 })]),
          reduce: lww,
          now: 1,
        });
        assert.equal(await store.dataVersion(), before, 'own commits do not count');
        const other = await h.second?.();
        if (!other) return;
        await other.apply({
          revisions: incoming([makeRevision('notes', 'other', { v: 1 })]),
          reduce: lww,
          now: 1,
        });
        await other.stop();
        assert.notEqual(await store.dataVersion(), before, "another connection's commit does");
      },
    );

    withStore('a failing batch stores nothing, cursor included', async (store) => {
      const revs = [1, 2, 3].map((i) => makeRevision('notes', `n${i}`, { i }));
      let calls = 0;
      const boom: Reducer = (heads, r) => {
        if (++calls === 3) throw new Error('reducer failed');
        return lww(heads, r);
      };
      await assert.rejects(
        store.apply({
          revisions: incoming(revs),
          source: { device: deviceB, log: 'log-b1' },
          cursor: { log: 'log-b1', seq: 3 as Seq, check: 'c3' },
          reduce: boom,
          now: 1,
        }),
        /reducer failed/,
      );
      assert.equal(await store.latestSeq(), 0);
      assert.equal(await store.getRecord('notes', 'n1'), undefined);
      assert.equal((await store.getCursor(deviceB)).seq, 0);
    });

    withStore('prune drops old bodies but never a head, and keeps stubs verifiable', async (store) => {
      let prev = makeRevision('notes', 'n', { v: 0 });
      const chain = [prev];
      for (let i = 1; i < 6; i++) {
        prev = makeRevision('notes', 'n', { v: i }, deviceA, [prev]);
        chain.push(prev);
      }
      const base = makeRevision('notes', 'c', { v: 0 });
      const left = makeRevision('notes', 'c', { v: 'l' }, deviceA, [base]);
      const right = makeRevision('notes', 'c', { v: 'r' }, deviceB, [base]);
      await store.apply({
        revisions: incoming([...chain, base, left, right]),
        reduce: lww,
        now: 1,
      });
      const pruned = await store.prune({ maxRevisions: 2 }, Date.now());
      assert.equal(pruned, 5); // four of the chain, and the base of the conflict
      const history = await store.history('notes', 'n');
      assert.deepEqual(
        history.map((h) => h.pruned === true),
        [true, true, true, true, false, false],
      );
      assert.equal(history[0]?.body, null);
      assert.equal(history[0]?.rev, chain[0]?.rev);
      // A stub still proves its identity: its hash covers the metadata and the body's hash.
      assert.doesNotThrow(() => verifyRevision(wireRevision(history[0] as Revision), 1 << 20));
      // Both conflicting heads survive any policy.
      await store.prune({ maxRevisions: 1, maxAgeMs: 0 }, Date.now());
      const c = await store.history('notes', 'c');
      assert.deepEqual(
        c
          .filter((h) => !h.pruned)
          .map((h) => h.rev)
          .sort(),
        [left.rev, right.rev].sort(),
      );
      assert.deepEqual((await store.getRecord('notes', 'n'))?.body, { v: 5 });
    });

    withStore('everything survives reopen, and sequence numbers are never reused', async (store, h) => {
      const r1 = makeRevision('notes', 'n1', { v: 1 });
      const r2 = makeRevision('notes', 'n2', { v: 1 });
      await store.apply({
        revisions: incoming([r1, r2]),
        source: { device: deviceB, log: 'log-b1' },
        cursor: { log: 'log-b1', seq: 42 as Seq, check: 'c42' },
        reduce: lww,
        now: 1,
      });
      const latest = await store.latestSeq();
      const again = await h.reopen(store);
      assert.equal(await again.latestSeq(), latest);
      assert.deepEqual(await again.getCursor(deviceB), { log: 'log-b1', seq: 42, check: 'c42' });
      assert.deepEqual((await again.getRecord('notes', 'n2'))?.body, { v: 1 });
      const r3 = makeRevision('notes', 'n3', { v: 1 });
      const result = await again.apply({ revisions: incoming([r3]), reduce: lww, now: 1 });
      assert.ok((result.applied[0]?.seq ?? 0) > latest);
      const stats = await again.stats();
      assert.equal(stats.records, 3);
      assert.equal(stats.revisions, 3);
      return again;
    });
  });
}
