/**
 * The short form of the crash loops `npm run chaos` runs in full: a hub and three
 * children on loopback, killed with SIGKILL a few times at seeded random points
 * under writes on every node. Replay a failure with TROSYN_CHAOS_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { crashLoops } from './crash.js';
import { CRASH_FORMS } from './forms.js';
import { problems, summary } from './result.js';
import { seedOf } from './seeded.js';

const dir = tempDir('trosyn-chaos-');
after(() => dir.remove());

describe('chaos, short form: crash loops', () => {
  it('SIGKILLs of the hub and the children under writes lose no acknowledged write and break no store', async () => {
    const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
    const r = await crashLoops({ ...CRASH_FORMS.short, seed, dir: join(dir.path, 'crash') }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\nseed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
      },
    );
    console.log(summary(r));
    assert.equal(r.faults.kills, CRASH_FORMS.short.kills, 'every planned kill happened');
    assert.ok(r.ackedWrites > 0, 'writes were acknowledged');
    assert.deepEqual(problems(r), [], `seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
  });
});
