/**
 * One error table: every code is in src/error-codes.ts with what it means and what
 * to do (TrosynError takes nothing else, so the compiler holds the source to it),
 * and docs/ERRORS.md is exactly what the table generates.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { ERROR_AREAS, ERROR_CODES, type ErrorInfo } from '../src/error-codes.js';
import { formatErrorsDoc } from './fixtures/errors-doc.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

it('docs/ERRORS.md is generated from the code table (npm run docs:errors)', async () => {
  assert.equal(readFileSync('docs/ERRORS.md', 'utf8'), await formatErrorsDoc(), 'run `npm run docs:errors`');
});

it('every code in the table says where it belongs, what it means and what to do', () => {
  const areas = new Set<string>(ERROR_AREAS.map((a) => a.name));
  for (const [code, info] of Object.entries(ERROR_CODES) as Array<[string, ErrorInfo]>) {
    assert.match(code, /^[A-Z][A-Z_]+$/);
    assert.ok(areas.has(info.area), `${code}: area ${info.area}`);
    assert.ok(info.meaning.length > 10 && info.fix.length > 3, `${code}: meaning and fix`);
    if (info.status !== undefined) assert.ok(info.status >= 400 && info.status < 600, `${code}: status`);
  }
});

it('every code written in the source is in the table, however it is written', () => {
  const raised = new Set<string>();
  // Error constructors, refusals (`deny: 'X'`), codes in objects, and codes passed to disconnect().
  const pattern =
    /(?:super|new [A-Z][A-Za-z]*Error|deny:|code:|disconnect\([^,]+,)\s*\(?\s*'([A-Z][A-Z_]{2,})'/g;
  for (const file of sources('src')) {
    if (file.endsWith('error-codes.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(pattern)) raised.add(m[1] as string);
  }
  assert.ok(raised.size > 60, `the scan finds the codes (${raised.size})`);
  const missing = [...raised].filter((c) => !Object.hasOwn(ERROR_CODES, c)).sort();
  assert.deepEqual(missing, [], `codes not in src/error-codes.ts: ${missing.join(', ')}`);
});
