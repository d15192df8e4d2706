import { ERROR_CODES, type ErrorInfo } from '../error-codes.js';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { isTrosynError, TrosynError } from '../errors.js';
import { RouteMethods } from './route-methods.js';

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
 * HTTP status of each error code either API can return: the status column of the
 * one code table (src/error-codes.ts). A code without a status is answered as 500
 * INTERNAL_ERROR, with its message kept out of the response (it may name paths or
 * internals) and written to the log.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(ERROR_CODES as Record<string, ErrorInfo>).flatMap(([code, info]) =>
    // INTERNAL_ERROR's own message is never sent: it is answered like an unknown failure.
    info.status !== undefined && code !== 'INTERNAL_ERROR' ? [[code, info.status]] : [],
  ),
);

const JSON_ONLY = 'request bodies are JSON: send "Content-Type: application/json"';

/**
 * Fastify's own request errors, with the code and message each is answered with.
 * Fastify's messages are not passed on: some quote the raw URL, whose query may
 * carry a token, and none says what to do.
 */
const FASTIFY_ERRORS: Readonly<Record<string, { code: string; message: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'REQUEST_TOO_LARGE',
    message: "the request body is over this API's limit",
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: JSON_ONLY },
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: JSON_ONLY },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'INVALID_REQUEST',
    message: 'the request body is not as long as its Content-Length header says',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'INVALID_REQUEST', message: 'the request body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_REQUEST', message: 'the request body is not valid JSON' },
  FST_ERR_BAD_URL: {
    code: 'INVALID_URL',
    message:
      'the path is not validly percent-encoded: "%" must be followed by two hex digits of UTF-8; send "%" itself as "%25"',
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'URL_TOO_LONG',
    message: 'a part of the path is longer than any name or id this API accepts (record ids: 256 characters)',
  },
  FST_ERR_NOT_FOUND: { code: 'ROUTE_NOT_FOUND', message: 'no route has that method and path' },
};

/** The code of a fastify 4xx error not listed above, by its status. */
const CODE_BY_FASTIFY_STATUS: Readonly<Record<number, string>> = {
  404: 'ROUTE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'REQUEST_TOO_LARGE',
  414: 'URL_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
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
  const known = fastifyError?.code === undefined ? undefined : FASTIFY_ERRORS[fastifyError.code];
  if (known !== undefined) return { status: HTTP_STATUS_BY_CODE[known.code] ?? 400, body: { ...known } };
  // Another of fastify's 4xx errors (a newer fastify may add some): its message
  // describes the request, never the server. The code follows from the status and
  // the status from the code, so the answer is always a pair the docs list.
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = CODE_BY_FASTIFY_STATUS[status] ?? 'INVALID_REQUEST';
    return {
      status: HTTP_STATUS_BY_CODE[code] ?? 400,
      body: { code, message: fastifyError?.message ?? 'invalid request' },
    };
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
 * Answers `err` as `{ code, message, details? }` with the headers its status calls
 * for. The error handler uses it, and so do fastify's `frameworkErrors`, through
 * which routing failures (bad percent-encoding, an over-long path parameter)
 * arrive without passing the error handler.
 */
export function sendError(
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: Logger,
): FastifyReply {
  const { status, body } = errorResponse(err, request.id);
  const route = request.routeOptions.url;
  if (status >= 500) {
    logger.error({ err, requestId: request.id, route, code: body.code }, 'request failed');
  } else {
    logger.debug({ requestId: request.id, route, code: body.code }, 'request refused');
  }
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  const retryAfter = body.details?.['retryAfterSeconds'];
  if (status === 429 && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  const allow = body.details?.['allow'];
  if (status === 405 && Array.isArray(allow)) reply.header('allow', allow.join(', '));
  const size = body.details?.['size'];
  if (status === 416 && typeof size === 'number') reply.header('content-range', `bytes */${size}`);
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * Installs the error and not-found handlers: every failure becomes
 * `{ code, message, details? }` with the status from HTTP_STATUS_BY_CODE. A path
 * that a route serves, asked with another method, is 405 METHOD_NOT_ALLOWED with
 * the methods it allows (so a client learns its mistake was the method); any other
 * unknown path is 404 ROUTE_NOT_FOUND.
 */
export function installErrorHandling(
  app: FastifyInstance,
  logger: Logger,
  /** Serves a GET or HEAD outside `/api/` that no route takes (a web app's pages and files). */
  site?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply,
): void {
  const routes = new RouteMethods();
  app.addHook('onRoute', (route) => routes.add(route.method, route.url));
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendError(err, request, reply, logger),
  );
  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    // The path only, never the query: it may carry a token.
    const path = request.url.split('?')[0] ?? '';
    if (site && (request.method === 'GET' || request.method === 'HEAD') && !/^\/api(\/|$)/.test(path)) {
      return site(request, reply);
    }
    const allow = routes.allowed(path);
    const err =
      allow.length > 0
        ? new HttpApiError(
            'METHOD_NOT_ALLOWED',
            `${request.method} is not allowed on ${path}; it takes ${allow.join(', ')}`,
            { allow },
          )
        : new HttpApiError('ROUTE_NOT_FOUND', `no route ${request.method} ${path}`);
    return sendError(err, request, reply, logger);
  };
  notFoundHandlers.set(app, notFound);
  app.setNotFoundHandler(notFound);
}

const notFoundHandlers = new WeakMap<
  FastifyInstance,
  (request: FastifyRequest, reply: FastifyReply) => unknown
>();

/** The 404/405 answer `installErrorHandling` gave `app`, for a prefix that checks credentials first. */
export function notFoundHandler(
  app: FastifyInstance,
): (request: FastifyRequest, reply: FastifyReply) => unknown {
  const handler = notFoundHandlers.get(app);
  if (!handler) throw new Error('installErrorHandling was not called on this app');
  return handler;
}

/** The API server could not listen (port in use, address not on this machine). */
export function listenError(err: unknown, host: string, port: number, option: string): HttpApiError {
  const cause = err as NodeJS.ErrnoException;
  if (cause.code === 'EADDRINUSE') {
    return new HttpApiError(
      'PORT_IN_USE',
      `cannot listen on ${host}:${port}: the port is in use by another program; choose another with ${option}`,
      { host, port },
      { cause: err },
    );
  }
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
