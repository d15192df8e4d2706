/**
 * A child looks at its change log for new file versions after each applied batch.
 * The changes one apply reports make one look, not one per change nor two; and a
 * look that finds no file version writes nothing to files.db, so a child applying
 * many small batches of records does not commit to it for each.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { WriteOp } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { childContentSync, contentNode, writtenScanPosition } from '../fixtures/content.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-content-looks-');
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
  dir.remove();
});

const node = (name: string, role: 'hub' | 'child') => contentNode(dir.path, name, role, stops);
const written = (at: string) => writtenScanPosition(join(at, 'files.db'));

describe('content sync: looks at the change log', () => {
  it('one look for the changes of one apply; a look that finds no file writes nothing', async () => {
    const hub = await node('hub', 'hub');
    const child = await node('child', 'child');
    // Counts the child's looks: reads of its log restricted to the fetched collections.
    let looks = 0;
    const read = child.replica.changesSince.bind(child.replica);
    child.replica.changesSince = (request) => {
      if (request.collectionIn !== undefined) looks++;
      return read(request);
    };
    const content = childContentSync(child);
    await content.start();
    stops.push(() => content.stop());
    await content.settled();
    const before = { looks, written: written(child.at) };

    for (let round = 0; round < 3; round++) {
      const ops: WriteOp[] = [];
      for (let i = 0; i < 200; i++)
        ops.push({ op: 'put', collection: 'notes', id: `n${round}-${i}`, body: { round, i } });
      await hub.replica.writeMany(ops);
      const moved = await transfer(hub.replica, child.replica);
      assert.equal(moved.applied, 200);
      // The apply told 200 changes; the look they start runs in a microtask.
      await Promise.resolve();
      await content.settled();
      assert.equal(looks, before.looks + round + 1, `one look for round ${round}'s 200 changes`);
    }
    assert.equal(written(child.at), before.written, 'no file found: files.db was not written');
    assert.equal(content.status().pending, 0);

    // Stopping writes the position read up to, so a restart does not read those records again.
    await content.stop();
    assert.ok(written(child.at) >= 600, `written down at stop: ${written(child.at)}`);
  });
});
