/**
 * What the pack store promises beyond the acceptance suite: its layout and
 * permissions, durability marks, what start() does with rows a power cut may have
 * left without their bytes, compaction, and the import of a file-a-chunk store.
 */
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { chunkHash } from '../../src/files/chunk-store.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { encodeManifest } from '../../src/files/manifest.js';
import { randomChunk } from '../../src/files/testing/chunk-store-suite.js';
import { tempDir } from '../helpers.js';

interface IndexRow {
  hash: string;
  pack: string;
  offset: number;
  length: number;
  durable: number;
}

/** The index as it is on disk, read by a connection of its own. */
function indexRows(dir: string): IndexRow[] {
  const db = new Database(join(dir, 'index.db'), { readonly: true });
  try {
    return db
      .prepare<[], IndexRow & { hash: Buffer }>('SELECT hash, pack, offset, length, durable FROM chunks')
      .all()
      .map((r) => ({ ...r, hash: r.hash.toString('hex') }));
  } finally {
    db.close();
  }
}

async function withStore(
  fn: (store: PackChunkStore, dir: string, tmp: string) => Promise<void>,
  options: { packBytes?: number } = {},
): Promise<void> {
  const tmp = tempDir('trosyn-packs-');
  const dir = join(tmp.path, 'chunks');
  const store = new PackChunkStore({ dir, ...options });
  try {
    await store.start();
    await fn(store, dir, tmp.path);
  } finally {
    await store.stop();
    tmp.remove();
  }
}

