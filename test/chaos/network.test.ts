/**
 * The short form of the network faults `npm run chaos` runs in full: loss, delay,
 * a partition and a flapping link between namespaces, a heartbeat of 1 s. Needs
 * root, `ip netns` and nftables (skips loudly without). Replay a failure with
 * TROSYN_CHAOS_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { requireNetns } from '../netns/harness.js';
import { NETWORK_FORMS } from './forms.js';
import { networkFaults } from './network.js';
import { problems, summary } from './result.js';
import { seedOf } from './seeded.js';

const dir = tempDir('trosyn-chaos-');
after(() => dir.remove());

describe('chaos, short form: network faults', () => {
  it('loss, delay, a partition and a flapping link: sync completes, nothing lost, a silent hub noticed and rejoined', async (t) => {
    if (!(await requireNetns(t, ['nft']))) return;
    const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
    const form = NETWORK_FORMS.short;
    const results = await networkFaults({ ...form, seed, dir: join(dir.path, 'network') }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\nseed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
      },
    );
    for (const r of results) console.log(summary(r));
    assert.deepEqual(
      results.map((r) => r.name),
      ['net-loss', 'net-delay', 'net-partition', 'net-flap'],
    );
    const loss = results[0]?.measured as { packetsDropped: number } | undefined;
    assert.ok((loss?.packetsDropped ?? 0) > 0, 'the loss rule dropped packets');
    const partition = results[2]?.measured as
      { noticedMs: (number | null)[]; disconnectCodes: string[] } | undefined;
    assert.deepEqual(partition?.disconnectCodes, [
      'HEARTBEAT_TIMEOUT',
      'HEARTBEAT_TIMEOUT',
      'HEARTBEAT_TIMEOUT',
    ]);
    for (const r of results)
      assert.deepEqual(problems(r), [], `${r.name}, seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`);
  });
});
