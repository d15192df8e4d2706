#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's own test runner (through tsx).
// Arguments narrow the run: `npm test -- sync` runs the files whose path contains "sync".
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

const filters = process.argv.slice(2);
const files = readdirSync('test', { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
  .map((e) => join(e.parentPath ?? e.path, e.name))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? String(Math.max(1, availableParallelism()));
// A long fuzz run sets its own time limit from TROSYN_FUZZ_FRAMES (see
// test/transport/fuzz.test.ts); the per-file limit here must not cut it first.
const fuzzFrames = Number(process.env.TROSYN_FUZZ_FRAMES ?? 0) || 0;
const timeoutMs = process.env.TEST_TIMEOUT_MS ?? Math.max(300_000, 180_000 + 10 * fuzzFrames);
const result = spawnSync(
  process.execPath,
  [
    '--test',
    `--test-concurrency=${concurrency}`,
    // A failing test that leaves a socket open must not hang the run: each test has a
    // time limit, and a file's process exits when its tests are done.
    `--test-timeout=${timeoutMs}`,
    '--test-force-exit',
    '--test-reporter=spec',
    '--import',
    'tsx',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
