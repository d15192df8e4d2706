/**
 * The SQLite store reads the heads of a batch's records up front, many records a
 * statement, and inserts the batch's revisions many rows a statement. These tests
 * hold it to the answer of one lookup and one insert per revision: the same batch
 * applied whole and applied one revision at a time leaves the same store, the same
 * positions in its change log included.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { ApplyResult, DeviceId, IncomingRevision, JsonObject, Revision } from '../../src/store/types.js';
import { lwwResolver, manualResolver } from '../../src/sync/conflict.js';
import { createReducer } from '../../src/sync/reducer.js';
import { buildRevision } from '../../src/sync/testing/revisions.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

const deviceA = randomBytes(32).toString('hex') as DeviceId;
const deviceB = randomBytes(32).toString('hex') as DeviceId;
const peer = { device: deviceB, log: 'log-b' };
let wall = 1_700_000_000_000;
let stores = 0;

function rev(
  collection: string,
  id: string,
  body: JsonObject | null,
  author: DeviceId = deviceA,
  parents: readonly Revision[] = [],
): Revision {
  return buildRevision({ collection, id, body, author, parents, wall: ++wall });
}

async function openStore(): Promise<SqliteStore> {
  const store = new SqliteStore({ path: join(dir.path, `s-${++stores}.db`), synchronous: 'off' });
  await store.start();
  return store;
}

// `manual` leaves conflicts open, `lww` settles them: both kinds of verdict are stored.
const reduce = createReducer((collection) => (collection === 'tickets' ? manualResolver : lwwResolver));

function apply(store: SqliteStore, revisions: readonly Revision[]): Promise<ApplyResult> {
  const batch: IncomingRevision[] = revisions.map((revision) => ({ revision, local: false }));
  return store.apply({ revisions: batch, source: peer, reduce, now: 1 });
}

/**
 * Everything the store answers about `records`, the change log included, as small
 * pieces: compared one by one, a difference is reported without diffing it all.
 */
async function snapshot(store: SqliteStore, records: readonly [string, string][]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const [collection, id] of records) {
    out.push(await store.getRecord(collection, id));
    out.push(await store.heads(collection, id));
    out.push(await store.history(collection, id));
  }
  // Conflict entries carry their own ids and times, the same in both stores.
  out.push(...(await store.listConflicts()));
  // The checkpoint token is salted per store: the revisions and positions must agree.
  const log = await store.changesSince({ since: 0 as never, limit: 100_000, maxBytes: 1 << 30 });
  out.push(log.upTo, log.more, ...log.revisions);
  return out;
}

