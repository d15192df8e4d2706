/**
 * Resource faults, short form: the data directory of the hub, then of a child,
 * filled to the last byte under writes on every node and a file recorded with
 * `files put`. The node names the cause (STORE_WRITE_FAILED, CHUNK_STORE_FULL),
 * keeps serving reads and status, and syncs again by itself once space is freed;
 * nothing acknowledged is lost and every store passes its integrity check.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { tempDir } from '../helpers.js';
import { shortResourceFault } from './resource-short.js';
import { problems } from './result.js';

const dir = tempDir('trosyn-chaos-disk-');
after(() => dir.remove());

describe('chaos, short form: a full disk', () => {
  for (const target of ['hub', 'child'] as const) {
    it(`the ${target}'s data directory filled up: a clear code, reads go on, sync resumes when space returns`, async (t: TestContext) => {
      const run = await shortResourceFault(t, 'disk-full', target, dir.path);
      if (!run) return;
      const { r, seed } = run;
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
