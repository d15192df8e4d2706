import type { DeviceId, RejectedRevision } from '../store/types.js';
import type { SyncSessionStats } from '../sync/session.js';
import type { ClockOffset } from '../transport/clock-offset.js';

/** The registry setting that keeps every device's entry between runs. */
export const DEVICE_HEALTH_SETTING = 'device_health';

/** How many refused writes are kept per device and direction, newest last. */
const KEPT_REFUSALS = 10;
/** A new clock measurement is saved when it moved this far from the saved one (ms)... */
const CLOCK_SAVE_SHIFT_MS = 1000;
/** ...or when the saved one is this old (ms): a heartbeat's every reading need not be written. */
const CLOCK_SAVE_AGE_MS = 10 * 60_000;

/** Revisions refused in one direction: the latest few with their reasons, and how many in all. */
export interface RefusedWrites {
  /** When the latest refusal happened (ms). */
  at: number;
  /** Refusals counted (kept across hub restarts). */
  total: number;
  /** The latest refused revisions (at most 10), oldest first, each with its code and reason. */
  latest: RejectedRevision[];
}

/** A gap longer than this between two holds of a device's writes begins a new stretch (ms). */
const THROTTLE_STRETCH_GAP_MS = 60_000;

/**
 * The latest stretch of holds of a device's batches by the per-device write limit:
 * from the first hold to the end of the last, and in it, what was held and how long.
 */
export interface ThrottledWrites {
  /** When the first hold of the stretch began (ms). */
  since: number;
  /** When the latest hold ends or ended (ms): later than now while a batch is held. */
  until: number;
  /** Batches held, their revisions, and the time they were held in all (ms). */
  batches: number;
  revisions: number;
  heldMs: number;
}

/** Why a device is not in sync, as far as the hub saw it since it started. */
export interface DeviceTrouble {
  /** The last session that ended in a failure (not a routine close); kept across hub restarts, as is the rest. */
  lastError: { at: number; code: string; message: string } | null;
  /** The device's writes the hub refused (outside the device's write scope, not its own, ...). */
  refusedByHub: RefusedWrites | null;
  /** The hub's revisions the device refused. */
  refusedByDevice: RefusedWrites | null;
  /** The counters of the device's last session as it ended, if one ended. */
  lastSession: { endedAt: number; stats: SyncSessionStats } | null;
  /**
   * The device's clock against the hub's, as last measured (at connect, then every
   * heartbeat): a device with a wrong clock writes revisions that win or lose
   * last-writer-wins conflicts unfairly, or are refused (CLOCK_SKEW).
   */
  clock: ClockOffset | null;
  /** The per-device write limit's latest holds of the device's batches (it writes faster than the limit). */
  throttled: ThrottledWrites | null;
}

/** How far behind a device is in each direction, and why it may not be in sync. */
export interface DeviceSyncReport extends Omit<DeviceTrouble, 'lastSession'> {
  /** The latest position of the hub's change log. */
  hubLatestSeq: number;
  /** Connected and both directions caught up; null when not connected. */
  caughtUp: boolean | null;
  /** Hub to device: how far the device has acknowledged the hub's change log. */
  toDevice: {
    /** The last position the device acknowledged; null when it never connected (or not since the hub kept this). */
    ackedUpTo: number | null;
    /** Positions of the hub's log the device has not acknowledged (an upper bound: some are outside its read scope). */
    behind: number | null;
  };
  /** Device to hub: how far the hub has applied the device's change log. */
  fromDevice: {
    /** The last position of the device's log the hub applied (kept in the hub's store). */
    appliedUpTo: number;
    /** The device's latest position as it reported when its session opened; null when not connected. */
    deviceLatest: number | null;
    /** Positions of the device's log still to come in its initial sync; null when not connected. */
    behind: number | null;
  };
  /** When the device's last session ended, if one ended. */
  lastSessionEndedAt: number | null;
}

const none = (): DeviceTrouble => ({
  lastError: null,
  refusedByHub: null,
  refusedByDevice: null,
  lastSession: null,
  clock: null,
  throttled: null,
});

/**
 * The latest trouble of each device's sync: the last failure, the writes refused
 * either way with their reasons, and where the last session stood when it ended.
 * The admin API's device detail reads it to say why a device is not in sync; events
 * alone are gone once a page missed them. Its owner keeps it across restarts with
 * `toJSON` and `restore`.
 */
