import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { READ_BUFFER_BYTES, ReusedReads } from '../../src/transport/reads.js';

/** What a socket made with `onread` does: writes each read into the buffer, then calls back. */
function read(reads: ReusedReads, text: string): boolean {
  const n = reads.onread.buffer.write(text);
  return reads.onread.callback(n);
}

describe('ReusedReads', () => {
  it('keeps copies of reads that come before a sink, and gives them first, in order', () => {
    const reads = new ReusedReads();
    assert.equal(reads.onread.buffer.length, READ_BUFFER_BYTES);
    read(reads, 'one');
    read(reads, 'two');
    const seen: string[] = [];
    reads.attach((bytes) => seen.push(bytes.toString()));
    assert.deepEqual(seen, ['one', 'two']);
    assert.equal(read(reads, 'three'), true, 'reading goes on');
    assert.deepEqual(seen, ['one', 'two', 'three']);
  });

  it('once attached, gives each read as a view of the one buffer, valid until the next read', () => {
    const reads = new ReusedReads();
    const views: Buffer[] = [];
    reads.attach((bytes) => views.push(bytes));
    read(reads, 'abc');
    read(reads, 'xy');
    assert.equal(views[0]?.buffer, views[1]?.buffer, 'the same memory');
    assert.equal(views[1]?.toString(), 'xy');
  });
});
