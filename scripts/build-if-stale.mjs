// Builds the project (server and dashboard) only when the built output is missing or
// older than the sources (a build takes about 30 s). Used by `npm start` and by
// `npm pack` (prepack), so a package is never made from a stale build.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The built command line program. */
export const entry = join('dist', 'cli', 'main.js');
const dashboard = join('dist', 'dashboard', 'index.html');

function newestSource() {
  let newest = 0;
  for (const dir of ['src', join('dashboard', 'src')])
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
    }
  for (const f of [
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    join('dashboard', 'index.html'),
    join('dashboard', 'tsconfig.json'),
    join('dashboard', 'vite.config.mjs'),
  ])
    newest = Math.max(newest, statSync(f).mtimeMs);
  return newest;
}

function builtAt() {
  try {
    return Math.min(statSync(entry).mtimeMs, statSync(dashboard).mtimeMs);
  } catch {
    return 0;
  }
}

/** Builds when the sources changed since the last build; exits the process if the build fails. */
export function buildIfStale() {
  if (builtAt() >= newestSource()) return;
  process.stderr.write('building (the sources changed since the last build) ...\n');
  for (const args of [
    [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', join('dashboard', 'tsconfig.json')],
    [join('node_modules', 'vite', 'bin', 'vite.js'), 'build', '-c', join('dashboard', 'vite.config.mjs')],
  ]) {
    const build = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }
}
