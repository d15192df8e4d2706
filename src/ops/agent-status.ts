import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_TOKEN_FILE } from '../child/local-api/token.js';
import type { SyncStatus } from '../child/sync-status.js';
import { readAgentFile } from '../observability/agent-file.js';

/** The running child agent's status, or why it could not be had. */
export type AgentStatusAnswer =
  | { ok: true; status: SyncStatus }
  | { ok: false; why: 'not-running' | 'no-api' | 'no-answer'; detail?: string };

/**
 * Asks the child agent running on a data directory for its sync status, through
 * its local API (the port from its agent file, the token from the directory).
 * Never throws: an agent that is not running, runs without the API, or does not
 * answer within `timeoutMs` is an answer too.
 */
export async function runningChildStatus(dataDir: string, timeoutMs = 3000): Promise<AgentStatusAnswer> {
  const agent = readAgentFile(dataDir);
  if (agent?.role !== 'child') return { ok: false, why: 'not-running' };
  if (agent.apiPort === undefined) return { ok: false, why: 'no-api' };
  try {
    const token = readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${agent.apiPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return { ok: false, why: 'no-answer', detail: `it answered ${res.status}` };
    return { ok: true, status: (await res.json()) as SyncStatus };
  } catch (err) {
    return { ok: false, why: 'no-answer', detail: (err as Error).message };
  }
}
