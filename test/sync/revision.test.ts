import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, jsonDepthExceeds, sha256Hex } from '../../src/sync/canonical.js';
import { encodeHlc } from '../../src/sync/hlc.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import {
  computeRevId,
  createRevision,
  revisionSchema,
  revisionShapeError,
  verifyRevision,
} from '../../src/sync/revision.js';

const author = randomDeviceId();
const base = {
  collection: 'notes',
  id: 'n1',
  parents: [],
  vv: { [author]: 1 },
  hlc: encodeHlc(1_750_000_000_000, 0),
  author,
  hub: false,
  maxBodyBytes: 1 << 20,
};

describe('revisions', () => {
  it('are identified by their content: same content, same id; any change, another id', () => {
    const a = createRevision({ ...base, body: { x: 1, y: 2 } });
    const b = createRevision({ ...base, body: { y: 2, x: 1 } });
    const c = createRevision({ ...base, body: { x: 1, y: 3 } });
    const d = createRevision({ ...base, hub: true, body: { x: 1, y: 2 } });
    assert.equal(a.rev, b.rev);
    assert.notEqual(a.rev, c.rev);
    assert.notEqual(a.rev, d.rev);
  });

  it('verify accepts a well-formed revision and a tombstone', () => {
    const live = createRevision({ ...base, body: { x: 1 } });
    const tomb = createRevision({ ...base, body: null });
    assert.deepEqual(verifyRevision(JSON.parse(JSON.stringify(live)), 1 << 20).revision, live);
    assert.equal(verifyRevision(tomb, 1 << 20).revision.deleted, true);
  });

  it('verify refuses tampering, bad shapes and oversized bodies with named errors', () => {
    const live = createRevision({ ...base, body: { x: 1 } });
    const cases: Array<[unknown, string]> = [
      [{ ...live, body: { x: 2 } }, 'INVALID_REVISION'],
      [{ ...live, hlc: encodeHlc(1, 0) }, 'INVALID_REVISION'],
      [{ ...live, vv: {} }, 'INVALID_REVISION'],
      [{ ...live, body: [1, 2] }, 'INVALID_REVISION'],
      [{ ...live, rev: 'nope' }, 'INVALID_REVISION'],
      [{ ...live, deleted: true }, 'INVALID_REVISION'],
      [{ ...live, collection: 'bad name!' }, 'INVALID_COLLECTION'],
      [{ ...live, id: 'a\u0000b' }, 'INVALID_RECORD_ID'],
      ['garbage', 'INVALID_REVISION'],
      [null, 'INVALID_REVISION'],
    ];
    for (const [input, code] of cases)
      assert.throws(() => verifyRevision(input, 1 << 20), { code }, JSON.stringify(input));
    const big = createRevision({ ...base, body: { pad: 'x'.repeat(2000) } });
    assert.throws(() => verifyRevision(big, 1000), { code: 'RECORD_TOO_LARGE' });
  });

  it('refuses non-object bodies at creation', () => {
    assert.throws(() => createRevision({ ...base, body: [1] as never }), { code: 'INVALID_BODY' });
    assert.throws(() => createRevision({ ...base, body: 'text' as never }), {
      code: 'INVALID_BODY',
    });
  });
});

