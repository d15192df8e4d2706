/**
 * File content over a real chunk store on disk: a stream in, a file version out;
 * the bytes back, whole or in part; identical content stored once; a small edit a
 * few new chunks; what is missing, said before anything is read.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { type FileBody, assertFileName } from '../../src/files/file-body.js';
import { chunkHash } from '../../src/files/chunk-store.js';
import { FileStore, MISSING_LISTED } from '../../src/files/file-store.js';
import { decodeManifest, encodeManifest, ManifestBuilder, manifestChunks } from '../../src/files/manifest.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
let chunks: DiskChunkStore;
let files: FileStore;

/** Bytes as a stream of uneven pieces, as a file read would give them. */
async function* pieces(bytes: Buffer, size = 100_003): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}
async function readAll(body: FileBody, range?: { start?: number; end?: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of files.read(body, range)) parts.push(p);
  return Buffer.concat(parts);
}
const put = (bytes: Buffer, name = 'doc.bin') => files.put(pieces(bytes), { name, modifiedAt: 1 });

before(async () => {
  chunks = new DiskChunkStore({ dir: join(dir.path, 'chunks'), fsync: false });
  await chunks.start();
  files = new FileStore(chunks);
});
after(async () => {
  await chunks.stop();
  dir.remove();
});

describe('file store', () => {
  it('a stream goes in as chunks and comes back byte for byte, whole or from a range', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const body = await put(bytes);
    assert.equal(body.size, bytes.length);
    assert.equal(body.sha256, (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex'));
    assert.ok(body.chunkCount > 5, `${body.chunkCount} chunks`);
    assert.ok(body.manifest.length >= 1);
    assert.ok((await readAll(body)).equals(bytes));
    assert.ok(
      (await readAll(body, { start: 1_000_000, end: 2_500_000 })).equals(
        bytes.subarray(1_000_000, 2_500_000),
      ),
    );
    assert.ok((await readAll(body, { start: bytes.length - 5 })).equals(bytes.subarray(bytes.length - 5)));
  });

  it('an empty file is a version with no chunks', async () => {
    const body = await put(Buffer.alloc(0), 'empty.txt');
    assert.equal(body.size, 0);
    assert.equal(body.chunkCount, 0);
    assert.equal((await readAll(body)).length, 0);
    assert.equal(await files.isComplete(body), true);
  });

  it('the same content is stored once; a small edit adds only a few chunks', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    await put(bytes, 'a.bin');
    const before = await chunks.stats();
    await put(bytes, 'copy-of-a.bin');
    assert.deepEqual(await chunks.stats(), before, 'a copy adds nothing');
    const edited = Buffer.concat([
      bytes.subarray(0, 1_500_000),
      Buffer.from('inserted text'),
      bytes.subarray(1_500_000),
    ]);
    const body = await put(edited, 'a.bin');
    const after = await chunks.stats();
    // The chunk or two around the edit, and the chunk list.
    assert.ok(after.chunks - before.chunks <= 4, `${after.chunks - before.chunks} new chunks`);
    assert.ok(after.bytes - before.bytes < 600 * 1024, `${after.bytes - before.bytes} new bytes`);
    assert.ok((await readAll(body)).equals(edited));
  });

  it('says what is missing, chunk list first, and refuses to read an incomplete version', async () => {
    const bytes = randomBytes(1024 * 1024);
    const body = await put(bytes, 'partial.bin');
    const entries = await files.entries(body);
    await chunks.delete((entries[1] ?? entries[0])?.hash as string);
    const missing = await files.missing(body);
    assert.equal(missing.manifest.length, 0);
    assert.equal(missing.chunks.length, 1);
    assert.equal(missing.bytesTotal, bytes.length);
    assert.ok(missing.bytesHere < bytes.length);
    await assert.rejects(readAll(body), { code: 'FILE_CONTENT_MISSING' });
    await chunks.delete(body.manifest[0] as string);
    const noList = await files.missing(body);
    assert.deepEqual(noList.manifest, [body.manifest[0]]);
    assert.equal(noList.bytesHere, 0);
  });

  it('a version of thousands of chunks: what is missing is counted in full, listed in part and fetched a page at a time', async () => {
    // The store agents use (a file a chunk is slow to fill with thousands).
    const chunks = new PackChunkStore({ dir: join(dir.path, 'packs'), fsync: false });
    await chunks.start();
    after(() => chunks.stop());
    const files = new FileStore(chunks);
    const readAll = async (body: FileBody) => {
      const parts: Buffer[] = [];
      for await (const p of files.read(body)) parts.push(p);
      return Buffer.concat(parts);
    };
    // 2,400 small chunks (a file's chunk list as a 150 MiB file would have it).
    const parts = Array.from({ length: 2400 }, (_, i) => Buffer.from(`chunk ${i} ${'x'.repeat(i % 7)}`));
    const entries = parts.map((p) => ({ hash: chunkHash(p), length: p.length }));
    const byHash = new Map(parts.map((p, i) => [entries[i]?.hash as string, p]));
    for (const [i, p] of parts.entries()) await chunks.put(entries[i]?.hash as string, p);
    const manifest: string[] = [];
    for (const c of manifestChunks(encodeManifest(entries))) {
      await chunks.put(c.hash, Buffer.from(c.data));
      manifest.push(c.hash);
    }
    const whole = Buffer.concat(parts);
    const body: FileBody = {
      name: 'many.bin',
      size: whole.length,
      type: 'application/octet-stream',
      modifiedAt: 1,
      sha256: createHash('sha256').update(whole).digest('hex'),
      chunkCount: entries.length,
      manifest,
    };
    assert.deepEqual(await readAll(body), whole, 'read a window of the list at a time');
    // All but every tenth chunk go: 2,160 missing, more than `missing` lists and than a page of 500.
    const gone = entries.filter((_, i) => i % 10 !== 0);
    for (const e of gone) await chunks.delete(e.hash);
    const missing = await files.missing(body);
    assert.equal(missing.chunksMissing, gone.length);
    assert.equal(missing.bytesHere, whole.length - gone.reduce((n, e) => n + e.length, 0));
    assert.ok(gone.length > MISSING_LISTED);
    assert.deepEqual(missing.chunks, gone.slice(0, MISSING_LISTED));
    const pages: string[][] = [];
    for await (const page of files.missingPages(body, 500)) {
      pages.push(page.map((e) => e.hash));
      // What a page brings is not listed again by the next.
      for (const e of page) await chunks.put(e.hash, byHash.get(e.hash) ?? Buffer.alloc(0));
    }
    assert.deepEqual(
      pages.map((p) => p.length),
      [500, 500, 500, 500, 160],
    );
    assert.deepEqual(
      pages.flat(),
      gone.map((e) => e.hash),
      'in file order, each once',
    );
    assert.equal((await files.missing(body)).chunksMissing, 0);
    assert.equal(await files.isComplete(body), true);
  });

  it('a chunk list round-trips, and a damaged one is refused', () => {
    const list = [
      { hash: 'a'.repeat(64), length: 65536 },
      { hash: 'b'.repeat(64), length: 7 },
    ];
    assert.deepEqual(decodeManifest(encodeManifest(list)), list);
    assert.throws(() => decodeManifest(Buffer.alloc(35)), { code: 'FILE_MANIFEST_INVALID' });
  });

  it('a chunk list built as it grows encodes as the whole list does, past its first buffer', () => {
    const list = Array.from({ length: 3000 }, (_, i) => ({
      hash: createHash('sha256').update(String(i)).digest('hex'),
      length: 1 + ((i * 7919) % 300_000),
    }));
    const built = new ManifestBuilder();
    for (const e of list) built.push(e.hash, e.length);
    assert.equal(built.count, 3000);
    assert.deepEqual(built.encode(), encodeManifest(list));
    assert.throws(() => built.push('not hex', 1), /not a chunk hash/);
    assert.equal(built.count, 3000, 'a refused entry is not counted');
  });

  it('file names stay inside their folder', () => {
    for (const ok of ['report.pdf', 'projects/2026/plan.docx', 'ünïcode naïve.txt', 'a'.repeat(255)])
      assertFileName(ok);
    for (const bad of [
      '',
      '/etc/passwd',
      'a/../b',
      '..',
      'a//b',
      'a/',
      './x',
      'tab\there',
      'back\\slash',
      'a'.repeat(256),
    ])
      assert.throws(() => assertFileName(bad), { code: 'INVALID_FILE_NAME' }, JSON.stringify(bad));
  });
});

