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

/** How many wrong credentials are allowed, per address and from all together. */
export interface AuthFailureLimits {
  /** Wrong tokens allowed per client address; beyond it the address waits. */
  failureLimit: RateLimit;
  /**
   * Wrong tokens allowed from all addresses together; beyond it, addresses that
   * have not presented the right token lately wait (see `AuthFailureLimiter`).
   */
  totalFailureLimit: RateLimit;
  clock?: Clock;
  logger: Logger;
}

/** How a bearer guard checks tokens and limits wrong ones. */
export interface BearerGuardOptions extends AuthFailureLimits {
  /** True when the presented token is the right one (compare in constant time). */
  verify: (token: string) => boolean | Promise<boolean>;
  /** What the 401 message tells a client to do to get a token. */
  hint: string;
  /**
   * Counts wrong credentials. Give one limiter to the guard and to a sign-in form,
   * so a wrong token costs the same wherever it is tried. Default: the guard's own.
   */
  limiter?: AuthFailureLimiter;
  /**
   * A session cookie that stands in for the token (a browser signed in to the
   * dashboard). Requests it authenticates must be CSRF-safe to change anything
   * (see `assertSameOriginRequest`).
   */
  session?: SessionCookie;
}

/** A session cookie a guard accepts instead of the bearer token. */
export interface SessionCookie {
  /** The cookie's name. */
  name: string;
  /** True when the cookie's value names a live session. */
  verify: (secret: string) => Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** How the guard let this request in: the bearer token, or a session cookie (its secret). */
    credential?: { kind: 'bearer' } | { kind: 'session'; secret: string };
  }
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
 * Limits wrong credentials twice:
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
export class AuthFailureLimiter {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly failures: RateLimiter;
  private readonly lockedUntil = new Map<string, number>();
  private readonly refillMs: number;
  private readonly totalFailures: RateLimiter;
  private readonly totalRefillMs: number;
  private totalLockedUntil = 0;
  private readonly knownGood = new Map<string, number>();

  constructor(options: AuthFailureLimits) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    this.failures = new RateLimiter(options.failureLimit, { clock: this.clock });
    this.refillMs = refillTime(options.failureLimit);
    this.totalFailures = new RateLimiter(options.totalFailureLimit, { clock: this.clock, maxKeys: 1 });
    this.totalRefillMs = refillTime(options.totalFailureLimit);
  }

  /** Throws 429 RATE_LIMITED when `address` may not present a credential now. */
  admit(address: string): void {
    const now = this.clock.now();
    const until = this.lockedUntil.get(address);
    if (until !== undefined) {
      if (until > now) throw rateLimited(until - now, 'from this address');
      this.lockedUntil.delete(address);
    }
    if (this.totalLockedUntil > now && !this.isKnownGood(address, now)) {
      throw rateLimited(this.totalLockedUntil - now, TOTAL_SCOPE);
    }
  }

  /** `address` presented the right credential: it stays served while the total limit holds. */
  succeeded(address: string): void {
    // Re-inserted last, so the map's order is least-recently-seen first.
    this.knownGood.delete(address);
    if (this.knownGood.size >= MAX_KNOWN_GOOD) {
      const oldest = this.knownGood.keys().next().value;
      if (oldest !== undefined) this.knownGood.delete(oldest);
    }
    this.knownGood.set(address, this.clock.now());
  }

  /**
   * Counts a wrong credential from `address`. Throws 429 RATE_LIMITED when this
   * one locks the address out, or the total limit now holds for it; otherwise the
   * caller answers 401.
   */
  failed(address: string): void {
    const now = this.clock.now();
    if (!this.totalFailures.take('all') && this.totalLockedUntil <= now) {
      this.totalLockedUntil = now + this.totalRefillMs;
      // Once per lockout, not once per guess: a flood must not flood the log too.
      this.logger.warn(
        { address },
        'API locked for addresses not seen with the right token: too many wrong tokens from all addresses',
      );
    }
    if (!this.failures.take(address)) {
      if (this.lockedUntil.size >= MAX_LOCKED_ADDRESSES) {
        const oldest = this.lockedUntil.keys().next().value;
        if (oldest !== undefined) this.lockedUntil.delete(oldest);
      }
      this.lockedUntil.set(address, now + this.refillMs);
      this.logger.warn({ address }, 'API locked for an address after too many wrong tokens');
      throw rateLimited(this.refillMs, 'from this address');
    }
    if (this.totalLockedUntil > now && !this.isKnownGood(address, now)) {
      throw rateLimited(this.totalLockedUntil - now, TOTAL_SCOPE);
    }
    this.logger.warn({ address }, 'API request with a wrong token');
  }

  private isKnownGood(address: string, now: number): boolean {
    const at = this.knownGood.get(address);
    return at !== undefined && now - at < KNOWN_GOOD_MS;
  }
}