describe('PackChunkStore on disk', () => {
  it("locates a chunk list's stored chunks, entry by entry in its order, across packs", async () => {
    // Packs of 50,000 bytes: each of these chunks goes to a pack of its own.
    await withStore(
      async (store) => {
        const a = randomChunk(1000);
        const b = randomChunk(70_000);
        const c = randomChunk(60_000);
        for (const x of [a, b, c]) await store.put(x.hash, x.bytes);
        const absent = randomChunk(10);
        const list = encodeManifest([
          { hash: b.hash, length: 70_000 },
          { hash: absent.hash, length: 10 },
          { hash: a.hash, length: 1000 },
          { hash: c.hash, length: 60_000 },
          { hash: b.hash, length: 70_000 },
          { hash: a.hash, length: 999 },
        ]);
        const places = await store.locateList(list);
        assert.deepEqual(
          places.map((p) => p.entry),
          [0, 2, 3, 4, 5],
          'each entry whose chunk is stored, in order; none for the absent one',
        );
        const byEntry = [b, absent, a, c, b, a];
        assert.equal(new Set(places.map((p) => p.path)).size, 3, 'three packs');
        for (const p of places) {
          const chunk = byEntry[p.entry] as (typeof byEntry)[number];
          const { entry, ...at } = p;
          assert.deepEqual(at, store.location(chunk.hash), `entry ${entry}`);
          assert.equal(p.length, chunk.bytes.length, 'the stored length, whatever the entry says');
          assert.deepEqual(
            readFileSync(p.path).subarray(p.offset, p.offset + p.length),
            chunk.bytes,
            'the bytes lie there as they are',
          );
        }
        assert.deepEqual(await store.locateList(Buffer.alloc(0)), [], 'an empty list');
      },
      { packBytes: 50_000 },
    );
  });

  it('lists the entries of a chunk list whose chunks are not stored, by index, a window at a time', async () => {
    await withStore(async (store) => {
      const a = randomChunk(1000);
      const b = randomChunk(2000);
      const gone = randomChunk(10);
      const never = randomChunk(20);
      for (const x of [a, b]) await store.put(x.hash, x.bytes);
      const entry = (c: { hash: string; bytes: Uint8Array }) => ({ hash: c.hash, length: c.bytes.length });
      const list = encodeManifest([entry(a), entry(gone), entry(b), entry(gone), entry(never), entry(a)]);
      assert.deepEqual(
        await store.absentInList(list, 0, 6),
        [1, 3, 4],
        'in order, a chunk listed twice twice',
      );
      assert.deepEqual(await store.absentInList(list, 2, 2), [3], 'from entry 2, two entries');
      assert.deepEqual(await store.absentInList(list, 4, 1000), [4], 'a window past the end stops at it');
      assert.deepEqual(await store.absentInList(list, 6, 10), [], 'none from the end');
      assert.deepEqual(await store.absentInList(Buffer.alloc(0), 0, 10), [], 'an empty list');
      await store.put(gone.hash, gone.bytes);
      assert.deepEqual(await store.absentInList(list, 0, 6), [4], 'stored since');
    });
  });

  it('appends each chunk with its header to a pack (0600, directories 0700), indexed in index.db', async () => {
    const umask = process.umask(0);
    try {
      await withStore(async (store, dir) => {
        const a = randomChunk(1000);
        const b = randomChunk(70_000);
        await store.put(a.hash, a.bytes);
        await store.put(b.hash, b.bytes);
        const packs = readdirSync(join(dir, 'packs'));
        assert.equal(packs.length, 1, 'one pack for both');
        assert.match(packs[0] as string, new RegExp(`^${process.pid}-[0-9a-f]+\\.pack$`));
        const pack = readFileSync(join(dir, 'packs', packs[0] as string));
        assert.equal(pack.length, 40 + 1000 + 40 + 70_000);
        // The header: TRCK, the length (u32 LE), the SHA-256; then the bytes.
        assert.equal(pack.subarray(0, 4).toString(), 'TRCK');
        assert.equal(pack.readUInt32LE(4), 1000);
        assert.equal(pack.subarray(8, 40).toString('hex'), a.hash);
        assert.deepEqual(pack.subarray(40, 1040), a.bytes);
        assert.deepEqual(store.location(b.hash), {
          path: join(dir, 'packs', packs[0] as string),
          offset: 1040 + 40,
          length: 70_000,
        });
        assert.equal(statSync(dir).mode & 0o777, 0o700);
        assert.equal(statSync(join(dir, 'packs')).mode & 0o777, 0o700);
        assert.equal(statSync(join(dir, 'packs', packs[0] as string)).mode & 0o777, 0o600);
        assert.equal(statSync(join(dir, 'index.db')).mode & 0o777, 0o600);
      });
    } finally {
      process.umask(umask);
    }
  });

  it('a chunk is marked durable only by a flush begun after its put resolved', async () => {
    await withStore(async (store, dir) => {
      const a = randomChunk(500);
      await store.put(a.hash, a.bytes);
      assert.deepEqual(
        indexRows(dir).map((r) => r.durable),
        [0],
        'put, not yet flushed',
      );
      await store.flush();
      assert.deepEqual(
        indexRows(dir).map((r) => r.durable),
        [1],
      );
      const b = randomChunk(600);
      await store.put(b.hash, b.bytes);
      const durable = new Map(indexRows(dir).map((r) => [r.hash, r.durable]));
      assert.equal(durable.get(a.hash), 1);
      assert.equal(durable.get(b.hash), 0);
    });
  });

  it('after a power cut, start keeps the unflushed chunks whose bytes are whole and drops the rest', async () => {
    await withStore(async (store, dir, tmp) => {
      const flushed = Array.from({ length: 5 }, (_, i) => randomChunk(10_000 + i));
      for (const c of flushed) await store.put(c.hash, c.bytes);
      await store.flush();
      const unflushed = Array.from({ length: 6 }, (_, i) => randomChunk(20_000 + i));
      for (const c of unflushed) await store.put(c.hash, c.bytes);
      // What a disk might hold after a power cut now: the index as written (its WAL
      // included), and the pack cut short in the middle of the fourth unflushed chunk.
      const copy = join(tmp, 'after-power-cut');
      mkdirSync(join(copy, 'packs'), { recursive: true, mode: 0o700 });
      for (const f of ['index.db', 'index.db-wal'])
        if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
      const [pack] = readdirSync(join(dir, 'packs')) as [string];
      copyFileSync(join(dir, 'packs', pack), join(copy, 'packs', pack));
      const cutAt = store.location(unflushed[3]!.hash)!;
      truncateSync(join(copy, 'packs', pack), cutAt.offset + 100);

      // The rows carry this process's pid: to a new store they are a previous process's.
      const after = new PackChunkStore({ dir: copy });
      await after.start();
      try {
        for (const c of [...flushed, ...unflushed.slice(0, 3)])
          assert.deepEqual(await after.get(c.hash), c.bytes, 'whole: kept');
        assert.deepEqual(
          await after.missing(unflushed.map((c) => c.hash)),
          unflushed.slice(3).map((c) => c.hash),
          'cut short or never written: absent, so fetched again',
        );
        assert.ok(
          indexRows(copy).every((r) => r.durable === 1),
          'every row left is durable',
        );
      } finally {
        await after.stop();
      }
    });
  });

  it('gc compacts a mostly dead pack: live chunks move, the pack file goes, bytes on disk shrink', async () => {
    await withStore(async (store, dir) => {
      const chunks = Array.from({ length: 40 }, (_, i) => randomChunk(20_000 + i));
      for (const c of chunks) await store.put(c.hash, c.bytes);
      await store.flush();
      const [before] = await store.packs();
      assert.ok(before);
      const keep = new Set(chunks.filter((_, i) => i % 10 === 0).map((c) => c.hash));
      await new Promise((r) => setTimeout(r, 20));
      const report = await store.gc((h) => keep.has(h), { graceMs: 0 });
      assert.equal(report.removed, 36);
      const after = await store.packs();
      assert.ok(!after.some((p) => p.name === before.name), 'the old pack is deleted');
      const onDisk = after.reduce((n, p) => n + p.bytes, 0);
      assert.ok(onDisk < before.bytes / 5, `packs shrank from ${before.bytes} to ${onDisk} bytes`);
      for (const c of chunks)
        if (keep.has(c.hash)) assert.deepEqual(await store.get(c.hash), c.bytes, 'a kept chunk moved intact');
        else assert.equal(await store.has(c.hash), false);
      assert.ok(
        indexRows(dir).every((r) => r.durable === 1),
        'moved rows are durable',
      );
      // New puts after compaction go to a pack that still works.
      const late = randomChunk(3000);
      await store.put(late.hash, late.bytes);
      assert.deepEqual(await store.get(late.hash), late.bytes);
    });
  });

  it('a pack that reaches packBytes is finished and a new one begun; both read back', async () => {
    await withStore(
      async (store) => {
        const chunks = Array.from({ length: 10 }, (_, i) => randomChunk(30_000 + i));
        for (const c of chunks) await store.put(c.hash, c.bytes);
        await store.flush();
        const packs = await store.packs();
        assert.ok(packs.length >= 3, `${packs.length} packs of at most 100 kB`);
        for (const p of packs)
          assert.ok(p.bytes <= 100_000 || p.bytes <= 30_049 + 40, `${p.name}: ${p.bytes}`);
        for (const c of chunks) assert.deepEqual(await store.get(c.hash), c.bytes);
      },
      { packBytes: 100_000 },
    );
  });

  it('imports a file-a-chunk store: sound chunks move into a pack, a damaged one is left out', async () => {
    const tmp = tempDir('trosyn-packs-import-');
    const dir = join(tmp.path, 'chunks');
    try {
      const old = new DiskChunkStore({ dir });
      await old.start();
      const chunks = Array.from({ length: 8 }, (_, i) => randomChunk(4000 + i));
      for (const c of chunks) await old.put(c.hash, c.bytes);
      await old.flush();
      await old.stop();
      // Bit rot in one loose chunk.
      const rotten = chunks[2]!;
      const rottenPath = join(dir, rotten.hash.slice(0, 2), rotten.hash);
      const bytes = readFileSync(rottenPath);
      bytes[10] = (bytes[10] as number) ^ 1;
      writeFileSync(rottenPath, bytes);

      const store = new PackChunkStore({ dir });
      await store.start();
      try {
        for (const c of chunks)
          if (c === rotten) assert.equal(await store.has(c.hash), false);
          else assert.equal(chunkHash(await store.get(c.hash)), c.hash);
        assert.deepEqual(readdirSync(dir).sort(), ['index.db', 'index.db-shm', 'index.db-wal', 'packs']);
        assert.ok(
          indexRows(dir).every((r) => r.durable === 1),
          'imported rows are durable',
        );
      } finally {
        await store.stop();
      }
    } finally {
      tmp.remove();
    }
  });
});

