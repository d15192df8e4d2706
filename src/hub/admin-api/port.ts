import type { ContentProgress, PeerTransfer } from '../../files/content-sync.js';
import type { NodeFiles } from '../../files/node-files.js';
import type { DeviceId } from '../../store/types.js';
import type { ReplicaReader } from '../../http/replica-routes.js';
import type { Replica } from '../../sync/replica.js';
import type { ClockOffset } from '../../transport/clock-offset.js';
import type { DeviceSyncReport } from '../device-health.js';
import type { ChildSession, HubEvent, HubStatus } from '../events.js';
import type { EventLog } from '../event-log.js';
import type { MetricsSeries, MetricsWindow } from '../metrics-history.js';
import type { DeviceRecord, GroupRecord, ListedPairingCode } from '../registry-backend.js';
import type { BackupRun } from '../../ops/backup-schedule.js';
import type { HubSettings, SettingsChange } from '../settings.js';
import type { SignInStore } from './sign-in.js';

/**
 * What the admin API needs from a hub: the operations behind its routes, and
 * nothing else. The Hub implements it; route tests give a fake. Every change goes
 * through the one path that records it and publishes its event (a revoke also
 * disconnects, a move to another group reconnects under the new scopes).
 */
export interface AdminPort {
  isStarted(): boolean;
  status(): Promise<HubStatus>;

  listDevices(filter?: { state?: DeviceRecord['state']; group?: string }): Promise<DeviceRecord[]>;
  getDevice(deviceId: DeviceId): Promise<DeviceRecord | undefined>;
  /** The children connected now, with their live sync sessions. */
  connectedChildren(): ChildSession[];
  approve(deviceId: DeviceId): Promise<DeviceRecord>;
  revoke(deviceId: DeviceId): Promise<DeviceRecord>;
  /** Renames and/or moves a device; checks both before changing either. */
  updateDevice(deviceId: DeviceId, change: { name?: string; group?: string }): Promise<DeviceRecord>;

  listGroups(): Promise<GroupRecord[]>;
  putGroup(group: GroupRecord): Promise<GroupRecord>;
  /** Deletes a group no device and no active code needs; never the default group. */
  deleteGroup(name: string): Promise<void>;

  /** Approval mode and the collection policy. */
  settings(): Promise<HubSettings>;
  /** Changes them (see SettingsChange); the policy reaches every child. */
  updateSettings(change: SettingsChange): Promise<HubSettings & { resettled: number }>;

  /**
   * Makes a scheduled backup now (or waits for the one under way), into the
   * schedule's directory; BACKUPS_NOT_SCHEDULED without `--backup-dir`.
   */
  backupNow(): Promise<BackupRun>;

  /** How far behind a device is each way, and what went wrong last with its sync. */
  deviceSync(deviceId: DeviceId): Promise<DeviceSyncReport>;
  /** The device's clock against the hub's, as last measured; null when never measured. */
  deviceClock(deviceId: DeviceId): ClockOffset | null;

  /** A new single-use code and the text of its QR code (hub ID and sync port included). */
  issuePairingCode(options: { ttlMs?: number; group?: string }): Promise<{
    code: string;
    expiresAt: number;
    group: string;
    qr: string;
  }>;
  listPairingCodes(): Promise<ListedPairingCode[]>;

  /** Calls `listener` with every hub event until the returned function is called. */
  subscribe(listener: (event: HubEvent) => void): () => void;

  /** The event log: kept events with their ids, and new ones as they are written. */
  readonly eventLog: Pick<EventLog, 'subscribe' | 'list' | 'after' | 'bounds' | 'retentionDays'>;
  /** Throughput with the children and devices connected, over the last hour or day. */
  metricsHistory(window: MetricsWindow): MetricsSeries;

  /** A Prometheus scrape of the hub's metrics (`GET /metrics`). */
  metricsText(): Promise<string>;

  /** Records, history and conflicts, for the read routes; revert writes as the hub. */
  records(): ReplicaReader & Pick<Replica, 'revert'>;

  /** The hub's files, for the read routes: list, versions, history, download. */
  readonly files: Pick<NodeFiles, 'version' | 'read' | 'list' | 'history' | 'isHere'>;
  /** File content arriving at the hub, overall and per connected device. */
  fileTransfers(): { progress: ContentProgress; devices: PeerTransfer[] };

  /** Where dashboard sign-in links and sessions are kept (the registry, so they survive a restart). */
  readonly signIns: SignInStore;

  /** The admin token: checked on every request; made (and returned, once) on the first start. */
  verifyAdminToken(token: string): Promise<boolean>;
  ensureAdminToken(): Promise<string | undefined>;
}
