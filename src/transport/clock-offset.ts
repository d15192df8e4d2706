/**
 * How far a peer's wall clock is from this device's, measured over one round trip:
 * this side notes its clock as it sends (`sentAt`) and as the answer arrives
 * (`receivedAt`); the answer carries the peer's clock as it was sent (`peerTime`).
 * The peer read its clock somewhere within the round trip, so taking its midpoint
 * as the moment puts the estimate within half the round trip of the truth, whatever
 * the delays each way.
 */

/** A peer's clock against this device's, as last measured. */
export interface ClockOffset {
  /** The peer's clock minus this device's (ms): positive when the peer's clock is ahead. */
  offsetMs: number;
  /** The round trip of the measurement (ms); the offset is right to within half of it. */
  rttMs: number;
  /** When it was measured (ms since the epoch, on this device's clock). */
  at: number;
}

/** The offset of a peer's clock from one round trip (see the module comment). */
export function measureOffset(sentAt: number, peerTime: number, receivedAt: number): ClockOffset {
  // A local clock stepped back during the round trip would give a negative one.
  const rttMs = Math.max(0, receivedAt - sentAt);
  return { offsetMs: Math.round(peerTime - (sentAt + rttMs / 2)), rttMs: Math.round(rttMs), at: receivedAt };
}

/**
 * An offset in words, against `of` (whose clock it is compared with): "4 min 10 s
 * ahead of this device's (±2 ms)", "in step with the hub's (within ±1 ms)".
 */
export function describeOffset(c: Pick<ClockOffset, 'offsetMs' | 'rttMs'>, of: string): string {
  const margin = Math.ceil(c.rttMs / 2);
  if (Math.abs(c.offsetMs) <= margin) return `in step with ${of} (within ±${margin} ms)`;
  return `${formatDuration(Math.abs(c.offsetMs))} ${c.offsetMs > 0 ? 'ahead of' : 'behind'} ${of} (±${margin} ms)`;
}

/**
 * From this far apart (ms, beyond the measurement's margin) one of two clocks is
 * wrong: last-writer-wins starts to settle conflicts unfairly.
 */
export const CLOCK_SKEW_WARN_MS = 60_000;

/** Revisions stamped further ahead than this (ms) are refused with CLOCK_SKEW (the replica's default). */
const REFUSED_AHEAD_MS = 24 * 3600_000;

/**
 * The warning a child shows when the hub's clock is `c` off its own: undefined while
 * they are within {@link CLOCK_SKEW_WARN_MS} of each other.
 */
export function clockSkewWarning(c: Pick<ClockOffset, 'offsetMs' | 'rttMs'>): string | undefined {
  const off = Math.abs(c.offsetMs) - c.rttMs / 2;
  if (off < CLOCK_SKEW_WARN_MS) return undefined;
  return (
    `the hub's clock is ${describeOffset(c, "this device's")}: one of the two clocks is wrong. ` +
    'When two devices change the same record the change stamped later wins, so a device whose clock is ahead wins over newer changes and one whose clock is behind loses to older ones' +
    (off > REFUSED_AHEAD_MS ? '; changes stamped more than a day ahead are refused (CLOCK_SKEW)' : '') +
    '. Turn on automatic time sync (NTP) on the machine whose clock is wrong.'
  );
}

/** A duration for people: ms below a second, then s, min, h, days. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 9950) return `${(ms / 1000).toFixed(1)} s`;
  // Whole seconds first, so that 599.6 s reads "10 min 0 s", not "9 min 60 s".
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ${s % 60} s`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.round(h / 24)} days`;
}
