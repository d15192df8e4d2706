/**
 * The PostgreSQL chunk store on a real throwaway cluster: the acceptance suite; two
 * processes on one database (a chunk put by one is read by the other, which is woken
 * when it arrives; a collection in one never removes what the other put within the
 * grace period, nor a chunk the other puts again while it runs); the copy of a pack
 * store at start; and the named error when the server refuses.
 */
import assert from 'node:assert/strict';
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ChunkStore } from '../../src/files/chunk-store.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { PostgresChunkStore } from '../../src/files/chunk-store-postgres.js';
import { randomChunk, runChunkStoreSuite } from '../../src/files/testing/chunk-store-suite.js';
import { eventually, tempDir } from '../helpers.js';
import { passwordDatabase, type PostgresCluster, useClusterForFile } from '../helpers-postgres.js';

const cluster = useClusterForFile();
let schemas = 0;
/** One database for the file; a fresh schema for each store the tests make. */
let database: Promise<string> | undefined;
const shared = async (): Promise<{ pg: PostgresCluster; db: string }> => {
  const pg = await cluster();
  database ??= pg.createDatabase();
  return { pg, db: await database };
};

runChunkStoreSuite('PostgresChunkStore', async () => {
  const { pg, db } = await shared();
  const schema = `chunks_${++schemas}`;
  const stores: ChunkStore[] = [];
  const start = async () => {
    const store = new PostgresChunkStore({ connection: pg.config(db), schema, fsync: true });
    stores.push(store);
    await store.start();
    return store;
  };
  return {
    create: start,
    reopen: async (store) => {
      await store.stop();
      return start();
    },
    // One byte in the middle flipped in place, the length unchanged: bit rot.
    damage: async (_store, hash) => {
      const { rowCount } = await pg.query(
        `UPDATE ${schema}.chunks SET bytes = set_byte(bytes, length(bytes) / 2, get_byte(bytes, length(bytes) / 2) # 64)
         WHERE hash = decode($1, 'hex')`,
        [hash],
        db,
      );
      assert.equal(rowCount, 1, `no chunk ${hash} to damage`);
    },
    cleanup: async () => {
      for (const store of stores) await store.stop();
      await pg.query(`DROP SCHEMA ${schema} CASCADE`, [], db);
    },
  };
});

/** The other process: a PostgresChunkStore in a child process, driven line by line. */
class Peer {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: AsyncIterator<string>;

  constructor(config: object, schema: string) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/pg-chunk-peer.ts', JSON.stringify(config), schema],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next(): Promise<string> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the peer process ended');
    return value;
  }

  async ask(line: string): Promise<string> {
    this.child.stdin.write(`${line}\n`);
    return this.next();
  }

  async end(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await Promise.race([exited, sleep(10_000).then(() => this.child.kill('SIGKILL'))]);
  }
}

