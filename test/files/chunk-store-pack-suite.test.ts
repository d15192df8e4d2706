import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { runChunkStoreSuite } from '../../src/files/testing/chunk-store-suite.js';
import { tempDir } from '../helpers.js';

runChunkStoreSuite('PackChunkStore', async () => {
  const dir = tempDir('trosyn-packs-');
  const stores: PackChunkStore[] = [];
  const make = async (path: string) => {
    const store = new PackChunkStore({ dir: path });
    stores.push(store);
    await store.start();
    return store;
  };
  return {
    create: () => make(join(dir.path, `store-${stores.length + 1}`)),
    reopen: async (store) => {
      await store.stop();
      return make((store as PackChunkStore).dir);
    },
    // Bit rot: one byte in the middle of the chunk flips, in its pack, in place.
    damage: async (store, hash) => {
      const at = (store as PackChunkStore).location(hash);
      if (!at) throw new Error(`no chunk ${hash} to damage`);
      const handle = await open(at.path, 'r+');
      try {
        const byte = Buffer.alloc(1);
        const where = at.offset + Math.floor(at.length / 2);
        await handle.read(byte, 0, 1, where);
        byte[0] = (byte[0] as number) ^ 0x40;
        await handle.write(byte, 0, 1, where);
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
