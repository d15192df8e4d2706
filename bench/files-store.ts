/**
 * The chunk stores' write and read paths, measured in one run (`npm run bench --
 * chunk-store`), for the pack store (chunks appended to pack files, the default) and
 * the file-a-chunk store:
 *
 * - put throughput for 64 KiB chunks against the same bytes written as plain files
 *   (no hash, no rename, no fsync: the floor of one file per chunk): without fsync;
 *   durable after every chunk (put then flush); and batched (puts, then one flush),
 *   one put at a time and IN_FLIGHT at once;
 * - a 1 GiB file (16,384 chunks) batched with IN_FLIGHT puts at once, against no
 *   fsync at all (and, for the file-a-chunk store, durable per chunk);
 * - reads with and without the hash check (from the page cache), and SHA-256 alone.
 *
 * Each throughput figure is the median of ROUNDS rounds, the variants alternating so
 * a disk hiccup does not decide a ratio. The store lives in the system's temporary
 * directory unless BENCH_CHUNK_DIR names another (the figures depend on that
 * filesystem and disk; the results file records its type). MB = 10^6 bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkHash, type ChunkStore } from '../src/files/chunk-store.js';
import { DiskChunkStore } from '../src/files/chunk-store-disk.js';
import { PackChunkStore } from '../src/files/chunk-store-pack.js';
import { median, round, scratch, sourceVersion } from './common.js';

const QUICK = process.argv.includes('--quick');
const CHUNK = 64 * 1024;
const CHUNKS = QUICK ? 256 : 2048;
const FILE_CHUNKS = QUICK ? 1024 : 16_384;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = 32;

type Kind = 'pack' | 'disk';
const KINDS: Record<Kind, string> = { pack: 'pack store', disk: 'file-a-chunk store' };

function makeStore(kind: Kind, dir: string, fsync = true): ChunkStore & { dir: string } {
  return kind === 'pack' ? new PackChunkStore({ dir, fsync }) : new DiskChunkStore({ dir, fsync });
}

/** Distinct chunks without holding them all: a random pool, each chunk a slice stamped with its number. */
class ChunkSource {
  private readonly pool = randomBytes(8 * 1024 * 1024);
  private serial = Math.floor(Math.random() * 2 ** 31);

  next(): Buffer {
    const n = this.serial++;
    const at = (n * 4099) % (this.pool.length - CHUNK);
    const bytes = Buffer.from(this.pool.subarray(at, at + CHUNK));
    bytes.writeUInt32LE(n >>> 0, 0);
    bytes.writeUInt32LE(Math.floor(n / 2 ** 32), 4);
    return bytes;
  }

  /** `count` chunks with their hashes, made before the clock starts. */
  batch(count: number): Array<{ hash: string; bytes: Buffer }> {
    return Array.from({ length: count }, () => {
      const bytes = this.next();
      return { hash: chunkHash(bytes), bytes };
    });
  }
}

type Mode = 'noFsync' | 'perChunk' | 'batched' | 'batchedInFlight';

const MODES: Record<Mode, string> = {
  noFsync: 'put, no fsync at all',
  perChunk: 'put + flush each chunk (durable per chunk)',
  batched: 'puts, one flush at the end',
  batchedInFlight: `puts ${IN_FLIGHT} in flight, one flush at the end`,
};

