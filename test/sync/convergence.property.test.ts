/**
 * Convergence of random schedules on SQLite stores (see ./convergence-schedules.ts).
 *
 * TROSYN_PROPERTY_RUNS sets the number of schedules (default 200); a long run is
 * `TROSYN_PROPERTY_RUNS=10000 npm test -- convergence`.
 */
import { runConvergenceProperty } from './convergence-schedules.js';

runConvergenceProperty({ name: 'SQLite', runs: Number(process.env.TROSYN_PROPERTY_RUNS ?? 200) });
