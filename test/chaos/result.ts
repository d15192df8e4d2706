import type { StoreCheck } from './cluster.js';

/** The figures of one chaos experiment, as printed and written to the results file. */
export interface ExperimentResult {
  name: string;
  /** The seed of the run: `npm run chaos -- --seed N` replays its schedule. */
  seed: number;
  /** What was done to the cluster: kills by node, or faults and their durations. */
  faults: Record<string, number | string>;
  /** Writes the API or the CLI answered with success. */
  ackedWrites: number;
  /** Writes that failed (node down, answer lost): not counted as acknowledged. */
  failedWrites: number;
  /** Acknowledged writes missing on at least one node after convergence (goal 0). */
  lost: number;
  /** Records whose revisions or current revision differ between nodes (goal 0). */
  divergent: number;
  /** Revisions stored twice in one node's change log (goal 0). */
  duplicates: number;
  /** `ok`, or the SQLite files whose `PRAGMA integrity_check` is not. */
  integrity: 'ok' | string[];
  /** From the end of the faults (writers stopped) until every node holds every acknowledged write (ms). */
  convergeMs: number;
  /** The whole experiment, start-up included (ms). */
  durationMs: number;
  /** Anything else measured (detection and reconnect times of a partition). */
  measured?: Record<string, unknown>;
  /** Goals of this experiment that were missed (a session stuck, a partition noticed too late). */
  violations?: string[];
}

/** The figures every experiment reports from its cluster's writes and its stores' check. */
export function outcome(
  cluster: { acked: readonly unknown[]; failedWrites: number },
  check: Pick<StoreCheck, 'lost' | 'divergent' | 'duplicates' | 'integrity'>,
): Pick<
  ExperimentResult,
  'ackedWrites' | 'failedWrites' | 'lost' | 'divergent' | 'duplicates' | 'integrity'
> {
  return {
    ackedWrites: cluster.acked.length,
    failedWrites: cluster.failedWrites,
    lost: check.lost.length,
    divergent: check.divergent.length,
    duplicates: check.duplicates,
    integrity: check.integrity.length === 0 ? 'ok' : check.integrity,
  };
}

/** The problems of a result, for a test to assert on and a run to print: [] when it met its goals. */
export function problems(r: ExperimentResult): string[] {
  const out: string[] = [];
  if (r.ackedWrites === 0) out.push('no write was acknowledged');
  if (r.lost > 0) out.push(`${r.lost} acknowledged writes lost`);
  if (r.divergent > 0) out.push(`${r.divergent} records divergent`);
  if (r.duplicates > 0) out.push(`${r.duplicates} revisions duplicated`);
  if (r.integrity !== 'ok') out.push(`integrity: ${r.integrity.join('; ')}`);
  out.push(...(r.violations ?? []));
  return out;
}

/** One line per result, for the console. */
export function summary(r: ExperimentResult): string {
  const faults = Object.entries(r.faults)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return (
    `${r.name} (seed ${r.seed}): ${faults}; acked ${r.ackedWrites}, failed ${r.failedWrites}, ` +
    `lost ${r.lost}, divergent ${r.divergent}, duplicated ${r.duplicates}, integrity ${r.integrity === 'ok' ? 'ok' : 'BAD'}, ` +
    `converged in ${(r.convergeMs / 1000).toFixed(1)} s, took ${(r.durationMs / 1000).toFixed(1)} s` +
    (r.measured ? `; ${JSON.stringify(r.measured)}` : '')
  );
}
