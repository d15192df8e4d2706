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
