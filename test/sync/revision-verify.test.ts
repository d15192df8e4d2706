/**
 * What `verifyRevision` hands on: exactly the fields of a revision, parents sorted,
 * whether the input already was that (then it is kept) or carried more (then copied).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeHlc } from '../../src/sync/hlc.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import {
  createRevision,
  revisionSchema,
  revisionShapeError,
  verifyRevision,
  wireRevision,
} from '../../src/sync/revision.js';

const author = randomDeviceId();
const other = randomDeviceId();
const parentA = 'a'.repeat(64);
const parentB = 'b'.repeat(64);

function revision(extra: { parents?: string[]; fields?: Record<string, string> } = {}) {
  return createRevision({
    collection: 'notes',
    id: 'n1',
    parents: (extra.parents ?? []) as never,
    vv: { [author]: 2, [other]: 1 },
    hlc: encodeHlc(1_750_000_000_000, 0),
    author,
    hub: false,
    body: { x: 1, nested: { b: [1, 2], a: 'z' } },
    ...(extra.fields && { fields: extra.fields }),
    maxBodyBytes: 1 << 20,
  });
}

/** As a peer's revision arrives: parsed from JSON text. */
const wire = (value: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(value));

describe('verifyRevision: what it returns', () => {
  it('keeps a revision that is exactly a revision, as peers send it', () => {
    for (const r of [revision(), revision({ parents: [parentA, parentB], fields: { x: encodeHlc(1, 0) } })]) {
      const input = wire(r);
      const { revision: out, bodyText } = verifyRevision(input, 1 << 20);
      assert.equal(out, input);
      assert.deepEqual(out, r);
      assert.equal(bodyText, JSON.stringify(r.body));
    }
  });

  it('copies one that carries more than a revision, dropping the rest', () => {
    const r = revision();
    const input = { ...wire(r), note: 'not a field of a revision' };
    const { revision: out } = verifyRevision(input, 1 << 20);
    assert.notEqual(out, input);
    assert.deepEqual(out, wireRevision(r));
    assert.equal(Object.hasOwn(out, 'note'), false);
  });

  it('copies one with pruned: false, which a clean revision leaves out', () => {
    const r = revision();
    const { revision: out } = verifyRevision({ ...wire(r), pruned: false }, 1 << 20);
    assert.equal(Object.hasOwn(out, 'pruned'), false);
    assert.deepEqual(out, r);
  });

  it('sorts the parents of one that lists them out of order, or twice', () => {
    const r = revision({ parents: [parentA, parentB] });
    for (const parents of [
      [parentB, parentA],
      [parentA, parentA, parentB],
    ]) {
      const input = { ...wire(r), parents };
      // The hash covers the sorted parents: the order they came in does not change it,
      // a parent listed twice does.
      if (parents.length === 3) {
        assert.throws(() => verifyRevision(input, 1 << 20), { code: 'INVALID_REVISION' });
        continue;
      }
      const { revision: out } = verifyRevision(input, 1 << 20);
      assert.notEqual(out, input);
      assert.deepEqual(out.parents, [parentA, parentB]);
      assert.deepEqual(input.parents, [parentB, parentA], 'the input is left as it was');
    }
  });
});

describe('the hex checks of the shape check', () => {
  it('refuse what the schema refuses: upper case, other digits, wrong lengths, non-strings', () => {
    const r = wire(revision({ parents: [parentA] }));
    const hex64 = [
      'A'.repeat(64),
      `${'a'.repeat(63)}g`,
      `${'a'.repeat(63)}\u0661`, // an Arabic-Indic digit
      `${'a'.repeat(63)}\u0130`, // a code unit whose low byte is a hex digit's
      `${'a'.repeat(63)}\uff41`, // a full-width a
      'a'.repeat(63),
      'a'.repeat(65),
      '',
      64,
      null,
    ];
    const hlc16 = ['A'.repeat(16), `${'0'.repeat(15)}x`, '0'.repeat(15), '0'.repeat(17), 16];
    const cases: Record<string, unknown>[] = [];
    for (const bad of hex64) {
      cases.push({ ...r, rev: bad }, { ...r, author: bad }, { ...r, parents: [bad] });
      if (bad !== '') cases.push({ ...r, bodyHash: bad });
      if (typeof bad === 'string') cases.push({ ...r, vv: { [bad]: 1 } });
    }
    for (const bad of hlc16) cases.push({ ...r, hlc: bad }, { ...r, fields: { x: bad } });
    for (const input of cases) {
      assert.notEqual(revisionShapeError(input), undefined, JSON.stringify(input));
      assert.equal(revisionSchema.safeParse(input).success, false, JSON.stringify(input));
    }
    assert.equal(revisionShapeError(r), undefined);
    assert.equal(revisionShapeError({ ...r, bodyHash: '', body: null, deleted: true }), undefined);
  });
});
