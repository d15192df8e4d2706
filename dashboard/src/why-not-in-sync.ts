/**
 * Why a device is not in sync, in plain words, from what `GET /api/devices/{id}`
 * reports: kept apart from the dialog so that it can be tested without a browser.
 */
import type { ChildSession, Device } from './api.js';
import { ago, at } from './format.js';
import { describeOffset } from '../../src/transport/clock-offset.js';

/** A device clock this far from the hub's (ms) is a reason: the doctor warns from a minute too. */
export const CLOCK_WARN_MS = 60_000;

/** Revisions refused one way, as `GET /api/devices/{id}` reports them. */
export interface RefusedWrites {
  at: number;
  total: number;
  latest: { rev: string; collection: string; id: string; code: string; message: string }[];
}

/** Where a device's sync stands, as the hub knows it (docs/API.md, devices). */
export interface DeviceSync {
  hubLatestSeq: number;
  caughtUp: boolean | null;
  toDevice: { ackedUpTo: number | null; behind: number | null };
  fromDevice: { appliedUpTo: number; deviceLatest: number | null; behind: number | null };
  lastError: { at: number; code: string; message: string } | null;
  refusedByHub: RefusedWrites | null;
  refusedByDevice: RefusedWrites | null;
  lastSessionEndedAt: number | null;
  /** The latest stretch of holds by the per-device write limit (null: never held). */
  throttled?: {
    since: number;
    until: number;
    batches: number;
    revisions: number;
    heldMs: number;
  } | null;
}

export type Detail = Device & {
  session: (ChildSession & { bytesIn: number; bytesOut: number }) | null;
  sync: DeviceSync;
};

export const changes = (n: number) => `${n} change${n === 1 ? '' : 's'}`;

/** The reasons a device is not in sync, in plain words, most pressing first; empty when it is. */
export function whyNotInSync(d: Detail, now = Date.now()): string[] {
  const { sync } = d;
  const reasons: string[] = [];
  if (d.state === 'revoked') return ['It was revoked: it can never sync with this hub again.'];
  if (d.state === 'pending')
    reasons.push('It waits for approval: approve it on the Devices or Pairing page.');
  if (!d.session) {
    if (d.state === 'approved') reasons.push(`It is not connected (last seen ${ago(d.lastSeen)}).`);
  } else if (!sync.caughtUp) {
    reasons.push('Its initial sync is still running.');
  }
  if (sync.lastError && !sync.caughtUp)
    reasons.push(`Its last session failed at ${at(sync.lastError.at)}: ${sync.lastError.code}.`);
  if (sync.refusedByHub)
    reasons.push(
      `The hub refused ${changes(sync.refusedByHub.total)} it wrote (${[...new Set(sync.refusedByHub.latest.map((r) => r.code))].join(', ')}): they stay on the device only.`,
    );
  if (sync.throttled && sync.throttled.until > now)
    reasons.push(
      `The hub is holding back its writes: it writes faster than the per-device write limit (${changes(sync.throttled.revisions)} held since ${at(sync.throttled.since)}). They arrive at the limit; nothing is lost.`,
    );
  if (sync.refusedByDevice) reasons.push(`It refused ${changes(sync.refusedByDevice.total)} from the hub.`);
  if (d.clock && Math.abs(d.clock.offsetMs) >= CLOCK_WARN_MS)
    reasons.push(
      `Its clock is ${describeOffset(d.clock, "the hub's")}: its writes win or lose conflicts unfairly, and far enough off they are refused (CLOCK_SKEW). Turn on automatic time sync (NTP) on it.`,
    );
  return reasons;
}
