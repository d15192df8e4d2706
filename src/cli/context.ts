/**
 * What every command shares: its common options, where its data directory is, how
 * it prints. Light on purpose: the commands that open a node's stores load them
 * from stores.ts, so what opens none (--version, a command's help) starts without
 * loading the store, the engine or the schemas, and a files put starts its hashing
 * threads before they load.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TrosynError } from '../errors.js';
import { DataDirNotADirectoryError } from '../ops/errors.js';

/** Options every command has. */
export interface CommonOptions {
  data?: string;
  json?: boolean;
}

/** A problem with how the command was called; exits with status 2. */
export class UsageError extends TrosynError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Adds the options every command has: --data and --json. */
export function common(cmd: Command, defaultData: 'hub' | 'child' | 'any'): Command {
  const hint =
    defaultData === 'hub'
      ? './data/hub'
      : defaultData === 'child'
        ? './data/child'
        : './data/child, or ./data/hub if that is the only one';
  return cmd
    .option('--data <dir>', `the node's data directory (default: $TROSYN_DATA or ${hint})`)
    .option('--json', 'print machine-readable JSON instead of text');
}

/** The data directory: --data, then $TROSYN_DATA, then the default for the command. */
export function dataDir(opts: CommonOptions, kind: 'hub' | 'child' | 'any'): string {
  const explicit = opts.data ?? process.env.TROSYN_DATA;
  if (explicit) {
    const dir = resolve(explicit);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new DataDirNotADirectoryError(dir);
    return dir;
  }
  if (kind === 'hub') return resolve('data/hub');
  if (kind === 'child') return resolve('data/child');
  return existsSync('data/child') || !existsSync('data/hub') ? resolve('data/child') : resolve('data/hub');
}

/** Prints a result: JSON with --json, otherwise the human lines. */
export function print(opts: CommonOptions, json: unknown, human: () => string | string[]): void {
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  const text = human();
  const lines = Array.isArray(text) ? text : [text];
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

/** Parses a JSON argument, with a clear message on failure. */
export function parseJsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `${what} is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. '{"title":"x"}'`,
    );
  }
}

/** Milliseconds since the epoch as a short local date-time. */
export function when(ms: number | null | undefined): string {
  if (!ms) return '-';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** Pads columns of a small table. */
export function table(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
