/**
 * The chunk exchange between two nodes, over a pair of links that carry requests
 * and chunk frames in order (the transport's own framing is tested with it over TLS
 * in file-sync.test.ts): batching, absent chunks, and a peer that lies.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ChunkExchange, WANT_BATCH, WANT_WINDOW } from '../../src/files/chunk-exchange.js';
import { linkPair } from '../fixtures/link-pair.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { TrosynError } from '../../src/errors.js';
import { FakeClock, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-chunk-exchange-');
after(() => dir.remove());
let n = 0;

async function store(): Promise<DiskChunkStore> {
  const s = new DiskChunkStore({ dir: join(dir.path, `store-${++n}`), fsync: false });
  await s.start();
  return s;
}

const hashOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('chunk exchange', () => {
  it('fetches many chunks in batches with a bounded window; absent ones are named absent', async () => {
    const [here, there] = linkPair();
    const mine = await store();
    const theirs = await store();
    const chunks = Array.from({ length: 300 }, () => randomBytes(1000 + Math.floor(Math.random() * 4000)));
    for (const c of chunks) await theirs.put(hashOf(c), c);
    const local = new ChunkExchange(here, mine);
    new ChunkExchange(there, theirs);

    const unknown = hashOf(Buffer.from('nobody has this'));
    const result = await local.fetch([...chunks.map(hashOf), unknown, hashOf(chunks[0] as Buffer)]);
    assert.equal(result.get(unknown), 'absent');
    assert.equal([...result.values()].filter((s) => s === 'stored').length, 300);
    for (const c of chunks) assert.deepEqual(await mine.get(hashOf(c)), c);
    assert.equal(here.wants, Math.ceil(301 / WANT_BATCH), 'duplicates asked once, in full batches');
    assert.ok(here.maxInFlight <= WANT_WINDOW, `at most ${WANT_WINDOW} requests unanswered`);
    assert.equal(
      local.bytesIn,
      chunks.reduce((s, c) => s + c.length, 0),
    );
  });

  it('a pack store lends what it serves unchecked; a damaged chunk ends the link, the server then finds and removes it, and the next fetch names it absent', async () => {
    const mine = await store();
    const theirs = new PackChunkStore({ dir: join(dir.path, `pack-${++n}`), fsync: false });
    await theirs.start();
    try {
      // Sizes that make runs of several chunks, one larger than a run.
      const chunks = Array.from({ length: 200 }, (_, i) =>
        randomBytes(i === 7 ? 300_000 : 3000 + ((i * 977) % 60_000)),
      );
      for (const c of chunks) await theirs.put(hashOf(c), c);
      const damaged = chunks[120] as Buffer;
      const where = theirs.location(hashOf(damaged));
      assert.ok(where);
      const { openSync, readSync, writeSync, closeSync } = await import('node:fs');
      const fd = openSync(where.path, 'r+');
      // Flipped, not overwritten: a fixed byte would be no damage where it was there already.
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, where.offset + 10);
      writeSync(fd, Buffer.of((byte[0] as number) ^ 0xff), 0, 1, where.offset + 10);
      closeSync(fd);
      const unknown = hashOf(Buffer.from('nobody has this'));
      const hashes = chunks.map(hashOf);
      hashes.splice(50, 0, unknown);

      const [here, there] = linkPair();
      const local = new ChunkExchange(here, mine);
      const remote = new ChunkExchange(there, theirs);
      await assert.rejects(local.fetch(hashes), { code: 'CHUNK_HASH_MISMATCH' });
      assert.equal(await mine.has(hashOf(damaged)), false, 'the damaged copy was not stored');
      assert.equal(await theirs.has(hashOf(damaged)), true, 'the server did not check it while serving');
      // Over a connection the server hears the peer's error with its code (see Connection).
      remote.abort(new TrosynError('CHUNK_HASH_MISMATCH', 'the peer found a chunk damaged'));
      for (let i = 0; i < 100 && (await theirs.has(hashOf(damaged))); i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(await theirs.has(hashOf(damaged)), false, 'the server removed its damaged copy');

      const [again, there2] = linkPair();
      const local2 = new ChunkExchange(again, mine);
      const remote2 = new ChunkExchange(there2, theirs);
      const result = await local2.fetch(hashes);
      assert.equal(result.get(unknown), 'absent');
      assert.equal(result.get(hashOf(damaged)), 'absent', 'never sent again');
      for (const c of chunks)
        if (c !== damaged)
          assert.deepEqual(await mine.get(hashOf(c)), c, 'each chunk whole, in its own bytes');
      assert.equal(again.closedWith, undefined);
      assert.ok(remote2.bytesOut > 0);
      void remote;
    } finally {
      await theirs.stop();
    }
  });

  it('two fetches of the same chunks at once ask for each chunk once and both end stored', async () => {
    const [here, there] = linkPair();
    const mine = await store();
    const theirs = await store();
    const chunks = Array.from({ length: 100 }, () => randomBytes(2000));
    for (const c of chunks) await theirs.put(hashOf(c), c);
    const local = new ChunkExchange(here, mine);
    new ChunkExchange(there, theirs);
    const hashes = chunks.map(hashOf);
    const [first, second] = await Promise.all([
      local.fetch(hashes.slice(0, 70)),
      local.fetch(hashes.slice(30)),
    ]);
    assert.equal(here.closedWith, undefined, 'no chunk arrived twice');
    assert.equal([...first.values(), ...second.values()].filter((s) => s === 'stored').length, 140);
    assert.equal(local.bytesIn, 100 * 2000, 'each chunk came once');
  });

  it('a chunk whose bytes do not match its hash ends the link with CHUNK_HASH_MISMATCH and is not stored; a good peer serves it after', async () => {
    const mine = await store();
    const theirs = await store();
    const chunk = randomBytes(5000);
    const hash = hashOf(chunk);
    await theirs.put(hash, chunk);

    const [here, liar] = linkPair();
    liar.tamper = (payload) => {
      const copy = Buffer.from(payload);
      copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0xff;
      return copy;
    };
    const local = new ChunkExchange(here, mine);
    new ChunkExchange(liar, theirs);
    await assert.rejects(local.fetch([hash]), (err: TrosynError) => err.code === 'CHUNK_HASH_MISMATCH');
    assert.equal((here.closedWith as TrosynError | undefined)?.code, 'CHUNK_HASH_MISMATCH');
    assert.equal(await mine.has(hash), false, 'nothing of the bad chunk is stored');

    const [again, honest] = linkPair();
    const retry = new ChunkExchange(again, mine);
    new ChunkExchange(honest, theirs);
    assert.equal((await retry.fetch([hash])).get(hash), 'stored');
    assert.deepEqual(await mine.get(hash), chunk);
  });

  it('a chunk frame of an unknown kind, or too short to name a chunk, ends the link with UNEXPECTED_MESSAGE', async () => {
    // (A well-formed chunk nobody asked for is dropped: see bad-input.test.ts.)
    for (const payload of [
      Buffer.concat([Buffer.of(0x07), randomBytes(32)]),
      Buffer.concat([Buffer.of(0x01), randomBytes(20)]),
      Buffer.alloc(0),
    ]) {
      const [here, there] = linkPair();
      new ChunkExchange(here, await store());
      await there.sendChunk(payload);
      assert.equal((here.closedWith as TrosynError | undefined)?.code, 'UNEXPECTED_MESSAGE');
    }
  });

  it('a malformed files.want is refused with INVALID_MESSAGE', async () => {
    const [here, there] = linkPair();
    new ChunkExchange(here, await store());
    for (const params of [
      {},
      { hashes: [] },
      { hashes: ['not-a-hash'] },
      { hashes: Array(WANT_BATCH + 1).fill('a'.repeat(64)) },
    ])
      await assert.rejects(
        there.request('files.want', params),
        (err: TrosynError) => err.code === 'INVALID_MESSAGE',
      );
  });

  it('a fetch waiting when the link ends fails with the cause', async () => {
    const [here, there] = linkPair();
    const local = new ChunkExchange(here, await store());
    there.handle('files.want', () => ({ queued: 1 })); // queued, never sent
    const fetching = local.fetch([hashOf(Buffer.from('x'))]);
    await new Promise((r) => setImmediate(r));
    local.abort(new TrosynError('CONNECTION_CLOSED', 'the peer went away'));
    await assert.rejects(fetching, (err: TrosynError) => err.code === 'CONNECTION_CLOSED');
  });

  it('a peer that takes a request and then sends nothing fails the fetch with FILE_FETCH_STALLED; its late chunks are dropped quietly', async () => {
    const [here, there] = linkPair();
    const mine = await store();
    const clock = new FakeClock();
    const local = new ChunkExchange(here, mine, { clock, stallMs: 60_000 });
    // The peer answers the request and never serves it.
    there.handle('files.want', (params) => ({ queued: (params as { hashes: string[] }).hashes.length }));
    const chunk = randomBytes(3000);
    const fetching = local.fetch([hashOf(chunk)]);
    let outcome: unknown;
    fetching.then(
      () => (outcome = 'resolved'),
      (err: unknown) => (outcome = err),
    );
    // The request is made after a look at the store: wait for it, then for its answer.
    while (here.wants === 0) await new Promise((r) => setImmediate(r));
    await clock.tick(0);
    await clock.tick(59_000);
    assert.equal(outcome, undefined, 'still waiting before the deadline');
    await clock.tick(1_000);
    assert.equal((outcome as { code?: string } | undefined)?.code, 'FILE_FETCH_STALLED');
    assert.equal(await mine.has(hashOf(chunk)), false);
    // The chunk turning up late is dropped without telling the peer off.
    await there.sendChunk(Buffer.concat([Buffer.of(0x01), Buffer.from(hashOf(chunk), 'hex')]), chunk);
    assert.equal(local.dropped, 1);
    assert.equal(here.closed, false, 'the link stays up');
  });
});
