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

/**
 * The modules each module of src/ loads as soon as it is loaded: static imports of
 * values only (not `import type`, not an import of types alone, not `import()`).
 */
function loadGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const statement =
    /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.{1,2}\/[^'"]+)['"]|^\s*import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const file of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!file.isFile() || !file.name.endsWith('.ts')) continue;
    const path = join(file.parentPath ?? file.path, file.name);
    const targets: string[] = [];
    for (const m of readFileSync(path, 'utf8').matchAll(statement)) {
      const [, , typeOnly, clause = '', from, bare] = m;
      const names = /^\{([^}]*)\}$/s.exec(clause.trim())?.[1];
      const allTypes =
        names !== undefined &&
        names
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean)
          .every((n) => n.startsWith('type '));
      if (typeOnly || allTypes) continue;
      const target = resolve(dirname(path), ((from ?? bare) as string).replace(/\.js$/, '.ts'));
      targets.push(relative(SRC, target));
    }
    graph.set(relative(SRC, path), targets);
  }
  return graph;
}

/** Every module reached from `start` in `graph`. */
function closure(graph: Map<string, string[]>, start: string): Set<string> {
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const next = queue.pop() as string;
    if (seen.has(next)) continue;
    seen.add(next);
    queue.push(...(graph.get(next) ?? []));
  }
  return seen;
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

describe('what a child agent loads', () => {
  const graph = loadGraph();

  it('reads the value imports of every module', () => {
    assert.ok(closure(graph, 'cli/program.ts').size > 5);
    assert.ok(closure(graph, 'child/factory.ts').has('sync/replica.ts'), 'the child loads the engine');
  });

  // A child runs beside the desktop app: the hub's modules (its admin API, registry,
  // dashboard) and the CLI's hub-only helpers are never loaded into it.
  it('loads nothing of the hub, neither through the child nor through the agents command', () => {
    const loaded = new Set([
      ...closure(graph, 'child/factory.ts'),
      ...closure(graph, 'cli/commands/agents.ts'),
    ]);
    assert.deepEqual(
      [...loaded].filter((m) => m.startsWith('hub/')),
      [],
    );
  });
});
