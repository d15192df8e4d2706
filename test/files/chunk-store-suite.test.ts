import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { runChunkStoreSuite } from '../../src/files/testing/chunk-store-suite.js';
import { tempDir } from '../helpers.js';

runChunkStoreSuite('DiskChunkStore', async () => {
  const dir = tempDir('trosyn-chunks-');
  const stores: DiskChunkStore[] = [];
  const make = async (path: string) => {
    const store = new DiskChunkStore({ dir: path });
    stores.push(store);
    await store.start();
    return store;
  };
  return {
    create: () => make(join(dir.path, `store-${stores.length + 1}`)),
    reopen: async (store) => {
      await store.stop();
      return make((store as DiskChunkStore).dir);
    },
    // Bit rot: one byte in the middle flips, in place, the name and size unchanged.
    damage: async (store, hash) => {
      const handle = await open(join((store as DiskChunkStore).dir, hash.slice(0, 2), hash), 'r+');
      try {
        const { size } = await handle.stat();
        const at = Math.floor(size / 2);
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, at);
        byte[0] = (byte[0] as number) ^ 0x40;
        await handle.write(byte, 0, 1, at);
      } finally {
        await handle.close();
      }
    },
    cleanup: async () => {
      for (const store of stores) await store.stop();
      dir.remove();
    },
  };
});