describe('PackChunkStore lends chunks to pass on', () => {
  it('calls back in the order asked, neighbours read together into buffers it reuses; absent and damaged ones are undefined', async () => {
    await withStore(async (store) => {
      const chunks = Array.from({ length: 60 }, (_, i) => randomChunk(2000 + i * 1500).bytes);
      for (const c of chunks) await store.put(chunkHash(c), c);
      const damaged = chunks[40] as Buffer;
      const where = store.location(chunkHash(damaged));
      assert.ok(where);
      const bytes = readFileSync(where.path);
      bytes[where.offset] = (bytes[where.offset] as number) ^ 0xff;
      writeFileSync(where.path, bytes);
      const unknown = chunkHash(Buffer.from('not here'));
      // Out of disk order in part, with a chunk not here in the middle.
      const asked = [...chunks.slice(30).map(chunkHash), unknown, ...chunks.slice(0, 30).map(chunkHash)];
      const seen: { hash: string; bytes: Buffer | undefined }[] = [];
      const buffers = new Set<ArrayBufferLike>();
      await store.lend(asked, async (hash, lent) => {
        if (lent) buffers.add(lent.buffer);
        // Valid while the callback's promise is pending: copied before it settles.
        await new Promise((r) => setImmediate(r));
        seen.push({ hash, bytes: lent && Buffer.from(lent) });
      });
      assert.deepEqual(
        seen.map((s) => s.hash),
        asked,
      );
      for (const { hash, bytes: got } of seen) {
        const chunk = chunks.find((c) => chunkHash(c) === hash);
        if (hash === unknown || chunk === damaged) assert.equal(got, undefined, 'not here, or damaged');
        else assert.deepEqual(got, chunk);
      }
      assert.equal(await store.has(chunkHash(damaged)), false, 'the damaged chunk was removed');
      assert.ok(buffers.size <= 4, `${buffers.size} read buffers for ${chunks.length} chunks`);
      // A second lend takes the same buffers again.
      const again = new Set<ArrayBufferLike>();
      await store.lend(chunks.slice(0, 10).map(chunkHash), async (_, lent) => {
        if (lent) again.add(lent.buffer);
      });
      assert.ok(
        [...again].every((b) => buffers.has(b)),
        'buffers kept from the first lend are reused',
      );
    });
  });

  it('stops at the first callback that rejects, with its error', async () => {
    await withStore(async (store) => {
      const chunks = Array.from({ length: 5 }, () => randomChunk(4000).bytes);
      for (const c of chunks) await store.put(chunkHash(c), c);
      let calls = 0;
      await assert.rejects(
        store.lend(chunks.map(chunkHash), async () => {
          if (++calls === 2) throw new Error('peer gone');
        }),
        /peer gone/,
      );
      assert.equal(calls, 2);
    });
  });
});

