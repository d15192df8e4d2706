/**
 * The shape of the house, checked: no import cycle anywhere in src/ (type-only
 * imports included, since they tie modules together just the same), and the
 * layers below sync/ know nothing of hubs, children or HTTP.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const SRC = resolve('src');

/** Every module of src/ and the modules of src/ it imports (statically, dynamically, or as types). */
function importGraph(): Map<string, string[]> {
  const files = readdirSync(SRC, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath ?? e.path, e.name));
  const graph = new Map<string, string[]>();
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const m of text.matchAll(pattern)) {
      const target = resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'));
      targets.push(relative(SRC, target));
    }
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

/** The cycles of a directed graph, each as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

describe('the layers of src/', () => {
  const graph = importGraph();

  it('reads every module and its imports', () => {
    assert.ok(graph.size > 50, `found ${graph.size} modules`);
    for (const [file, targets] of graph)
      for (const t of targets) assert.ok(graph.has(t), `${file} imports ${t}, which is not a module of src/`);
  });

  it('has no import cycle, type-only imports included', () => {
    const found = cycles(graph);
    assert.deepEqual(
      found.map((c) => c.join(' -> ')),
      [],
      'each line is a cycle: modules that import each other round a loop',
    );
  });

  it('keeps the layers below sync/ free of hubs, children and HTTP', () => {
    const lower = ['protocol/', 'transport/', 'discovery/', 'store/', 'sync/'];
    const upper = ['hub/', 'child/', 'http/', 'cli/'];
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      if (!lower.some((l) => file.startsWith(l))) continue;
      for (const t of targets) if (upper.some((u) => t.startsWith(u))) wrong.push(`${file} -> ${t}`);
    }
    assert.deepEqual(wrong, []);
  });
});
