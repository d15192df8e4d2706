#!/usr/bin/env node
// `npm start`: runs the hub on ./data/hub, building the project (server and
// dashboard) first only when the built output is missing or older than the sources
// (a build takes about 30 s).
// Arguments after `npm start --` go to the hub command.
import { pathToFileURL } from 'node:url';
import { buildIfStale, entry } from './build-if-stale.mjs';

buildIfStale();
process.argv = [process.argv[0], entry, 'hub', '--data', './data/hub', ...process.argv.slice(2)];
await import(pathToFileURL(entry).href);
