/**
 * Garbage collection of file content over real SQLite replicas and a real chunk
 * store: what history, deletes and conflicts still name is kept; what retention
 * dropped goes; content written during the grace period stays.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { FileGc } from '../../src/files/file-gc.js';
import { FileStore } from '../../src/files/file-store.js';
import { type FileVersion, NodeFiles } from '../../src/files/node-files.js';
import { openReplica } from '../../src/index.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { tempDir } from '../helpers.js';
import { noise } from '../fixtures/bytes.js';

const dir = tempDir('trosyn-file-gc-');
after(() => dir.remove());
let n = 0;

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

interface Node {
  replica: Replica;
  chunks: DiskChunkStore;
  files: NodeFiles;
  gc: FileGc;
}

async function node(role: 'hub' | 'child' = 'child'): Promise<Node> {
  const at = join(dir.path, `node-${++n}`);
  const replica = await openReplica({
    path: join(at, 'trosyn.db'),
    deviceId: randomDeviceId(),
    role,
    synchronous: 'off',
  });
  const chunks = new DiskChunkStore({ dir: join(at, 'chunks'), fsync: false });
  await chunks.start();
  const store = new FileStore(chunks);
  // Grace 0: every chunk not referenced when the collection starts may go.
  const gc = new FileGc({ replica, files: store, collections: () => ['files'], graceMs: 0 });
  return { replica, chunks, files: new NodeFiles(replica, store), gc };
}

async function readable(files: NodeFiles, v: FileVersion): Promise<boolean> {
  try {
    for await (const _ of files.read(v)) void _;
    return true;
  } catch {
    return false;
  }
}

describe('file garbage collection', () => {
  it('keeps every version in history, a deleted file, and both sides of a conflict; drops what retention dropped', async () => {
    const a = await node('hub');
    const b = await node();
    const v1 = await a.files.putStream(once(noise(600_000, 1)), { name: 'plan.pdf' });
    const v2 = await a.files.putStream(once(noise(600_000, 2)), { name: 'plan.pdf' });
    const gone = await a.files.putStream(once(noise(300_000, 3)), { name: 'gone.bin' });
    await a.files.remove('gone.bin');

    // A conflict: both sides edit plan.pdf from v2; a holds both heads.
    await transfer(a.replica, b.replica);
    const copy = new NodeFiles(b.replica, new FileStore(b.chunks));
    const sideA = await a.files.putStream(once(noise(500_000, 4)), { name: 'plan.pdf' });
    const sideB = await copy.putStream(once(noise(500_000, 5)), { name: 'plan.pdf' });
    await transfer(b.replica, a.replica);
    // Give a the chunks of b's side (what the content sync would fetch).
    const sideBEntries = [...sideB.manifest, ...(await copy.store.entries(sideB)).map((e) => e.hash)];
    for (const h of sideBEntries) await a.chunks.put(h, await b.chunks.get(h));
    const heads = (await a.replica.history('files', 'plan.pdf')).filter((h) => h.head);
    assert.equal(heads.length, 2, 'an open conflict (lww picks one; both stay heads)');

    const before = await a.chunks.stats();
    const first = await a.gc.run();
    assert.equal(first.removed, 0, 'everything is still referenced');
    assert.equal((await a.chunks.stats()).chunks, before.chunks);
    for (const v of [v1, v2, sideA, sideB])
      assert.ok(await readable(a.files, v), `${v.rev.slice(0, 8)} readable`);
    assert.ok(await readable(a.files, gone), 'a deleted file keeps its versions');

    // Resolve the conflict, then retention keeps one revision per record: the old
    // bodies go, and so does content only they named.
    await a.replica.resolve('files', 'plan.pdf', { rev: sideA.rev });
    const pruned = await a.replica.prune({ maxRevisions: 1 });
    assert.ok(pruned > 0);
    const second = await a.gc.run();
    assert.ok(second.removed > 0, 'content of dropped bodies is removed');
    const current = await a.files.version('plan.pdf');
    assert.ok(await readable(a.files, current), 'the current version is whole');
    assert.equal(await readable(a.files, v1), false, 'v1 went with its body');
    const third = await a.gc.run();
    assert.equal(third.removed, 0, 'a second run finds nothing more');
    for (const x of [a, b]) {
      await x.chunks.stop();
      await x.replica.stop();
    }
  });

  it('keeps content written within the grace period even if nothing names it yet', async () => {
    const a = await node();
    const loose = noise(200_000, 9);
    // Stored, but the record that would name it is not committed yet.
    await a.files.store.put(once(loose), { name: 'pending.bin', modifiedAt: 1 });
    const graceful = new FileGc({ replica: a.replica, files: a.files.store, collections: () => ['files'] });
    const kept = await graceful.run();
    assert.equal(kept.removed, 0);
    assert.ok(kept.kept > 0);
    const strict = await a.gc.run();
    assert.ok(strict.removed > 0, 'with no grace, unnamed content goes');
    await a.chunks.stop();
    await a.replica.stop();
  });
});
