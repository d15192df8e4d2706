/**
 * One hub identity for every hub process on one PostgreSQL database. Children pin
 * the hub's certificate, so each process must present the same one: the first
 * process to start on the database records its hub ID there, and, given an
 * identity key file, its key and certificate sealed with that key (AES-256-GCM,
 * the key derived from the file by HKDF-SHA256 with a random salt). A later
 * process with a fresh data directory and the same key file opens the sealed
 * identity and writes it into its own data directory. The database never holds
 * the private key in the clear, and the key file never enters the database.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { TrosynError } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import { IDENTITY_KEY_FILE_ENV } from '../ops/hub-store.js';
import type { DeviceId } from '../store/types.js';
import { type DeviceIdentity, deviceIdOfPem } from '../transport/identity.js';

export { IDENTITY_KEY_FILE_ENV };

/** The registry settings: the hub ID serving the database, and its sealed identity. */
export const HUB_ID_SETTING = 'hub_id';
export const SEALED_IDENTITY_SETTING = 'hub_identity_sealed';

/** The shortest secret an identity key file may hold (bytes, surrounding whitespace left out). */
export const MIN_KEY_BYTES = 32;

const sealedSchema = z.object({
  v: z.literal(1),
  hubId: z.string(),
  certPem: z.string(),
  salt: z.string(),
  iv: z.string(),
  key: z.string(),
  tag: z.string(),
});

/** The secret in an identity key file; a missing, unreadable or short one is IDENTITY_KEY_UNREADABLE. */
export function readIdentityKey(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TrosynError('IDENTITY_KEY_UNREADABLE', `cannot read the identity key file ${file}: ${reason}`, {
      file,
    });
  }
  const secret = Buffer.from(bytes.toString('latin1').trim(), 'latin1');
  if (secret.length < MIN_KEY_BYTES)
    throw new TrosynError(
      'IDENTITY_KEY_UNREADABLE',
      `the identity key file ${file} holds ${secret.length} bytes; it needs at least ${MIN_KEY_BYTES} (make one with: openssl rand -base64 32 > ${file})`,
      { file },
    );
  return secret;
}

function aesKey(secret: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, 'trosyn-sync hub identity v1', 32));
}

/** The identity sealed with `secret`, as the JSON text the registry keeps. */
export function sealIdentity(identity: DeviceIdentity, secret: Buffer): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey(secret, salt), iv);
  // The hub ID and certificate are bound to the sealed key: neither can be swapped.
  cipher.setAAD(Buffer.from(`${identity.deviceId}\n${identity.certPem}`));
  const key = Buffer.concat([cipher.update(identity.keyPem, 'utf8'), cipher.final()]);
  return JSON.stringify({
    v: 1,
    hubId: identity.deviceId,
    certPem: identity.certPem,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    key: key.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  });
}

/** Opens a sealed identity; a wrong key (or altered text) is HUB_IDENTITY_KEY_WRONG. */
export function openIdentity(text: string, secret: Buffer, file = 'the identity key file'): DeviceIdentity {
  const wrong = (why: string) =>
    new TrosynError(
      'HUB_IDENTITY_KEY_WRONG',
      `the hub identity kept in the database cannot be opened with ${file}: ${why}`,
      { file },
    );
  let sealed: z.infer<typeof sealedSchema>;
  try {
    sealed = sealedSchema.parse(JSON.parse(text));
  } catch {
    throw wrong('it is not a sealed identity this version reads');
  }
  if (deviceIdOfPem(sealed.certPem) !== sealed.hubId) throw wrong('its certificate is not its hub ID’s');
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      aesKey(secret, Buffer.from(sealed.salt, 'base64')),
      Buffer.from(sealed.iv, 'base64'),
    );
    decipher.setAAD(Buffer.from(`${sealed.hubId}\n${sealed.certPem}`));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    const keyPem = Buffer.concat([
      decipher.update(Buffer.from(sealed.key, 'base64')),
      decipher.final(),
    ]).toString('utf8');
    return { deviceId: sealed.hubId as DeviceId, certPem: sealed.certPem, keyPem };
  } catch {
    throw wrong('another key sealed it (every hub process needs the same file)');
  }
}

