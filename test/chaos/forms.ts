/**
 * The two sizes of each experiment: `full` for `npm run chaos` (about 6 minutes),
 * `short` for `npm test` (under a minute for both, run side by side).
 */
import type { CrashOptions } from './crash.js';
import type { NetworkOptions } from './network.js';
import type { ResourceOptions } from './resources.js';
import type { ClockOptions } from './clock.js';
import type { AbuseOptions } from './abuse.js';

type Form = 'full' | 'short';

export const CRASH_FORMS: Record<Form, Omit<CrashOptions, 'seed' | 'dir' | 'log'>> = {
  full: { kills: 60, children: 3 },
  short: { kills: 5, children: 3 },
};

export const NETWORK_FORMS: Record<Form, Omit<NetworkOptions, 'seed' | 'dir' | 'log'>> = {
  full: {
    children: 3,
    heartbeatS: 5,
    lossMs: 30_000,
    delayMs: 30_000,
    partitionMs: 30_000,
    flap: { cycles: 6, downMs: [1_000, 3_000], upMs: [2_000, 4_000] },
  },
  short: {
    children: 3,
    heartbeatS: 1,
    lossMs: 4_000,
    delayMs: 4_000,
    partitionMs: 5_000,
    flap: { cycles: 3, downMs: [500, 1_500], upMs: [1_000, 2_000] },
  },
};

/** Per resource fault (a full disk, a read-only directory, on the hub and on a child). */
export const RESOURCE_FORMS: Record<Form, Pick<ResourceOptions, 'faultMs'>> = {
  full: { faultMs: 20_000 },
  short: { faultMs: 3_000 },
};

/** Clock skew: children hours ahead and behind. */
export const CLOCK_FORMS: Record<Form, Omit<ClockOptions, 'seed' | 'dir' | 'log'>> = {
  full: { skewHours: 5, writeMs: 20_000, conflictRounds: 6 },
  short: { skewHours: 3, writeMs: 3_000, conflictRounds: 3 },
};

/**
 * Abuse: in full, each kind alone and then all at once, the 2x latency goal judged;
 * in short, all at once for a few seconds (about 15 s in all), the latency only printed.
 */
export const ABUSE_FORMS: Record<Form, Omit<AbuseOptions, 'seed' | 'dir' | 'log'>> = {
  full: {
    quietSamples: 60,
    phases: [['flood'], ['slow'], ['writer'], ['garbage'], ['flood', 'slow', 'writer', 'garbage']],
    // Longer than the hub's 10 s handshake limit: the never-finishing handshakes are cut in each phase.
    phaseMs: 15_000,
    attempts: 10_000,
    slowAddresses: 4,
    slowPerAddress: 40,
    judgeLatency: true,
  },
  short: {
    quietSamples: 10,
    phases: [['flood', 'slow', 'writer', 'garbage']],
    phaseMs: 3_000,
    attempts: 1_000,
    slowAddresses: 2,
    slowPerAddress: 40,
    judgeLatency: false,
  },
};
