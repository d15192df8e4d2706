/**
 * File content over a real chunk store on disk: a stream in, a file version out;
 * the bytes back, whole or in part; identical content stored once; a small edit a
 * few new chunks; what is missing, said before anything is read.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { type FileBody, assertFileName } from '../../src/files/file-body.js';
import { FileStore } from '../../src/files/file-store.js';
import { decodeManifest, encodeManifest } from '../../src/files/manifest.js';
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

  it('a chunk list round-trips, and a damaged one is refused', () => {
    const list = [
      { hash: 'a'.repeat(64), length: 65536 },
      { hash: 'b'.repeat(64), length: 7 },
    ];
    assert.deepEqual(decodeManifest(encodeManifest(list)), list);
    assert.throws(() => decodeManifest(Buffer.alloc(35)), { code: 'FILE_MANIFEST_INVALID' });
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
