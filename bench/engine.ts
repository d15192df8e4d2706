/**
 * Engine throughput: 100,000 changes (JSON bodies of about 300 bytes) applied from
 * one replica to another through the engine, on SQLite files, against a raw
 * better-sqlite3 bulk insert of the same rows with the same batch size and
 * durability. Each side runs ROUNDS times, alternating, and the medians are
 * compared, so that a disk hiccup in one round does not decide the ratio.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { openReplica } from '../src/index.js';
import { canonicalJson } from '../src/sync/canonical.js';
import { randomDeviceId } from '../src/sync/ids.js';
import type { Replica, WriteOp } from '../src/sync/replica.js';
import { transfer } from '../src/sync/transfer.js';
import { median, perSec, round, sampleBody, scratch } from './common.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BATCH = 1000;
const SYNCHRONOUS = 'full' as const;

export async function run(): Promise<Record<string, unknown>> {
  const dir = scratch('trosyn-bench-engine-');
  const bodies = Array.from({ length: RECORDS }, (_, i) => sampleBody(i));
  const bodyBytes = bodies.reduce((n, b) => n + Buffer.byteLength(canonicalJson(b)), 0) / RECORDS;

  // The changes to apply: a source replica holding RECORDS writes.
  const source = await openReplica({
    path: join(dir, 'source.db'),
    deviceId: randomDeviceId(),
    role: 'hub',
    synchronous: 'off',
  });
  for (let i = 0; i < RECORDS; i += 5000) {
    const ops: WriteOp[] = [];
    for (let j = i; j < Math.min(i + 5000, RECORDS); j++)
      ops.push({ op: 'put', collection: 'requests', id: `r${j}`, body: bodies[j] as never });
    await source.writeMany(ops);
  }

  const rawMs: number[] = [];
  const engineMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rawMs.push(rawInsert(join(dir, `raw-${r}.db`), bodies));
    engineMs.push(await engineApply(source, join(dir, `target-${r}.db`)));
  }
  await source.stop();

  const engineRecordsPerSec = perSec(RECORDS, median(engineMs));
  const rawInsertRecordsPerSec = perSec(RECORDS, median(rawMs));
  const ratio = round(engineRecordsPerSec / rawInsertRecordsPerSec);
  console.log(
    `records                 ${RECORDS} (avg body ${Math.round(bodyBytes)} B, batches of ${BATCH}, synchronous=${SYNCHRONOUS}, median of ${ROUNDS})`,
  );
  console.log(
    `raw SQLite insert       ${rawInsertRecordsPerSec.toLocaleString()} records/s   (baseline, 1.00)`,
  );
  console.log(
    `engine replica->replica ${engineRecordsPerSec.toLocaleString()} records/s   (ratio ${ratio}; target >= 0.5)`,
  );
  return {
    records: RECORDS,
    engineRecordsPerSec,
    rawInsertRecordsPerSec,
    ratio,
    target: 0.5,
    avgBodyBytes: Math.round(bodyBytes),
    batchSize: BATCH,
    synchronous: SYNCHRONOUS,
    rounds: ROUNDS,
    engineMsPerRound: engineMs.map(Math.round),
    rawMsPerRound: rawMs.map(Math.round),
  };
}

/** The same rows straight into one SQLite table, same batch size and durability. */
function rawInsert(path: string, bodies: object[]): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${SYNCHRONOUS}`);
  db.exec(
    'CREATE TABLE records (collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID',
  );
  const insert = db.prepare('INSERT INTO records (collection, id, body) VALUES (?, ?, ?)');
  const insertBatch = db.transaction((from: number) => {
    for (let i = from; i < Math.min(from + BATCH, RECORDS); i++)
      insert.run('requests', `r${i}`, JSON.stringify(bodies[i]));
  });
  const start = performance.now();
  for (let i = 0; i < RECORDS; i += BATCH) insertBatch(i);
  const ms = performance.now() - start;
  db.close();
  return ms;
}

/** Every change of `source` applied to a fresh replica through the engine. */
async function engineApply(source: Replica, path: string): Promise<number> {
  const target = await openReplica({ path, deviceId: randomDeviceId(), synchronous: SYNCHRONOUS });
  const start = performance.now();
  const result = await transfer(source, target, { batchSize: BATCH });
  const ms = performance.now() - start;
  const stats = await target.stats();
  await target.stop();
  if (stats.records !== RECORDS || result.applied !== RECORDS)
    throw new Error(`engine applied ${result.applied}, target holds ${stats.records}`);
  return ms;
}
