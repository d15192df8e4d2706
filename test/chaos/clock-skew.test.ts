/**
 * Clock skew, short form: a child whose clock is hours ahead and one whose clock is
 * hours behind (libfaketime), beside one on time. Nothing acknowledged is lost,
 * edits made one after another keep their order everywhere, concurrent edits settle
 * the same way whatever order the children come back in, and the skewed children's
 * status (CLI and local API) warns of the skew.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { tempDir } from '../helpers.js';
import { loudSkip } from '../netns/harness.js';
import { clockSkew, clockSkipReason } from './clock.js';
import { CLOCK_FORMS } from './forms.js';
import { problems, summary } from './result.js';
import { seedOf } from './seeded.js';

const dir = tempDir('trosyn-chaos-clock-');
after(() => dir.remove());

describe('chaos, short form: clock skew', () => {
  it('children hours ahead and behind: nothing lost or reordered, conflicts settle alike everywhere, status warns', async (t: TestContext) => {
    const reason = clockSkipReason();
    if (reason) {
      if (process.env.CI) assert.fail(`cannot run on this CI machine: ${reason}`);
      t.skip(loudSkip(t.name, reason));
      return;
    }
    const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
    const r = await clockSkew({ ...CLOCK_FORMS.short, seed, dir: join(dir.path, 'clock') });
    t.diagnostic(summary(r));
    // The skew took effect: the agents measured the hub's clock hours off theirs.
    const hours = CLOCK_FORMS.short.skewHours * 3600_000;
    assert.ok(Math.abs((r.measured?.['hubClock.c1'] as number) + hours) < 60_000, 'c1 is ahead');
    assert.ok(Math.abs((r.measured?.['hubClock.c2'] as number) - hours) < 60_000, 'c2 is behind');
    assert.deepEqual(problems(r), [], `seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
  });
});
