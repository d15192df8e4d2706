import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '../src/store/types.js';

/** A scratch directory removed at exit. */
export function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
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
