/**
 * Benchmarks: `npm run bench -- <name...>` (no name runs all). Each prints its
 * figures as ratios against a baseline measured in the same run and writes
 * bench/results/<name>.json (`--quick`, where a benchmark supports it, runs it
 * smaller and writes <name>-quick.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Bench = () => Promise<Record<string, unknown>>;
const BENCHES: Record<string, () => Promise<Bench>> = {
  engine: async () => (await import('./engine.js')).run,
  transport: async () => (await import('./transport.js')).run,
  e2e: async () => (await import('./e2e.js')).run,
  'chunk-store': async () => (await import('./files-store.js')).run,
  chunker: async () => (await import('./files-chunker.js')).run,
  files: async () => (await import('./files.js')).run,
  scale: async () => (await import('./scale.js')).run,
  postgres: async () => (await import('./postgres.js')).run,
};

const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = requested.length > 0 ? requested : Object.keys(BENCHES);
for (const name of names) {
  const load = BENCHES[name];
  if (!load) {
    console.error(`unknown benchmark "${name}"; choose from: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
}
// A quick (smaller) run is for development: its results never replace a full run's.
const scaled = process.env.BENCH_SCALE !== undefined && Number(process.env.BENCH_SCALE) !== 1;
const suffix = process.argv.includes('--quick') || scaled ? '-quick' : '';
mkdirSync(join('bench', 'results'), { recursive: true });
for (const name of names) {
  console.log(`\n== ${name} ==`);
  const result = await (await (BENCHES[name] as () => Promise<Bench>)())();
  const file = join('bench', 'results', `${name}${suffix}.json`);
  writeFileSync(file, `${JSON.stringify({ ...result, machine: machine() }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

function machine() {
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    date: new Date().toISOString(),
  };
}
