import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

it('every error code raised in the source is documented in docs/ERRORS.md', () => {
  const doc = readFileSync('docs/ERRORS.md', 'utf8');
  const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]));
  const raised = new Set<string>();
  const pattern = /(?:super|new [A-Z][A-Za-z]*Error)\(\s*'([A-Z][A-Z_]+)'/g;
  for (const file of sources('src'))
    for (const m of readFileSync(file, 'utf8').matchAll(pattern)) raised.add(m[1] as string);
  assert.ok(raised.size > 10, 'the scan finds the codes');
  const missing = [...raised].filter((c) => !documented.has(c)).sort();
  assert.deepEqual(missing, [], `undocumented error codes: ${missing.join(', ')}`);
});
