import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import { MAX_RECORD_ID_LENGTH } from '../sync/ids.js';
import { clientErrorHandler } from './client-errors.js';
import { HttpApiError, installErrorHandling, notFoundHandler, sendError } from './errors.js';
import { type BearerGuardOptions, bearerGuard } from './bearer.js';
import { acceptJsonBodiesOnly } from './json-body.js';
import { EventStreams } from './sse.js';

/**
 * Longest path parameter the router passes to a route, in characters as the
 * router sees them: decoded, except reserved characters (`/`, `?`, `#`...), which
 * stay percent-encoded until the parameter is read, three characters each. So
 * every id of up to MAX_RECORD_ID_LENGTH characters fits, and the route's own
 * schema, not the router, refuses longer ones with a clear message.
 */
export const MAX_PATH_PARAM_LENGTH = 3 * MAX_RECORD_ID_LENGTH;

/** What an API app is called and how it logs and limits bodies. */
export interface ApiAppOptions {
  /** OpenAPI `info` of the document the app serves. */
  title: string;
  version: string;
  description: string;
  /** Largest request body in bytes. */
  bodyLimit: number;
  logger: Logger;
  /** Runs the event streams' heartbeats. Default: the system clock. */
  clock?: Clock;
  /** Serves a GET or HEAD outside `/api/` that no route takes: a web app's pages and files. */
  site?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  https?: { cert: string; key: string };
}

/** A fastify app and the event streams it has open. */
export interface ApiApp {
  app: FastifyInstance;
  streams: EventStreams;
}

/**
 * The common base of both HTTP APIs: JSON errors with stable codes, the OpenAPI
 * generator, request logging that never writes a URL's query (it may carry a
 * token), and event streams that end when the app closes. Register routes in
 * plugins (`app.register`), after this, so the OpenAPI generator sees them.
 */
export function createApiApp(options: ApiAppOptions): ApiApp {
  const app = Fastify({
    ...(options.https && { https: { ...options.https, minVersion: 'TLSv1.2' as const } }),
    loggerInstance: options.logger,
    // fastify's own request lines contain the full URL, query included; the hook below logs the route instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    // Not behind a proxy: request.ip is the real client address the rate limit counts.
    trustProxy: false,
    // Fastify's own 503 while closing has its own body shape; the hook below answers instead.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    // Routing failures (bad percent-encoding, an over-long parameter) skip the error handler.
    frameworkErrors: (err, request, reply) => {
      void sendError(err, request, reply, options.logger);
    },
    clientErrorHandler: clientErrorHandler(options.logger),
  }) as unknown as FastifyInstance;
  // Response schemas document the API; serialising with them would silently drop
  // or coerce fields of record bodies that the schema does not spell out.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  installErrorHandling(app, options.logger, options.site);
  acceptJsonBodiesOnly(app);

  // Requests that arrive while the server drains (on kept-alive connections) are
  // answered 503 NOT_STARTED at once, so none starts work on a hub or agent that is stopping.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new HttpApiError('NOT_STARTED', 'this API is stopping; send the request again once it is back');
  });

  const streams = new EventStreams(options.clock);
  // A server waits for open responses before it closes; event streams never end on their own.
  app.addHook('preClose', async () => streams.closeAll());
  app.addHook('onResponse', async (request, reply) => {
    options.logger.debug(
      {
        method: request.method,
        route: request.routeOptions.url ?? '(no route)',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, version: options.version, description: options.description },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'The API token, sent as `Authorization: Bearer <token>`.',
          },
        },
      },
      security: [{ bearer: [] }],
    },
  });
  return { app, streams };
}

/**
 * Serves the OpenAPI document at `<prefix>/openapi.json`, and at `<prefix>/` where
 * it is found. Neither holds data; an API decides whether they need its token.
 */
export function openApiRoute(prefix = '/api', authentication = 'on every other route'): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get(`${prefix}/openapi.json`, { schema: { hide: true } }, async () => app.swagger());
    app.get(`${prefix}/`, { schema: { hide: true } }, async () => {
      const { info } = app.swagger() as { info: { title: string; version: string } };
      return {
        name: info.title,
        version: info.version,
        openapi: '/api/openapi.json',
        authentication: `Authorization: Bearer <token> ${authentication}`,
      };
    });
  };
}

/**
 * Registers an API's routes under `/api`, every one behind the bearer guard;
 * `publicRoutes` (a sign-in route, which checks its own credential) are not, nor
 * the OpenAPI document unless `publicOpenApi` is false. `ready`, when given, is checked first:
 * a service that is not running answers 503 NOT_STARTED rather than check a token.
 */
export function registerProtectedApi(
  app: FastifyInstance,
  options: {
    guard: BearerGuardOptions;
    ready?: () => boolean;
    notReady?: () => Error;
    routes: FastifyPluginAsync[];
    publicRoutes?: FastifyPluginAsync[];
    /** Serve the OpenAPI document without a token. Default true. */
    publicOpenApi?: boolean;
  },
): void {
  const publicOpenApi = options.publicOpenApi ?? true;
  if (publicOpenApi) void app.register(openApiRoute());
  const { ready, notReady } = options;
  const readiness = async () => {
    if (ready && notReady && !ready()) throw notReady();
  };
  if (options.publicRoutes)
    void app.register(
      async (api) => {
        api.addHook('onRequest', readiness);
        for (const routes of options.publicRoutes ?? []) await api.register(routes);
      },
      { prefix: '/api' },
    );
  void app.register(
    async (api) => {
      api.addHook('onRequest', readiness);
      const guard = bearerGuard(options.guard);
      api.addHook('onRequest', guard);
      // An unknown path under /api is no answer to anyone without credentials: 401 before 404.
      const notFound = notFoundHandler(app);
      api.setNotFoundHandler(
        {
          preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
            await readiness();
            await guard.call(api, request, reply);
          },
        },
        (request, reply) => notFound(request, reply),
      );
      if (!publicOpenApi) await api.register(openApiRoute('', 'on every route but the sign-in'));
      for (const routes of options.routes) await api.register(routes);
    },
    { prefix: '/api' },
  );
}
