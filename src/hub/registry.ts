import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { TrosynError } from '../errors.js';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { DeviceId } from '../store/types.js';
import type { AuthDecision, Authenticator, PeerCredentials } from '../transport/authenticator.js';
import {
  CODE_ALPHABET,
  CODE_LENGTH,
  CODE_LOOKUP_LENGTH,
  formatCode,
  normalizeCode,
} from '../transport/pairing-code.js';
import type {
  AdminSessionRecord,
  DeviceRecord,
  GroupRecord,
  ListedPairingCode,
  PairingAttemptOutcome,
  PairingCodeRecord,
  RegistryBackend,
  SettingWrite,
  StoredEvent,
  StoredEventQuery,
} from './registry-backend.js';
import { assertScopePattern } from './scopes.js';

export type {
  DeviceRecord,
  GroupRecord,
  ListedPairingCode,
  PairingAttemptOutcome,
  PairingCodeRecord,
} from './registry-backend.js';

export interface DeviceRegistryOptions {
  /** Where devices, groups, codes and settings are kept. */
  backend: RegistryBackend;
  /** Paired devices wait for an admin's approval before they sync. Default false. */
  requireApproval?: boolean;
  /** Wrong guesses after which a pairing code is burned. Default 3. */
  maxCodeAttempts?: number;
  /** Source of pairing codes' characters (an index below `max`). Default crypto.randomInt; tests force collisions with it. */
  randomInt?: (max: number) => number;
  clock?: Clock;
  logger?: Logger;
}

/** Unknown device, wrong state, or a bad group: a named error with a stable code. */
export class RegistryError extends TrosynError {}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The group every registry has, where devices paired without a group go. */
const DEFAULT_GROUP = 'default';

/**
 * The hub's registry of devices, groups and pairing codes: the rules (who may pair,
 * approve, be revoked; valid names and scopes; single-use codes) over a storage
 * seam, RegistryBackend. It is also the Authenticator the sync service consults for
 * every connection: approved devices sync, unknown ones may only attempt pairing,
 * pending and revoked ones are refused with a code that tells them why.
 */
export class DeviceRegistry implements Startable, Authenticator {
  private readonly options: DeviceRegistryOptions;
  private readonly backend: RegistryBackend;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(options: DeviceRegistryOptions) {
    this.options = options;
    this.backend = options.backend;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  isStarted(): boolean {
    return this.backend.isStarted();
  }

  async start(): Promise<void> {
    if (this.backend.isStarted()) return;
    await this.backend.start();
    // An expired code's secret goes at the latest when the hub starts. On a disk that
    // is read-only or full the sweep waits for the next start, and the CLI's reads
    // (status, devices) still work.
    await this.backend.expireCodes(this.clock.now()).catch((err: unknown) => {
      if (!/^SQLITE_(READONLY|FULL|IOERR)/.test(String((err as { code?: unknown }).code))) throw err;
    });
  }

  async stop(): Promise<void> {
    await this.backend.stop();
  }

  // --- authentication ------------------------------------------------------------

  async authenticate(peer: PeerCredentials): Promise<AuthDecision> {
    const device = await this.get(peer.deviceId);
    if (!device) return { allow: 'pairing' };
    switch (device.state) {
      case 'approved':
        return { allow: 'sync' };
      case 'pending':
        return {
          deny: 'DEVICE_PENDING_APPROVAL',
          reason: 'this device is paired and waits for an admin to approve it',
        };
      case 'revoked':
        return {
          deny: 'DEVICE_REVOKED',
          reason: 'this device was revoked by the hub admin and can no longer sync',
        };
    }
  }

  // --- devices -----------------------------------------------------------------------

  get(deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    return this.backend.getDevice(deviceId);
  }

  async list(filter: { state?: DeviceRecord['state']; group?: string } = {}): Promise<DeviceRecord[]> {
    return (await this.backend.listDevices()).filter(
      (d) => (!filter.state || d.state === filter.state) && (!filter.group || d.group === filter.group),
    );
  }

  /** Adds a device that proved knowledge of a pairing code (or that an admin adds). */
  async register(input: {
    deviceId: DeviceId;
    name: string;
    group: string;
    appVersion?: string;
    address?: string;
  }): Promise<DeviceRecord> {
    const existing = await this.get(input.deviceId);
    const device = await this.backend.putDevice(
      this.admission(input, existing, await this.requireApproval()),
      this.clock.now(),
    );
    this.logger.info({ deviceId: input.deviceId, state: device.state, group: input.group }, 'device paired');
    return device;
  }

  /** The device a pairing stores: refused if revoked; pending or approved by the approval mode. */
  private admission(
    input: { deviceId: DeviceId; name: string; group: string; appVersion?: string; address?: string },
    existing: DeviceRecord | undefined,
    requireApproval: boolean,
  ) {
    if (existing?.state === 'revoked') {
      throw new RegistryError('DEVICE_REVOKED', 'this device was revoked and cannot pair again', {
        deviceId: input.deviceId,
      });
    }
    return { ...input, state: requireApproval ? ('pending' as const) : ('approved' as const) };
  }

  async approve(deviceId: DeviceId): Promise<DeviceRecord> {
    const device = await this.require(deviceId);
    if (device.state === 'revoked')
      throw new RegistryError(
        'DEVICE_REVOKED',
        'a revoked device cannot be approved; it must pair again with a new identity',
      );
    return (await this.backend.updateDevice(deviceId, { state: 'approved' })) as DeviceRecord;
  }

  /** Revokes for good: the device is refused from now on, whatever it presents. */
  async revoke(deviceId: DeviceId): Promise<DeviceRecord> {
    await this.require(deviceId);
    const device = await this.backend.updateDevice(deviceId, {
      state: 'revoked',
      revokedAt: this.clock.now(),
    });
    this.logger.warn({ deviceId }, 'device revoked');
    return device as DeviceRecord;
  }

  async rename(deviceId: DeviceId, name: string): Promise<DeviceRecord> {
    await this.require(deviceId);
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 128)
      throw new RegistryError('INVALID_NAME', 'a device name has 1 to 128 characters');
    return (await this.backend.updateDevice(deviceId, { name: trimmed })) as DeviceRecord;
  }

