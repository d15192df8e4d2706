import { newApiToken, tokenHash, tokenMatches } from '../http/bearer.js';
import type { DeviceRegistry } from './registry.js';

/** Registry setting holding the SHA-256 (hex) of the admin token; the token itself is never stored. */
export const ADMIN_TOKEN_SETTING = 'admin_token_sha256';

/** Admin tokens start with this, so a leaked one is recognisable (and scannable). */
export const ADMIN_TOKEN_PREFIX = 'tsa_';

type SettingsStore = Pick<DeviceRegistry, 'getSetting' | 'setSetting'>;

/**
 * Creates the admin token if the hub has none yet. Returns the token only when it
 * was just created: it is shown to the admin once and cannot be read back later
 * (`resetAdminToken` replaces a lost one).
 */
export function ensureAdminToken(registry: SettingsStore): { token: string | undefined } {
  if (registry.getSetting(ADMIN_TOKEN_SETTING) !== undefined) return { token: undefined };
  return { token: resetAdminToken(registry) };
}

/** Replaces the admin token; the old one stops working at once. Returns the new token. */
export function resetAdminToken(registry: SettingsStore): string {
  const token = newApiToken(ADMIN_TOKEN_PREFIX);
  registry.setSetting(ADMIN_TOKEN_SETTING, tokenHash(token));
  return token;
}

/** True when `token` is the hub's admin token (constant-time comparison of hashes). */
export function verifyAdminToken(registry: SettingsStore, token: string): boolean {
  return tokenMatches(token, registry.getSetting(ADMIN_TOKEN_SETTING));
}
