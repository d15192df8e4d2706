import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { JsonObject } from '../src/store/types.js';

/** A scratch directory removed at exit. */
export function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

const WORDS = [
  'policy',
  'request',
  'laptop',
  'budget',
  'travel',
  'report',
  'license',
  'model',
  'office',
  'review',
];

/** A record body of about 300 bytes of JSON, varied but deterministic. */
export function sampleBody(i: number): JsonObject {
  const w = (k: number) => WORDS[(i * 7 + k * 3) % WORDS.length] as string;
  return {
    title: `${w(1)} ${w(2)} #${i}`,
    department: ['finance', 'legal', 'sales', 'it', 'hr'][i % 5] as string,
    status: ['open', 'approved', 'rejected'][i % 3] as string,
    amount: (i * 37) % 10_000,
    tags: [w(3), w(4)],
    text: `${w(5)} ${w(6)} ${w(7)} ${w(8)} `.repeat(6).slice(0, 170),
    createdAt: 1_750_000_000_000 + i * 1000,
  };
}

export const perSec = (count: number, ms: number) => Math.round((count / ms) * 1000);
export const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The value below which `p` (0-100) percent of `values` fall (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/**
 * The same rows as the sync benchmarks (records `from`..`to`-1 of sampleBody)
 * inserted straight into one SQLite table in transactions of `batch`, with the
 * given durability: the storage baseline. Returns the milliseconds spent in the
 * inserts (building the JSON of each batch is not counted).
 */
export function rawSqliteInsert(
  path: string,
  count: number,
  batch: number,
  synchronous: 'full' | 'normal' | 'off',
): number {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec(
    'CREATE TABLE records (collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID',
  );
  const insert = db.prepare('INSERT INTO records (collection, id, body) VALUES (?, ?, ?)');
  const insertBatch = db.transaction((rows: Array<[string, string]>) => {
    for (const [id, body] of rows) insert.run('requests', id, body);
  });
  let ms = 0;
  for (let i = 0; i < count; i += batch) {
    const rows: Array<[string, string]> = [];
    for (let j = i; j < Math.min(i + batch, count); j++) rows.push([`r${j}`, JSON.stringify(sampleBody(j))]);
    const start = performance.now();
    insertBatch(rows);
    ms += performance.now() - start;
  }
  db.close();
  return ms;
}

/** The commit measured and whether src/ had uncommitted changes, for the results file. */
export function sourceVersion(): { commit: string; srcDirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim();
    return { commit, srcDirty: dirty.length > 0 };
  } catch {
    return { commit: 'unknown', srcDirty: false };
  }
}
