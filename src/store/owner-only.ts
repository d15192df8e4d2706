import { chmodSync, statSync } from 'node:fs';

/**
 * Makes a database file readable and writable by its owner only (0600), and leaves
 * it alone when it already is: a read-only disk refuses even a chmod that would
 * change nothing, and opening a store to read must work there.
 */
export function ownerOnly(path: string): void {
  if (path === ':memory:') return;
  if ((statSync(path).mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}
