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
  verify: (token: string) => boolean;
  /** Wrong tokens allowed per client address; beyond it the address waits. */
  failureLimit: RateLimit;
  /** What the 401 message tells a client to do to get a token. */
  hint: string;
  clock?: Clock;
  logger: Logger;
}

/** Addresses tracked at most; a flood from many addresses cannot grow memory without bound. */
const MAX_LOCKED_ADDRESSES = 10_000;

/**
 * An onRequest hook that lets a request through only with `Authorization: Bearer
 * <token>` (or `?token=` on routes marked `queryToken`). Wrong tokens are counted
 * per client address: past the limit the address is locked out until one attempt
 * has refilled, and while locked out even a right token is refused, so the limit
 * really slows guessing rather than only hiding the answer.
 */
export function bearerGuard(options: BearerGuardOptions): onRequestAsyncHookHandler {
  const clock = options.clock ?? systemClock;
  const failures = new RateLimiter(options.failureLimit, { clock });
  const lockedUntil = new Map<string, number>();
  const refillMs = Math.ceil(60_000 / Math.max(options.failureLimit.perMinute, 1e-6));

  return async (request: FastifyRequest) => {
    const address = request.ip;
    const now = clock.now();
    const until = lockedUntil.get(address);
    if (until !== undefined) {
      if (until > now) throw rateLimited(until - now);
      lockedUntil.delete(address);
    }
    const token = presentedToken(request);
    if (token === undefined) {
      throw new HttpApiError(
        'UNAUTHORIZED',
        `this API needs "Authorization: Bearer <token>"; ${options.hint}`,
      );
    }
    if (options.verify(token)) return;
    if (!failures.take(address)) {
      if (lockedUntil.size >= MAX_LOCKED_ADDRESSES) {
        const oldest = lockedUntil.keys().next().value;
        if (oldest !== undefined) lockedUntil.delete(oldest);
      }
      lockedUntil.set(address, now + refillMs);
      options.logger.warn({ address }, 'API locked for an address after too many wrong tokens');
      throw rateLimited(refillMs);
    }
    options.logger.warn({ address }, 'API request with a wrong token');
    throw new HttpApiError('UNAUTHORIZED', `wrong token; ${options.hint}`);
  };
}

function rateLimited(waitMs: number): HttpApiError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new HttpApiError(
    'RATE_LIMITED',
    `too many wrong tokens from this address; try again in ${seconds} s`,
    { retryAfterSeconds: seconds },
  );
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
