/**
 * How a node fetches what a version lacks: when every missing chunk was listed by
 * the first look (an edit's few new chunks), from that list, without reading the
 * version's chunk list again; when more are missing than one look lists, a page at
 * a time. Both end with the content whole.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ChunkExchange } from '../../src/files/chunk-exchange.js';
import { MISSING_LISTED } from '../../src/files/file-store.js';
import type { NodeFiles } from '../../src/files/node-files.js';
import { transfer } from '../../src/sync/transfer.js';
import { noise } from '../fixtures/bytes.js';
import { childContentSync, contentNode } from '../fixtures/content.js';
import { linkPair } from '../fixtures/link-pair.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-content-pages-');
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
  dir.remove();
});

const node = (name: string, role: 'hub' | 'child') => contentNode(dir.path, name, role, stops);

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** Reads a version back whole. */
async function readBack(files: NodeFiles, name: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of files.read(await files.version(name))) parts.push(p);
  return Buffer.concat(parts);
}

describe('content sync fetches what a version lacks', () => {
  it('from the first look when it listed all, a page at a time when it could not', async () => {
    const hub = await node('hub', 'hub');
    const child = await node('child', 'child');
    // The child's file store, counting how often it is asked for pages of what is missing.
    let paged = 0;
    const pages = child.store.missingPages.bind(child.store);
    child.store.missingPages = (...args) => {
      paged++;
      return pages(...args);
    };
    const content = childContentSync(child);
    const [childEnd, hubEnd] = linkPair();
    new ChunkExchange(hubEnd, hub.chunks);
    await content.start();
    stops.push(() => content.stop());
    content.attach(hub.replica.deviceId, new ChunkExchange(childEnd, child.chunks));
    /** The hub's records reach the child, and then the content of `name`'s current version. */
    const synced = async (name: string) => {
      await transfer(hub.replica, child.replica);
      const version = await child.files.version(name);
      for (let i = 0; i < 4000 && !(await child.files.isHere(version)); i++)
        await new Promise((r) => setTimeout(r, 5));
      await content.settled();
    };

    // A file of more chunks than one look lists (at least 48 KiB each).
    const big = noise(MISSING_LISTED * 96 * 1024, 41);
    const put = await hub.files.putStream(once(big), { name: 'big.bin' });
    assert.ok(put.chunkCount > MISSING_LISTED, `${put.chunkCount} chunks`);
    await synced('big.bin');
    assert.ok(paged >= 1, 'more missing than listed: fetched a page at a time');
    assert.ok((await readBack(child.files, 'big.bin')).equals(big));

    // An edit of it: a few new chunks, all listed by the first look.
    paged = 0;
    const at = big.length >> 1;
    const edited = Buffer.concat([big.subarray(0, at), noise(100_000, 42), big.subarray(at)]);
    await hub.files.putStream(once(edited), { name: 'big.bin' });
    await synced('big.bin');
    assert.equal(paged, 0, 'fetched from the first look');
    assert.ok((await readBack(child.files, 'big.bin')).equals(edited));
  });
});
