/**
 * The coverage-guided fuzzer, short form: each target with a fixed seed and a
 * fixed number of inputs (a few seconds each), the engine against a planted
 * fault, and the session target's oracle against a fault planted in the hub's
 * store. The long form is `npm run fuzz` (test/fuzz/run.ts).
 */
// First: the engine starts V8's coverage as it loads, before the product's modules.
import { type FuzzReport, fuzz } from './engine.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loseTombstones } from './fixtures/lossy-store.js';
import { TARGETS } from './targets/index.js';
import { plantedTarget } from './targets/planted.js';
import { sessionTarget } from './targets/session.js';

const SEED = 1;
const INPUTS = 120;

/** The failures, with their inputs, as the assertion's message: enough to replay them. */
const explain = (r: FuzzReport) =>
  JSON.stringify({ failures: r.failures.slice(0, 3), afterRun: r.afterRun }, null, 1);

describe('coverage-guided fuzzing', () => {
  it('finds a fault behind three nested checks that blind mutation of the same seed misses', async () => {
    const options = { seed: SEED, inputs: 600, timeLimitMs: 120_000, stopAfterFailures: 1 };
    const guided = await fuzz(plantedTarget(), options);
    const blind = await fuzz(plantedTarget(), { ...options, guided: false });
    assert.equal(guided.failures[0]?.message, 'the planted fault');
    assert.ok(guided.corpusSize > 3, 'each check passed is kept as a step');
    assert.equal(blind.failures.length, 0);
    assert.equal(blind.inputsRun, 600);
  });

  it('session: the oracle notices a hub that acknowledges a push its store did not keep', async () => {
    const report = await fuzz(sessionTarget({ plant: loseTombstones }), {
      seed: SEED,
      inputs: 40,
      timeLimitMs: 60_000,
      stopAfterFailures: 1,
    });
    assert.match(report.failures[0]?.message ?? '', /accepted and not in the hub's store/, explain(report));
  });

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: ${INPUTS} inputs (seed ${SEED}) end in an error from the table or a correct result, and the product serves a good peer after`, async () => {
      const report = await fuzz(target(), { seed: SEED, inputs: INPUTS, timeLimitMs: 120_000 });
      console.log(
        `fuzz ${name}: ${report.inputsRun} inputs, corpus ${report.corpusSize}, blocks ${report.blocksCovered}/${report.blocksKnown} (seeds alone ${report.blocksCoveredBySeeds}), ${report.failures.length} failures, ${report.elapsedMs} ms`,
      );
      assert.deepEqual(report.failures, [], explain(report));
      assert.equal(report.afterRun, undefined, explain(report));
      assert.equal(report.inputsRun, INPUTS);
      // Mutants reached blocks the seeds did not, and were kept for it.
      assert.ok(report.blocksCovered > report.blocksCoveredBySeeds, explain(report));
      assert.ok(report.corpusSize > report.seeds);
    });
  }
});
