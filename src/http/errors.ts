import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { isTrosynError, TrosynError } from '../errors.js';

/**
 * An error that only the HTTP APIs raise (authentication, request shape, rate
 * limits, server start-up). Engine, registry and transport errors pass through the
 * same mapping with their own codes.
 */
export class HttpApiError extends TrosynError {}

/** The body of every error response: the TrosynError's code, message and details. */
export interface ErrorBody {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * HTTP status of each error code either API can return. The one table both APIs
 * use: a code missing here is answered as 500 INTERNAL_ERROR, with its message kept
 * out of the response (it may name paths or internals) and written to the log.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<string, number>> = {
  // The request is wrong: fix it and send again.
  INVALID_REQUEST: 400,
  INVALID_BODY: 400,
  INVALID_COLLECTION: 400,
  INVALID_RECORD_ID: 400,
  INVALID_DEVICE_ID: 400,
  INVALID_NAME: 400,
  INVALID_GROUP: 400,
  INVALID_SCOPE_PATTERN: 400,
  AMBIGUOUS_REVISION: 400,
  UNAUTHORIZED: 401,
  RECORD_NOT_FOUND: 404,
  REVISION_NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  GROUP_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  // The target's state does not allow it (no conflict to resolve, a revoked device).
  NO_CONFLICT: 409,
  DEVICE_REVOKED: 409,
  // The revision existed but its body is gone for good.
  REVISION_PRUNED: 410,
  RECORD_TOO_LARGE: 413,
  REQUEST_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  // Temporary: the hub or agent is starting or stopping, or the disk refused a write.
  NOT_STARTED: 503,
  STORE_CLOSED: 503,
  STORE_WRITE_FAILED: 503,
};

/** Status and body of the response for any error a route or hook throws. */
export function errorResponse(err: unknown, requestId: string): { status: number; body: ErrorBody } {
  if (isTrosynError(err)) {
    const status = HTTP_STATUS_BY_CODE[err.code];
    if (status !== undefined) return { status, body: err.toJSON() };
    return internal(requestId);
  }
  const fastifyError = err as Partial<FastifyError> | undefined;
  if (fastifyError?.validation) {
    return {
      status: 400,
      body: {
        code: 'INVALID_REQUEST',
        message: fastifyError.message ?? 'the request does not match the route schema',
        details: {
          issues: fastifyError.validation.map((v) => ({
            where: fastifyError.validationContext ?? 'request',
            path: v.instancePath,
            message: v.message ?? 'invalid',
          })),
        },
      },
    };
  }
  // Fastify's own 4xx errors (bad JSON, wrong content type, body over the limit):
  // their messages describe the request, never the server, so they are safe to return.
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code =
      status === 413
        ? 'REQUEST_TOO_LARGE'
        : status === 415
          ? 'UNSUPPORTED_MEDIA_TYPE'
          : status === 404
            ? 'ROUTE_NOT_FOUND'
            : 'INVALID_REQUEST';
    return { status, body: { code, message: fastifyError?.message ?? 'invalid request' } };
  }
  return internal(requestId);
}

function internal(requestId: string): { status: number; body: ErrorBody } {
  return {
    status: 500,
    body: {
      code: 'INTERNAL_ERROR',
      message: 'the server failed to handle this request; its log has the details under this request ID',
      details: { requestId },
    },
  };
}

/**
 * Installs the error and not-found handlers: every failure becomes
 * `{ code, message, details? }` with the status from HTTP_STATUS_BY_CODE.
 */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = errorResponse(err, request.id);
    if (status >= 500) {
      logger.error(
        { err, requestId: request.id, route: request.routeOptions.url, code: body.code },
        'request failed',
      );
    } else {
      logger.debug(
        { requestId: request.id, route: request.routeOptions.url, code: body.code },
        'request refused',
      );
    }
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    const retryAfter = body.details?.['retryAfterSeconds'];
    if (status === 429 && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const body: ErrorBody = {
      code: 'ROUTE_NOT_FOUND',
      // The path only, never the query: it may carry a token.
      message: `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
    };
    return reply.code(404).type('application/json; charset=utf-8').send(body);
  });
}

/** The API server could not listen (port in use, address not on this machine). */
export function listenError(err: unknown, host: string, port: number, option: string): HttpApiError {
  const cause = err as NodeJS.ErrnoException;
  const reason =
    cause.code === 'EADDRINUSE'
      ? `port ${port} is in use by another program; choose another with ${option}`
      : cause.code === 'EADDRNOTAVAIL'
        ? `address ${host} is not one of this machine's`
        : cause.code === 'EACCES'
          ? `not allowed to listen on port ${port} (ports below 1024 need privileges)`
          : (cause.message ?? String(err));
  return new HttpApiError(
    'API_LISTEN_FAILED',
    `cannot listen on ${host}:${port}: ${reason}`,
    { host, port },
    {
      cause: err,
    },
  );
}