/** Puts `count` chunks from `next` in `mode`, then flushes; returns the milliseconds. */
async function putAll(
  kind: Kind,
  dir: string,
  next: () => { hash: string; bytes: Buffer },
  count: number,
  mode: Mode,
): Promise<number> {
  const store = makeStore(kind, dir, mode !== 'noFsync');
  await store.start();
  const start = performance.now();
  let made = 0;
  const worker = async () => {
    while (made < count) {
      made++;
      const { hash, bytes } = next();
      await store.put(hash, bytes);
      if (mode === 'perChunk') await store.flush();
    }
  };
  await Promise.all(Array.from({ length: mode === 'batchedInFlight' ? IN_FLIGHT : 1 }, worker));
  await store.flush();
  const ms = performance.now() - start;
  await store.stop();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

/** The floor: the same bytes as plain files in 256 directories, no hash, rename or fsync. */
async function plainFiles(dir: string, chunks: Array<{ hash: string; bytes: Buffer }>): Promise<number> {
  const start = performance.now();
  const made = new Set<string>();
  for (const { hash, bytes } of chunks) {
    const sub = join(dir, hash.slice(0, 2));
    if (!made.has(sub)) {
      await mkdir(sub, { recursive: true });
      made.add(sub);
    }
    const handle = await open(join(sub, hash), 'wx', 0o600);
    await handle.writeFile(bytes);
    await handle.close();
  }
  const ms = performance.now() - start;
  await rm(dir, { recursive: true, force: true });
  return ms;
}

const mbps = (count: number, ms: number) => round((count * CHUNK) / 1e6 / (ms / 1000), 1);

export async function run(): Promise<Record<string, unknown>> {
  const root = process.env.BENCH_CHUNK_DIR ?? scratch('trosyn-bench-chunks-');
  const fs = statfsSync(root);
  const fsType = `0x${fs.type.toString(16)}`;
  const source = new ChunkSource();
  let dirs = 0;
  const fresh = () => join(root, `store-${process.pid}-${++dirs}`);

  // Throughput of CHUNKS chunks, every store and mode and the plain-file floor alternating.
  const ms: Record<string, number[]> = { plain: [] };
  for (let r = 0; r < ROUNDS; r++) {
    ms.plain!.push(await plainFiles(fresh(), source.batch(CHUNKS)));
    for (const kind of Object.keys(KINDS) as Kind[])
      for (const mode of Object.keys(MODES) as Mode[]) {
        const chunks = source.batch(CHUNKS);
        let i = 0;
        (ms[`${kind}.${mode}`] ??= []).push(await putAll(kind, fresh(), () => chunks[i++]!, CHUNKS, mode));
      }
  }
  const floor = mbps(CHUNKS, median(ms.plain!));
  console.log(
    `${CHUNKS} chunks of 64 KiB (${(CHUNKS * CHUNK) / 2 ** 20} MiB), median of ${ROUNDS}, fs ${fsType}`,
  );
  console.log(`  plain files, no hash/rename/fsync   ${floor} MB/s   (baseline, 1.00)`);
  const throughput: Record<string, Record<string, unknown>> = {};
  for (const kind of Object.keys(KINDS) as Kind[]) {
    console.log(` ${KINDS[kind]}:`);
    throughput[kind] = {};
    for (const mode of Object.keys(MODES) as Mode[]) {
      const runs = ms[`${kind}.${mode}`] as number[];
      const rate = mbps(CHUNKS, median(runs));
      throughput[kind][mode] = {
        what: MODES[mode],
        mbPerSec: rate,
        chunksPerSec: Math.round(CHUNKS / (median(runs) / 1000)),
        ratio: round(rate / floor),
        msPerRound: runs.map(Math.round),
      };
      console.log(`  ${MODES[mode].padEnd(36)} ${rate} MB/s   (ratio ${round(rate / floor)})`);
    }
  }

  // A 1 GiB file: what durability per chunk costs against a batch, once each. Its
  // chunks are made and hashed as they are put (a chunker does that much too), not
  // held in memory beforehand.
  const file: Record<string, Record<string, unknown>> = {};
  const made = () => {
    const bytes = source.next();
    return { hash: chunkHash(bytes), bytes };
  };
  console.log(`a ${(FILE_CHUNKS * CHUNK) / 2 ** 30} GiB file (${FILE_CHUNKS} chunks):`);
  for (const kind of Object.keys(KINDS) as Kind[]) {
    file[kind] = {};
    const modes: Mode[] =
      kind === 'disk' ? ['perChunk', 'batchedInFlight', 'noFsync'] : ['batchedInFlight', 'noFsync'];
    for (const mode of modes) {
      const m = await putAll(kind, fresh(), made, FILE_CHUNKS, mode);
      file[kind][mode] = { what: MODES[mode], seconds: round(m / 1000, 1), mbPerSec: mbps(FILE_CHUNKS, m) };
      console.log(
        `  ${KINDS[kind]}, ${MODES[mode].padEnd(36)} ${round(m / 1000, 1)} s = ${mbps(FILE_CHUNKS, m)} MB/s`,
      );
    }
  }

  // Reads one at a time, with the hash check and without, from the page cache;
  // SHA-256 alone beside them.
  const chunks = source.batch(CHUNKS);
  const read: Record<string, Record<string, number>> = {};
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const store = makeStore(kind, fresh());
    await store.start();
    for (const c of chunks) await store.put(c.hash, c.bytes);
    await store.flush();
    const reads: Record<string, number[]> = { verified: [], unverified: [], sha256: [] };
    for (let r = 0; r < ROUNDS; r++) {
      let start = performance.now();
      for (const c of chunks) await store.get(c.hash);
      reads.verified!.push(performance.now() - start);
      start = performance.now();
      for (const c of chunks) await store.get(c.hash, { verify: false });
      reads.unverified!.push(performance.now() - start);
      start = performance.now();
      for (const c of chunks) createHash('sha256').update(c.bytes).digest();
      reads.sha256!.push(performance.now() - start);
    }
    await store.stop();
    await rm(store.dir, { recursive: true, force: true });
    read[kind] = Object.fromEntries(Object.entries(reads).map(([k, v]) => [k, mbps(CHUNKS, median(v))]));
    console.log(
      `reads, ${KINDS[kind]}: get ${read[kind].verified} MB/s verified, ${read[kind].unverified} MB/s unverified; SHA-256 alone ${read[kind].sha256} MB/s`,
    );
  }

  return {
    chunkBytes: CHUNK,
    chunks: CHUNKS,
    rounds: ROUNDS,
    inFlight: IN_FLIGHT,
    dir: process.env.BENCH_CHUNK_DIR ? 'BENCH_CHUNK_DIR' : 'os.tmpdir()',
    fs: { type: fsType, bytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize },
    plainFilesMbPerSec: floor,
    throughput,
    file: { chunks: FILE_CHUNKS, bytes: FILE_CHUNKS * CHUNK, ...file },
    readMbPerSec: read,
    source: sourceVersion(),
  };
}