describe('PackChunkStore beside another on the same directory', () => {
  it("a collection by one never compacts the pack the other is writing, and the other's chunks stay readable", async () => {
    const tmp = tempDir('trosyn-packs-two-');
    const dir = join(tmp.path, 'chunks');
    const writer = new PackChunkStore({ dir });
    const collector = new PackChunkStore({ dir });
    try {
      await writer.start();
      await collector.start();
      const chunks = Array.from({ length: 20 }, (_, i) => randomChunk(10_000 + i));
      for (const c of chunks) await writer.put(c.hash, c.bytes);
      await writer.flush();
      const kept = chunks[0]!;
      await new Promise((r) => setTimeout(r, 20));
      // Nineteen of twenty dropped: the writer's pack is mostly dead, but still its own.
      const report = await collector.gc((h) => h === kept.hash, { graceMs: 0 });
      assert.equal(report.removed, 19);
      assert.deepEqual(
        (await writer.packs()).length,
        1,
        "the writer's pack is still there, not compacted from under it",
      );
      assert.deepEqual(await writer.get(kept.hash), kept.bytes);
      const late = randomChunk(5000);
      await writer.put(late.hash, late.bytes);
      await writer.flush();
      assert.deepEqual(
        await collector.get(late.hash),
        late.bytes,
        'appended after the collection, read by the other',
      );
    } finally {
      await writer.stop();
      await collector.stop();
      tmp.remove();
    }
  });

  it('a collection keeps a chunk the other puts again while it looks at it, and folds the touches', async () => {
    const tmp = tempDir('trosyn-packs-touch-');
    const dir = join(tmp.path, 'chunks');
    let now = 1_000_000;
    const clock = { now: () => now };
    const collector = new PackChunkStore({ dir, clock });
    const other = new PackChunkStore({ dir, clock });
    try {
      await collector.start();
      await other.start();
      const chunks = Array.from({ length: 20 }, (_, i) => randomChunk(3000 + i));
      for (const c of chunks) await collector.put(c.hash, c.bytes);
      await collector.flush();
      const byHash = new Map(chunks.map((c) => [c.hash, c]));
      now += 60_000;
      // Put again before the collection: a touch row, not an update of the chunk's row.
      const early = chunks[19]!;
      assert.equal(await other.put(early.hash, early.bytes), false, 'found present');
      now += 1000;
      const index = new Database(join(dir, 'index.db'), { readonly: true });
      try {
        assert.equal(index.prepare('SELECT count(*) FROM touches').pluck().get(), 1);
      } finally {
        index.close();
      }
      const putAgain = new Set<string>([early.hash]);
      const report = await collector.gc(
        async (hash) => {
          if (putAgain.size < 5 && !putAgain.has(hash)) {
            assert.equal(await other.put(hash, byHash.get(hash)!.bytes), false, 'found present');
            putAgain.add(hash);
          }
          return false;
        },
        { graceMs: 30_000 },
      );
      assert.deepEqual(report, { removed: 15, bytes: report.bytes, kept: 5 });
      for (const c of chunks) assert.equal(await other.has(c.hash), putAgain.has(c.hash), c.hash);
      for (const hash of putAgain) assert.deepEqual(await collector.get(hash), byHash.get(hash)!.bytes);
      const after = new Database(join(dir, 'index.db'), { readonly: true });
      try {
        assert.equal(
          after.prepare('SELECT count(*) FROM touches').pluck().get(),
          0,
          'the collection folded the touches into the chunk rows',
        );
        assert.deepEqual(
          after
            .prepare('SELECT lower(hex(hash)) AS hash, touched FROM chunks ORDER BY touched, hash')
            .all()
            .map((r) => (r as { touched: number }).touched),
          [1_060_000, 1_061_000, 1_061_000, 1_061_000, 1_061_000],
          'each kept chunk carries the time it was put again',
        );
      } finally {
        after.close();
      }
    } finally {
      await collector.stop();
      await other.stop();
      tmp.remove();
    }
  });
});

