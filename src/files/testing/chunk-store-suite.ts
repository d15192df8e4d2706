/**
 * The acceptance suite every ChunkStore must pass. A new store's test file is only
 * its harness:
 *
 *   runChunkStoreSuite('s3', async () => ({ create, reopen, damage, cleanup }));
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { chunkHash, type ChunkStore } from '../chunk-store.js';

/** How the suite makes, reopens and damages one kind of store. */
export interface ChunkStoreHarness {
  /** A new, started store on empty storage. */
  create(): Promise<ChunkStore>;
  /** Stops `store` and returns a started store on the same storage. */
  reopen(store: ChunkStore): Promise<ChunkStore>;
  /** Changes the stored bytes of chunk `hash` without changing its name or size, as bit rot does. */
  damage(store: ChunkStore, hash: string): Promise<void>;
  /** Removes everything the harness created. */
  cleanup(): Promise<void>;
}

/** A chunk of `size` random bytes and its name. */
export function randomChunk(size = 64 * 1024): { hash: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  return { hash: chunkHash(bytes), bytes };
}

/**
 * Lets the filesystem clock move past everything written so far: chunk times come
 * from a clock that ticks every few milliseconds, and a garbage collection keeps a
 * chunk written in the tick it starts in.
 */
const pastTheTick = () => sleep(30);

