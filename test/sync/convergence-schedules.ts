/**
 * Convergence, property-based: one hub and 2-6 children on real stores make
 * random puts, deletes, concurrent edits of the same keys, reverts and manual
 * resolutions; random partial syncs run in random order; replicas are closed and
 * reopened between steps, and a replica's store is lost (deleted) or replaced by
 * an older copy of itself at random points. After a final full sync every replica
 * must hold the same state, every accepted write must be the winner or in history
 * (unless it was only ever on a store that was then lost), the open conflicts must
 * match, and replaying the revisions in another order must give the same result.
 *
 * Each node's store is a SQLite file unless the test says otherwise for the hub
 * (`hubStorage`): the same schedules then run against another StorageAdapter.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Clock } from '../../src/lifecycle.js';
import type { StorageAdapter } from '../../src/store/adapter.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceId, JsonObject, RecordView, Revision, Seq } from '../../src/store/types.js';
import { customResolver } from '../../src/sync/conflict.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { type CollectionOptions, Replica } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { fixedClock, tempDir } from '../helpers.js';

const SEED =
  process.env.TROSYN_PROPERTY_SEED === undefined ? undefined : Number(process.env.TROSYN_PROPERTY_SEED);

/** Highest `n` wins; ties go to the smaller rev. Deterministic, as custom resolvers must be. */
const highestN = customResolver('highest-n', (heads) => {
  let best = heads[0] as Revision;
  for (const h of heads) if (Number(h.body?.n ?? -1) > Number(best.body?.n ?? -1)) best = h;
  return best.rev;
});

const COLLECTIONS: Record<string, CollectionOptions> = {
  notes: { conflict: 'lww' },
  settings: { conflict: 'hub-wins' },
  docs: { conflict: 'merge' },
  tickets: { conflict: 'manual' },
  scores: { conflict: highestN },
  memory: { localOnly: true },
};
const NAMES = Object.keys(COLLECTIONS);
const SYNCED = NAMES.filter((c) => !COLLECTIONS[c]?.localOnly);
const KEYS = ['k0', 'k1'];

type Step =
  | { t: 'put'; r: number; c: number; k: number; body: JsonObject }
  | { t: 'del'; r: number; c: number; k: number }
  | { t: 'sync'; r: number; dir: 'push' | 'pull'; max: number }
  | { t: 'syncAll'; r: number }
  | { t: 'reopen'; r: number }
  | { t: 'save'; r: number }
  | { t: 'rollback'; r: number }
  | { t: 'lose'; r: number }
  | { t: 'resolve'; r: number; pick: number; useBody: boolean }
  | { t: 'revert'; r: number; c: number; k: number; pick: number }
  | { t: 'tick'; ms: number };

const bodyArb: fc.Arbitrary<JsonObject> = fc.record(
  {
    a: fc.integer({ min: 0, max: 3 }),
    b: fc.constantFrom('x', 'y', 'z'),
    n: fc.integer({ min: 0, max: 9 }),
  },
  { requiredKeys: [] },
);

function stepArb(replicas: number): fc.Arbitrary<Step> {
  const r = fc.integer({ min: 0, max: replicas - 1 });
  const child = fc.integer({ min: 1, max: replicas - 1 });
  const c = fc.integer({ min: 0, max: NAMES.length - 1 });
  const k = fc.integer({ min: 0, max: KEYS.length - 1 });
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ t: fc.constant('put' as const), r, c, k, body: bodyArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), r, c, k }) },
    {
      weight: 6,
      arbitrary: fc.record({
        t: fc.constant('sync' as const),
        r: child,
        dir: fc.constantFrom('push' as const, 'pull' as const),
        max: fc.integer({ min: 1, max: 8 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('syncAll' as const), r: child }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const), r }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('save' as const), r }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('rollback' as const), r }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('lose' as const), r }) },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('resolve' as const),
        r,
        pick: fc.nat(),
        useBody: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ t: fc.constant('revert' as const), r, c, k, pick: fc.nat() }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant('tick' as const),
        ms: fc.integer({ min: 0, max: 2000 }),
      }),
    },
  );
}