  async setGroup(deviceId: DeviceId, group: string): Promise<DeviceRecord> {
    await this.require(deviceId);
    await this.requireGroup(group);
    return (await this.backend.updateDevice(deviceId, { group })) as DeviceRecord;
  }

  /** Records that a device connected (last seen, address, app version). */
  touch(deviceId: DeviceId, seen: { address: string; appVersion?: string }): Promise<void> {
    return this.backend.touchDevice(deviceId, { at: this.clock.now(), ...seen });
  }

  private async require(deviceId: DeviceId): Promise<DeviceRecord> {
    const device = await this.get(deviceId);
    if (!device)
      throw new RegistryError('DEVICE_NOT_FOUND', `no device ${deviceId} is registered`, { deviceId });
    return device;
  }

  // --- groups and scopes -------------------------------------------------------------

  listGroups(): Promise<GroupRecord[]> {
    return this.backend.listGroups();
  }

  async getGroup(name: string): Promise<GroupRecord | undefined> {
    return (await this.backend.listGroups()).find((g) => g.name === name);
  }

  /** Creates or replaces a group's scopes. */
  async putGroup(group: GroupRecord): Promise<GroupRecord> {
    if (!GROUP_NAME.test(group.name))
      throw new RegistryError('INVALID_GROUP', `invalid group name ${JSON.stringify(group.name)}`);
    for (const pattern of [...group.read, ...group.write]) assertScopePattern(pattern);
    return this.backend.putGroup(group);
  }

  /**
   * Deletes a group no device and no active pairing code needs: the default group
   * (where devices paired without a group go) never, a group with devices that are
   * not revoked or with an active code not until they are moved or the code is spent
   * or expired. Checked and deleted in one transaction.
   */
  async deleteGroup(name: string): Promise<void> {
    if (name === DEFAULT_GROUP)
      throw new RegistryError(
        'GROUP_IS_DEFAULT',
        'the default group cannot be deleted: devices paired without a group join it',
        { group: name },
      );
    const outcome = await this.backend.deleteGroup(name, this.clock.now());
    if (outcome.deleted) return;
    if (outcome.devices > 0 || outcome.activeCodes > 0) {
      const what = [
        outcome.devices > 0 && `${outcome.devices} device(s) are in it (move them first)`,
        outcome.activeCodes > 0 &&
          `${outcome.activeCodes} active pairing code(s) would put a device in it (let them expire or use them)`,
      ].filter(Boolean);
      throw new RegistryError(
        'GROUP_IN_USE',
        `group ${JSON.stringify(name)} is not deleted: ${what.join('; ')}`,
        { group: name, devices: outcome.devices, activeCodes: outcome.activeCodes },
      );
    }
    throw new RegistryError('GROUP_NOT_FOUND', `no group ${JSON.stringify(name)}`, { group: name });
  }

  private async requireGroup(name: string): Promise<GroupRecord> {
    const group = await this.getGroup(name);
    if (!group)
      throw new RegistryError('GROUP_NOT_FOUND', `no group ${JSON.stringify(name)}; create it first`, {
        group: name,
      });
    return group;
  }

  // --- pairing codes -----------------------------------------------------------------