describe('SqliteStore: a batch applied at once', () => {
  it('leaves the store a revision-by-revision apply leaves, across collections, chains, conflicts and duplicates', async () => {
    // Already stored before the batch: records with one head, one with two (a conflict).
    const before: Revision[] = [];
    const stored = new Map<string, Revision>();
    for (let i = 0; i < 150; i += 3) {
      const r = rev('notes', `n${i}`, { i, v: 0 });
      before.push(r);
      stored.set(`n${i}`, r);
    }
    const baseT = rev('tickets', 't0', { v: 0 });
    const sideA = rev('tickets', 't0', { v: 'a' }, deviceA, [baseT]);
    const sideB = rev('tickets', 't0', { v: 'b' }, deviceB, [baseT]);
    before.push(baseT, sideA, sideB);

    // The batch: more records of a collection than one lookup statement takes.
    const batch: Revision[] = [];
    let repeated = 0;
    for (let i = 0; i < 300; i++) {
      const parent = stored.get(`n${i}`);
      const first = rev('notes', `n${i}`, { i, v: 1 }, deviceA, parent ? [parent] : []);
      batch.push(first);
      // Some records change again later in the same batch, some twice, some concurrently.
      if (i % 7 === 0) batch.push(rev('notes', `n${i}`, { i, v: 2 }, deviceA, [first]));
      if (i % 11 === 0) batch.push(rev('notes', `n${i}`, { i, v: 'b' }, deviceB, parent ? [parent] : []));
      if (i % 13 === 0) repeated = batch.push(first) && repeated + 1; // twice in one batch
      if (i % 17 === 0 && parent) repeated = batch.push(parent) && repeated + 1; // stored before
    }
    for (let i = 0; i < 200; i++) batch.push(rev('tickets', `t${i + 1}`, { i }));
    // The open conflict: settled by a revision on both sides, then a new concurrent write.
    const merge = rev('tickets', 't0', { v: 'ab' }, deviceA, [sideA, sideB]);
    batch.push(rev('tickets', 't0', { v: 'c' }, deviceB, [sideB]), merge);
    batch.push(rev('tickets', 't0', { v: 'after' }, deviceA, [merge]));
    // A revision whose parent is unknown is refused alone.
    const ghost = rev('notes', 'ghost', { v: 0 });
    batch.push(rev('notes', 'ghost', { v: 1 }, deviceA, [ghost]));
    // A collection name that sorts between the others, and ids that are not plain words.
    batch.push(rev('m-notes', 'a,b', { x: 1 }), rev('m-notes', "it's \u00e9\u{1f600}", { x: 2 }));

    const whole = await openStore();
    const single = await openStore();
    try {
      await apply(whole, before);
      await apply(single, before);
      const result = await apply(whole, batch);
      const results: ApplyResult[] = [];
      for (const r of batch) results.push(await apply(single, [r]));

      const applied = results.flatMap((x) => x.applied);
      assert.equal(result.applied.length, applied.length);
      for (const [i, a] of result.applied.entries()) {
        const b = applied[i];
        assert.deepEqual(
          [a.revision.rev, a.seq, a.outcome, a.record],
          [b?.revision.rev, b?.seq, b?.outcome, b?.record],
        );
      }
      assert.equal(
        result.duplicates,
        results.reduce((n, x) => n + x.duplicates, 0),
      );
      assert.equal(result.duplicates, repeated, 'the duplicates were seen as such');
      assert.deepEqual(
        result.rejected,
        results.flatMap((x) => x.rejected),
      );
      assert.equal(result.rejected.length, 1);
      assert.ok(result.applied.some((a) => a.record?.conflict === 'open'));

      const records = new Set<string>();
      for (const r of [...before, ...batch]) records.add(`${r.collection}\u0000${r.id}`);
      const keys = [...records].map((k) => k.split('\u0000') as [string, string]);
      const got = await snapshot(whole, keys);
      const want = await snapshot(single, keys);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `item ${i}`);
    } finally {
      await whole.stop();
      await single.stop();
    }
  });

  it('gives the same answers for batches of every lookup size, padded or not', async () => {
    for (const size of [2, 5, 8, 9, 31, 32, 33, 127, 128, 129, 257]) {
      const whole = await openStore();
      const single = await openStore();
      try {
        // Half of the batch's records are stored already (the lookup finds heads); the
        // batch's last revision is stored already but no longer a head (only the
        // lookup's match on the revision itself finds it: a duplicate); the rest are new.
        const half = Math.ceil(size / 2);
        const stored = Array.from({ length: half }, (_, i) => rev('sizes', `s${i}`, { i }));
        const superseded = rev('sizes', 'old', { v: 1 });
        stored.push(superseded, rev('sizes', 'old', { v: 2 }, deviceA, [superseded]));
        await apply(whole, stored);
        await apply(single, stored);
        const batch = Array.from({ length: size }, (_, i) => {
          const parent = i < half ? stored[i] : undefined;
          return parent
            ? rev('sizes', `s${i}`, { i, v: 2 }, deviceA, [parent])
            : rev('sizes', `s${i}`, { i });
        });
        batch[size - 1] = superseded;
        const result = await apply(whole, batch);
        const results: ApplyResult[] = [];
        for (const r of batch) results.push(await apply(single, [r]));
        assert.equal(result.duplicates, 1, `size ${size}`);
        assert.deepEqual(
          result.applied.map((a) => [a.revision.rev, a.seq, a.outcome, a.record]),
          results.flatMap((x) => x.applied.map((a) => [a.revision.rev, a.seq, a.outcome, a.record])),
          `size ${size}`,
        );
        const keys = batch.map((r) => [r.collection, r.id] as [string, string]);
        assert.deepEqual(await snapshot(whole, keys), await snapshot(single, keys), `size ${size}`);
      } finally {
        await whole.stop();
        await single.stop();
      }
    }
  });

  it('applies a re-delivered batch as duplicates only', async () => {
    const store = await openStore();
    try {
      const batch = Array.from({ length: 400 }, (_, i) => rev('notes', `d${i % 250}`, { i }));
      const first = await apply(store, batch);
      assert.equal(first.applied.length, 400);
      const again = await apply(store, batch);
      assert.equal(again.applied.length, 0);
      assert.equal(again.duplicates, 400);
    } finally {
      await store.stop();
    }
  });
});