const scheduleArb = fc.integer({ min: 3, max: 7 }).chain((replicas) =>
  fc.record({
    replicas: fc.constant(replicas),
    skews: fc.array(fc.integer({ min: -3000, max: 3000 }), {
      minLength: replicas,
      maxLength: replicas,
    }),
    steps: fc.array(stepArb(replicas), { minLength: 10, maxLength: 80, size: 'max' }),
    replaySeed: fc.nat(),
  }),
);

/**
 * Where one node's store lives. The store is stopped whenever its storage is
 * copied or replaced.
 */
export interface NodeStorage {
  /** A new, unstarted store on this storage. */
  store(): StorageAdapter;
  /** Keeps a copy of the storage as it is now (replacing an earlier one). */
  save(): Promise<void>;
  hasSaved(): boolean;
  /** Replaces the storage with the saved copy, or with nothing (and forgets the copy). */
  replace(by: 'saved' | 'nothing'): Promise<void>;
  /** Whether the storage is still there. */
  exists(): Promise<boolean>;
  /** Removes the storage and its copy (the schedule is over). */
  remove(): Promise<void>;
}

/** Makes the storage of node `name` of one schedule, in that schedule's directory. */
export type StorageFor = (dir: string, name: string) => Promise<NodeStorage>;

/** A SQLite file: the default for every node. */
export const sqliteStorage: StorageFor = async (dir, name) => {
  const path = join(dir, `${name}.db`);
  const copy = `${path}.copy`;
  let saved = false;
  return {
    store: () => new SqliteStore({ path, synchronous: 'off' }),
    save: async () => {
      // A clean stop leaves no WAL behind: the file alone is the copy.
      copyFileSync(path, copy);
      saved = true;
    },
    hasSaved: () => saved,
    replace: async (by) => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      if (by === 'saved') copyFileSync(copy, path);
      else saved = false;
    },
    exists: async () => existsSync(path),
    // The schedule's directory goes as a whole.
    remove: async () => undefined,
  };
};

interface Node {
  storage: NodeStorage;
  deviceId: DeviceId;
  clock: Clock;
  role: 'hub' | 'child';
  replica: Replica;
}

async function openNode(n: Omit<Node, 'replica'>): Promise<Replica> {
  const replica = new Replica({
    store: n.storage.store(),
    deviceId: n.deviceId,
    role: n.role,
    clock: n.clock,
    collections: COLLECTIONS,
  });
  await replica.start();
  return replica;
}

/** A replica's synced state, comparable across replicas. */
async function snapshot(replica: Replica) {
  const records: Record<string, Pick<RecordView, 'rev' | 'deleted' | 'body' | 'conflict'>> = {};
  for (const c of SYNCED) {
    for (const rec of await replica.list(c, { limit: 1000, includeDeleted: true })) {
      records[`${c}/${rec.id}`] = {
        rev: rec.rev,
        deleted: rec.deleted,
        body: rec.body,
        conflict: rec.conflict,
      };
    }
  }
  const active = (await replica.conflicts())
    .filter((x) => x.status !== 'resolved' && SYNCED.includes(x.collection))
    .map((x) => `${x.collection}/${x.id} ${x.status} ${x.strategy} ${x.winner} ${x.heads.join(',')}`)
    .sort();
  return { records, active };
}

/** Shuffles `revisions` into a random order in which every parent comes before its children. */
function randomTopologicalOrder(revisions: Revision[], seed: number): Revision[] {
  let state = seed || 1;
  const rand = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  const known = new Set<string>();
  const pending = [...revisions];
  const out: Revision[] = [];
  while (pending.length > 0) {
    const ready = pending.filter((r) => r.parents.every((p) => known.has(p)));
    const pick = ready[Math.floor(rand() * ready.length)] as Revision;
    out.push(pick);
    known.add(pick.rev);
    pending.splice(pending.indexOf(pick), 1);
  }
  return out;
}

interface Schedule {
  replicas: number;
  skews: number[];
  steps: Step[];
  replaySeed: number;
}