/**
 * An onRequest hook that lets a request through only with `Authorization: Bearer
 * <token>` (or `?token=` on routes marked `queryToken`), or with a live session
 * cookie when `session` is given. Wrong tokens are limited by an
 * AuthFailureLimiter. A live session is let through even while its address is
 * locked out, and a session cookie that names no live session is answered 401 but
 * not counted: session secrets have 256 bits, so neither is a guess worth slowing,
 * and the admin's signed-in browser stays in while someone guesses tokens.
 */
export function bearerGuard(options: BearerGuardOptions): onRequestAsyncHookHandler {
  const limiter = options.limiter ?? new AuthFailureLimiter(options);
  const session = options.session;
  return async (request: FastifyRequest) => {
    const address = request.ip;
    const token = presentedToken(request);
    const secret = token === undefined && session ? readCookie(request, session.name) : undefined;
    // A live session goes through even while wrong tokens lock its address out: its
    // 256-bit secret is no guess, and the admin's browser must not be locked out by them.
    if (session && secret !== undefined && (await session.verify(secret))) {
      if (!SAFE_METHODS.has(request.method)) assertSameOriginRequest(request);
      limiter.succeeded(address);
      request.credential = { kind: 'session', secret };
      return;
    }
    limiter.admit(address);
    if (secret !== undefined) {
      throw new HttpApiError(
        'UNAUTHORIZED',
        'the dashboard session expired or was signed out; sign in again',
      );
    }
    if (token === undefined) {
      throw new HttpApiError(
        'UNAUTHORIZED',
        `this API needs "Authorization: Bearer <token>"; ${options.hint}`,
      );
    }
    if (await options.verify(token)) {
      limiter.succeeded(address);
      request.credential = { kind: 'bearer' };
      return;
    }
    limiter.failed(address);
    throw new HttpApiError('UNAUTHORIZED', `wrong token; ${options.hint}`);
  };
}

/** Methods that change nothing: a session cookie alone may send them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header a page of this origin adds to every request that changes something. */
export const CSRF_HEADER = 'x-trosyn-csrf';

/**
 * Refuses a request that another site could have made the browser send: it
 * must carry the CSRF_HEADER (a cross-site page cannot add a header without a
 * CORS preflight, which this server never grants) and, when the browser names its
 * Origin, come from this server's own origin.
 */
export function assertSameOriginRequest(request: FastifyRequest): void {
  const header = request.headers[CSRF_HEADER];
  if (typeof header !== 'string' || header === '') {
    throw new HttpApiError(
      'CSRF_REJECTED',
      `a request signed in by the session cookie must send the "${CSRF_HEADER}" header`,
    );
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `${request.protocol}://${request.host}`) {
    throw new HttpApiError(
      'CSRF_REJECTED',
      'the request comes from another site (its Origin is not this one)',
    );
  }
}

/** The value of cookie `name` in the request's Cookie header, if any. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' ? undefined : value;
  }
  return undefined;
}

/**
 * A Set-Cookie value for a session cookie: HttpOnly (page scripts never see it),
 * SameSite=Strict (no other site's link or form carries it), for the whole
 * origin, expiring with the session; Secure over HTTPS. `maxAgeSeconds` 0 clears it.
 */
export function sessionCookie(
  name: string,
  value: string,
  options: { maxAgeSeconds: number; secure: boolean },
): string {
  const expires = new Date(Date.now() + options.maxAgeSeconds * 1000).toUTCString();
  return [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`,
    `Expires=${options.maxAgeSeconds > 0 ? expires : 'Thu, 01 Jan 1970 00:00:00 GMT'}`,
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
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
