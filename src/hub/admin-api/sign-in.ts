import { newApiToken, tokenHash } from '../../http/bearer.js';
import type { AdminSessionRecord } from '../registry-backend.js';

/** A sign-in link is valid this long after it is made. */
export const SIGN_IN_LINK_TTL_MS = 10 * 60_000;
/** A dashboard session lasts this long; then the admin signs in again. */
export const ADMIN_SESSION_TTL_MS = 12 * 3600_000;
/** Sign-in link secrets start with this, so a leaked one is recognisable. */
export const SIGN_IN_LINK_PREFIX = 'tsl_';
/** Session secrets (the cookie's value) start with this. */
export const ADMIN_SESSION_PREFIX = 'tss_';
/** The name of the URL fragment parameter that carries a link's secret. */
export const SIGN_IN_FRAGMENT = 'signin';

/**
 * Where one-time sign-in links and dashboard sessions are kept: the hub's
 * registry, so the CLI can make a link for a running hub and sessions survive a
 * restart. Only hashes of the secrets are stored.
 */
export interface SignInStore {
  putSignInLink(link: { hash: string; createdAt: number; expiresAt: number }): Promise<void>;
  takeSignInLink(hash: string, now: number): Promise<boolean>;
  putAdminSession(session: AdminSessionRecord): Promise<void>;
  getAdminSession(hash: string, now: number): Promise<AdminSessionRecord | undefined>;
  deleteAdminSession(hash: string): Promise<void>;
}

/** A new one-time sign-in link's secret: shown to the admin once, stored only as its hash. */
export async function issueSignInLink(
  store: SignInStore,
  now: number,
): Promise<{ secret: string; expiresAt: number }> {
  const secret = newApiToken(SIGN_IN_LINK_PREFIX);
  const expiresAt = now + SIGN_IN_LINK_TTL_MS;
  await store.putSignInLink({ hash: tokenHash(secret), createdAt: now, expiresAt });
  return { secret, expiresAt };
}

/**
 * The link the admin opens: the secret is in the fragment (`#signin=...`), which a
 * browser never sends to a server, so it lands in no access log or proxy; the
 * page reads it and posts it.
 */
export function signInUrl(baseUrl: string, secret: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/#${SIGN_IN_FRAGMENT}=${secret}`;
}

/** Spends a link's secret: true once, for a link made here and not expired. */
export function redeemSignInLink(store: SignInStore, secret: string, now: number): Promise<boolean> {
  if (!secret.startsWith(SIGN_IN_LINK_PREFIX)) return Promise.resolve(false);
  return store.takeSignInLink(tokenHash(secret), now);
}

/** Opens a session: its secret goes into the cookie, its hash into the store. */
export async function openAdminSession(
  store: SignInStore,
  via: AdminSessionRecord['via'],
  now: number,
): Promise<{ secret: string; expiresAt: number }> {
  const secret = newApiToken(ADMIN_SESSION_PREFIX);
  const expiresAt = now + ADMIN_SESSION_TTL_MS;
  await store.putAdminSession({ hash: tokenHash(secret), createdAt: now, expiresAt, via });
  return { secret, expiresAt };
}

/** The live session a cookie's secret names, if any. */
export function adminSessionOf(
  store: SignInStore,
  secret: string,
  now: number,
): Promise<AdminSessionRecord | undefined> {
  if (!secret.startsWith(ADMIN_SESSION_PREFIX)) return Promise.resolve(undefined);
  return store.getAdminSession(tokenHash(secret), now);
}

/** Ends the session a cookie's secret names (sign-out). */
export function closeAdminSession(store: SignInStore, secret: string): Promise<void> {
  return store.deleteAdminSession(tokenHash(secret));
}
