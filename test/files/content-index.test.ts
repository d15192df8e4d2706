/**
 * The content index writes its read position of the change log down only with a
 * version it notes, every SCANNED_WRITE_EVERY positions, and when it stops: a child
 * applying many small batches looks at the log after each, and a look that finds no
 * file must not commit to files.db. What is written down must never pass a version
 * not yet noted, so a restart (or a crash) reads the log again from there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContentIndex, type PendingVersion, SCANNED_WRITE_EVERY } from '../../src/files/content-index.js';
import { writtenScanPosition } from '../fixtures/content.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let files = 0;

const written = writtenScanPosition;

function version(n: number): PendingVersion {
  return {
    collection: 'files',
    id: `f${n}`,
    rev: n.toString(16).padStart(64, '0'),
    author: 'a'.repeat(64),
    body: { name: `f${n}`, size: 1, modified: 0, sha256: 'b'.repeat(64), manifest: [] } as never,
  };
}

async function open(): Promise<{ index: ContentIndex; path: string }> {
  const path = join(dir.path, `files-${++files}.db`);
  const index = new ContentIndex(path);
  await index.start();
  index.restartScan('key');
  return { index, path };
}

describe('ContentIndex: where the change log was read up to', () => {
  it('a look that finds nothing moves the position in memory only, up to SCANNED_WRITE_EVERY', async () => {
    const { index, path } = await open();
    try {
      index.addScanned([], 10);
      index.addScanned([], 500);
      assert.equal(index.scannedSeq(), 500);
      assert.equal(written(path), 0, 'nothing written for looks that found nothing');
      index.addScanned([], SCANNED_WRITE_EVERY - 1);
      assert.equal(written(path), 0);
      index.addScanned([], SCANNED_WRITE_EVERY);
      assert.equal(written(path), SCANNED_WRITE_EVERY, 'written once it is that far ahead');
      index.addScanned([], SCANNED_WRITE_EVERY + 7);
      assert.equal(written(path), SCANNED_WRITE_EVERY);
      assert.equal(index.scannedSeq(), SCANNED_WRITE_EVERY + 7);
    } finally {
      await index.stop();
    }
  });

  it('a version found is written down at once, with the position after it', async () => {
    const { index, path } = await open();
    try {
      index.addScanned([], 40);
      index.addScanned([version(1)], 41);
      assert.equal(written(path), 41);
      assert.deepEqual(
        index.pending().map((v) => v.rev),
        [version(1).rev],
      );
    } finally {
      await index.stop();
    }
  });

  it('stopping writes the position down; a new index reads from it', async () => {
    const { index, path } = await open();
    index.addScanned([version(2)], 100);
    index.addScanned([], 250);
    assert.equal(written(path), 100);
    await index.stop();
    assert.equal(written(path), 250);
    const again = new ContentIndex(path);
    await again.start();
    try {
      assert.equal(again.scannedSeq(), 250);
      assert.equal(again.scanKey(), 'key');
      assert.equal(again.pending().length, 1);
    } finally {
      await again.stop();
    }
  });

  it('after a crash, a new index reads from the last position written, before any version not noted', async () => {
    const { index, path } = await open();
    try {
      index.addScanned([version(3)], 300);
      index.addScanned([], 900);
      // The process dies here: nothing more is written. Another start reads the file.
      const next = new ContentIndex(path);
      await next.start();
      try {
        assert.equal(next.scannedSeq(), 300, 'the log is read again from the last version noted');
        assert.equal(next.pending().length, 1);
      } finally {
        await next.stop();
      }
    } finally {
      await index.stop();
    }
  });

  it('restarting the read resets the position in the file and in memory; a closed index refuses', async () => {
    const { index, path } = await open();
    index.addScanned([version(4)], 700);
    index.addScanned([], 800);
    index.restartScan('other');
    assert.equal(index.scannedSeq(), 0);
    assert.equal(index.scanKey(), 'other');
    assert.equal(written(path), 0);
    await index.stop();
    assert.equal(written(path), 0, 'nothing ahead of what was written: stop writes nothing');
    assert.throws(() => index.scannedSeq(), { code: 'STORE_CLOSED' });
  });
});
