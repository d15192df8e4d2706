/**
 * The CLI's launcher line read as a shell reads it, with no side effects on import
 * (bench/proc.ts installs exit and signal handlers), so a test can use it too.
 */
import { readFileSync } from 'node:fs';

/**
 * The environment and Node flags on a script's first line
 * (`#!/usr/bin/env -S NAME=value … node --flag=value --switch …`).
 */
export function launcher(script: string): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(script, 'utf8').slice(0, 300).split('\n')[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node((?: --[a-z-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (!m) {
    // A launcher line the pattern cannot read would run the fixtures without its settings.
    if (first.startsWith('#!/usr/bin/env -S'))
      throw new Error(`${script}: the launcher line is not NAME=value … node --flag …: ${first}`);
    return { env: {}, flags: [] };
  }
  const words = (s: string | undefined) => (s ?? '').trim().split(/\s+/).filter(Boolean);
  const env = Object.fromEntries(
    words(m[1]).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  return { env, flags: words(m[2]) };
}
