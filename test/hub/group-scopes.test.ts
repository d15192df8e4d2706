import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { errorResponse } from '../../src/http/errors.js';
import { registryAt } from '../fixtures/registry.js';
import { InvalidScopePatternError, matchesScope } from '../../src/hub/scopes.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

const VALID = [
  '*',
  'notes',
  'sales.*',
  'sales*',
  'sales.q1',
  '_system',
  'a-b.c_d',
  'x'.repeat(64),
  'x'.repeat(64) + '*',
];
const INVALID = [
  '../x',
  '*x',
  'a*b',
  '**',
  'sales.**',
  '',
  '.hidden',
  '-x',
  'a/b',
  'notes ',
  ' notes',
  'x'.repeat(65),
  'caf\u00e9',
  '*.notes',
];

describe('group scope patterns', () => {
  it('every form matchesScope gives a meaning to is accepted and saved', async () => {
    const registry = registryAt(join(dir.path, 'valid.db'));
    await registry.start();
    const saved = await registry.putGroup({
      name: 'sales',
      description: '',
      read: VALID,
      write: ['sales.*'],
    });
    assert.deepEqual(saved.read, VALID);
    // What the accepted forms mean, so the rule and the matcher cannot drift apart unnoticed.
    assert.ok(matchesScope(['sales.*'], 'sales.q1') && !matchesScope(['sales.*'], 'salesq1'));
    assert.ok(matchesScope(['sales*'], 'salesq1') && matchesScope(['sales*'], 'sales'));
    assert.ok(matchesScope(['*'], 'anything') && matchesScope(['notes'], 'notes'));
    await registry.stop();
  });

  it('a pattern that is not a collection name, *, or a name beginning with a trailing * is refused with INVALID_SCOPE_PATTERN, and nothing is saved', async () => {
    const registry = registryAt(join(dir.path, 'invalid.db'));
    await registry.start();
    await registry.putGroup({ name: 'sales', description: 'before', read: ['sales.*'], write: ['sales.*'] });
    for (const pattern of INVALID) {
      for (const scopes of [
        { read: ['notes', pattern], write: [] },
        { read: [], write: [pattern] },
      ]) {
        await assert.rejects(
          async () => registry.putGroup({ name: 'sales', description: 'after', ...scopes }),
          (err: unknown) => {
            assert.ok(err instanceof InvalidScopePatternError, `${JSON.stringify(pattern)} refused`);
            assert.equal(err.code, 'INVALID_SCOPE_PATTERN');
            assert.deepEqual(err.details, { pattern });
            assert.match(err.message, /collection name/);
            return true;
          },
        );
        await assert.rejects(
          async () => registry.putGroup({ name: 'new-group', description: '', ...scopes }),
          {
            code: 'INVALID_SCOPE_PATTERN',
          },
        );
      }
    }
    assert.deepEqual(await registry.getGroup('sales'), {
      name: 'sales',
      description: 'before',
      read: ['sales.*'],
      write: ['sales.*'],
    });
    assert.equal(await registry.getGroup('new-group'), undefined);
    await registry.stop();
  });

  it('the HTTP APIs answer it as a bad request', () => {
    const { status, body } = errorResponse(new InvalidScopePatternError('../x'), 'req-1');
    assert.equal(status, 400);
    assert.equal(body.code, 'INVALID_SCOPE_PATTERN');
  });
});
