import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkStore } from '../../src/files/chunk-store.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { runChunkStoreSuite } from '../../src/files/testing/chunk-store-suite.js';
import { tempDir } from '../helpers.js';

/** Flips one byte in place, the name and size unchanged: bit rot. */
async function flipByte(path: string, at: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x40;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

const KINDS = {
  PackChunkStore: {
    make: (dir: string) => new PackChunkStore({ dir }),
    // The middle byte of the chunk, in its pack.
    damage: async (store: ChunkStore, hash: string) => {
      const at = (store as PackChunkStore).location(hash);
      if (!at) throw new Error(`no chunk ${hash} to damage`);
      await flipByte(at.path, at.offset + Math.floor(at.length / 2));
    },
  },
  DiskChunkStore: {
    make: (dir: string) => new DiskChunkStore({ dir }),
    // The middle byte of the chunk's file.
    damage: async (store: ChunkStore, hash: string) => {
      const path = join((store as DiskChunkStore).dir, hash.slice(0, 2), hash);
      const handle = await open(path, 'r');
      const { size } = await handle.stat();
      await handle.close();
      await flipByte(path, Math.floor(size / 2));
    },
  },
};

for (const [name, kind] of Object.entries(KINDS))
  runChunkStoreSuite(name, async () => {
    const dir = tempDir('trosyn-chunks-');
    const stores: ChunkStore[] = [];
    const start = async (path: string) => {
      const store = kind.make(path);
      stores.push(store);
      await store.start();
      return store;
    };
    return {
      create: () => start(join(dir.path, `store-${stores.length + 1}`)),
      reopen: async (store) => {
        await store.stop();
        return start((store as PackChunkStore | DiskChunkStore).dir);
      },
      damage: kind.damage,
      cleanup: async () => {
        for (const store of stores) await store.stop();
        dir.remove();
      },
    };
  });