async function runSchedule(schedule: Schedule, hubStorage: StorageFor): Promise<void> {
  const dir = tempDir('trosyn-prop-');
  const base = { time: 1_750_000_000_000 };
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < schedule.replicas; i++) {
      const skew = schedule.skews[i] ?? 0;
      const n = {
        storage: await (i === 0 ? hubStorage : sqliteStorage)(dir.path, `n${i}`),
        deviceId: randomDeviceId(),
        clock: fixedClock(() => base.time + skew),
        role: i === 0 ? ('hub' as const) : ('child' as const),
      };
      nodes.push({ ...n, replica: await openNode(n) });
    }
    const hub = nodes[0] as Node;
    const accepted: Array<{ node: number; collection: string; id: string; rev: string }> = [];
    const remember = (node: number, w: { collection: string; id: string; rev: string }) =>
      accepted.push({ node, collection: w.collection, id: w.id, rev: w.rev });
    /** Writes that were only ever on a store that was then lost or rolled back past them. */
    const lost = new Set<string>();
    const holds = async (n: Node, w: { collection: string; id: string; rev: string }) =>
      (await n.replica.history(w.collection, w.id)).some((e) => e.rev === w.rev);
    /** Before `node`'s store goes: the accepted writes that no other replica holds. */
    const onlyOn = async (node: Node) => {
      const only = [];
      for (const w of accepted) {
        if (lost.has(w.rev) || !(await holds(node, w))) continue;
        let elsewhere = false;
        for (const other of nodes) if (other !== node && (await holds(other, w))) elsewhere = true;
        if (!elsewhere) only.push(w);
      }
      return only;
    };

    for (const step of schedule.steps) {
      const node = nodes['r' in step ? step.r : 0] as Node;
      const r = node.replica;
      switch (step.t) {
        case 'put':
          remember(step.r, await r.put(NAMES[step.c] as string, KEYS[step.k] as string, step.body));
          break;
        case 'del':
          remember(step.r, await r.delete(NAMES[step.c] as string, KEYS[step.k] as string));
          break;
        case 'sync':
          if (step.dir === 'push') await transfer(r, hub.replica, { maxRevisions: step.max, batchSize: 3 });
          else await transfer(hub.replica, r, { maxRevisions: step.max, batchSize: 3 });
          break;
        case 'syncAll':
          await transfer(r, hub.replica);
          await transfer(hub.replica, r);
          break;
        case 'reopen':
          await r.stop();
          node.replica = await openNode(node);
          break;
        case 'save': {
          await r.stop();
          await node.storage.save();
          node.replica = await openNode(node);
          break;
        }
        case 'rollback':
        case 'lose': {
          if (step.t === 'rollback' && !node.storage.hasSaved()) break;
          const only = await onlyOn(node);
          await r.stop();
          await node.storage.replace(step.t === 'rollback' ? 'saved' : 'nothing');
          node.replica = await openNode(node);
          for (const w of only) if (!(await holds(node, w))) lost.add(w.rev);
          break;
        }
        case 'resolve': {
          const open = await r.conflicts({ status: 'open' });
          const target = open[step.pick % Math.max(open.length, 1)];
          if (!target) break;
          const choice = step.useBody
            ? { body: { resolved: true, by: step.r } }
            : { rev: target.heads[step.pick % target.heads.length] as string };
          remember(step.r, await r.resolve(target.collection, target.id, choice));
          break;
        }
        case 'revert': {
          const c = NAMES[step.c] as string;
          const k = KEYS[step.k] as string;
          const restorable = (await r.history(c, k)).filter((h) => !h.pruned);
          const target = restorable[step.pick % Math.max(restorable.length, 1)];
          if (target) remember(step.r, await r.revert(c, k, target.rev));
          break;
        }
        case 'tick':
          base.time += step.ms;
          break;
      }
    }

    // Final full sync: every child pushes everything, then pulls everything.
    const children = nodes.slice(1);
    for (const c of children) assert.ok((await transfer(c.replica, hub.replica)).complete);
    for (const c of children) assert.ok((await transfer(hub.replica, c.replica)).complete);

    const expected = await snapshot(hub.replica);
    for (const c of children) {
      const got = await snapshot(c.replica);
      assert.deepEqual(got.records, expected.records, 'every replica holds the same records');
      assert.deepEqual(
        got.active,
        expected.active,
        'every replica holds the same open and auto-settled conflicts',
      );
    }

    // No accepted write is lost: it is the winner or in history, on every replica that
    // may hold it, unless no replica but one whose store then went had it.
    for (const w of accepted) {
      if (lost.has(w.rev)) continue;
      const holders = COLLECTIONS[w.collection]?.localOnly ? [nodes[w.node] as Node] : nodes;
      for (const h of holders) {
        const history = await h.replica.history(w.collection, w.id);
        assert.ok(
          history.some((e) => e.rev === w.rev && !e.pruned),
          `write ${w.rev.slice(0, 8)} to ${w.collection}/${w.id} is kept`,
        );
      }
    }
    // Local-only data never left its device.
    for (const [i, n] of nodes.entries()) {
      const mine = new Set(
        accepted.filter((w) => w.node === i && w.collection === 'memory').map((w) => w.rev),
      );
      assert.ok(await n.storage.exists());
      for (const k of KEYS) {
        for (const e of await n.replica.history('memory', k))
          assert.ok(mine.has(e.rev), 'a local-only revision stayed on its device');
      }
    }

    // Delivery order does not matter: replay everything, one revision at a time, in a random causal order.
    const all = await hub.replica.changesSince({
      since: 0 as Seq,
      limit: 1_000_000,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    const fresh: Node = {
      storage: await sqliteStorage(dir.path, 'replay'),
      deviceId: randomDeviceId(),
      clock: fixedClock(() => base.time),
      role: 'child',
      replica: undefined as never,
    };
    fresh.replica = await openNode(fresh);
    nodes.push(fresh);
    const source = randomDeviceId();
    for (const rev of randomTopologicalOrder(all.revisions, schedule.replaySeed)) {
      const report = await fresh.replica.applyChanges(source, {
        log: 'a'.repeat(32),
        since: 0 as Seq,
        upTo: 0 as Seq,
        check: '',
        more: false,
        revisions: [rev],
      });
      assert.equal(
        report.rejected.length,
        0,
        `replayed revision refused: ${JSON.stringify(report.rejected)}`,
      );
    }
    const replayed = await snapshot(fresh.replica);
    assert.deepEqual(
      replayed.records,
      expected.records,
      'the same revisions in another order give the same records',
    );
    assert.deepEqual(replayed.active, expected.active, 'and the same conflicts');
  } finally {
    for (const n of nodes) await n.replica?.stop();
    for (const n of nodes) await n.storage.remove();
    dir.remove();
  }
}

