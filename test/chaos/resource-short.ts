/**
 * The short form of one resource fault as `npm test` runs it: skipped loudly where
 * the machine cannot (not root, no mount), failed on CI, else run with the seed of
 * TROSYN_CHAOS_SEED (or a fresh one) and its summary given as the test's diagnostic.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { loudSkip } from '../netns/harness.js';
import { RESOURCE_FORMS } from './forms.js';
import { type ResourceFault, resourceFault, resourceSkipReason } from './resources.js';
import { type ExperimentResult, summary } from './result.js';
import { seedOf } from './seeded.js';

/** The experiment's result and seed, or undefined when it was skipped. */
export async function shortResourceFault(
  t: TestContext,
  fault: ResourceFault,
  target: 'hub' | 'child',
  dir: string,
): Promise<{ r: ExperimentResult; seed: number } | undefined> {
  const reason = resourceSkipReason();
  if (reason) {
    if (process.env.CI) assert.fail(`cannot run on this CI machine: ${reason}`);
    t.skip(loudSkip(t.name, reason));
    return undefined;
  }
  const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
  const r = await resourceFault({ ...RESOURCE_FORMS.short, fault, target, seed, dir: join(dir, target) });
  t.diagnostic(summary(r));
  return { r, seed };
}
