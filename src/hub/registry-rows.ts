/**
 * The registry's rows as both backends store them (SQLite and PostgreSQL name the
 * columns alike), and the records they make.
 */
import type { DeviceId } from '../store/types.js';
import type { DeviceRecord, ListedPairingCode, PairingCodeRecord } from './registry-backend.js';

export interface DeviceRow {
  device_id: string;
  name: string;
  grp: string;
  state: DeviceRecord['state'];
  first_seen: number;
  last_seen: number | null;
  last_address: string | null;
  app_version: string | null;
  paired_at: number;
  revoked_at: number | null;
}

export interface CodeRow {
  id: number;
  lookup: string;
  secret: string | null;
  grp: string;
  created_at: number;
  expires_at: number;
  failed_attempts: number;
  state: PairingCodeRecord['state'];
  used_by: string | null;
}

export function toDevice(row: DeviceRow): DeviceRecord {
  return {
    deviceId: row.device_id as DeviceId,
    name: row.name,
    group: row.grp,
    state: row.state,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    lastAddress: row.last_address,
    appVersion: row.app_version,
    pairedAt: row.paired_at,
    revokedAt: row.revoked_at,
  };
}

export function toCode(row: CodeRow, now: number): PairingCodeRecord {
  const expired = row.state === 'active' && row.expires_at <= now;
  return {
    codeId: row.id,
    lookup: row.lookup,
    secret: row.secret ?? '',
    group: row.grp,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    failedAttempts: row.failed_attempts,
    state: expired ? 'expired' : row.state,
    usedBy: row.used_by as DeviceId | null,
  };
}

export function toListed(row: CodeRow, now: number): ListedPairingCode {
  const { secret: _secret, ...rest } = toCode(row, now);
  return rest;
}
