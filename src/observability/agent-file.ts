import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A running agent's note in its data directory (`agent.json`): which process it
 * is and where its ports are, so the CLI can reach it. Written at start, removed
 * at stop; a note whose process is gone (killed) is ignored.
 */
export interface AgentFile {
  pid: number;
  role: 'hub' | 'child';
  deviceId: string;
  name: string;
  version: string;
  startedAt: number;
  syncPort?: number;
  adminPort?: number;
  /** Where the hub's dashboard is reached (`https://192.168.1.10:17701`), for the sign-in links the CLI makes. */
  adminUrl?: string;
  apiPort?: number;
  /** The hub's scheduled backups (`--backup-dir`), for `status`. */
  backups?: { dir: string; everyHours: number; keep: number };
}

const FILE = 'agent.json';

export function writeAgentFile(dataDir: string, info: AgentFile): void {
  const path = join(dataDir, FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Removes the note, if it is this process's own. */
export function removeAgentFile(dataDir: string): void {
  const current = readAgentFile(dataDir, { includeStale: true });
  if (current?.pid === process.pid) rmSync(join(dataDir, FILE), { force: true });
}

/** The running agent of a data directory, or undefined when none runs. */
export function readAgentFile(
  dataDir: string,
  options: { includeStale?: boolean } = {},
): AgentFile | undefined {
  const path = join(dataDir, FILE);
  if (!existsSync(path)) return undefined;
  let info: AgentFile;
  try {
    info = JSON.parse(readFileSync(path, 'utf8')) as AgentFile;
  } catch {
    return undefined;
  }
  if (options.includeStale) return info;
  try {
    process.kill(info.pid, 0);
    return info;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else, so it is running.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? info : undefined;
  }
}
