/**
 * A put of a large file from the CLI starts the hashing threads before it opens its
 * stores (warmForPut): they load meanwhile. Its own process, so that no other test
 * has started the process's threads before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { warmForPut } from '../../src/files/file-store.js';
import { hashThreadUse } from '../../src/files/hash-threads.js';

describe('warmForPut', () => {
  it('starts the hashing threads for content that will use them, and only for that', () => {
    warmForPut(0);
    warmForPut(8 * 1024 * 1024);
    assert.equal(hashThreadUse().starts, 0, 'content of 8 MiB or less is hashed on the calling thread');
    warmForPut(8 * 1024 * 1024 + 1);
    assert.equal(hashThreadUse().starts, 1);
    warmForPut(1 << 30);
    assert.equal(hashThreadUse().starts, 1, 'threads already warm are not started again');
  });
});
