/**
 * Large content is hashed on two threads beside the one that reads and cuts it
 * (hash-threads.ts): the version must be exactly what hashing on one thread gives,
 * whatever the sizes of the pieces the content comes in, when two puts run at once
 * (one of them hashes on its own thread), after a put that failed part-way, and when
 * chunks equal to a stored version's are compared in place rather than hashed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { chunkBuffer } from '../../src/files/chunker.js';
import type { FileBody } from '../../src/files/file-body.js';
import type { ChunkStore } from '../../src/files/chunk-store.js';
import { FileStore, likelyTable } from '../../src/files/file-store.js';
import { encodeManifest } from '../../src/files/manifest.js';
import { NodeFiles } from '../../src/files/node-files.js';
import { openReplica } from '../../src/index.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { hashThreadUse, HashThreads, type LikelyTable, SLOT_BYTES } from '../../src/files/hash-threads.js';
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

/**
 * Puts `bytes` as a version of `name` like `like` (see FileStore.put); returns it,
 * how many chunks were compared, not hashed, and how many bytes the chunker passed over.
 */
async function putLike(
  store: FileStore,
  bytes: Buffer,
  name: string,
  like: FileBody,
  pieces = [SLOT_BYTES],
): Promise<{ body: FileBody; reused: number; scanned: number }> {
  const before = hashThreadUse();
  const body = await store.put(inPieces(bytes, pieces), { name, modifiedAt: 2 }, undefined, like);
  const after = hashThreadUse();
  return { body, reused: after.reused - before.reused, scanned: after.scanned - before.scanned };
}

/** The chunk hashes `threads` give for `bytes` comparing with `like`, submitted slot by slot. */
async function hashOnThreads(threads: HashThreads, bytes: Buffer, like: LikelyTable): Promise<string[]> {
  const run = await threads.begin(like);
  assert.ok(run);
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += SLOT_BYTES) {
    const slot = await run.slot();
    const n = Math.min(SLOT_BYTES, bytes.length - at);
    bytes.copy(slot.bytes, 0, at, at + n);
    const piece = run.submit(slot.index, n);
    run.release(slot.index);
    out.push(...(await piece).hashes);
  }
  const end = await run.end();
  run.close();
  return end.last === undefined ? out : [...out, end.last];
}

/** Seeded content of `size` bytes and an edit of it: 1 MiB inserted at 37 %, and 100 bytes overwritten at 80 %. */
function edited(seed: string, size: number): { v1: Buffer; v2: Buffer } {
  const v1 = seededBytes(`${seed}-1`, size);
  const at = Math.floor(v1.length * 0.37);
  const v2 = Buffer.concat([v1.subarray(0, at), seededBytes(`${seed}-ins`, 1024 * 1024), v1.subarray(at)]);
  seededBytes(`${seed}-over`, 100).copy(v2, Math.floor(v2.length * 0.8));
  return { v1, v2 };
}

