import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { type AuthFailureLimiter, assertSameOriginRequest, sessionCookie } from '../../http/bearer.js';
import { HttpApiError } from '../../http/errors.js';
import { errorResponses, jsonSchema } from '../../http/schemas.js';
import type { Clock } from '../../lifecycle.js';
import type { AdminPort } from './port.js';
import { adminSession, type SignInRequest, signInRequest } from './schemas.js';
import {
  ADMIN_SESSION_TTL_MS,
  adminSessionOf,
  closeAdminSession,
  openAdminSession,
  redeemSignInLink,
} from './sign-in.js';

/** The cookie that carries a dashboard session's secret. */
export const ADMIN_SESSION_COOKIE = 'trosyn_session';

/** What the session routes share with the app that serves them. */
export interface SessionRoutesOptions {
  /** The limiter of the bearer guard: a wrong token costs the same at the form. */
  limiter: AuthFailureLimiter;
  clock: Clock;
  logger: Logger;
}

const secure = (request: FastifyRequest) => request.protocol === 'https';

/**
 * `POST /session`: signs a browser in, with the admin token or a one-time link's
 * secret, and sets the session cookie. Outside the bearer guard (it is how one gets
 * in), but CSRF-safe and rate-limited like a wrong bearer token.
 */
export function signInRoutes(hub: AdminPort, options: SessionRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.post<{ Body: SignInRequest }>(
      '/session',
      {
        schema: {
          tags: ['session'],
          summary:
            'Signs the dashboard in: `{ "token" }` (the admin token) or `{ "link" }` (a one-time link); sets the session cookie',
          security: [],
          body: jsonSchema(signInRequest),
          response: { 201: jsonSchema(adminSession), ...errorResponses(400, 401, 403, 429, 503) },
        },
      },
      async (request, reply) => {
        assertSameOriginRequest(request);
        const { token, link } = request.body;
        if ((token === undefined) === (link === undefined))
          throw new HttpApiError('INVALID_REQUEST', 'send "token" (the admin token) or "link", one of them');
        const address = request.ip;
        options.limiter.admit(address);
        const now = options.clock.now();
        const right =
          token !== undefined
            ? await hub.verifyAdminToken(token)
            : await redeemSignInLink(hub.signIns, link as string, now);
        if (!right) {
          options.limiter.failed(address);
          throw new HttpApiError(
            'UNAUTHORIZED',
            token !== undefined
              ? 'wrong admin token; `trosyn-sync admin-token --reset` on the hub makes a new one'
              : 'this sign-in link was used already, has expired (after 10 minutes), or is not this hub’s; `trosyn-sync dashboard-link` on the hub makes a new one',
          );
        }
        options.limiter.succeeded(address);
        const via = token !== undefined ? 'token' : 'link';
        const session = await openAdminSession(hub.signIns, via, now);
        options.logger.info({ via, address }, 'dashboard signed in');
        return reply
          .code(201)
          .header('cache-control', 'no-store')
          .header(
            'set-cookie',
            sessionCookie(ADMIN_SESSION_COOKIE, session.secret, {
              maxAgeSeconds: ADMIN_SESSION_TTL_MS / 1000,
              secure: secure(request),
            }),
          )
          .send({ signedIn: true, via, expiresAt: session.expiresAt });
      },
    );
  };
}

/** `GET /session` and `DELETE /session` (sign-out), behind the guard like every route. */
export function sessionRoutes(hub: AdminPort, options: { clock: Clock }): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(
      '/session',
      {
        schema: {
          tags: ['session'],
          summary: 'How this request is signed in (the dashboard asks it at load)',
          response: { 200: jsonSchema(adminSession), ...errorResponses(401, 429, 503) },
        },
      },
      async (request) => {
        const credential = request.credential;
        if (credential?.kind !== 'session') return { signedIn: true, via: 'bearer', expiresAt: null };
        const session = await adminSessionOf(hub.signIns, credential.secret, options.clock.now());
        if (!session) throw new HttpApiError('UNAUTHORIZED', 'the dashboard session ended; sign in again');
        return { signedIn: true, via: session.via, expiresAt: session.expiresAt };
      },
    );

    app.delete(
      '/session',
      {
        schema: {
          tags: ['session'],
          summary: 'Signs the dashboard out: ends the session and clears its cookie',
          response: {
            204: { description: 'signed out', type: 'null' },
            ...errorResponses(401, 403, 429, 503),
          },
        },
      },
      async (request, reply) => {
        const credential = request.credential;
        if (credential?.kind === 'session') await closeAdminSession(hub.signIns, credential.secret);
        return reply
          .code(204)
          .header('cache-control', 'no-store')
          .header(
            'set-cookie',
            sessionCookie(ADMIN_SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: secure(request) }),
          )
          .send();
      },
    );
  };
}
