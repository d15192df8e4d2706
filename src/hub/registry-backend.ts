import type { Startable } from '../lifecycle.js';
import type { DeviceId } from '../store/types.js';

/** A device the hub knows of. */
/** How a setting is written. */
export interface SettingWrite {
  /**
   * false for an observation the hub rewrites every few seconds (the devices' sync
   * details, the metrics history): the commit does not wait for the disk, so it never
   * holds the hub's event loop behind a busy disk. A killed process still loses
   * nothing; a power cut may lose the last write. Default true.
   */
  durable?: boolean;
}

export interface DeviceRecord {
  deviceId: DeviceId;
  name: string;
  /** Device group (department); decides the device's read and write scopes. */
  group: string;
  /** pending: paired, waiting for an admin; approved: may sync; revoked: never again. */
  state: 'pending' | 'approved' | 'revoked';
  firstSeen: number;
  lastSeen: number | null;
  lastAddress: string | null;
  appVersion: string | null;
  pairedAt: number;
  revokedAt: number | null;
}

/** Which collections a group's devices may read and write; `*` matches every collection. */
export interface GroupRecord {
  name: string;
  description: string;
  read: string[];
  write: string[];
}

/** A pairing code as the hub keeps it while it is active. */
export interface PairingCodeRecord {
  codeId: number;
  /** The first group of the code, sent in the exchange to find it; the rest stays secret. */
  lookup: string;
  /** The whole normalised code: the PAKE password ('' once the code is spent). */
  secret: string;
  group: string;
  createdAt: number;
  expiresAt: number;
  failedAttempts: number;
  state: 'active' | 'used' | 'burned' | 'expired';
  usedBy: DeviceId | null;
}

/** A pairing code as listed: never its secret (erased anyway once the code is spent). */
export type ListedPairingCode = Omit<PairingCodeRecord, 'secret'>;

/**
 * How a pairing confirmation ended, decided in one transaction against the code's
 * state at that moment (not the state when the session started).
 */
export type PairingAttemptOutcome<T> =
  /** The tag was right and the code still active: it is now used, and the device registered. */
  | { outcome: 'paired'; result: T }
  /** The tag was wrong and counted against the code, which may now be burned. */
  | { outcome: 'wrong-code'; codeState: 'active' | 'burned' }
  /** The code was used, burned or expired meanwhile: the tag was not looked at. */
  | { outcome: 'code-invalid' };

/**
 * A signed-in dashboard session, known by the SHA-256 of its secret (the cookie's
 * value); the secret itself is never stored.
 */
export interface AdminSessionRecord {
  /** SHA-256 (hex) of the session secret. */
  hash: string;
  createdAt: number;
  expiresAt: number;
  /** How the admin signed in: a one-time link, or the admin token at the form. */
  via: 'link' | 'token';
}

/** A hub event as the registry keeps it: its id, and the event's JSON as sent. */
export interface StoredEvent {
  /** Increasing in the order events were appended; never given twice, also after pruning. */
  id: number;
  at: number;
  type: string;
  /** The device the event is about, if any. */
  deviceId: string | null;
  /** The whole event, JSON. */
  data: string;
}

/** Which stored events to read: every given filter must hold. */
export interface StoredEventQuery {
  deviceId?: string;
  /** Any of these types. */
  types?: readonly string[];
  /** `at` from (inclusive) and until (exclusive), ms. */
  since?: number;
  until?: number;
  /** Ids above `afterId` (oldest first), or below `beforeId` (newest first). */
  afterId?: number;
  beforeId?: number;
  /** `asc`: oldest first; `desc`: newest first. */
  order: 'asc' | 'desc';
  limit: number;
}

/** A device as registered by a pairing: its state is decided by the registry's rules. */
export interface NewDevice {
  deviceId: DeviceId;
  name: string;
  group: string;
  state: DeviceRecord['state'];
  appVersion?: string;
  address?: string;
}

/** Fields of a device an admin changes. */
export type DevicePatch = Partial<Pick<DeviceRecord, 'name' | 'group' | 'state' | 'revokedAt'>>;

/**
 * Where the hub's registry keeps devices, groups, pairing codes and settings: only
 * storage, no rules (those are DeviceRegistry's). One SQLite implementation
 * (hub.db); another (PostgreSQL) passes the same suite,
 * `./testing/registry-suite.ts`. Every method except `start` rejects with
 * STORE_CLOSED before `start()` and after `stop()`.
 */