/** What a put must give: the chunks and hash of the content cut on this thread. */
function expected(bytes: Buffer): { hashes: string[]; sha256: string } {
  return {
    hashes: chunkBuffer(bytes).map((c) => c.hash),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function check(body: FileBody, bytes: Buffer, readBack = true): Promise<void> {
  const want = expected(bytes);
  assert.equal(body.size, bytes.length);
  assert.equal(body.sha256, want.sha256);
  assert.deepEqual(
    (await files.entries(body)).map((e) => e.hash),
    want.hashes,
  );
  if (!readBack) return;
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

  it('a put like the previous version compares unchanged chunks in place, and gives the version hashing each would', async () => {
    const { v1, v2 } = edited('threads-like', 24 * 1024 * 1024 + 777);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'like', modifiedAt: 1 });
    const { body: b2, reused } = await putLike(files, v2, 'like', b1, [100_003]);
    await check(b2, v2);
    const shared = new Set((await files.entries(b1)).map((e) => e.hash));
    const unchanged = (await files.entries(b2)).filter((e) => shared.has(e.hash)).length;
    // Chunks that span two of the threads' slots are compared too; not the last chunk
    // (its end is known only at the end).
    assert.ok(reused >= unchanged - 1, `${reused} of ${unchanged} unchanged chunks compared, not hashed`);
    assert.ok(reused <= unchanged, `${reused} compared: never a chunk that changed`);
  });

  it('a stored chunk damaged on disk, or its pack gone, is not taken for the new bytes: they are hashed', async () => {
    const v1 = seededBytes('threads-like-2', 16 * 1024 * 1024);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'damaged', modifiedAt: 1 });
    // One byte of every content chunk flipped where the store keeps it.
    for (const e of await files.entries(b1)) {
      const where = chunks.location(e.hash);
      assert.ok(where);
      const fd = openSync(where.path, 'r+');
      const byte = Buffer.alloc(1);
      const at = where.offset + (e.length >> 1);
      readSync(fd, byte, 0, 1, at);
      byte[0] = (byte[0] as number) ^ 0xff;
      writeSync(fd, byte, 0, 1, at);
      closeSync(fd);
    }
    const { body: again, reused } = await putLike(files, v1, 'damaged', b1);
    assert.equal(reused, 0, 'no damaged chunk compared equal');
    // The store still holds the damaged copies (a put of a chunk already here rewrites
    // nothing): the version is checked by its list, not read back.
    await check(again, v1, false);

    // A store of its own whose packs are then removed (as a compaction removes one).
    const own = new PackChunkStore({ dir: join(dir.path, 'gone'), fsync: false });
    await own.start();
    const ownFiles = new FileStore(own);
    const b2 = await ownFiles.put(inPieces(v1, [SLOT_BYTES]), { name: 'gone', modifiedAt: 1 });
    for (const p of await own.packs()) rmSync(join(dir.path, 'gone', 'packs', p.name));
    const { body: b3, reused: fromGone } = await putLike(ownFiles, v1, 'gone', b2);
    assert.equal(fromGone, 0, 'nothing compared with a pack that is gone');
    assert.deepEqual(b3.manifest, b2.manifest, 'the same chunk list, all hashed');
    await own.stop();
  });

  it('a likely version whose chunk list is not here is hashed as without one', async () => {
    const v1 = seededBytes('threads-like-3', 12 * 1024 * 1024);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'nolist', modifiedAt: 1 });
    const unknown: FileBody = { ...b1, manifest: ['ab'.repeat(32)] };
    const { body: again, reused } = await putLike(files, v1, 'nolist', unknown);
    assert.equal(reused, 0);
    await check(again, v1);
  });

  it("a file's next version, from a path or a stream, is put like its current one", async () => {
    const replica = await openReplica({
      path: join(dir.path, 'node.db'),
      deviceId: randomDeviceId(),
      synchronous: 'off',
    });
    const node = new NodeFiles(replica, files);
    const v1 = seededBytes('threads-node-1', 12 * 1024 * 1024);
    const file = join(dir.path, 'report.bin');
    writeFileSync(file, v1);
    await node.putPath(file);
    const v2 = Buffer.concat([v1.subarray(0, 5_000_000), Buffer.from('an edit'), v1.subarray(5_000_000)]);
    writeFileSync(file, v2);
    let before = hashThreadUse().reused;
    const second = await node.putPath(file);
    assert.ok(hashThreadUse().reused - before > 100, 'the path put compared unchanged chunks');
    await check(second, v2);
    before = hashThreadUse().reused;
    const third = await node.putStream(inPieces(v1, [SLOT_BYTES]), { name: 'report.bin' });
    assert.ok(hashThreadUse().reused - before > 100, 'so did the stream put');
    await check(third, v1);
    // Another name has nothing to be like.
    before = hashThreadUse().reused;
    await node.putStream(inPieces(v1, [SLOT_BYTES]), { name: 'other.bin' });
    assert.equal(hashThreadUse().reused, before);
    await replica.stop();
  });

  it('threads warmed ahead of a put are the ones it takes; warming while a put has them starts none', async () => {
    const threads = new HashThreads();
    threads.warm();
    threads.warm();
    assert.equal(threads.starts, 1, 'warmed once');
    const run = await threads.begin();
    assert.ok(run, 'the put got the threads');
    assert.equal(threads.starts, 1, 'the put took the warmed threads, started none');
    threads.warm();
    assert.equal(threads.starts, 1, 'a put has them: nothing more starts');
    run.close();
  });

  it('threads that cannot load the chunker are not used: large puts then hash on their own thread', async () => {
    const warnings: string[] = [];
    const warned = (w: Error) => warnings.push(w.message);
    process.on('warning', warned);
    const threads = new HashThreads({ chunker: pathToFileURL(join(dir.path, 'no-such-chunker.js')).href });
    assert.equal(await threads.begin(), undefined);
    assert.match(threads.unavailable?.message ?? '', /cannot load the chunker/);
    assert.equal(await threads.begin(), undefined, 'and not tried again');
    await new Promise((r) => setImmediate(r));
    process.off('warning', warned);
    assert.equal(warnings.filter((w) => /hash on one thread/.test(w)).length, 1);
  });

  it('stored bytes that come too slowly are not compared for the rest of the put: it hashes them', async () => {
    const v1 = seededBytes('threads-slow', 12 * 1024 * 1024);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'slow', modifiedAt: 1 });
    const like = await likelyTable(chunks, b1, async (body) => encodeManifest(await files.entries(body)));
    assert.ok(like && like.lengths.length > 100);
    const hashOn = (threads: HashThreads) => hashOnThreads(threads, v1, like);
    const want = expected(v1).hashes;
    // Reads judged at once, and no disk is that fast: the first compare is the last.
    const slow = new HashThreads(undefined, { judgeAfterBytes: 0, minReadBytesPerNs: 1e9 });
    assert.deepEqual(await hashOn(slow), want);
    assert.ok(slow.reused <= 1, `${slow.reused} compared`);
    assert.equal(slow.slowPuts, 1);
    // The product's limits, the page cache: nearly all compared.
    const fast = new HashThreads();
    assert.deepEqual(await hashOn(fast), want);
    assert.ok(fast.reused > want.length * 0.7, `${fast.reused} of ${want.length} compared`);
    assert.equal(fast.slowPuts, 0);
  });
  it('a chunk is compared with the one after the last found equal, even when an earlier one has its length', async () => {
    const v1 = seededBytes('threads-order', 12 * 1024 * 1024);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'order', modifiedAt: 1 });
    const real = await likelyTable(chunks, b1, async (body) => encodeManifest(await files.entries(body)));
    assert.ok(real && real.lengths.length > 100);
    const n = real.lengths.length;
    // Ahead of the real chunks, a decoy for each but the first: the same length, other
    // bytes (its stored neighbour shifted by one), so the first chunk of each length is never the right one.
    const decoys = n - 1;
    const like = {
      eof: real.eof < 0 ? -1 : decoys + real.eof,
      lengths: new Uint32Array(decoys + n),
      offsets: new Float64Array(decoys + n),
      packOf: new Uint32Array(decoys + n),
      hashes: new Uint8Array((decoys + n) * 32),
      packs: real.packs,
    };
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        like.lengths[i - 1] = real.lengths[i] as number;
        like.offsets[i - 1] = (real.offsets[i] as number) + 1;
        like.packOf[i - 1] = real.packOf[i] as number;
      }
      like.lengths[decoys + i] = real.lengths[i] as number;
      like.offsets[decoys + i] = real.offsets[i] as number;
      like.packOf[decoys + i] = real.packOf[i] as number;
      like.hashes.set(real.hashes.subarray(i * 32, i * 32 + 32), (decoys + i) * 32);
    }
    const threads = new HashThreads();
    const hashes = await hashOnThreads(threads, v1, like);
    assert.deepEqual(hashes, expected(v1).hashes);
    // The first chunk is found by its length, each next one in order: all but the last
    // compared (comparing with the first of each length would have found one).
    assert.ok(threads.reused >= n - 1, `${threads.reused} of ${n} compared`);
  });

  it("an edit's chunks found equal are marked put again in one write a piece; one collected meanwhile is written from its bytes", async () => {
    const v1 = seededBytes('threads-again-1', 16 * 1024 * 1024);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'again', modifiedAt: 1 });
    const at = Math.floor(v1.length / 2);
    const v2 = Buffer.concat([
      v1.subarray(0, at),
      seededBytes('threads-again-ins', 300_000),
      v1.subarray(at),
    ]);
    // The real store, but a collection takes the first chunk between the put's finding it and marking it.
    const calls: number[] = [];
    let bytePuts = 0;
    let collected: string | undefined;
    const putAgain: ChunkStore['putAgain'] = async (list) => {
      calls.push(list.length);
      if (collected === undefined) {
        collected = list[0]?.hash as string;
        assert.equal(await chunks.delete(collected), true);
      }
      return chunks.putAgain(list);
    };
    const put: ChunkStore['put'] = (hash, bytes, options) => {
      bytePuts++;
      return chunks.put(hash, bytes, options);
    };
    // Everything else goes to the store itself.
    const racing = new Proxy(chunks, {
      get: (target, key) => {
        if (key === 'putAgain') return putAgain;
        if (key === 'put') return put;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const { body: b2, reused } = await putLike(new FileStore(racing), v2, 'again', b1);
    await check(b2, v2);
    assert.ok(collected && (await chunks.has(collected)), 'the collected chunk was written again');
    const marked = calls.reduce((a, b) => a + b, 0);
    assert.equal(marked, reused, 'every chunk found equal was marked put again');
    assert.ok(
      calls.length <= Math.ceil(v2.length / SLOT_BYTES),
      `${calls.length} writes for ${marked} chunks`,
    );
    const total = (await files.entries(b2)).length;
    assert.equal(
      bytePuts,
      total - marked + 1 + b2.manifest.length,
      'bytes put for the new chunks, the last, the collected one and the chunk list only',
    );
  });

  it("an edit's put passes the chunker over little more than the edited bytes, and cuts where it would have", async () => {
    const { v1, v2 } = edited('threads-expect', 24 * 1024 * 1024 + 999);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'expect', modifiedAt: 1 });
    const { body: b2, scanned, reused } = await putLike(files, v2, 'expect', b1);
    await check(b2, v2);
    // The inserted MiB, the chunks around both edits, and one chunk a slot where the
    // one expected next lies across the slot's end; the rest was compared in place.
    assert.ok(scanned < v2.length * 0.25, `the chunker passed over ${scanned} of ${v2.length} bytes`);
    assert.ok(scanned >= 1024 * 1024, 'but over all the inserted bytes');
    assert.ok(reused > 300, `${reused} chunks compared`);
    // A put with nothing to be like passes over every byte.
    const { scanned: all } = await putLike(files, v2, 'expect-fresh', { ...b1, manifest: ['ab'.repeat(32)] });
    assert.equal(all, v2.length);
  });

  it("bytes appended after the likely version's last chunk are cut where the chunker would cut them", async () => {
    // The last chunk of a version ends where its content did, not where the chunker
    // cut: the same bytes followed by more make another chunk.
    const v1 = seededBytes('threads-append-1', 12 * 1024 * 1024);
    const v2 = Buffer.concat([v1, seededBytes('threads-append-more', 300_000)]);
    const b1 = await files.put(inPieces(v1, [SLOT_BYTES]), { name: 'append', modifiedAt: 1 });
    const { body: b2 } = await putLike(files, v2, 'append', b1);
    await check(b2, v2);
    // And a version cut short keeps the chunks before the cut.
    const v3 = v1.subarray(0, 9 * 1024 * 1024 + 5);
    const { body: b3, reused } = await putLike(files, v3, 'append', b1);
    await check(b3, v3);
    assert.ok(reused > 100, `${reused} chunks compared`);
  });
});
