import { randomBytes } from 'node:crypto';
import { ulid } from 'ulidx';
import type { DeviceId, RevId } from '../store/types.js';
import { InvalidCollectionError, InvalidRecordIdError } from './errors.js';

const COLLECTION_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
// C0 and C1 control characters, and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Longest record id, in UTF-16 code units. */
export const MAX_RECORD_ID_LENGTH = 256;

/**
 * Collections are named by 1-64 characters of [A-Za-z0-9_.-], not starting with '.'
 * or '-'. Names starting with '_' are reserved for Trosyn Sync's own collections
 * (`allowReserved` lets the system use them).
 */
export function assertCollectionName(name: unknown, allowReserved = false): asserts name is string {
  if (typeof name !== 'string' || name.length === 0)
    throw new InvalidCollectionError(name, 'must be a non-empty string');
  if (!COLLECTION_RE.test(name)) {
    throw new InvalidCollectionError(
      name,
      'use 1-64 characters of A-Z a-z 0-9 _ . - (not starting with . or -)',
    );
  }
  if (!allowReserved && name.startsWith('_')) {
    throw new InvalidCollectionError(name, "names starting with '_' are reserved for Trosyn Sync");
  }
}

/** Record ids are 1-256 characters with no control characters. */
export function assertRecordId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0)
    throw new InvalidRecordIdError(id, 'must be a non-empty string');
  if (id.length > MAX_RECORD_ID_LENGTH)
    throw new InvalidRecordIdError(id, `longer than ${MAX_RECORD_ID_LENGTH} characters`);
  if (CONTROL_RE.test(id)) throw new InvalidRecordIdError(id, 'contains control characters');
}

export function isDeviceId(value: unknown): value is DeviceId {
  return typeof value === 'string' && HEX64_RE.test(value);
}

export function isRevId(value: unknown): value is RevId {
  return typeof value === 'string' && HEX64_RE.test(value);
}

/** A fresh record id: a ULID (time-ordered, 26 characters). */
export function newRecordId(): string {
  return ulid();
}

/** A random device ID, for tests and for stores that have no certificate yet. */
export function randomDeviceId(): DeviceId {
  return randomBytes(32).toString('hex') as DeviceId;
}