export interface RegistryBackend extends Startable {
  getDevice(deviceId: DeviceId): Promise<DeviceRecord | undefined>;
  /** Every device, in pairing order. */
  listDevices(): Promise<DeviceRecord[]>;
  /**
   * Adds a device (first and last seen `now`), or for a known one changes its name,
   * group and pairing time only (its state stays).
   */
  putDevice(device: NewDevice, now: number): Promise<DeviceRecord>;
  /** Changes fields of a known device; undefined when it is unknown. */
  updateDevice(deviceId: DeviceId, patch: DevicePatch): Promise<DeviceRecord | undefined>;
  /** Records a connection: last seen, address, app version (kept when not given). */
  touchDevice(deviceId: DeviceId, seen: { at: number; address: string; appVersion?: string }): Promise<void>;

  /** Every group, by name; there is always a `default` group. */
  listGroups(): Promise<GroupRecord[]>;
  /** Creates or replaces a group. */
  putGroup(group: GroupRecord): Promise<GroupRecord>;
  /**
   * Deletes a group in one transaction, unless a device that is not revoked is in it
   * or a pairing code still active at `now` would put a device in it: then nothing is
   * deleted and the answer counts them. `deleted` is false also for a group that does
   * not exist (both counts 0).
   */
  deleteGroup(name: string, now: number): Promise<{ deleted: boolean; devices: number; activeCodes: number }>;

  /**
   * Stores a new active code drawn by `draw` (normalised, `XXXXXXXXXXXX`), drawing
   * again while another active code has the same lookup (its first `lookupLength`
   * characters). Codes past their expiry are expired first, in the same transaction.
   */
  insertCode(
    code: { group: string; createdAt: number; expiresAt: number; lookupLength: number },
    draw: () => string,
  ): Promise<string>;
  /** The active, unexpired code with this lookup, if any. */
  findActiveCode(lookup: string, now: number): Promise<PairingCodeRecord | undefined>;
  /**
   * Settles a confirmation in one transaction against the code as it is now: a code
   * no longer active answers `code-invalid` whatever the tag; a right tag spends the
   * code (its secret erased) and stores the device `register` returns for the code's
   * group and the device as known (a throw rolls everything back); a wrong tag counts,
   * and the `maxAttempts`th burns the code (secret erased).
   */
  settleCode(
    codeId: number,
    attempt: { tagMatched: boolean; deviceId: DeviceId; now: number; maxAttempts: number },
    register: (group: string, existing: DeviceRecord | undefined) => NewDevice,
  ): Promise<PairingAttemptOutcome<DeviceRecord>>;
  /** Marks codes past their expiry expired and erases their secrets; returns how many. */
  expireCodes(now: number): Promise<number>;
  /** The newest codes (at most `limit`), any state, never a secret. */
  listCodes(now: number, limit: number): Promise<ListedPairingCode[]>;
  /** The codes that can still be used, newest first, never a secret. */
  activeCodes(now: number): Promise<ListedPairingCode[]>;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string, options?: SettingWrite): Promise<void>;

  /**
   * Keeps a one-time dashboard sign-in link, by the SHA-256 (hex) of its secret,
   * until `expiresAt`. Links and sessions past their expiry are dropped first.
   */
  putSignInLink(link: { hash: string; createdAt: number; expiresAt: number }): Promise<void>;
  /**
   * Spends a sign-in link: true exactly once for a link that exists and has not
   * expired at `now` (it is gone afterwards, also when two ask at once); false otherwise.
   */
  takeSignInLink(hash: string, now: number): Promise<boolean>;
  /** Keeps a new dashboard session. */
  putAdminSession(session: AdminSessionRecord): Promise<void>;
  /** The session with this hash, if it exists and has not expired at `now`. */
  getAdminSession(hash: string, now: number): Promise<AdminSessionRecord | undefined>;
  /** Ends a session (sign-out); nothing when there is none. */
  deleteAdminSession(hash: string): Promise<void>;

  /**
   * Appends hub events in one transaction and returns their ids, in order: each
   * above every id given before, even when retention has dropped those events. The
   * commit does not wait for the disk (see SettingWrite.durable): a killed process
   * loses none, a power cut may lose the last ones.
   */
  appendEvents(events: readonly Omit<StoredEvent, 'id'>[]): Promise<number[]>;
  /** Stored events matching `query`, in its order, at most `limit`. */
  listEvents(query: StoredEventQuery): Promise<StoredEvent[]>;
  /**
   * The lowest id still kept (undefined when none is) and the highest id ever
   * given (0 before the first event).
   */
  eventBounds(): Promise<{ oldest: number | undefined; latest: number }>;
  /** Drops up to `limit` of the oldest events with `at` before `before`; returns how many. */
  pruneEvents(before: number, limit: number): Promise<number>;
}
