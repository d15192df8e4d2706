import { newApiToken, tokenHash, tokenMatches } from '../../http/bearer.js';

/** Registry setting holding the SHA-256 (hex) of the admin token; the token itself is never stored. */
export const ADMIN_TOKEN_SETTING = 'admin_token_sha256';

/** Admin tokens start with this, so a leaked one is recognisable (and scannable). */
export const ADMIN_TOKEN_PREFIX = 'tsa_';

/** Where the hub keeps settings (the registry). */
export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

/**
 * Creates the admin token if the hub has none yet. Returns the token only when it
 * was just created: it is shown to the admin once and cannot be read back later
 * (`resetAdminToken` replaces a lost one).
 */
export async function ensureAdminToken(registry: SettingsStore): Promise<string | undefined> {
  if ((await registry.getSetting(ADMIN_TOKEN_SETTING)) !== undefined) return undefined;
  return resetAdminToken(registry);
}

/** Replaces the admin token; the old one stops working at once. Returns the new token. */
export async function resetAdminToken(registry: SettingsStore): Promise<string> {
  const token = newApiToken(ADMIN_TOKEN_PREFIX);
  await registry.setSetting(ADMIN_TOKEN_SETTING, tokenHash(token));
  return token;
}

/** True when `token` is the hub's admin token (constant-time comparison of hashes). */
export async function verifyAdminToken(registry: SettingsStore, token: string): Promise<boolean> {
  return tokenMatches(token, await registry.getSetting(ADMIN_TOKEN_SETTING));
}