export class DeviceHealth {
  private readonly entries = new Map<DeviceId, DeviceTrouble>();
  /** Called after every change (the owner saves, at its own pace). */
  onChange: () => void = () => undefined;

  /** Every device's entry, as kept between runs. */
  toJSON(): Record<string, DeviceTrouble> {
    return Object.fromEntries(this.entries);
  }

  /**
   * Takes in what `toJSON` gave, from an earlier run or from another hub process on
   * the same database: of each part of a device's entry, the newer one stays.
   */
  restore(saved: unknown): void {
    if (typeof saved !== 'object' || saved === null) return;
    for (const [deviceId, entry] of Object.entries(saved as Record<string, DeviceTrouble>)) {
      if (typeof entry !== 'object' || entry === null) continue;
      const theirs = { ...none(), ...entry };
      const mine = this.entries.get(deviceId as DeviceId);
      if (!mine) {
        this.entries.set(deviceId as DeviceId, theirs);
        continue;
      }
      const newer = <T>(a: T | null, b: T | null, at: (x: T) => number): T | null =>
        a === null ? b : b === null ? a : at(b) > at(a) ? b : a;
      mine.lastError = newer(mine.lastError, theirs.lastError, (x) => x.at);
      mine.refusedByHub = newer(mine.refusedByHub, theirs.refusedByHub, (x) => x.at);
      mine.refusedByDevice = newer(mine.refusedByDevice, theirs.refusedByDevice, (x) => x.at);
      mine.lastSession = newer(mine.lastSession, theirs.lastSession, (x) => x.endedAt);
      mine.clock = newer(mine.clock, theirs.clock, (x) => x.at);
      mine.throttled = newer(mine.throttled, theirs.throttled, (x) => x.until);
    }
  }

  get(deviceId: DeviceId): DeviceTrouble {
    const e = this.entries.get(deviceId) ?? none();
    return {
      ...e,
      refusedByHub: e.refusedByHub && { ...e.refusedByHub, latest: [...e.refusedByHub.latest] },
      refusedByDevice: e.refusedByDevice && { ...e.refusedByDevice, latest: [...e.refusedByDevice.latest] },
      throttled: e.throttled && { ...e.throttled },
    };
  }

  failed(deviceId: DeviceId, at: number, code: string, message: string): void {
    this.entry(deviceId).lastError = { at, code, message };
    this.onChange();
  }

  refused(deviceId: DeviceId, by: 'hub' | 'device', at: number, rejected: readonly RejectedRevision[]): void {
    const e = this.entry(deviceId);
    const key = by === 'hub' ? 'refusedByHub' : 'refusedByDevice';
    const before = e[key];
    e[key] = {
      at,
      total: (before?.total ?? 0) + rejected.length,
      latest: [...(before?.latest ?? []), ...rejected].slice(-KEPT_REFUSALS),
    };
    this.onChange();
  }

  /** A new measurement of a device's clock; saved when it moved or the saved one is old. */
  clockMeasured(deviceId: DeviceId, reading: ClockOffset): void {
    const e = this.entry(deviceId);
    const saved = e.clock;
    e.clock = { ...reading };
    if (
      !saved ||
      Math.abs(saved.offsetMs - reading.offsetMs) >= CLOCK_SAVE_SHIFT_MS ||
      reading.at - saved.at >= CLOCK_SAVE_AGE_MS
    )
      this.onChange();
  }

  /**
   * The write limit holds a batch of the device's from `at` until `until`. Saved when
   * a new stretch begins; the counts of a stretch go with the next save.
   */
  throttled(deviceId: DeviceId, at: number, until: number, revisions: number, heldMs: number): void {
    const e = this.entry(deviceId);
    const last = e.throttled;
    if (last && at - last.until <= THROTTLE_STRETCH_GAP_MS) {
      last.until = Math.max(last.until, until);
      last.batches++;
      last.revisions += revisions;
      last.heldMs += heldMs;
      return;
    }
    e.throttled = { since: at, until, batches: 1, revisions, heldMs };
    this.onChange();
  }

  ended(deviceId: DeviceId, endedAt: number, stats: SyncSessionStats): void {
    this.entry(deviceId).lastSession = { endedAt, stats: { ...stats } };
    this.onChange();
  }

  private entry(deviceId: DeviceId): DeviceTrouble {
    let e = this.entries.get(deviceId);
    if (!e) {
      e = none();
      this.entries.set(deviceId, e);
    }
    return e;
  }
}
