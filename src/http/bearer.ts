import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { RateLimit } from '../transport/rate-limit.js';
import { RateLimiter } from '../transport/rate-limit.js';
import { type Clock, systemClock } from '../lifecycle.js';
import { HttpApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route also accepts the token as `?token=`, for browsers' EventSource,
     * which cannot set headers. The Authorization header is still preferred.
     */
    queryToken?: boolean;
  }
}

/** A new API token: a prefix naming its kind (so secret scanners can spot it) and 32 random bytes. */
export function newApiToken(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 of a token, as hex: what is stored instead of the token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` hashes to `expectedHashHex`, compared in constant time. */
export function tokenMatches(token: string, expectedHashHex: string | undefined): boolean {
  if (expectedHashHex === undefined || !/^[0-9a-f]{64}$/.test(expectedHashHex)) return false;
  // Both sides are 32-byte digests, so the comparison time says nothing about the token.
  return timingSafeEqual(
    createHash('sha256').update(token, 'utf8').digest(),
    Buffer.from(expectedHashHex, 'hex'),
  );
}

/** How a bearer guard checks tokens and limits wrong ones. */
export interface BearerGuardOptions {
  /** True when the presented token is the right one (compare in constant time). */
  verify: (token: string) => boolean | Promise<boolean>;
  /** Wrong tokens allowed per client address; beyond it the address waits. */
  failureLimit: RateLimit;
  /**
   * Wrong tokens allowed from all addresses together; beyond it, addresses that
   * have not presented the right token lately wait (see `bearerGuard`).
   */
  totalFailureLimit: RateLimit;
  /** What the 401 message tells a client to do to get a token. */
  hint: string;
  clock?: Clock;
  logger: Logger;
}

/** Addresses tracked at most; a flood from many addresses cannot grow memory without bound. */
const MAX_LOCKED_ADDRESSES = 10_000;
/** Addresses remembered as known-good at most (the admin's PCs, the apps on a machine). */
const MAX_KNOWN_GOOD = 1024;
/** How long an address that presented the right token stays known-good. */
const KNOWN_GOOD_MS = 24 * 60 * 60_000;

/** Why a client is refused while the total limit holds, and who is still served. */
const TOTAL_SCOPE =
  'from all addresses together (addresses that presented the right token in the last 24 hours are still served)';

/**
 * An onRequest hook that lets a request through only with `Authorization: Bearer
 * <token>` (or `?token=` on routes marked `queryToken`). Wrong tokens are limited
 * twice:
 *
 * - per client address: past the limit the address is locked out until one
 *   attempt has refilled, and while locked out even a right token is refused, so
 *   the limit really slows guessing rather than only hiding the answer;
 * - from all addresses together, against a guesser with many addresses (a /64 of
 *   IPv6, a botnet on the LAN). Past this limit, an address that has not
 *   presented the right token in the last 24 hours is refused without its token
 *   being checked at all: checking it would tell a guesser which guess was right,
 *   and the limit would slow nothing. Known-good addresses (the admin's PC, the
 *   app on this machine) are still checked and served, so a flood of guesses
 *   cannot lock the real clients out.
 */
export function bearerGuard(options: BearerGuardOptions): onRequestAsyncHookHandler {
  const clock = options.clock ?? systemClock;
  const failures = new RateLimiter(options.failureLimit, { clock });
  const lockedUntil = new Map<string, number>();
  const refillMs = refillTime(options.failureLimit);
  const totalFailures = new RateLimiter(options.totalFailureLimit, { clock, maxKeys: 1 });
  const totalRefillMs = refillTime(options.totalFailureLimit);
  let totalLockedUntil = 0;
  const knownGood = new Map<string, number>();

  const isKnownGood = (address: string, now: number): boolean => {
    const at = knownGood.get(address);
    return at !== undefined && now - at < KNOWN_GOOD_MS;
  };
  const rememberGood = (address: string, now: number) => {
    // Re-inserted last, so the map's order is least-recently-seen first.
    knownGood.delete(address);
    if (knownGood.size >= MAX_KNOWN_GOOD) {
      const oldest = knownGood.keys().next().value;
      if (oldest !== undefined) knownGood.delete(oldest);
    }
    knownGood.set(address, now);
  };

  return async (request: FastifyRequest) => {
    const address = request.ip;
    const now = clock.now();
    const until = lockedUntil.get(address);
    if (until !== undefined) {
      if (until > now) throw rateLimited(until - now, 'from this address');
      lockedUntil.delete(address);
    }
    if (totalLockedUntil > now && !isKnownGood(address, now)) {
      throw rateLimited(totalLockedUntil - now, TOTAL_SCOPE);
    }
    const token = presentedToken(request);
    if (token === undefined) {
      throw new HttpApiError(
        'UNAUTHORIZED',
        `this API needs "Authorization: Bearer <token>"; ${options.hint}`,
      );
    }
    if (await options.verify(token)) {
      rememberGood(address, now);
      return;
    }
    if (!totalFailures.take('all') && totalLockedUntil <= now) {
      totalLockedUntil = now + totalRefillMs;
      // Once per lockout, not once per guess: a flood must not flood the log too.
      options.logger.warn(
        { address },
        'API locked for addresses not seen with the right token: too many wrong tokens from all addresses',
      );
    }
    if (!failures.take(address)) {
      if (lockedUntil.size >= MAX_LOCKED_ADDRESSES) {
        const oldest = lockedUntil.keys().next().value;
        if (oldest !== undefined) lockedUntil.delete(oldest);
      }
      lockedUntil.set(address, now + refillMs);
      options.logger.warn({ address }, 'API locked for an address after too many wrong tokens');
      throw rateLimited(refillMs, 'from this address');
    }
    if (totalLockedUntil > now && !isKnownGood(address, now)) {
      throw rateLimited(totalLockedUntil - now, TOTAL_SCOPE);
    }
    options.logger.warn({ address }, 'API request with a wrong token');
    throw new HttpApiError('UNAUTHORIZED', `wrong token; ${options.hint}`);
  };
}

/** Milliseconds until one attempt of `limit` has refilled. */
function refillTime(limit: RateLimit): number {
  return Math.ceil(60_000 / Math.max(limit.perMinute, 1e-6));
}

function rateLimited(waitMs: number, scope: string): HttpApiError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new HttpApiError('RATE_LIMITED', `too many wrong tokens ${scope}; try again in ${seconds} s`, {
    retryAfterSeconds: seconds,
  });
}

function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
    return match?.[1];
  }
  if (request.routeOptions.config.queryToken === true) {
    const token = (request.query as { token?: unknown } | undefined)?.token;
    if (typeof token === 'string' && token.length > 0) return token;
  }
  return undefined;
}