describe('file store: a read in full checked by its whole hash alone', () => {
  it('gives the same bytes; a damaged chunk fails the read at its end, and is removed', async () => {
    const store = new PackChunkStore({ dir: join(dir.path, 'whole-only'), fsync: false });
    await store.start();
    try {
      const own = new FileStore(store);
      const bytes = randomBytes(3 * 1024 * 1024 + 5);
      const body = await own.put(pieces(bytes), { name: 'whole.bin', modifiedAt: 1 });
      const read = async (range: { start?: number; end?: number }, given: Buffer[] = []) => {
        for await (const p of own.read(body, range, { checkChunks: false })) given.push(Buffer.from(p));
        return Buffer.concat(given);
      };
      assert.ok((await read({})).equals(bytes));
      // The third chunk damaged on disk.
      const [first, second, damaged] = await own.entries(body);
      assert.ok(first && second && damaged);
      const offset = first.length + second.length;
      /** Flips one byte of the chunk where the store keeps it. */
      const damage = () => {
        const where = store.location(damaged.hash);
        assert.ok(where);
        const fd = openSync(where.path, 'r+');
        const byte = Buffer.alloc(1);
        readSync(fd, byte, 0, 1, where.offset + 10);
        byte[0] = (byte[0] as number) ^ 1;
        writeSync(fd, byte, 0, 1, where.offset + 10);
        closeSync(fd);
      };
      damage();
      // A range is still checked chunk by chunk: it fails at the damaged chunk, before its bytes.
      const ranged: Buffer[] = [];
      await assert.rejects(read({ start: 1, end: bytes.length }, ranged), { code: 'CHUNK_CORRUPT' });
      assert.equal(Buffer.concat(ranged).length, offset - 1);
      assert.equal(await store.has(damaged.hash), false, 'the checked read removed the damaged chunk');
      // Damaged again, after it was put back: the read in full gives every byte, then fails.
      await store.put(damaged.hash, bytes.subarray(offset, offset + damaged.length));
      damage();
      const given: Buffer[] = [];
      await assert.rejects(read({}, given), { code: 'FILE_CONTENT_CORRUPT' });
      assert.equal(Buffer.concat(given).length, bytes.length, 'every byte was given before the check failed');
      assert.equal(await store.has(damaged.hash), false, 'and the damaged chunk was found and removed');
      assert.deepEqual(
        (await own.missing(body)).chunks.map((c) => c.hash),
        [damaged.hash],
        'so it is missing, to be fetched again',
      );
    } finally {
      await store.stop();
    }
  });
});