/**
 * Schedules that once failed, shrunk, run before the random ones. The first: the
 * hub, restored from an older copy, took the same revision at the same position of
 * its log again, so a child's cursor still matched and the child never gave back
 * what the hub had lost.
 */
const EXAMPLES: Schedule[] = [
  {
    replicas: 4,
    skews: [0, 0, 0, 0],
    replaySeed: 0,
    steps: [
      { t: 'save', r: 0 },
      { t: 'put', r: 0, c: 0, k: 0, body: {} },
      { t: 'del', r: 2, c: 0, k: 0 },
      { t: 'sync', r: 2, dir: 'push', max: 1 },
      { t: 'put', r: 1, c: 0, k: 0, body: {} },
      { t: 'sync', r: 3, dir: 'pull', max: 2 },
      { t: 'put', r: 0, c: 0, k: 0, body: {} },
      { t: 'rollback', r: 0 },
      { t: 'sync', r: 1, dir: 'push', max: 1 },
      { t: 'put', r: 1, c: 0, k: 0, body: {} },
      { t: 'put', r: 1, c: 0, k: 0, body: {} },
      { t: 'syncAll', r: 2 },
      { t: 'del', r: 0, c: 0, k: 0 },
      { t: 'sync', r: 1, dir: 'push', max: 1 },
      { t: 'put', r: 0, c: 0, k: 0, body: {} },
      { t: 'put', r: 0, c: 0, k: 0, body: {} },
    ],
  },
];

/**
 * Registers the property: `runs` random schedules (after the examples), each on
 * fresh stores, the hub's made by `hubStorage`.
 */
export function runConvergenceProperty(options: {
  name: string;
  runs: number;
  hubStorage?: StorageFor;
}): void {
  const hubStorage = options.hubStorage ?? sqliteStorage;
  describe(`convergence (property): ${options.name}`, () => {
    it(`${options.runs} random schedules converge on every replica`, async () => {
      await fc.assert(
        fc.asyncProperty(scheduleArb, (schedule) => runSchedule(schedule, hubStorage)),
        {
          numRuns: options.runs,
          examples: EXAMPLES.map((e) => [e]),
          ...(SEED !== undefined && { seed: SEED }),
          endOnFailure: process.env.TROSYN_PROPERTY_SHRINK !== '1',
        },
      );
    });
  });
}
