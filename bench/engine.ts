/**
 * Engine throughput: 100,000 changes (JSON bodies of about 300 bytes) applied from
 * one replica to another through the engine, on SQLite files, against a raw
 * better-sqlite3 bulk insert of the same rows with the same batch size and
 * durability. Each side runs ROUNDS times, alternating, and the medians are
 * compared, so that a disk hiccup in one round does not decide the ratio.
 *
 * Beside them, the floor of the engine's storage: the very rows an engine round
 * wrote to its change log, inserted again into an empty copy of its store the way
 * the store inserts them (25 rows a statement, batches of 1000), with nothing
 * read, verified or decided. What the engine spends above it is its own logic.
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
  const floorMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rawMs.push(rawInsert(join(dir, `raw-${r}.db`), bodies));
    engineMs.push(await engineApply(source, join(dir, `target-${r}.db`)));
    floorMs.push(rowsAlone(join(dir, `target-${r}.db`), join(dir, `floor-${r}.db`)));
  }
  await source.stop();

  const engineRecordsPerSec = perSec(RECORDS, median(engineMs));
  const rawInsertRecordsPerSec = perSec(RECORDS, median(rawMs));
  const ratio = round(engineRecordsPerSec / rawInsertRecordsPerSec);
  const floorRecordsPerSec = perSec(RECORDS, median(floorMs));
  const floorRatio = round(floorRecordsPerSec / rawInsertRecordsPerSec);
  console.log(
    `records                 ${RECORDS} (avg body ${Math.round(bodyBytes)} B, batches of ${BATCH}, synchronous=${SYNCHRONOUS}, median of ${ROUNDS})`,
  );
  console.log(
    `raw SQLite insert       ${rawInsertRecordsPerSec.toLocaleString()} records/s   (baseline, 1.00)`,
  );
  console.log(
    `engine's rows alone     ${floorRecordsPerSec.toLocaleString()} records/s   (ratio ${floorRatio}: the floor of its storage)`,
  );
  console.log(
    `engine replica->replica ${engineRecordsPerSec.toLocaleString()} records/s   (ratio ${ratio}; target >= 0.5)`,
  );
  const us = (perSecond: number) => round(1e6 / perSecond, 2);
  console.log(
    `per record              raw ${us(rawInsertRecordsPerSec)} µs, rows alone ${us(floorRecordsPerSec)} µs, engine ${us(engineRecordsPerSec)} µs`,
  );
  return {
    records: RECORDS,
    engineRecordsPerSec,
    rawInsertRecordsPerSec,
    ratio,
    target: 0.5,
    rowsAloneRecordsPerSec: floorRecordsPerSec,
    rowsAloneRatio: floorRatio,
    avgBodyBytes: Math.round(bodyBytes),
    batchSize: BATCH,
    synchronous: SYNCHRONOUS,
    rounds: ROUNDS,
    engineMsPerRound: engineMs.map(Math.round),
    rawMsPerRound: rawMs.map(Math.round),
    rowsAloneMsPerRound: floorMs.map(Math.round),
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

/**
 * The rows of the change log an engine round wrote at `target`, inserted again
 * into an empty copy of that store (same schema, devices and peer logs) as the
 * store inserts them: 25 rows a statement, transactions of BATCH, the same
 * durability. Returns the milliseconds spent in the inserts.
 */
function rowsAlone(target: string, path: string): number {
  const COLUMNS =
    'rev, collection, record_id, parents, vv, hlc, author, hub, deleted, body_hash, body, fields, pruned, head, local, source';
  const PER_STATEMENT = 25;
  const from = new Database(target, { readonly: true });
  const rows = from.prepare(`SELECT ${COLUMNS} FROM revisions ORDER BY seq`).raw().all() as unknown[][];
  from.exec(`VACUUM INTO '${path.replaceAll("'", "''")}'`);
  from.close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${SYNCHRONOUS}`);
  db.exec("DELETE FROM revisions; DELETE FROM sqlite_sequence WHERE name = 'revisions'; VACUUM");
  const row = `(${Array(16).fill('?').join(', ')})`;
  const many = db.prepare(
    `INSERT INTO revisions (${COLUMNS}) VALUES ${Array(PER_STATEMENT).fill(row).join(', ')}`,
  );
  const one = db.prepare(`INSERT INTO revisions (${COLUMNS}) VALUES ${row}`);
  // The statements' parameters, ready before the clock starts: only SQLite's work is timed.
  const batches: unknown[][][] = [];
  for (let from = 0; from < rows.length; from += BATCH) {
    const end = Math.min(from + BATCH, rows.length);
    const statements: unknown[][] = [];
    let i = from;
    for (; i + PER_STATEMENT <= end; i += PER_STATEMENT)
      statements.push(rows.slice(i, i + PER_STATEMENT).flat());
    for (; i < end; i++) statements.push(rows[i] as unknown[]);
    batches.push(statements);
  }
  const insertBatch = db.transaction((statements: unknown[][]) => {
    for (const params of statements) (params.length === 16 ? one : many).run(params);
  });
  const start = performance.now();
  for (const statements of batches) insertBatch(statements);
  const ms = performance.now() - start;
  const count = db.prepare('SELECT count(*) FROM revisions').pluck().get();
  db.close();
  if (count !== rows.length || rows.length !== RECORDS)
    throw new Error(`rows alone: inserted ${String(count)} of ${rows.length}`);
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