describe('revision hashing and shape checks agree with their definitions', () => {
  const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
  const hlc = fc.stringMatching(/^[0-9a-f]{16}$/);
  const content = fc.record({
    collection: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/),
    id: fc.string({ minLength: 1, maxLength: 30 }),
    parents: fc.array(hex, { maxLength: 3 }),
    vv: fc.dictionary(hex, fc.integer({ min: 1, max: 1000 }), { minKeys: 1, maxKeys: 3 }),
    hlc,
    author: hex,
    hub: fc.boolean(),
    deleted: fc.boolean(),
    bodyHash: fc.oneof(hex, fc.constant('')),
    body: fc.constant(null),
    fields: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), hlc), { nil: undefined }),
  });

  it('computeRevId is the SHA-256 of the canonical metadata array', () => {
    fc.assert(
      fc.property(content, (c) => {
        const fields =
          c.fields === undefined
            ? null
            : Object.keys(c.fields)
                .sort()
                .map((k) => [k, c.fields?.[k]]);
        const vv = Object.keys(c.vv)
          .sort()
          .map((k) => [k, c.vv[k]]);
        const expected = sha256Hex(
          canonicalJson([
            1,
            c.collection,
            c.id,
            [...c.parents].sort(),
            vv,
            c.hlc,
            c.author,
            c.hub,
            c.deleted,
            c.bodyHash,
            fields,
          ]),
        );
        const input = { ...c } as Record<string, unknown>;
        if (c.fields === undefined) delete input.fields;
        assert.equal(computeRevId(input as never), expected);
      }),
    );
  });

  it('the fast shape check accepts exactly what the zod schema accepts', () => {
    const mutated = fc.tuple(
      content,
      fc.constantFrom('rev', 'parents', 'vv', 'hlc', 'hub', 'bodyHash', 'fields', 'id', 'body', 'none'),
      fc.anything(),
    );
    fc.assert(
      fc.property(mutated, ([c, key, junk]) => {
        const input: Record<string, unknown> = { rev: 'a'.repeat(64), ...c };
        if (c.fields === undefined) delete input.fields;
        if (key !== 'none') input[key] = junk;
        assert.equal(
          revisionShapeError(input) === undefined,
          revisionSchema.safeParse(input).success,
          JSON.stringify(input),
        );
      }),
      { numRuns: 1000 },
    );
  });
});

describe('deeply nested bodies', () => {
  const deep = (n: number) => {
    let v: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < n; i++) v = { v };
    return v;
  };

  it('a local write nested deeper than 64 levels is refused with INVALID_BODY', () => {
    assert.doesNotThrow(() => createRevision({ ...base, body: deep(60) as never }));
    assert.throws(() => createRevision({ ...base, body: deep(65) as never }), { code: 'INVALID_BODY' });
  });

  it('jsonDepthExceeds counts containers below the top, objects and arrays alike, not brackets in strings', () => {
    assert.equal(jsonDepthExceeds(deep(64)), false);
    assert.equal(jsonDepthExceeds(deep(65)), true);
    let list: unknown[] = [1];
    for (let i = 0; i < 63; i++) list = [list];
    assert.equal(jsonDepthExceeds({ list }), false);
    assert.equal(jsonDepthExceeds({ list: [list] }), true);
    assert.equal(jsonDepthExceeds({ text: '['.repeat(200), more: { text: '{'.repeat(200) } }), false);
    assert.equal(jsonDepthExceeds('scalar'), false);
    assert.equal(jsonDepthExceeds(deep(3), 2), true);
    assert.equal(jsonDepthExceeds(deep(2), 2), false);
  });

  it('a received body at the limit is accepted, one level past it is refused', () => {
    const received = (body: Record<string, unknown>) => {
      const r = {
        ...createRevision({ ...base, body: { x: 1 } }),
        body,
        bodyHash: sha256Hex(JSON.stringify(body)),
      };
      r.rev = computeRevId(r as never);
      return JSON.parse(JSON.stringify(r)) as unknown;
    };
    assert.doesNotThrow(() => verifyRevision(received(deep(64)), 1 << 30));
    assert.throws(() => verifyRevision(received(deep(65)), 1 << 30), {
      code: 'INVALID_REVISION',
      message: /deeper than 64 levels/,
    });
  });

  it('a received one is refused with INVALID_REVISION, even when its hash is right', () => {
    const body = deep(1000);
    const text = JSON.stringify(body);
    const forged = { ...createRevision({ ...base, body: { x: 1 } }), body, bodyHash: sha256Hex(text) };
    forged.rev = computeRevId(forged as never);
    assert.throws(() => verifyRevision(forged, 1 << 30), { code: 'INVALID_REVISION' });
  });
});
