import type { ContentProgress } from '../files/content-sync.js';
import type { DiscoveryDiagnostics } from '../discovery/types.js';
import type { DeviceId, StoreStats } from '../store/types.js';
import type { SyncSessionStats } from '../sync/session.js';
import type { BackupScheduleStatus } from '../ops/backup-schedule.js';
import { HUB_EVENT_TYPES } from './event-types.js';

/** One child's live sync session, as the hub's status shows it. */
export interface ChildSession {
  deviceId: DeviceId;
  address: string;
  name: string;
  appVersion: string;
  connectedAt: number;
  caughtUp: boolean;
  stats: SyncSessionStats;
  /** Bytes on this connection (frames, after compression) in and out. */
  bytesIn: number;
  bytesOut: number;
}

/**
 * Everything that happens on a hub worth showing live, as one discriminated union:
 * the admin event stream sends these as they are.
 */
export type HubEvent = { at: number } & (
  | { type: 'device-paired'; deviceId: DeviceId; name: string; state: string; group: string }
  | { type: 'device-approved' | 'device-revoked' | 'device-updated'; deviceId: DeviceId; name?: string }
  | { type: 'device-connected'; session: ChildSession }
  | { type: 'device-disconnected'; deviceId: DeviceId; name?: string; code?: string; message?: string }
  | { type: 'sync-started'; deviceId: DeviceId }
  | { type: 'sync-progress'; session: ChildSession }
  | { type: 'sync-completed'; session: ChildSession }
  | { type: 'sync-failed'; deviceId: DeviceId; code: string; message: string }
  /** Revisions refused: `by: 'hub'` the device's writes (e.g. outside its write scope), `by: 'device'` the hub's. */
  | {
      type: 'writes-refused';
      deviceId: DeviceId;
      by: 'hub' | 'device';
      count: number;
      codes: string[];
      collections: string[];
    }
  | { type: 'conflict-opened'; collection: string; id: string; status: 'open' | 'auto' }
  | { type: 'conflict-resolved'; collection: string; id: string }
  /** A group was created, changed or deleted (`deleted: true`). */
  | { type: 'scopes-changed'; group: string; deleted?: true }
  /** The collection policy or approval mode changed (the policy's new version). */
  | { type: 'settings-changed'; version: number }
  /**
   * The hub sends a child its change log from the beginning although the child had
   * a cursor: the cursor was for an older log of the hub, or the hub's store was
   * found rolled back to an older copy (which starts a recovery window).
   */
  | { type: 'sync-restarted'; deviceId: DeviceId; reason: 'other-log' | 'rolled-back' | 'unverified' }
  /** The hub lost revisions and takes back, until `until`, what children hold for others. */
  | { type: 'recovery-started'; reason: 'store-recreated' | 'store-rolled-back'; until: number }
  /** A scheduled backup was made (`dir`, its `bytes`) or failed (`code`, `message`). */
  | { type: 'backup-completed'; dir: string; bytes: number; durationMs: number }
  | { type: 'backup-failed'; code: string; message: string }
  /** File content arriving at the hub (at most every 250 ms while chunks arrive). */
  | { type: 'files-progress'; progress: ContentProgress }
  | { type: 'error'; code: string; message: string; deviceId?: DeviceId }
);

export type HubEventType = HubEvent['type'];

/** Every HubEvent type, for validating filters (the compiler checks none is missing or extra). */
export { HUB_EVENT_TYPES };
const noExtra: readonly HubEventType[] = HUB_EVENT_TYPES;
void noExtra;
const everyType: [Exclude<HubEventType, (typeof HUB_EVENT_TYPES)[number]>] extends [never] ? true : never =
  true;
void everyType;

/** What the hub reports about itself (the admin API's `/status`). */
export interface HubStatus {
  deviceId: DeviceId;
  name: string;
  version: string;
  startedAt: number;
  syncPort: number;
  /** Port of the admin API, when it runs. */
  adminPort?: number;
  devices: { approved: number; pending: number; revoked: number };
  connected: ChildSession[];
  store: StoreStats;
  /** Bytes of the store's files on disk (SQLite database and its write-ahead log), when it has files in the data directory. */
  storeBytes?: number;
  discovery: DiscoveryDiagnostics[];
  /** Scheduled backups, when configured: the newest, the last failure, the next. */
  backups?: BackupScheduleStatus;
  /** Set while the hub takes back revisions it lost (see RecoveryWindow). */
  recovery?: { reason: string; at: number; until: number };
}
