/**
 * Resource faults, short form: the data directory of the hub, then of a child,
 * filled to the last byte under writes on every node and a file recorded with
 * `files put`. The node names the cause (STORE_WRITE_FAILED, CHUNK_STORE_FULL),
 * keeps serving reads and status, and syncs again by itself once space is freed;
 * nothing acknowledged is lost and every store passes its integrity check.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { tempDir } from '../helpers.js';
import { loudSkip } from '../netns/harness.js';
import { RESOURCE_FORMS } from './forms.js';
import { resourceFault, resourceSkipReason } from './resources.js';
import { problems, summary } from './result.js';
import { seedOf } from './seeded.js';

const dir = tempDir('trosyn-chaos-disk-');
after(() => dir.remove());

describe('chaos, short form: a full disk', () => {
  for (const target of ['hub', 'child'] as const) {
    it(`the ${target}'s data directory filled up: a clear code, reads go on, sync resumes when space returns`, async (t: TestContext) => {
      const reason = resourceSkipReason();
      if (reason) {
        if (process.env.CI) assert.fail(`cannot run on this CI machine: ${reason}`);
        t.skip(loudSkip(t.name, reason));
        return;
      }
      const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
      const r = await resourceFault({
        ...RESOURCE_FORMS.short,
        fault: 'disk-full',
        target,
        seed,
        dir: join(dir.path, target),
      });
      t.diagnostic(summary(r));
      const codes = Object.keys(r.measured?.failureCodes as Record<string, number>);
      assert.ok(
        codes.some((c) => c.endsWith(':STORE_WRITE_FAILED')),
        `a write on the full disk failed with STORE_WRITE_FAILED (${codes.join(', ')})`,
      );
      assert.ok(r.ackedWrites > 0, 'writes were acknowledged');
      assert.deepEqual(problems(r), [], `seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
    });
  }
});
