import { createHash } from 'node:crypto';

/** Hex characters of a token that depend on the revision at its position (all of a token made before issue marks). */
export const POSITION_PART = 32;

/**
 * The checkpoint token of log position `seq` holding revision `rev`, written in
 * epoch `epoch` (undefined for positions written before epochs were kept), handed
 * out under change log `log`: one formula for every store, so a store moved to
 * another keeps its peers' cursors valid. `salt` is the store's secret; see
 * StorageAdapter.checkpoint.
 *
 * Two parts: the first changes when the position ever holds another revision (a
 * rolled-back log that reused it); the second, the issue mark, depends on the log
 * and the position only, so the store can tell a position it handed out from one
 * made up even after it lost that position (see `issuedToken`). Tokens made before
 * the mark existed are the first part alone, and still match it.
 */
export function checkpointToken(
  salt: string,
  seq: number,
  rev: string,
  epoch: string | undefined,
  log: string,
): string {
  const text = epoch === undefined ? `${salt}:${seq}:${rev}` : `${salt}:${seq}:${rev}:${epoch}`;
  return createHash('sha256').update(text).digest('hex').slice(0, POSITION_PART) + issueMark(salt, log, seq);
}

function issueMark(salt: string, log: string, seq: number): string {
  return createHash('sha256').update(`${salt}:issued:${log}:${seq}`).digest('hex').slice(0, 16);
}

/** True when `token` carries the issue mark this store gave position `seq` of log `log`. */
export function issuedToken(salt: string, log: string, seq: number, token: string): boolean {
  return token.length === POSITION_PART + 16 && token.slice(POSITION_PART) === issueMark(salt, log, seq);
}

/** True when two tokens name the same position holding the same revision (a token without a mark included). */
export function samePosition(a: string, b: string): boolean {
  return a.slice(0, POSITION_PART) === b.slice(0, POSITION_PART);
}
