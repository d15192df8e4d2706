/** The dashboard's field-by-field comparison, which the Conflicts and Records pages both show. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonical, fieldRows, suggestedMerge } from '../../dashboard/src/field-diff.js';

describe('field diff', () => {
  it('canonical: equal values give equal text whatever the key order', () => {
    assert.equal(
      canonical({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }),
      canonical({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }),
    );
    assert.notEqual(canonical({ a: 1 }), canonical({ a: '1' }));
  });

  it('against an ancestor: changed, added, removed, unchanged; a field changed differently on two sides is conflicting', () => {
    const rows = fieldRows(
      { label: 'ancestor', body: { title: 'Laptop', status: 'new', owner: 'ana', gone: 1 } },
      [
        { label: 'a', body: { title: 'Laptop', status: 'approved', owner: 'ana', gone: 1, tag: 'x' } },
        { label: 'b', body: { title: 'Laptop 14"', status: 'rejected', owner: 'ana' } },
      ],
    );
    const by = Object.fromEntries(rows.map((r) => [r.field, r]));
    assert.deepEqual(
      rows.map((r) => r.field),
      ['gone', 'owner', 'status', 'tag', 'title'],
      'every field of every version, sorted',
    );
    assert.deepEqual(
      by['status']?.cells.map((c) => c.change),
      ['changed', 'changed'],
    );
    assert.equal(by['status']?.conflicting, true);
    assert.deepEqual(
      by['title']?.cells.map((c) => c.change),
      ['same', 'changed'],
    );
    assert.equal(by['title']?.conflicting, false, 'one side only');
    assert.deepEqual(
      by['gone']?.cells.map((c) => c.change),
      ['same', 'removed'],
    );
    assert.deepEqual(
      by['tag']?.cells.map((c) => c.change),
      ['added', 'same'],
    );
    assert.equal(by['tag']?.base?.present, false);
    assert.deepEqual(
      by['owner']?.cells.map((c) => c.change),
      ['same', 'same'],
    );
  });

  it('the same change on both sides is not a conflict; a deleted side removes every field', () => {
    const rows = fieldRows({ label: 'ancestor', body: { s: 1 } }, [
      { label: 'a', body: { s: 2 } },
      { label: 'b', body: { s: 2 } },
      { label: 'c', body: null, missing: 'deleted' },
    ]);
    assert.deepEqual(
      rows[0]?.cells.map((c) => c.change),
      ['changed', 'changed', 'removed'],
    );
    assert.equal(rows[0]?.conflicting, true, 'a change and a removal disagree');
    const agree = fieldRows({ label: 'ancestor', body: { s: 1 } }, [
      { label: 'a', body: { s: 2 } },
      { label: 'b', body: { s: 2 } },
    ]);
    assert.equal(agree[0]?.conflicting, false);
  });

  it('without an ancestor, a field counts as changed where the versions disagree', () => {
    const rows = fieldRows(undefined, [
      { label: 'a', body: { same: true, side: 'ours' } },
      { label: 'b', body: { same: true, side: 'theirs', extra: 1 } },
    ]);
    const by = Object.fromEntries(rows.map((r) => [r.field, r]));
    assert.deepEqual(
      by['same']?.cells.map((c) => c.change),
      ['same', 'same'],
    );
    assert.deepEqual(
      by['side']?.cells.map((c) => c.change),
      ['changed', 'changed'],
    );
    assert.deepEqual(
      by['extra']?.cells.map((c) => c.present),
      [false, true],
    );
    assert.equal(by['side']?.conflicting, false, 'no ancestor: nothing to call a change on both sides');
  });

  it('suggested merge: one side changed, that change; both changed, the preferred side; a removal is kept', () => {
    const base = { label: 'ancestor', body: { title: 'Laptop', status: 'new', owner: 'ana', old: true } };
    const columns = [
      { label: 'a', body: { title: 'Laptop', status: 'approved', owner: 'ana', old: true } },
      { label: 'b', body: { title: 'Laptop 14"', status: 'rejected', owner: 'ana', added: [1, 2] } },
    ];
    const rows = fieldRows(base, columns);
    assert.deepEqual(suggestedMerge(rows, 0), {
      title: 'Laptop 14"',
      status: 'approved',
      owner: 'ana',
      added: [1, 2],
    });
    assert.equal(suggestedMerge(rows, 1)['status'], 'rejected', 'the other side preferred');
  });
});
