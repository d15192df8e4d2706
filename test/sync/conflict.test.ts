import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceId, JsonObject, Revision } from '../../src/store/types.js';
import {
  customResolver,
  hubWinsResolver,
  lwwResolver,
  manualResolver,
  mergeFields,
  mergeResolver,
} from '../../src/sync/conflict.js';
import { encodeHlc } from '../../src/sync/hlc.js';
import { createRevision } from '../../src/sync/revision.js';
import { runConflictResolverSuite } from '../../src/sync/testing/resolver-suite.js';
import { buildRevision } from '../../src/sync/testing/revisions.js';

runConflictResolverSuite('lww', () => lwwResolver);
runConflictResolverSuite('hub-wins', () => hubWinsResolver);
runConflictResolverSuite('merge', () => mergeResolver);
runConflictResolverSuite('manual', () => manualResolver);
runConflictResolverSuite('custom (longest title)', () =>
  customResolver('longest-title', (heads) => {
    const live = heads.filter((h) => h.body);
    const best = live.reduce<Revision | undefined>((acc, h) => {
      const len = String(h.body?.title ?? '').length;
      return acc === undefined || len > String(acc.body?.title ?? '').length ? h : acc;
    }, undefined);
    return best ? best.rev : (heads[0] as Revision).rev;
  }),
);

const A = 'a'.repeat(64) as DeviceId;
const B = 'b'.repeat(64) as DeviceId;

function rev(
  parents: Revision[],
  author: DeviceId,
  wall: number,
  body: JsonObject | null,
  extra: { hub?: boolean; fields?: Record<string, string> } = {},
): Revision {
  return buildRevision({ collection: 'c', id: 'r', parents, author, wall, body, ...extra });
}

describe('built-in strategies', () => {
  const base = rev([], A, 1000, { v: 0 });

  it('lww: the latest HLC wins; equal clocks go to the higher device ID', () => {
    const early = rev([base], B, 2000, { v: 'b' });
    const late = rev([base], A, 3000, { v: 'a' });
    assert.equal(lwwResolver.resolve([early, late], { collection: 'c', id: 'r' }).winner, late.rev);
    const tieA = rev([base], A, 2000, { v: 'a' });
    const tieB = rev([base], B, 2000, { v: 'b' });
    assert.equal(lwwResolver.resolve([tieA, tieB], { collection: 'c', id: 'r' }).winner, tieB.rev);
  });

  it('hub-wins: the hub’s revision beats a later child revision', () => {
    const hub = rev([base], A, 2000, { v: 'hub' }, { hub: true });
    const child = rev([base], B, 9000, { v: 'child' });
    assert.equal(hubWinsResolver.resolve([hub, child], { collection: 'c', id: 'r' }).winner, hub.rev);
  });

  it('manual: provisional LWW winner and the conflict stays open', () => {
    assert.equal(manualResolver.leavesOpen, true);
  });

  it('merge: fields changed on one side each survive; a field changed on both goes to the later change', () => {
    const t0 = encodeHlc(1000, 0);
    const anc = rev(
      [],
      A,
      1000,
      { title: 't', body: 'b', tag: 'x' },
      { fields: { title: t0, body: t0, tag: t0 } },
    );
    const left = rev(
      [anc],
      A,
      2000,
      { title: 'T-left', body: 'b', tag: 'L' },
      { fields: { title: encodeHlc(2000, 0), body: t0, tag: encodeHlc(2000, 0) } },
    );
    const right = rev(
      [anc],
      B,
      3000,
      { title: 't', body: 'B-right', tag: 'R' },
      { fields: { title: t0, body: encodeHlc(3000, 0), tag: encodeHlc(3000, 0) } },
    );
    const res = mergeResolver.resolve([left, right], { collection: 'c', id: 'r' });
    assert.deepEqual(res.body, { title: 'T-left', body: 'B-right', tag: 'R' });
    assert.equal(res.derived, true);
    assert.equal(res.deleted, false);
  });

  it('merge: a field removed on one side stays removed when the other side left it alone', () => {
    const t0 = encodeHlc(1000, 0);
    const anc = rev([], A, 1000, { a: 1, b: 2 }, { fields: { a: t0, b: t0 } });
    const removed = rev([anc], A, 2000, { a: 1 }, { fields: { a: t0, b: encodeHlc(2000, 0) } });
    const edited = rev([anc], B, 3000, { a: 5, b: 2 }, { fields: { a: encodeHlc(3000, 0), b: t0 } });
    assert.deepEqual(mergeFields([removed, edited]).body, { a: 5 });
  });

  it('merge: a delete wins only when it is later than every edit', () => {
    const edit = rev([base], A, 2000, { v: 'e' });
    const laterDelete = rev([base], B, 3000, null);
    const earlierDelete = rev([base], B, 1500, null);
    assert.equal(mergeResolver.resolve([edit, laterDelete], { collection: 'c', id: 'r' }).deleted, true);
    assert.equal(mergeResolver.resolve([edit, earlierDelete], { collection: 'c', id: 'r' }).deleted, false);
  });

  it('custom: a body answer becomes the derived result; an unknown rev falls back to LWW', () => {
    const x = rev([base], A, 2000, { n: 1 });
    const y = rev([base], B, 3000, { n: 2 });
    const sum = customResolver('sum', (heads) => ({
      body: { n: heads.reduce((s, h) => s + Number(h.body?.n ?? 0), 0) },
    }));
    assert.deepEqual(sum.resolve([x, y], { collection: 'c', id: 'r' }).body, { n: 3 });
    const bogus = customResolver('bogus', () => 'f'.repeat(64) as never);
    assert.equal(bogus.resolve([x, y], { collection: 'c', id: 'r' }).winner, y.rev);
  });
});

describe('reducer', () => {
  it('revisions with equal vectors but different content stay concurrent, whatever order they arrive in', async () => {
    const { createReducer } = await import('../../src/sync/reducer.js');
    const reduce = createReducer(() => lwwResolver);
    const x = rev([], A, 2000, { v: 'x' });
    const y = createRevision({ ...x, parents: [], body: { v: 'y' }, maxBodyBytes: 1 << 20 });
    assert.deepEqual(x.vv, y.vv);
    const stored = (r: Revision) => ({
      ...r,
      seq: 1 as never,
      head: true,
      local: false,
      source: undefined,
    });
    const xy = reduce([stored(x)], y);
    const yx = reduce([stored(y)], x);
    assert.equal(xy.kind, 'head');
    assert.equal(yx.kind, 'head');
    if (xy.kind === 'head' && yx.kind === 'head') {
      assert.deepEqual(xy.heads, yx.heads);
      assert.equal(xy.heads.length, 2);
      assert.deepEqual(xy.resolution, yx.resolution);
    }
  });
});
