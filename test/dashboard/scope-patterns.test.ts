/**
 * The dashboard checks group names and scope patterns as they are typed; the hub is
 * the judge. The two must agree, or the page would refuse what the hub takes, or
 * send what the hub refuses with no word of why in the form.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  collectionNameProblem,
  groupNameProblem,
  parsePatterns,
  scopePatternProblem,
} from '../../dashboard/src/scope-patterns.js';
import { assertScopePattern } from '../../src/hub/scopes.js';
import { parseSyncPolicy } from '../../src/sync/policy.js';
import { registryAt } from '../fixtures/registry.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-scope-patterns-');
after(() => dir.remove());

const hubAccepts = (pattern: string) => {
  try {
    assertScopePattern(pattern);
    return true;
  } catch {
    return false;
  }
};

const EXAMPLES = [
  '*',
  'notes',
  'sales.*',
  'sales*',
  '_system',
  'x'.repeat(64),
  'x'.repeat(64) + '*',
  'x'.repeat(65),
  '../x',
  '*x',
  'a*b',
  '**',
  '',
  '.hidden',
  '-x',
  'a/b',
  'notes ',
  'caf\u00e9',
  '*.notes',
];

describe('the dashboard’s checks agree with the hub’s', () => {
  it('on scope patterns: listed examples and random strings over the characters that matter', () => {
    for (const p of EXAMPLES)
      assert.equal(scopePatternProblem(p) === undefined, hubAccepts(p), JSON.stringify(p));
    const char = fc.constantFrom(...'aZ09_.-*/ é'.split(''));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 70 }), (chars) => {
        const p = chars.join('');
        assert.equal(scopePatternProblem(p) === undefined, hubAccepts(p), JSON.stringify(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('on the collection names of the collection policy: what the page lets through, the hub takes', () => {
    const policyTakes = (name: string) => {
      try {
        parseSyncPolicy({
          version: 1,
          updatedAt: 0,
          collections: { [name]: { conflict: 'manual' } },
          hubOnly: [],
          retention: {},
        });
        return true;
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'INVALID_POLICY');
        return false;
      }
    };
    for (const name of [
      'notes',
      '_system',
      'hr.eu',
      'x'.repeat(64),
      'x'.repeat(65),
      '',
      '.x',
      '-x',
      'a b',
      'a*',
    ])
      assert.equal(collectionNameProblem(name) === undefined, policyTakes(name), JSON.stringify(name));
    const char = fc.constantFrom(...'aZ09_.-*/ é'.split(''));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 70 }), (chars) => {
        const name = chars.join('');
        assert.equal(collectionNameProblem(name) === undefined, policyTakes(name), JSON.stringify(name));
      }),
      { numRuns: 2000 },
    );
  });

  it('on group names: what the page lets through, the hub saves', async () => {
    const registry = registryAt(join(dir.path, 'hub.db'));
    await registry.start();
    try {
      for (const name of [
        'sales',
        'hr.eu',
        'A-1_b',
        'x'.repeat(64),
        '-bad',
        '.bad',
        'x'.repeat(65),
        'a b',
        'ü',
      ]) {
        const saved = await registry.putGroup({ name, description: '', read: [], write: [] }).then(
          () => true,
          (err: { code?: string }) => (assert.equal(err.code, 'INVALID_GROUP'), false),
        );
        assert.equal(groupNameProblem(name) === undefined, saved, JSON.stringify(name));
      }
    } finally {
      await registry.stop();
    }
  });

  it('patterns are typed separated by commas, spaces or new lines', () => {
    assert.deepEqual(parsePatterns(' hr.*, policies\nnotes  *\n'), ['hr.*', 'policies', 'notes', '*']);
    assert.deepEqual(parsePatterns(' \n '), []);
  });
});
