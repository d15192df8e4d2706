/**
 * Resource faults, short form: the data directory of the hub, then of a child,
 * turned read-only (a read-only bind mount over it) under writes on every node. The
 * agent goes on with the files it holds open; what opens files anew (the CLI beside
 * it, `files put` storing chunks) fails with a code (STORE_WRITE_FAILED,
 * CHUNK_STORE_FAILED) while status and reads still work; when the directory is
 * writable again everything syncs, nothing acknowledged lost, every store intact.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { tempDir } from '../helpers.js';
import { shortResourceFault } from './resource-short.js';
import { problems } from './result.js';

const dir = tempDir('trosyn-chaos-ro-');
after(() => dir.remove());

describe('chaos, short form: a read-only data directory', () => {
  for (const target of ['hub', 'child'] as const) {
    it(`the ${target}'s data directory turned read-only: a clear code, reads go on, all syncs once it is writable`, async (t: TestContext) => {
      const run = await shortResourceFault(t, 'read-only', target, dir.path);
      if (!run) return;
      const { r, seed } = run;
      const failures = r.measured?.commandFailures as string[];
      assert.ok(
        failures.includes('STORE_WRITE_FAILED'),
        `a put through the CLI on the read-only directory failed with STORE_WRITE_FAILED (${failures.join(', ')})`,
      );
      assert.ok(r.ackedWrites > 0, 'writes were acknowledged');
      assert.deepEqual(problems(r), [], `seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
    });
  }
});