/** Runs the suite against the stores `makeHarness` gives. */
export function runChunkStoreSuite(name: string, makeHarness: () => Promise<ChunkStoreHarness>): void {
  describe(`ChunkStore acceptance: ${name}`, () => {
    const withStore = (
      title: string,
      /** May return a reopened store, which the harness then stops instead. */
      fn: (store: ChunkStore, h: ChunkStoreHarness) => Promise<unknown>,
    ): void =>
      void it(title, async () => {
        const h = await makeHarness();
        let store = await h.create();
        try {
          store = ((await fn(store, h)) as ChunkStore | undefined) ?? store;
        } finally {
          await store.stop();
          await h.cleanup();
        }
      });

    withStore(
      'start and stop are idempotent; stop before start is safe; stopped means closed',
      async (store, h) => {
        await store.start();
        assert.equal(store.isStarted(), true);
        const { hash, bytes } = randomChunk(100);
        await store.put(hash, bytes);
        await store.stop();
        await store.stop();
        assert.equal(store.isStarted(), false);
        await assert.rejects(store.get(hash), { code: 'NOT_STARTED' });
        await assert.rejects(store.put(hash, bytes), { code: 'NOT_STARTED' });
        await assert.rejects(store.stats(), { code: 'NOT_STARTED' });
        const again = await h.reopen(store);
        await again.start();
        assert.deepEqual(await again.get(hash), bytes, 'a stop keeps what was put');
        return again;
      },
    );

    withStore('a chunk put is read back byte for byte, at any size', async (store) => {
      for (const size of [0, 1, 4095, 64 * 1024, 256 * 1024 + 7]) {
        const { hash, bytes } = randomChunk(size);
        assert.equal(await store.has(hash), false);
        assert.equal(await store.put(hash, bytes), true, `${size} B: written`);
        assert.equal(await store.has(hash), true);
        assert.deepEqual(await store.get(hash), bytes, `${size} B: same bytes`);
      }
    });

    withStore(
      'identical chunks are stored once, however often and however concurrently they are put',
      async (store) => {
        const a = randomChunk(5000);
        const b = randomChunk(7000);
        assert.equal(await store.put(a.hash, a.bytes), true);
        assert.equal(await store.put(a.hash, Buffer.from(a.bytes)), false, 'the second put writes nothing');
        const results = await Promise.all(Array.from({ length: 8 }, () => store.put(b.hash, b.bytes)));
        assert.equal(results.filter(Boolean).length, 1, 'of eight concurrent puts, one writes');
        assert.deepEqual(await store.stats(), { chunks: 2, bytes: 12_000 });
        assert.deepEqual(await store.get(b.hash), b.bytes);
      },
    );

    withStore(
      'one buffer reused for chunk after chunk, each put left running, stores every chunk right',
      async (store) => {
        // As a receiver does: each chunk arrives in the same memory, and its put is
        // not waited for before the next one lands there.
        const sizes = [100, 4096, 9000, 64 * 1024, 200 * 1024, 256 * 1024, 256 * 1024 + 1, 700 * 1024];
        const chunks = Array.from({ length: 120 }, (_, i) => randomChunk(sizes[i % sizes.length]));
        const buffer = Buffer.alloc(Math.max(...sizes));
        const puts: Promise<boolean>[] = [];
        for (const c of chunks) {
          c.bytes.copy(buffer);
          puts.push(store.put(c.hash, buffer.subarray(0, c.bytes.length)));
          buffer.fill(0xee);
        }
        assert.deepEqual(await Promise.all(puts), Array(chunks.length).fill(true) as boolean[]);
        for (const c of chunks) assert.deepEqual(await store.get(c.hash), c.bytes);
      },
    );

    withStore(
      'bytes the caller changes after put() is called do not change what is stored',
      async (store) => {
        const c = randomChunk(64 * 1024);
        const buffer = Buffer.from(c.bytes);
        const put = store.put(c.hash, buffer);
        buffer.fill(0);
        assert.equal(await put, true);
        assert.deepEqual(await store.get(c.hash), c.bytes);
      },
    );

    withStore('bytes that do not hash to their name are refused, and nothing is stored', async (store) => {
      const good = randomChunk(1000);
      await store.put(good.hash, good.bytes);
      const other = randomChunk(1000);
      await assert.rejects(
        store.put(other.hash, good.bytes),
        (err: Error & { code?: string; details?: unknown }) => {
          assert.equal(err.code, 'CHUNK_HASH_MISMATCH');
          assert.deepEqual(err.details, { expected: other.hash, actual: good.hash });
          return true;
        },
      );
      const flipped = Buffer.from(other.bytes);
      flipped[500] = (flipped[500] as number) ^ 1;
      await assert.rejects(store.put(other.hash, flipped), { code: 'CHUNK_HASH_MISMATCH' });
      assert.equal(await store.has(other.hash), false);
      assert.deepEqual(await store.stats(), { chunks: 1, bytes: 1000 });
    });

    withStore('a name that is not a SHA-256 in lowercase hex is refused by every method', async (store) => {
      const { hash, bytes } = randomChunk(10);
      for (const bad of [
        '',
        'abc',
        hash.toUpperCase(),
        `${hash}0`,
        `../${hash.slice(3)}`,
        `${hash.slice(0, 63)}/`,
      ]) {
        await assert.rejects(store.put(bad, bytes), { code: 'INVALID_CHUNK_HASH' }, `put ${bad}`);
        await assert.rejects(store.get(bad), { code: 'INVALID_CHUNK_HASH' }, `get ${bad}`);
        await assert.rejects(store.has(bad), { code: 'INVALID_CHUNK_HASH' }, `has ${bad}`);
        await assert.rejects(store.delete(bad), { code: 'INVALID_CHUNK_HASH' }, `delete ${bad}`);
        await assert.rejects(store.missing([hash, bad]), { code: 'INVALID_CHUNK_HASH' }, `missing ${bad}`);
      }
      assert.deepEqual(await store.stats(), { chunks: 0, bytes: 0 });
    });

    withStore('missing lists the absent chunks of a list, in order, each once', async (store) => {
      const chunks = Array.from({ length: 6 }, (_, i) => randomChunk(100 + i));
      for (const c of [chunks[1], chunks[3], chunks[4]]) await store.put(c!.hash, c!.bytes);
      const ask = [chunks[0], chunks[1], chunks[2], chunks[0], chunks[3], chunks[5]].map((c) => c!.hash);
      assert.deepEqual(await store.missing(ask), [chunks[0]!.hash, chunks[2]!.hash, chunks[5]!.hash]);
      assert.deepEqual(await store.missing([]), []);
    });

    withStore('a chunk never stored is CHUNK_NOT_FOUND', async (store) => {
      await assert.rejects(store.get(randomChunk(10).hash), { code: 'CHUNK_NOT_FOUND' });
    });

    withStore('a chunk damaged on disk is detected, removed, and can be stored again', async (store, h) => {
      const rotten = randomChunk(64 * 1024);
      const sound = randomChunk(64 * 1024);
      await store.put(rotten.hash, rotten.bytes);
      await store.put(sound.hash, sound.bytes);
      await h.damage(store, rotten.hash);
      await assert.rejects(
        store.get(rotten.hash),
        (err: Error & { code?: string; details?: { hash?: string } }) => {
          assert.equal(err.code, 'CHUNK_CORRUPT');
          assert.equal(err.details?.hash, rotten.hash);
          return true;
        },
      );
      assert.equal(await store.has(rotten.hash), false, 'the damaged chunk is gone');
      assert.deepEqual(
        await store.missing([rotten.hash, sound.hash]),
        [rotten.hash],
        'so it is asked for again',
      );
      assert.deepEqual(await store.get(sound.hash), sound.bytes, 'its neighbour is untouched');
      assert.equal(await store.put(rotten.hash, rotten.bytes), true);
      assert.deepEqual(await store.get(rotten.hash), rotten.bytes);
    });

    withStore(
      'a put of a chunk whose stored copy is damaged still leaves a readable chunk',
      async (store, h) => {
        const c = randomChunk(3000);
        await store.put(c.hash, c.bytes);
        await h.damage(store, c.hash);
        await store.put(c.hash, c.bytes);
        // Either the put replaced the damaged copy, or the read finds it damaged and
        // removes it; a damaged chunk is never served.
        const read = await store.get(c.hash).catch((err: { code?: string }) => err.code);
        if (read === 'CHUNK_CORRUPT') assert.equal(await store.has(c.hash), false);
        else assert.deepEqual(read, c.bytes);
      },
    );

    withStore('delete removes one chunk and says whether it was there', async (store) => {
      const a = randomChunk(10);
      const b = randomChunk(20);
      await store.put(a.hash, a.bytes);
      await store.put(b.hash, b.bytes);
      assert.equal(await store.delete(a.hash), true);
      assert.equal(await store.delete(a.hash), false);
      assert.equal(await store.has(a.hash), false);
      assert.deepEqual(await store.stats(), { chunks: 1, bytes: 20 });
    });

    withStore('flushed chunks are there after a reopen', async (store, h) => {
      const chunks = Array.from({ length: 40 }, (_, i) => randomChunk(1000 + i));
      await Promise.all(chunks.map((c) => store.put(c.hash, c.bytes)));
      await store.flush();
      await store.flush();
      const again = await h.reopen(store);
      for (const c of chunks) assert.deepEqual(await again.get(c.hash), c.bytes);
      assert.deepEqual(await again.stats(), {
        chunks: 40,
        bytes: chunks.reduce((n, c) => n + c.bytes.length, 0),
      });
      return again;
    });

    withStore('gc removes exactly the chunks nothing references, and says how much', async (store) => {
      const chunks = Array.from({ length: 12 }, (_, i) => randomChunk(500 + i));
      for (const c of chunks) await store.put(c.hash, c.bytes);
      const keep = new Set(chunks.filter((_, i) => i % 3 === 0).map((c) => c.hash));
      const asked: string[] = [];
      await pastTheTick();
      const report = await store.gc(
        async (hash) => {
          asked.push(hash);
          return keep.has(hash);
        },
        { graceMs: 0 },
      );
      const dropped = chunks.filter((c) => !keep.has(c.hash));
      assert.deepEqual(report, {
        removed: dropped.length,
        bytes: dropped.reduce((n, c) => n + c.bytes.length, 0),
        kept: keep.size,
      });
      assert.deepEqual(asked.sort(), chunks.map((c) => c.hash).sort(), 'every chunk was asked about once');
      for (const c of chunks) assert.equal(await store.has(c.hash), keep.has(c.hash), c.hash);
      const again = await store.gc((hash) => keep.has(hash), { graceMs: 0 });
      assert.deepEqual(
        again,
        { removed: 0, bytes: 0, kept: keep.size },
        'a second collection finds nothing more',
      );
    });

    withStore(
      'gc keeps unreferenced chunks younger than the grace period (one hour by default)',
      async (store) => {
        const c = randomChunk(100);
        await store.put(c.hash, c.bytes);
        await pastTheTick();
        assert.deepEqual(await store.gc(() => false), { removed: 0, bytes: 0, kept: 1 });
        assert.equal(await store.has(c.hash), true);
      },
    );

    withStore('gc never removes a chunk written or put again while it runs', async (store) => {
      const old = Array.from({ length: 30 }, (_, i) => randomChunk(200 + i));
      for (const c of old) await store.put(c.hash, c.bytes);
      const byHash = new Map(old.map((c) => [c.hash, c]));
      await pastTheTick();
      const fresh = Array.from({ length: 5 }, () => randomChunk(300));
      const putAgain: string[] = [];
      const inFlight: Promise<boolean>[] = [];
      let calls = 0;
      const report = await store.gc(
        async (hash) => {
          calls++;
          const c = byHash.get(hash);
          if (c && calls % 3 === 1) {
            // The chunk being asked about is put again: once awaited, once left in
            // flight while the collection goes on to remove it.
            putAgain.push(hash);
            const put = store.put(hash, c.bytes);
            if (calls % 2 === 1) await put;
            else inFlight.push(put);
          }
          // New chunks arrive meanwhile, in directories the collection has yet to read or has read.
          if (calls <= fresh.length)
            inFlight.push(store.put(fresh[calls - 1]!.hash, fresh[calls - 1]!.bytes));
          return false;
        },
        { graceMs: 0 },
      );
      await Promise.all(inFlight);
      assert.ok(putAgain.length >= 5, `chunks were put again during the collection (${putAgain.length})`);
      for (const hash of putAgain)
        assert.deepEqual(await store.get(hash), byHash.get(hash)!.bytes, 'put again: kept');
      for (const c of fresh) assert.deepEqual(await store.get(c.hash), c.bytes, 'written during gc: kept');
      const gone = old.filter((c) => !putAgain.includes(c.hash));
      for (const c of gone) assert.equal(await store.has(c.hash), false, 'the rest are removed');
      assert.equal(report.removed, gone.length);
    });

    withStore('concurrent puts, reads and deletes of many chunks leave a consistent store', async (store) => {
      const chunks = Array.from({ length: 64 }, (_, i) => randomChunk(1 + ((i * 977) % 9000)));
      await Promise.all(chunks.flatMap((c) => [store.put(c.hash, c.bytes), store.put(c.hash, c.bytes)]));
      const doomed = chunks.filter((_, i) => i % 4 === 0);
      await Promise.all([
        ...doomed.map((c) => store.delete(c.hash)),
        ...chunks
          .filter((_, i) => i % 4 !== 0)
          .map(async (c) => assert.deepEqual(await store.get(c.hash), c.bytes)),
      ]);
      const left = chunks.filter((_, i) => i % 4 !== 0);
      assert.deepEqual(await store.stats(), {
        chunks: left.length,
        bytes: left.reduce((n, c) => n + c.bytes.length, 0),
      });
      assert.deepEqual(
        await store.missing(chunks.map((c) => c.hash)),
        doomed.map((c) => c.hash),
      );
    });
  });
}
