import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type OpenReplicaOptions, openReplica } from '../../src/index.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { EMPTY_POLICY, type SyncPolicy } from '../../src/sync/policy.js';
import type { ChangeEvent, Replica } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;

async function replica(options: Partial<OpenReplicaOptions> = {}): Promise<Replica> {
  return openReplica({
    path: join(dir.path, `p${++n}.db`),
    deviceId: randomDeviceId(),
    synchronous: 'off',
    ...options,
  });
}

function policy(change: Partial<SyncPolicy>): SyncPolicy {
  return { ...EMPTY_POLICY, version: 1, updatedAt: 1, ...change };
}

/** Hub and child, each with the same two concurrent edits of tickets/t1. */
async function conflicted(): Promise<{ hub: Replica; child: Replica }> {
  const hub = await replica({ role: 'hub' });
  const child = await replica();
  await hub.put('tickets', 't1', { status: 'new' });
  await transfer(hub, child);
  await hub.put('tickets', 't1', { status: 'hub-edit' });
  // The child's edit is later, so last-writer-wins picks it.
  await new Promise((r) => setTimeout(r, 5));
  await child.put('tickets', 't1', { status: 'child-edit' });
  await transfer(child, hub);
  await transfer(hub, child);
  return { hub, child };
}

describe('collection policy', () => {
  it('a changed strategy settles existing conflicts again, the same way on every replica, without a new revision', async () => {
    const { hub, child } = await conflicted();
    for (const r of [hub, child]) {
      const rec = await r.get('tickets', 't1');
      assert.equal(rec?.conflict, 'auto');
      assert.deepEqual(rec?.body, { status: 'child-edit' }, 'lww before any policy');
    }
    const latest = await hub.latestSeq();
    const events: ChangeEvent[] = [];
    hub.subscribe((e) => events.push(e));

    // Manual: the conflict opens for a person, the provisional winner unchanged.
    for (const r of [hub, child]) {
      const { resettled } = await r.setPolicy(policy({ collections: { tickets: { conflict: 'manual' } } }));
      assert.equal(resettled, 1);
      const rec = await r.get('tickets', 't1');
      assert.equal(rec?.conflict, 'open');
      const [c] = await r.conflicts({ status: 'open' });
      assert.equal(c?.strategy, 'manual');
    }
    assert.equal(events.length, 1, 'one change event for the record that changed state');
    assert.equal(events[0]?.conflict, 'open');

    // Hub-wins: the hub's edit wins on both, and the conflict is settled again.
    for (const r of [hub, child]) {
      await r.setPolicy(policy({ version: 2, collections: { tickets: { conflict: 'hub-wins' } } }));
      const rec = await r.get('tickets', 't1');
      assert.equal(rec?.conflict, 'auto');
      assert.deepEqual(rec?.body, { status: 'hub-edit' });
    }
    assert.deepEqual(await hub.get('tickets', 't1'), await child.get('tickets', 't1'));
    assert.equal(await hub.latestSeq(), latest, 'settling again writes no revision');

    // The same policy again changes nothing.
    assert.deepEqual(
      await hub.setPolicy(policy({ version: 2, collections: { tickets: { conflict: 'hub-wins' } } })),
      { resettled: 0 },
    );
    await hub.stop();
    await child.stop();
  });

  it('is kept in the store: a replica opened again applies it', async () => {
    const path = join(dir.path, 'kept.db');
    const deviceId = randomDeviceId();
    const r = await openReplica({ path, deviceId, synchronous: 'off' });
    await r.setPolicy(
      policy({
        collections: { docs: { conflict: 'merge', localOnly: true } },
        retention: { maxRevisions: 3 },
      }),
    );
    await r.stop();
    const again = await openReplica({ path, deviceId, synchronous: 'off' });
    assert.equal(again.getPolicy().version, 1);
    assert.equal(again.resolverFor('docs').name, 'merge');
    assert.equal(again.resolverFor('other').name, 'lww');
    assert.equal(again.isLocalOnly('docs'), true);
    assert.deepEqual(again.retention(), { maxRevisions: 3 });
    await again.stop();
  });

  it("its strategy overrides the node's options; a node's own local-only collections stay", async () => {
    const r = await replica({ collections: { notes: { conflict: 'manual' }, diary: { localOnly: true } } });
    assert.equal(r.resolverFor('notes').name, 'manual');
    await r.setPolicy(policy({ collections: { notes: { conflict: 'merge' } } }));
    assert.equal(r.resolverFor('notes').name, 'merge');
    assert.equal(r.isLocalOnly('diary'), true, 'a node may add local-only collections');
    await r.stop();
  });

  it('local-only: nothing of the collection is offered from then on, its earlier revisions included, and a peer’s is refused', async () => {
    const a = await replica();
    const b = await replica();
    await a.put('memory', 'm1', { text: 'written before the policy' });
    await a.put('notes', 'n1', { text: 'shared' });
    await b.put('memory', 'm2', { text: 'from b' });
    await a.setPolicy(policy({ collections: { memory: { localOnly: true } } }));
    await a.put('memory', 'm3', { text: 'after' });
    const offered = await a.changesSince({ since: 0 as never });
    assert.deepEqual(
      offered.revisions.map((r) => r.collection),
      ['notes'],
    );
    const report = await transfer(b, a);
    assert.equal(report.rejected, 1, 'b wrote memory before it knew the policy: a refuses it');
    assert.equal(await a.get('memory', 'm2'), undefined);
    await a.stop();
    await b.stop();
  });

  it('retention comes from the policy', async () => {
    const r = await replica();
    for (let i = 0; i < 4; i++) await r.put('notes', 'n', { v: i });
    assert.equal(await r.prune(), 0, 'no retention: nothing dropped');
    await r.setPolicy(policy({ retention: { maxRevisions: 1 } }));
    assert.equal(await r.prune(), 3);
    await r.stop();
  });

  it('a policy another process stores is adopted by the running replica', async () => {
    const path = join(dir.path, 'shared.db');
    const deviceId = randomDeviceId();
    const running = await openReplica({ path, deviceId, synchronous: 'off', watchExternalWritesMs: 20 });
    const seen: SyncPolicy[] = [];
    running.onPolicy((p) => seen.push(p));
    const cli = await openReplica({ path, deviceId, synchronous: 'off' });
    await cli.setPolicy(policy({ version: 7, collections: { tickets: { conflict: 'manual' } } }));
    await cli.stop();
    await eventually(async () => seen.length === 1, 5000, 'the running replica adopts the stored policy');
    assert.equal(running.getPolicy().version, 7);
    assert.equal(running.resolverFor('tickets').name, 'manual');
    await running.stop();
  });

  it('refuses a bad policy with INVALID_POLICY and keeps the one in force', async () => {
    const r = await replica();
    await r.setPolicy(policy({ collections: { notes: { conflict: 'merge' } } }));
    for (const bad of [
      { collections: { notes: { conflict: 'newest' } } },
      { collections: { '../x': {} } },
      { retention: { maxRevisions: 0 } },
      { collections: { notes: { conflict: 'lww', extra: true } } },
    ]) {
      await assert.rejects(r.setPolicy(policy(bad as Partial<SyncPolicy>)), { code: 'INVALID_POLICY' });
    }
    assert.equal(r.resolverFor('notes').name, 'merge');
    await r.stop();
  });
});
