/**
 * `npm run chaos`: the chaos experiments in their full form, their figures printed
 * and written as JSON. Bounded: 60 kills, four network faults of 30 s and five
 * phases of abuse of 15 s, about 8 minutes on a 2-core machine; every wait has a
 * limit (60 s to converge after the kills and after each phase of abuse, 90 s after
 * each fault), so a stuck cluster fails the run, not hangs it.
 *
 *   npm run chaos                                  # full run, a fresh seed
 *   npm run chaos -- --seed 1234                   # replays the schedule of seed 1234
 *   npm run chaos -- --short                       # the short form `npm test` runs
 *   npm run chaos -- --only crash --out r.json     # one experiment (crash | network | resources | clock | abuse)
 *
 * The network experiment needs root and `ip netns` and nftables, the resource faults
 * root (a tmpfs each), the clock skew libfaketime; without them an experiment is
 * reported as not run, and the run fails.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { commandExists, netnsSkipReason } from '../netns/harness.js';
import { crashLoops } from './crash.js';
import { networkFaults } from './network.js';
import { type ExperimentResult, problems, summary } from './result.js';
import { clockSkew, clockSkipReason } from './clock.js';
import { ABUSE_FORMS, CLOCK_FORMS, CRASH_FORMS, NETWORK_FORMS, RESOURCE_FORMS } from './forms.js';
import { abuse } from './abuse.js';
import { resourceFault, resourceSkipReason } from './resources.js';
import { seedOf } from './seeded.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    short: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const seed = seedOf(values.seed ?? process.env.TROSYN_CHAOS_SEED);
const form = values.short ? 'short' : 'full';
const only = values.only;
const EXPERIMENTS = ['crash', 'network', 'resources', 'clock', 'abuse'];
if (only !== undefined && !EXPERIMENTS.includes(only)) {
  console.error(`--only is one of ${EXPERIMENTS.join(', ')}`);
  process.exit(2);
}
const runs = (name: string): boolean => only === undefined || only === name;
const out = values.out ?? (values.short ? undefined : join('bench', 'results', 'chaos.json'));
const log = (line: string): void => console.log(`  ${line}`);

console.log(
  `chaos run, ${form} form, seed ${seed} (replay: npm run chaos -- --seed ${seed}${values.short ? ' --short' : ''})`,
);
const results: ExperimentResult[] = [];
const failures: string[] = [];
const base = mkdtempSync(join(tmpdir(), 'trosyn-chaos-'));
try {
  if (runs('crash')) {
    console.log('crash loops…');
    const r = await crashLoops({ ...CRASH_FORMS[form], seed, dir: join(base, 'crash'), log });
    results.push(r);
    console.log(summary(r));
  }
  if (runs('network')) {
    const reason = (await netnsSkipReason()) ?? (commandExists('nft') ? undefined : 'needs nftables (nft)');
    if (reason) {
      failures.push(`network faults not run: ${reason}`);
    } else {
      console.log('network faults…');
      const rs = await networkFaults({ ...NETWORK_FORMS[form], seed, dir: join(base, 'network'), log });
      for (const r of rs) {
        results.push(r);
        console.log(summary(r));
      }
    }
  }
  if (runs('resources')) {
    const reason = resourceSkipReason();
    if (reason) failures.push(`resource faults not run: ${reason}`);
    else
      for (const fault of ['disk-full', 'read-only'] as const)
        for (const target of ['hub', 'child'] as const) {
          console.log(`${fault} on the ${target}…`);
          const r = await resourceFault({
            ...RESOURCE_FORMS[form],
            fault,
            target,
            seed,
            dir: join(base, `${fault}-${target}`),
            log,
          });
          results.push(r);
          console.log(summary(r));
        }
  }
  if (runs('clock')) {
    const reason = clockSkipReason();
    if (reason) failures.push(`clock skew not run: ${reason}`);
    else {
      console.log('clock skew…');
      const r = await clockSkew({ ...CLOCK_FORMS[form], seed, dir: join(base, 'clock'), log });
      results.push(r);
      console.log(summary(r));
    }
  }
  if (runs('abuse')) {
    console.log('abuse…');
    const r = await abuse({ ...ABUSE_FORMS[form], seed, dir: join(base, 'abuse'), log });
    results.push(r);
    console.log(summary(r));
  }
} catch (err) {
  failures.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  if (values.keep) console.log(`data and agent logs kept in ${base}`);
  else rmSync(base, { recursive: true, force: true });
}
for (const r of results) for (const p of problems(r)) failures.push(`${r.name}: ${p}`);
if (out) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ form, seed, node: process.version, finishedAt: new Date().toISOString(), experiments: results }, null, 2)}\n`,
  );
  console.log(`results written to ${out}`);
}
if (failures.length > 0) {
  console.error(
    `\nFAILED (seed ${seed}; replay: npm run chaos -- --seed ${seed}${values.short ? ' --short' : ''}):`,
  );
  for (const f of failures) console.error(`  ${f}`);
  process.exit(1);
}
console.log(
  'all experiments met their goals: nothing lost, nothing divergent, nothing duplicated, stores intact',
);
