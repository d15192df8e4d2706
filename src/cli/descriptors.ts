/**
 * What the command line says when the process ran out of file descriptors before it
 * could do its work. Loading the program reads a few hundred module files, many at
 * once, so under a very low `ulimit -n` it fails before any of its own code runs,
 * with Node's bare EMFILE naming some module file. This module uses nothing but
 * Node's own, so the launcher can load it first and turn that into a clear error.
 */
import { readFileSync } from 'node:fs';

/** The soft limit on open files, or undefined where /proc/self is not there (or no descriptor is left to read it). */
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

// Read as the launcher starts: once the descriptors ran out, there is none left to read it with.
const limitAtStart = openFilesLimit();

/** The cause in words when `err` is the system refusing a descriptor (EMFILE), else undefined. */
export function tooFewDescriptors(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'EMFILE' && !(err instanceof Error && /\bEMFILE\b/.test(err.message))) return undefined;
  const limit = openFilesLimit() ?? limitAtStart;
  return (
    `the process may open ${limit === undefined ? 'too few' : `only ${limit}`} files at once (ulimit -n) and ran out. ` +
    'Raise the limit to at least 1024 (`ulimit -n 1024`, or LimitNOFILE= in the service unit); ' +
    'a hub needs one more for each device connected to it'
  );
}
