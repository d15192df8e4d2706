/**
 * The long fuzzing run: `npm run fuzz [-- --target pairing,chunks,session]
 * [--inputs N] [--seconds S] [--seed X]`. Each target runs until N inputs (default
 * 5,000) or S seconds (default 300) are spent, printing its progress; the results,
 * failures with their inputs included, go to bench/results/fuzz.json, where targets
 * not run keep their last results (each says its seed, limits and commit). Exits 1
 * when an input failed.
 */
// First: the engine starts V8's coverage as it loads, before the product's modules.
import { type FuzzReport, fuzz } from './engine.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sourceVersion } from '../../bench/common.js';
import { TARGETS } from './targets/index.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: Object.keys(TARGETS).join(',') },
    inputs: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string' },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const inputs = Number(values.inputs);
const seconds = Number(values.seconds);
const names = values.target.split(',').filter(Boolean);
for (const name of names)
  if (!TARGETS[name]) throw new Error(`unknown target ${name}; targets: ${Object.keys(TARGETS).join(', ')}`);
if (!Number.isSafeInteger(seed) || !(inputs > 0) || !(seconds > 0))
  throw new Error('--seed, --inputs and --seconds take positive numbers');
console.log(
  `fuzz: seed ${seed}, at most ${inputs} inputs and ${seconds} s per target; replay with --seed ${seed}`,
);

const line = (r: FuzzReport) =>
  `${r.target}: ${r.inputsRun} inputs, corpus ${r.corpusSize}, blocks covered ${r.blocksCovered} of ${r.blocksKnown} seen (seeds alone ${r.blocksCoveredBySeeds}), ${r.failures.length} crashes, ${Math.round(r.elapsedMs / 1000)} s`;

const reports: FuzzReport[] = [];
for (const name of names) {
  const target = (TARGETS[name] as () => import('./engine.js').FuzzTarget)();
  const report = await fuzz(target, {
    seed,
    inputs,
    timeLimitMs: seconds * 1000,
    progress: { every: 250, report: (r) => console.log(`  ${line(r)}`) },
  });
  console.log(line(report));
  for (const f of report.failures)
    console.log(`  input ${f.index}: ${f.message}\n    ${f.input.join('\n    ')}`);
  if (report.afterRun) console.log(`  after the run: ${report.afterRun}`);
  reports.push(report);
}

// Targets not run this time keep their last results, each with the seed and limits it ran with.
const resultsFile = new URL('../../bench/results/fuzz.json', import.meta.url);
const previous = existsSync(resultsFile)
  ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as {
      seed?: number;
      limits?: unknown;
      setup?: { commit?: string };
      targets?: Record<string, Record<string, unknown>>;
    })
  : undefined;
const kept = Object.fromEntries(
  Object.entries(previous?.targets ?? {})
    .filter(([name]) => !names.includes(name))
    .map(([name, r]) => [
      name,
      { seed: previous?.seed, limits: previous?.limits, commit: previous?.setup?.commit, ...r },
    ]),
);
writeFileSync(
  resultsFile,
  `${JSON.stringify(
    {
      seed,
      limits: { inputs, seconds },
      targets: {
        ...kept,
        ...Object.fromEntries(
          reports.map((r) => [
            r.target,
            {
              seed,
              limits: { inputs, seconds },
              commit: sourceVersion().commit,
              inputsRun: r.inputsRun,
              corpusSize: r.corpusSize,
              blocksCovered: r.blocksCovered,
              blocksKnown: r.blocksKnown,
              blocksCoveredBySeeds: r.blocksCoveredBySeeds,
              features: r.features,
              crashes: r.failures.length,
              failures: r.failures,
              ...(r.afterRun && { afterRun: r.afterRun }),
              inputsPerSec: Math.round((r.inputsRun / r.elapsedMs) * 1000 * 10) / 10,
            },
          ]),
        ),
      },
      setup: {
        guidance:
          "V8 block coverage through node:inspector (Profiler.takePreciseCoverage, detailed, call counts) over the target's source files; an input is kept when it reaches a new (block, hit-count bucket)",
        jazzer:
          '@jazzer.js/core 4.0.0 installs but its linux-x64 prebuilt binary needs GLIBC 2.38 (this machine has 2.36); 2.1.0 downloads its binary from github.com at install time',
        node: process.version,
        ...sourceVersion(),
      },
    },
    null,
    2,
  )}\n`,
);
process.exit(reports.some((r) => r.failures.length > 0 || r.afterRun) ? 1 : 0);