/** The registry settings the shared identity lives in. */
export interface IdentitySettings {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

/** What {@link sharedHubIdentity} is given. */
export interface SharedIdentityOptions {
  settings: IdentitySettings;
  /** The identity in this process's data directory, if it has one. */
  local: () => Promise<DeviceIdentity | undefined>;
  /** Makes and keeps this data directory's identity (the first process on a new database). */
  create: () => Promise<DeviceIdentity>;
  /** Writes an identity opened from the database into this data directory. */
  keep: (identity: DeviceIdentity) => Promise<void>;
  /** The identity key file, when one was given. */
  keyFile?: string;
  logger?: Logger;
}

/**
 * The identity this hub process presents: the one the database names, the same in
 * every process. The first process records its own (and seals it, given a key
 * file); a process whose data directory has none takes the sealed one; a data
 * directory holding another hub's identity is refused (HUB_IDENTITY_CONFLICT).
 */
export async function sharedHubIdentity(o: SharedIdentityOptions): Promise<DeviceIdentity> {
  const logger = o.logger ?? silentLogger;
  const secret = o.keyFile === undefined ? undefined : readIdentityKey(o.keyFile);
  const hubId = await o.settings.getSetting(HUB_ID_SETTING);
  const sealed = await o.settings.getSetting(SEALED_IDENTITY_SETTING);
  let local = await o.local();
  if (hubId === undefined) {
    // A new database (or one moved from SQLite): this process's identity becomes the hub's.
    local ??= await o.create();
    if (secret) await o.settings.setSetting(SEALED_IDENTITY_SETTING, sealIdentity(local, secret));
    await o.settings.setSetting(HUB_ID_SETTING, local.deviceId);
    return local;
  }
  if (local) {
    if (local.deviceId !== hubId)
      throw new TrosynError(
        'HUB_IDENTITY_CONFLICT',
        `this data directory holds hub ${local.deviceId.slice(0, 16)}…, and the database is served by hub ${hubId.slice(0, 16)}…: its children would refuse this process. Start it with a data directory without identity/ and the hub's identity key file`,
        { hubId, local: local.deviceId },
      );
    if (secret && sealed === undefined) {
      // The first process ran without a key file: sealed now, later processes can take it.
      await o.settings.setSetting(SEALED_IDENTITY_SETTING, sealIdentity(local, secret));
      logger.info({ hubId }, 'hub identity sealed into the database for other hub processes');
    } else if (secret && sealed !== undefined) {
      openIdentity(sealed, secret, o.keyFile);
    }
    return local;
  }
  if (sealed === undefined || secret === undefined)
    throw new TrosynError(
      'HUB_IDENTITY_NOT_SHARED',
      sealed === undefined
        ? `the database is served by hub ${hubId.slice(0, 16)}…, which has not shared its identity: restart a process of that hub once with --identity-key-file (or $${IDENTITY_KEY_FILE_ENV}), then start this one with the same file`
        : `the database is served by hub ${hubId.slice(0, 16)}…: give its identity key file with --identity-key-file (or $${IDENTITY_KEY_FILE_ENV}) to serve it from this process too`,
      { hubId },
    );
  const identity = openIdentity(sealed, secret, o.keyFile);
  if (identity.deviceId !== hubId)
    throw new TrosynError(
      'HUB_IDENTITY_KEY_WRONG',
      `the sealed identity is hub ${identity.deviceId.slice(0, 16)}…'s, and the database is served by hub ${hubId.slice(0, 16)}…`,
      { hubId },
    );
  await o.keep(identity);
  logger.info({ hubId }, 'hub identity taken from the database: this process serves the same hub');
  return identity;
}