describe('PackChunkStore puts chunks again without their bytes', () => {
  it('putAgain marks stored chunks put again in one write; absent ones and other lengths are false', async () => {
    const tmp = tempDir('trosyn-packs-again-');
    const dir = join(tmp.path, 'chunks');
    let now = 1_000_000;
    const store = new PackChunkStore({ dir, clock: { now: () => now } });
    try {
      await store.start();
      const chunks = Array.from({ length: 6 }, (_, i) => randomChunk(2000 + i));
      for (const c of chunks) await store.put(c.hash, c.bytes);
      await store.flush();
      now += 60_000;
      const absent = randomChunk(999);
      const [a, b, c] = chunks as [typeof absent, typeof absent, typeof absent];
      assert.deepEqual(
        await store.putAgain([
          { hash: a.hash, length: a.bytes.length },
          { hash: absent.hash, length: absent.bytes.length },
          { hash: b.hash, length: b.bytes.length + 1 },
          { hash: c.hash, length: c.bytes.length },
          { hash: a.hash, length: a.bytes.length },
        ]),
        [true, false, false, true, true],
      );
      await assert.rejects(store.putAgain([{ hash: 'not a hash', length: 1 }]), {
        code: 'INVALID_CHUNK_HASH',
      });
      assert.equal(await store.has(absent.hash), false, 'nothing stored for a chunk not here');
      now += 1000;
      // Nothing is referenced: the collection keeps what was put again within its grace period.
      const report = await store.gc(() => false, { graceMs: 30_000 });
      assert.deepEqual(report, { removed: 4, bytes: report.bytes, kept: 2 });
      for (const x of chunks) assert.equal(await store.has(x.hash), x === a || x === c, x.hash);
      assert.deepEqual(await store.get(a.hash), a.bytes);
    } finally {
      await store.stop();
      tmp.remove();
    }
  });
  it('start leaves a few touches for the next collection and folds them once they are many', async () => {
    const tmp = tempDir('trosyn-packs-fold-');
    const dir = join(tmp.path, 'chunks');
    const touches = () => {
      const db = new Database(join(dir, 'index.db'), { readonly: true });
      try {
        return db.prepare('SELECT count(*) FROM touches').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    try {
      const c = randomChunk(4000);
      let store = new PackChunkStore({ dir, clock: { now: () => 5_000 } });
      await store.start();
      await store.put(c.hash, c.bytes);
      assert.deepEqual(await store.putAgain([{ hash: c.hash, length: c.bytes.length }]), [true]);
      await store.stop();
      store = new PackChunkStore({ dir });
      await store.start();
      await store.stop();
      assert.equal(touches(), 1, "one touch is not worth a start's time");
      // As many as a few dozen puts of a large file leave.
      const db = new Database(join(dir, 'index.db'));
      db.transaction(() => {
        const add = db.prepare('INSERT INTO touches (at, hash) VALUES (?, ?)');
        for (let i = 0; i < 100_000; i++) add.run(7_000, Buffer.from(c.hash, 'hex'));
      })();
      db.close();
      store = new PackChunkStore({ dir });
      await store.start();
      await store.stop();
      assert.equal(touches(), 0, 'folded at start');
      const rows = new Database(join(dir, 'index.db'), { readonly: true });
      try {
        assert.equal(rows.prepare('SELECT touched FROM chunks').pluck().get(), 7_000);
      } finally {
        rows.close();
      }
    } finally {
      tmp.remove();
    }
  });
});