describe('PostgresChunkStore shared by two processes', () => {
  let pg: PostgresCluster;
  let db: string;
  const schema = 'chunks_two';
  let store: PostgresChunkStore;
  let peer: Peer;

  before(async () => {
    ({ pg, db } = await shared());
    store = new PostgresChunkStore({ connection: pg.config(db), schema });
    await store.start();
    peer = new Peer(pg.config(db), schema);
    assert.equal(await peer.next(), 'ready');
  });

  after(async () => {
    await peer?.end();
    await store?.stop();
  });

  it('a chunk put by the other process is read here, and its flush wakes this one', async () => {
    let woken = 0;
    const unsubscribe = store.onArrival(() => woken++);
    try {
      // The wake-up connection LISTENs once it is up: wait for that before the peer flushes.
      await eventually(
        async () =>
          (
            await pg.query(
              "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN chunks_two'",
              [db],
            )
          ).rowCount === 1,
        10_000,
        'the LISTEN connection',
      );
      const c = randomChunk(64 * 1024);
      assert.equal(await store.has(c.hash), false);
      assert.equal(await peer.ask(`put ${c.bytes.toString('hex')}`), `put ${c.hash} true`);
      assert.deepEqual(await store.get(c.hash), c.bytes, 'byte for byte, here');
      await eventually(() => woken > 0, 10_000, 'woken by the flush of the other process');
      // Put here again: stored once, and the other reads what this one put.
      assert.equal(await store.put(c.hash, c.bytes), false);
      const d = randomChunk(5000);
      assert.equal(await store.put(d.hash, d.bytes), true);
      await store.flush();
      assert.equal(await peer.ask(`get ${d.hash}`), `got ${d.bytes.toString('hex')}`);
    } finally {
      unsubscribe();
    }
  });

  it('a collection in one process keeps what the other put within the grace period', async () => {
    const mine = randomChunk(3000);
    await store.put(mine.hash, mine.bytes);
    await store.flush();
    await sleep(30);
    // Nothing references it, but it is younger than a minute.
    const kept = JSON.parse((await peer.ask('gc 60000')).slice(3)) as { removed: number; kept: number };
    assert.equal(kept.removed, 0);
    assert.ok(kept.kept >= 1);
    assert.equal(await store.has(mine.hash), true, 'kept through the grace period');
    // Without a grace period the same collection removes it: it could have.
    const swept = JSON.parse((await peer.ask('gc 0')).slice(3)) as { removed: number };
    assert.ok(swept.removed >= 1);
    assert.equal(await store.has(mine.hash), false, 'removed once old and unreferenced');
  });

  it('a collection never removes a chunk the other process puts again while it runs', async () => {
    const old = Array.from({ length: 6 }, (_, i) => randomChunk(700 + i));
    for (const c of old) await store.put(c.hash, c.bytes);
    await sleep(30);
    const byHash = new Map(old.map((c) => [c.hash, c]));
    const again = new Set([old[1]!.hash, old[4]!.hash]);
    const report = await store.gc(
      async (hash) => {
        const c = byHash.get(hash);
        // Put again by the other process after this collection began, before it decides.
        if (c && again.has(hash))
          assert.equal(await peer.ask(`put ${c.bytes.toString('hex')}`), `put ${hash} false`);
        return false;
      },
      { graceMs: 0 },
    );
    for (const c of old) assert.equal(await store.has(c.hash), again.has(c.hash), c.hash);
    assert.equal(report.removed, old.length - again.size);
  });
});

describe('PostgresChunkStore importing a data directory', () => {
  it('copies the chunks of a pack store at start, verified, then removes the directory', async () => {
    const { pg, db } = await shared();
    const tmp = tempDir('trosyn-pg-import-');
    const dir = join(tmp.path, 'chunks');
    const chunks = Array.from({ length: 30 }, (_, i) => randomChunk(1000 + i * 977));
    const pack = new PackChunkStore({ dir });
    await pack.start();
    for (const c of chunks) await pack.put(c.hash, c.bytes);
    await pack.flush();
    await pack.stop();
    const store = new PostgresChunkStore({
      connection: pg.config(db),
      schema: 'chunks_import',
      importFrom: dir,
    });
    try {
      await store.start();
      assert.equal(existsSync(dir), false, 'the directory is gone once copied');
      assert.deepEqual(await store.stats(), {
        chunks: chunks.length,
        bytes: chunks.reduce((n, c) => n + c.bytes.length, 0),
      });
      for (const c of chunks) assert.deepEqual(await store.get(c.hash), c.bytes);
      // A second start finds nothing to copy.
      await store.stop();
      await store.start();
      assert.equal((await store.stats()).chunks, chunks.length);
    } finally {
      await store.stop();
      tmp.remove();
    }
  });
});

describe('PostgresChunkStore when the server refuses', () => {
  it('a refused write is CHUNK_STORE_FAILED, names the database and not its password, and keeps nothing', async () => {
    const pg = await cluster();
    const tmp = tempDir('trosyn-pg-refused-');
    const { database } = await passwordDatabase(pg, 'chunk_owner', 'Owner-pw-9', tmp.path);
    const store = new PostgresChunkStore({ connection: pg.url(database, 'chunk_owner', 'Owner-pw-9') });
    await store.start();
    try {
      const before = randomChunk(100);
      assert.equal(await store.put(before.hash, before.bytes), true);
      // From now on the server refuses every new row (as a trigger or a policy could).
      await pg.query(
        'ALTER TABLE trosyn_chunks.chunks ADD CONSTRAINT refuse_new CHECK (length < 0) NOT VALID',
        [],
        database,
      );
      const c = randomChunk(100);
      await assert.rejects(store.put(c.hash, c.bytes), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CHUNK_STORE_FAILED');
        assert.match(err.message, /chunk_owner@/);
        assert.doesNotMatch(err.message, /Owner-pw-9/);
        return true;
      });
      assert.equal(await store.has(c.hash), false, 'nothing of it kept');
      assert.deepEqual(await store.get(before.hash), before.bytes, 'what was there stays');
    } finally {
      await store.stop();
      tmp.remove();
    }
  });
});