  /**
   * A new single-use pairing code, `XXXX-XXXX-XXXX` in Crockford base32: the first
   * group finds the code (no other active code has it), the 40-bit rest is the
   * secret the PAKE protects.
   */
  async issueCode(options: { ttlMs?: number; group?: string } = {}): Promise<{
    code: string;
    expiresAt: number;
    group: string;
  }> {
    const group = options.group ?? 'default';
    await this.requireGroup(group);
    const now = this.clock.now();
    const expiresAt = now + (options.ttlMs ?? 10 * 60_000);
    const random = this.options.randomInt ?? randomInt;
    const code = await this.backend.insertCode(
      { group, createdAt: now, expiresAt, lookupLength: CODE_LOOKUP_LENGTH },
      () => {
        let text = '';
        for (let i = 0; i < CODE_LENGTH; i++) text += CODE_ALPHABET[random(CODE_ALPHABET.length)];
        return text;
      },
    );
    return { code: formatCode(code), expiresAt, group };
  }

  /** The active, unexpired code with this lookup group, if any. */
  findActiveCode(lookup: string): Promise<PairingCodeRecord | undefined> {
    return this.backend.findActiveCode(normalizeCode(lookup), this.clock.now());
  }

  /**
   * Settles a pairing confirmation against the code as it is now: with a right tag
   * and a code still active, spends the code and registers the device in the code's
   * group, in one transaction. A code no longer active answers `code-invalid`
   * whether the tag was right or not, so a session opened before the code was burned
   * learns nothing from its tag.
   */
  async settlePairingAttempt(
    codeId: number,
    attempt: {
      tagMatched: boolean;
      device: { deviceId: DeviceId; name: string; appVersion?: string; address?: string };
    },
  ): Promise<PairingAttemptOutcome<DeviceRecord>> {
    const { device } = attempt;
    const requireApproval = await this.requireApproval();
    const outcome = await this.backend.settleCode(
      codeId,
      {
        tagMatched: attempt.tagMatched,
        deviceId: device.deviceId,
        now: this.clock.now(),
        maxAttempts: this.options.maxCodeAttempts ?? 3,
      },
      (group, existing) => this.admission({ ...device, group }, existing, requireApproval),
    );
    if (outcome.outcome === 'wrong-code' && outcome.codeState === 'burned')
      this.logger.warn({ codeId }, 'pairing code burned after too many wrong guesses');
    if (outcome.outcome === 'paired')
      this.logger.info(
        { deviceId: device.deviceId, state: outcome.result.state, group: outcome.result.group },
        'device paired',
      );
    return outcome;
  }

  /** The newest codes (at most 100) and their state, never the code itself. */
  listCodes(): Promise<ListedPairingCode[]> {
    return this.backend.listCodes(this.clock.now(), 100);
  }

  /**
   * The codes that can still be used (active, unexpired), newest first, never the
   * code itself; `group` keeps only that group's. A hub that starts issues a code
   * only when this is empty, so restarts do not pile up live codes.
   */
  async activePairingCodes(filter: { group?: string } = {}): Promise<ListedPairingCode[]> {
    return (await this.backend.activeCodes(this.clock.now())).filter(
      (c) => filter.group === undefined || c.group === filter.group,
    );
  }

  // --- settings ------------------------------------------------------------------------

  /** A hub setting (admin token hash, approval mode, ...), or undefined. */
  getSetting(key: string): Promise<string | undefined> {
    return this.backend.getSetting(key);
  }

  setSetting(key: string, value: string, options?: SettingWrite): Promise<void> {
    return this.backend.setSetting(key, value, options);
  }

  /** Whether newly paired devices wait for approval: the stored setting, else the start option. */
  async requireApproval(): Promise<boolean> {
    const stored = await this.getSetting('require_approval');
    return stored ? stored === 'true' : (this.options.requireApproval ?? false);
  }

  setRequireApproval(on: boolean): Promise<void> {
    return this.setSetting('require_approval', String(on));
  }

  // --- dashboard sign-in links and sessions (SignInStore; rules in admin-api/sign-in.ts) ---

  putSignInLink(link: { hash: string; createdAt: number; expiresAt: number }): Promise<void> {
    return this.backend.putSignInLink(link);
  }

  takeSignInLink(hash: string, now: number): Promise<boolean> {
    return this.backend.takeSignInLink(hash, now);
  }

  putAdminSession(session: AdminSessionRecord): Promise<void> {
    return this.backend.putAdminSession(session);
  }

  getAdminSession(hash: string, now: number): Promise<AdminSessionRecord | undefined> {
    return this.backend.getAdminSession(hash, now);
  }

  deleteAdminSession(hash: string): Promise<void> {
    return this.backend.deleteAdminSession(hash);
  }

  // --- the hub's event log (HubEventStore; rules in event-log.ts) ------------------------

  appendEvents(events: readonly Omit<StoredEvent, 'id'>[]): Promise<number[]> {
    return this.backend.appendEvents(events);
  }

  listEvents(query: StoredEventQuery): Promise<StoredEvent[]> {
    return this.backend.listEvents(query);
  }

  eventBounds(): Promise<{ oldest: number | undefined; latest: number }> {
    return this.backend.eventBounds();
  }

  pruneEvents(before: number, limit: number): Promise<number> {
    return this.backend.pruneEvents(before, limit);
  }
}
