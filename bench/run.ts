/**
 * Benchmarks: `npm run bench -- <name...>` (no name runs all). Each prints its
 * figures as ratios against a baseline measured in the same run and writes
 * bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Bench = () => Promise<Record<string, unknown>>;
const BENCHES: Record<string, () => Promise<Bench>> = {
  engine: async () => (await import('./engine.js')).run,
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
mkdirSync(join('bench', 'results'), { recursive: true });
for (const name of names) {
  console.log(`\n== ${name} ==`);
  const result = await (await (BENCHES[name] as () => Promise<Bench>)())();
  const file = join('bench', 'results', `${name}.json`);
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
