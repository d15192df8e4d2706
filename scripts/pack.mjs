#!/usr/bin/env node
// `npm pack` hooks. `before` (prepack): builds when the sources changed since the last
// build, and ships the lockfile as npm-shrinkwrap.json, which npm never leaves out of a
// package (it always leaves out package-lock.json). An install from the unpacked
// package (`npm ci --omit=dev`) then gets the dependency versions that were tested.
// `after` (postpack): removes that copy again; package-lock.json stays the one lockfile.
import { copyFileSync, rmSync } from 'node:fs';
import { buildIfStale } from './build-if-stale.mjs';

const SHRINKWRAP = 'npm-shrinkwrap.json';

const step = process.argv[2];
if (step === 'before') {
  buildIfStale();
  copyFileSync('package-lock.json', SHRINKWRAP);
} else if (step === 'after') {
  rmSync(SHRINKWRAP, { force: true });
} else {
  process.stderr.write('usage: node scripts/pack.mjs before|after\n');
  process.exit(2);
}
