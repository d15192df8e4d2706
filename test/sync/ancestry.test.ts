import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commonAncestor, type RevisionLink } from '../../src/sync/ancestry.js';

/** A revision `rev` at clock `hlc` that superseded `parents`. */
const r = (rev: string, hlc: string, ...parents: string[]): RevisionLink => ({ rev, hlc, parents });

describe('commonAncestor', () => {
  it('two edits of one base meet at the base', () => {
    const history = [r('base', '01'), r('a', '02', 'base'), r('b', '03', 'base')];
    assert.equal(commonAncestor(history, ['a', 'b']), 'base');
  });

  it('the latest shared revision, however far back each side went', () => {
    // base <- mid <- a1 <- a2 (one side edited twice); mid <- b
    const history = [
      r('base', '01'),
      r('mid', '02', 'base'),
      r('a1', '03', 'mid'),
      r('a2', '04', 'a1'),
      r('b', '05', 'mid'),
    ];
    assert.equal(commonAncestor(history, ['a2', 'b']), 'mid');
    assert.equal(commonAncestor(history, ['b', 'a2']), 'mid', 'the order of the heads does not matter');
  });

  it('a side that is itself the ancestor of the other (a stale head) is the ancestor', () => {
    const history = [r('base', '01'), r('a', '02', 'base')];
    assert.equal(commonAncestor(history, ['a', 'base']), 'base');
  });

  it('three sides meet where all three do', () => {
    const history = [
      r('base', '01'),
      r('x', '02', 'base'),
      r('a', '03', 'x'),
      r('b', '04', 'x'),
      r('c', '05', 'base'),
    ];
    assert.equal(commonAncestor(history, ['a', 'b']), 'x');
    assert.equal(commonAncestor(history, ['a', 'b', 'c']), 'base');
  });

  it('after an earlier merge, the merge is the ancestor, not what it merged', () => {
    // p and q were merged into m; both sides then edited m.
    const history = [
      r('p', '01'),
      r('q', '02'),
      r('m', '03', 'p', 'q'),
      r('a', '04', 'm'),
      r('b', '05', 'm'),
    ];
    assert.equal(commonAncestor(history, ['a', 'b']), 'm');
  });

  it('criss-cross: of two latest shared revisions, the later clock, the same on every replica', () => {
    const history = [r('x', '01'), r('y', '02'), r('a', '03', 'x', 'y'), r('b', '04', 'x', 'y')];
    assert.equal(commonAncestor(history, ['a', 'b']), 'y');
    assert.equal(commonAncestor([...history].reverse(), ['b', 'a']), 'y');
  });

  it('none: a record created on two devices at once, one head, a parent the history lacks', () => {
    assert.equal(commonAncestor([r('a', '01'), r('b', '02')], ['a', 'b']), undefined);
    assert.equal(commonAncestor([r('a', '01')], ['a']), undefined);
    assert.equal(
      commonAncestor([r('a', '02', 'gone'), r('b', '03', 'gone')], ['a', 'b']),
      undefined,
      'a parent not in the history is not offered as the ancestor',
    );
  });
});
