import type { ContentProgress } from '../files/content-sync.js';
import type { DeviceId, RejectedRevision } from '../store/types.js';
import type { SyncSessionStats } from '../sync/session.js';
import type { ClockOffset } from '../transport/clock-offset.js';
import type { ClientStatus } from '../transport/client.js';

/** What the end user's app shows: synced / syncing / offline / paused / error. */
export interface SyncStatus {
  state: 'synced' | 'syncing' | 'offline' | 'paused' | 'error';
  connection: ClientStatus;
  hubId: DeviceId;
  deviceId: DeviceId;
  /** Local changes the hub has not acknowledged yet (the outbox). */
  pending: number;
  /** The latest writes the hub refused (e.g. SCOPE_WRITE_DENIED), newest last. They stay on this device. */
  refused: RejectedRevision[];
  /** File versions whose content is still arriving; `synced` waits for them too. */
  files: ContentProgress;
  session?: SyncSessionStats;
  /**
   * The hub's clock against this device's, as last measured (at connect and every
   * heartbeat). A large offset means one of the two clocks is wrong: this device's
   * writes then win or lose conflicts unfairly, or are refused (CLOCK_SKEW).
   */
  hubClock?: ClockOffset;
  /** Present while the hub's clock is a minute or more off this device's: what it means and what to do. */
  clockWarning?: string;
}
