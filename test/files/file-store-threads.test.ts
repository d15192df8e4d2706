/**
 * Large content is hashed on two threads beside the one that reads and cuts it
 * (hash-threads.ts): the version must be exactly what hashing on one thread gives,
 * whatever the sizes of the pieces the content comes in, when two puts run at once
 * (one of them hashes on its own thread), and after a put that failed part-way.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { chunkBuffer } from '../../src/files/chunker.js';
import type { FileBody } from '../../src/files/file-body.js';
import type { ChunkStore } from '../../src/files/chunk-store.js';
import { FileStore } from '../../src/files/file-store.js';
import { hashThreadUse, SLOT_BYTES } from '../../src/files/hash-threads.js';
import { seededBytes, tempDir } from '../helpers.js';

const dir = tempDir();
let chunks: PackChunkStore;
let files: FileStore;

/** Bytes as pieces of the sizes given in turn (the last size repeats). */
async function* inPieces(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[Math.min(i, sizes.length - 1)] as number;
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

/** What a put must give: the chunks and hash of the content cut on this thread. */
function expected(bytes: Buffer): { hashes: string[]; sha256: string } {
  return {
    hashes: chunkBuffer(bytes).map((c) => c.hash),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function check(body: FileBody, bytes: Buffer): Promise<void> {
  const want = expected(bytes);
  assert.equal(body.size, bytes.length);
  assert.equal(body.sha256, want.sha256);
  assert.deepEqual(
    (await files.entries(body)).map((e) => e.hash),
    want.hashes,
  );
  const back: Buffer[] = [];
  for await (const p of files.read(body)) back.push(p);
  assert.ok(Buffer.concat(back).equals(bytes), 'the content reads back byte for byte');
}

before(async () => {
  chunks = new PackChunkStore({ dir: join(dir.path, 'chunks'), fsync: false });
  await chunks.start();
  files = new FileStore(chunks);
});
after(async () => {
  await chunks.stop();
  dir.remove();
});

describe('file store: hashing threads', () => {
  it('gives the same version as one thread, whatever the pieces', async () => {
    const bytes = seededBytes('threads-1', 21 * 1024 * 1024 + 12_345);
    const cases: number[][] = [
      [SLOT_BYTES],
      [7_777],
      [1, 3 * SLOT_BYTES + 5, 65_536],
      [SLOT_BYTES - 1, SLOT_BYTES + 1],
    ];
    for (const sizes of cases) {
      const before = hashThreadUse().runs;
      const body = await files.put(inPieces(bytes, sizes), { name: `big-${sizes.join('-')}`, modifiedAt: 1 });
      assert.equal(
        hashThreadUse().runs,
        before + 1,
        `pieces of ${sizes.join(', ')} were hashed on the threads`,
      );
      await check(body, bytes);
    }
  });

  it('content of 8 MiB or less is hashed on the calling thread', async () => {
    const bytes = seededBytes('threads-2', 8 * 1024 * 1024);
    const before = hashThreadUse().runs;
    await check(await files.put(inPieces(bytes, [SLOT_BYTES]), { name: 'small', modifiedAt: 1 }), bytes);
    assert.equal(hashThreadUse().runs, before);
  });

  it('two puts at once: one on the threads, the other on its own thread, both right', async () => {
    const a = seededBytes('threads-3', 12 * 1024 * 1024 + 1);
    const b = seededBytes('threads-4', 10 * 1024 * 1024 + 999);
    const before = hashThreadUse().runs;
    const [ba, bb] = await Promise.all([
      files.put(inPieces(a, [100_003]), { name: 'a', modifiedAt: 1 }),
      files.put(inPieces(b, [100_003]), { name: 'b', modifiedAt: 1 }),
    ]);
    assert.equal(hashThreadUse().runs, before + 1, 'only one put has the threads at a time');
    await check(ba, a);
    await check(bb, b);
  });

  it('a source that fails part-way fails the put; the next put starts fresh threads and is right', async () => {
    const bytes = seededBytes('threads-5', 16 * 1024 * 1024);
    async function* failing(): AsyncGenerator<Buffer> {
      yield* inPieces(bytes.subarray(0, 12 * 1024 * 1024), [SLOT_BYTES]);
      throw new Error('the disk went away');
    }
    const { starts } = hashThreadUse();
    await assert.rejects(files.put(failing(), { name: 'broken', modifiedAt: 1 }), /the disk went away/);
    const body = await files.put(inPieces(bytes, [SLOT_BYTES]), { name: 'after', modifiedAt: 1 });
    assert.equal(hashThreadUse().starts, starts + 1, 'threads left mid-content are not used again');
    await check(body, bytes);
  });

  it('an aborted put stops with the signal reason', async () => {
    const bytes = seededBytes('threads-6', 20 * 1024 * 1024);
    const abort = new AbortController();
    async function* slow(): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const p of inPieces(bytes, [SLOT_BYTES])) {
        if (++n === 12) abort.abort(new Error('stopped by the user'));
        yield p;
      }
    }
    await assert.rejects(
      files.put(slow(), { name: 'aborted', modifiedAt: 1 }, abort.signal),
      /stopped by the user/,
    );
    const body = await files.put(inPieces(bytes, [SLOT_BYTES]), { name: 'after-abort', modifiedAt: 1 });
    await check(body, bytes);
  });

  it('a store that reads the bytes late (a chunk found, then collected, is written after all) gets them unchanged', async () => {
    // The pack store reads a chunk's bytes after an await when a collection removed the
    // row it had just found: a slot refilled before the put settled would hand it other bytes.
    const late: ChunkStore = Object.create(chunks) as ChunkStore;
    late.put = async (hash, bytes) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return chunks.put(hash, Buffer.from(bytes));
    };
    const bytes = seededBytes('threads-7', 24 * 1024 * 1024);
    const body = await new FileStore(late).put(inPieces(bytes, [SLOT_BYTES]), {
      name: 'late',
      modifiedAt: 1,
    });
    await check(body, bytes);
  });
});
