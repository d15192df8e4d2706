/**
 * What the on-disk chunk store promises beyond the acceptance suite: its layout and
 * permissions, the sweep of a crashed writer's leftovers, garbage collection against
 * another process's put, and its errors.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { chunkHash } from '../../src/files/chunk-store.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { randomChunk } from '../../src/files/testing/chunk-store-suite.js';
import { tempDir } from '../helpers.js';

const pathOf = (dir: string, hash: string) => join(dir, hash.slice(0, 2), hash);

/** Every file under the store's directory, as paths relative to it. */
function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  assert.ok(pid);
  return pid;
}

async function withStore(fn: (store: DiskChunkStore, dir: string) => Promise<void>): Promise<void> {
  const tmp = tempDir('trosyn-chunks-');
  const dir = join(tmp.path, 'chunks');
  const store = new DiskChunkStore({ dir });
  try {
    await store.start();
    await fn(store, dir);
  } finally {
    await store.stop();
    tmp.remove();
  }
}

describe('DiskChunkStore on disk', () => {
  it('keeps a chunk at <dir>/<first byte in hex>/<hash>, directories 0700 and files 0600', async () => {
    const tmp = tempDir('trosyn-chunks-');
    const dir = join(tmp.path, 'chunks');
    // A permissive umask and a directory made by someone else must not loosen anything.
    const umask = process.umask(0);
    mkdirSync(dir, { mode: 0o755 });
    const store = new DiskChunkStore({ dir });
    try {
      await store.start();
      const c = randomChunk(1234);
      await store.put(c.hash, c.bytes);
      assert.deepEqual(allFiles(dir), [`${c.hash.slice(0, 2)}/${c.hash}`]);
      assert.deepEqual(readFileSync(pathOf(dir, c.hash)), c.bytes);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, c.hash.slice(0, 2))).mode & 0o777, 0o700);
      assert.equal(statSync(pathOf(dir, c.hash)).mode & 0o777, 0o600);
    } finally {
      process.umask(umask);
      await store.stop();
      tmp.remove();
    }
  });

  it('a refused put leaves no file behind, not even a directory', async () => {
    await withStore(async (store, dir) => {
      const c = randomChunk(5000);
      await assert.rejects(store.put(c.hash, randomChunk(5000).bytes), { code: 'CHUNK_HASH_MISMATCH' });
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  it("start removes a crashed writer's temporaries, restores what a stopped gc set aside, and spares live writers", async () => {
    const tmp = tempDir('trosyn-chunks-');
    const dir = join(tmp.path, 'chunks');
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    let store = new DiskChunkStore({ dir });
    try {
      await store.start();
      const [kept, setAside, half, mine, theirs] = Array.from({ length: 5 }, () => randomChunk(4096));
      await store.put(kept!.hash, kept!.bytes);
      await store.put(setAside!.hash, setAside!.bytes);
      await store.stop();

      const dead = deadPid();
      const scratch = (c: { hash: string }, pid: number, kind: string) =>
        join(dir, c.hash.slice(0, 2), `${c.hash}.${pid}.0a1b2c3d.${kind}`);
      for (const c of [half, mine, theirs]) mkdirSync(join(dir, c!.hash.slice(0, 2)), { recursive: true });
      // A crash mid-put: half the bytes under a temporary name, for a chunk not stored
      // and for one that is.
      writeFileSync(scratch(half!, dead, 'tmp'), half!.bytes.subarray(0, 1000));
      writeFileSync(scratch(kept!, dead, 'tmp'), kept!.bytes.subarray(0, 10));
      // A collection killed between setting a chunk aside and deciding about it.
      renameSync(pathOf(dir, setAside!.hash), scratch(setAside!, dead, 'gc'));
      // Writers still running: this process, and another.
      writeFileSync(scratch(mine!, process.pid, 'tmp'), mine!.bytes.subarray(0, 100));
      writeFileSync(scratch(theirs!, sleeper.pid!, 'tmp'), theirs!.bytes.subarray(0, 100));

      store = new DiskChunkStore({ dir });
      await store.start();
      assert.equal(await store.has(half!.hash), false, 'a temporary never counts');
      assert.deepEqual(await store.get(setAside!.hash), setAside!.bytes, 'set aside, then put back');
      assert.deepEqual(await store.get(kept!.hash), kept!.bytes);
      assert.deepEqual(await store.stats(), { chunks: 2, bytes: 8192 });
      const left = allFiles(dir).map((f) => f.split('/')[1]);
      assert.deepEqual(
        left.sort(),
        [
          kept!.hash,
          setAside!.hash,
          `${mine!.hash}.${process.pid}.0a1b2c3d.tmp`,
          `${theirs!.hash}.${sleeper.pid}.0a1b2c3d.tmp`,
        ].sort(),
      );
    } finally {
      sleeper.kill('SIGKILL');
      await store.stop();
      tmp.remove();
    }
  });

  it('gc keeps a chunk that another process puts again while the collection looks at it', async () => {
    await withStore(async (store, dir) => {
      // A second store on the same directory stands for another process (the CLI):
      // it shares no lock with the first, only the files.
      const other = new DiskChunkStore({ dir });
      await other.start();
      try {
        const chunks = Array.from({ length: 20 }, (_, i) => randomChunk(100 + i));
        for (const c of chunks) await store.put(c.hash, c.bytes);
        const byHash = new Map(chunks.map((c) => [c.hash, c]));
        await sleep(30);
        const putAgain = new Set<string>();
        const report = await store.gc(
          async (hash) => {
            if (putAgain.size < 4) {
              assert.equal(await other.put(hash, byHash.get(hash)!.bytes), false, 'found present');
              putAgain.add(hash);
            }
            return false;
          },
          { graceMs: 0 },
        );
        assert.deepEqual(report, { removed: 16, bytes: report.bytes, kept: 4 });
        for (const c of chunks) assert.equal(await other.has(c.hash), putAgain.has(c.hash));
        for (const hash of putAgain) assert.deepEqual(await other.get(hash), byHash.get(hash)!.bytes);
        assert.equal(allFiles(dir).length, 4, 'nothing set aside is left over');
      } finally {
        await other.stop();
      }
    });
  });

  it('an aborted gc stops between two chunks and leaves nothing of its own behind', async () => {
    await withStore(async (store, dir) => {
      const chunks = Array.from({ length: 10 }, (_, i) => randomChunk(100 + i));
      for (const c of chunks) await store.put(c.hash, c.bytes);
      await sleep(30);
      const abort = new AbortController();
      let calls = 0;
      await assert.rejects(
        store.gc(
          () => {
            if (++calls === 3) abort.abort(new Error('enough'));
            return false;
          },
          { graceMs: 0, signal: abort.signal },
        ),
        /enough/,
      );
      // The chunk being decided when the signal came is finished; no other is touched.
      assert.equal((await store.stats()).chunks, chunks.length - calls);
      assert.deepEqual(
        allFiles(dir).filter((f) => !/^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f)),
        [],
        'no mark, nothing set aside',
      );
    });
  });

  it('reads skip the hash check when asked, and by default verify it', async () => {
    const tmp = tempDir('trosyn-chunks-');
    const dir = join(tmp.path, 'chunks');
    const trusting = new DiskChunkStore({ dir, verifyOnRead: false });
    try {
      await trusting.start();
      const c = randomChunk(2000);
      await trusting.put(c.hash, c.bytes);
      const damaged = Buffer.from(c.bytes);
      damaged[7] = (damaged[7] as number) ^ 1;
      writeFileSync(pathOf(dir, c.hash), damaged);
      assert.deepEqual(await trusting.get(c.hash), damaged, 'verifyOnRead: false');
      assert.deepEqual(await trusting.get(c.hash, { verify: false }), damaged);
      await assert.rejects(trusting.get(c.hash, { verify: true }), { code: 'CHUNK_CORRUPT' });
      assert.deepEqual(allFiles(dir), [], 'the damaged file is removed');
    } finally {
      await trusting.stop();
      tmp.remove();
    }
  });

  it('stop waits for puts in flight, and what they wrote is there after a restart', async () => {
    await withStore(async (store, dir) => {
      const chunks = Array.from({ length: 50 }, (_, i) => randomChunk(10_000 + i));
      const puts = chunks.map((c) => store.put(c.hash, c.bytes));
      await store.stop();
      assert.deepEqual(await Promise.all(puts), Array(50).fill(true));
      const again = new DiskChunkStore({ dir });
      await again.start();
      try {
        for (const c of chunks) assert.equal(chunkHash(await again.get(c.hash)), c.hash);
      } finally {
        await again.stop();
      }
    });
  });

  it('a chunk directory that cannot be written is CHUNK_STORE_FAILED, naming the path', async () => {
    await withStore(async (store, dir) => {
      const c = randomChunk(100);
      // A file where the fan-out directory belongs: no permission bits stop root, this does.
      writeFileSync(join(dir, c.hash.slice(0, 2)), 'in the way');
      await assert.rejects(store.put(c.hash, c.bytes), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CHUNK_STORE_FAILED');
        assert.match(err.message, new RegExp(c.hash));
        return true;
      });
      assert.deepEqual(allFiles(dir), [c.hash.slice(0, 2)]);
    });
  });
});
