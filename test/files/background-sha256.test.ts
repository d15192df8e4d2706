import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sha256OfFileInWorker } from '../../src/files/background-sha256.js';
import { noise } from '../fixtures/bytes.js';
import { tempDir } from '../helpers.js';

describe('sha256OfFileInWorker', () => {
  it('hashes a file from its start to its end on another thread, whatever the descriptor has read', async () => {
    const dir = tempDir('trosyn-whole-hash-');
    try {
      for (const size of [0, 1, 3 * 1024 * 1024 + 17]) {
        const bytes = noise(size, size);
        const path = join(dir.path, `f-${size}`);
        writeFileSync(path, bytes);
        const handle = await open(path, 'r');
        try {
          // The caller reads the same descriptor meanwhile, at its own positions.
          const [digest] = await Promise.all([
            sha256OfFileInWorker(handle.fd),
            handle.read(Buffer.alloc(100), 0, 100, 0),
          ]);
          assert.deepEqual(digest, { sha256: createHash('sha256').update(bytes).digest('hex'), size });
        } finally {
          await handle.close();
        }
      }
    } finally {
      dir.remove();
    }
  });

  it('a descriptor that cannot be read rejects with the cause', async () => {
    await assert.rejects(sha256OfFileInWorker(1_000_000), { code: 'EBADF' });
  });
});
