import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createApiApp, registerProtectedApi } from '../../http/app.js';
import { AuthFailureLimiter, bearerGuard, tokenHash, tokenMatches } from '../../http/bearer.js';
import { metricsRoute } from '../../http/metrics-route.js';
import { fileReadRoutes } from '../../http/file-routes.js';
import { replicaReadRoutes } from '../../http/replica-routes.js';
import { HttpApiListener } from '../../http/server.js';
import type { RateLimit } from '../../transport/rate-limit.js';
import { type Clock, type Startable, systemClock } from '../../lifecycle.js';
import { componentLogger, silentLogger } from '../../observability/logger.js';
import { DEFAULT_CHILD_API_PORT } from '../../protocol/constants.js';
import { InvalidOptionError, NotStartedError } from '../../sync/errors.js';
import { APP_VERSION } from '../../version.js';
import { DEFAULT_MAX_UPLOAD_BYTES, localFileRoutes } from './file-routes.js';
import type { LocalPort } from './port.js';
import { localRoutes } from './routes.js';
import { API_TOKEN_FILE, ensureApiToken } from './token.js';

export { API_TOKEN_FILE, ensureApiToken } from './token.js';
export type { LocalPort } from './port.js';

/** The only address the local API listens on. */
export const LOCAL_API_HOST = '127.0.0.1';

/** Everything the local API is configured with. There is no host: it listens on 127.0.0.1 only. */
export interface LocalApiOptions {
  /** The child's data directory; the token file `api-token` lives there. */
  dataDir: string;
  /** TCP port on 127.0.0.1. Default 17710 (DEFAULT_CHILD_API_PORT); 0 picks a free port. */
  port?: number;
  /**
   * Largest request body in bytes. Default 2 MiB: above the engine's 1 MiB record
   * limit, so an oversized record is refused by the engine with RECORD_TOO_LARGE
   * and its size, not by the HTTP layer.
   */
  bodyLimit?: number;
  /**
   * Largest file upload (`PUT /api/files/{name}`) in bytes; Infinity for none. Default 16 GiB. An upload
   * is streamed into the chunk store, never held in memory, so `bodyLimit` does not
   * apply to it; this bounds what one request can write to the disk (a full disk
   * stops it earlier, with CHUNK_STORE_FULL).
   */
  maxUploadBytes?: number;
  /** Wrong tokens allowed per client before 429 RATE_LIMITED. Default burst 20, then 60 per minute. */
  authFailureLimit?: RateLimit;
  /**
   * Wrong tokens allowed from all client addresses together (any of 127/8).
   * Default burst 100, then 60 per minute; past it, addresses that have not
   * presented the right token in the last 24 hours get 429 RATE_LIMITED until an
   * attempt has refilled, while those that have (the app) are still served.
   */
  authFailureTotalLimit?: RateLimit;
  /** Interval (ms) of the heartbeat comment on `/api/changes`. Default 15 s. */
  eventHeartbeatMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/**
 * Builds the local API without listening (tests use `inject()`), creating the
 * token file if needed. Every `/api` route except `/api/openapi.json` needs
 * `Authorization: Bearer <contents of <dataDir>/api-token>`. The child may be
 * started after this is built: until then requests get 503 NOT_STARTED.
 */
export function buildLocalApi(child: LocalPort, options: LocalApiOptions): FastifyInstance {
  assertLocalOnly(options);
  const logger = componentLogger(options.logger ?? silentLogger, 'local-api');
  const hash = tokenHash(ensureApiToken(options.dataDir, logger));
  const { app, streams } = createApiApp({
    title: 'Trosyn Sync local API',
    version: APP_VERSION,
    description:
      "A child agent's API for apps on the same machine: records, files, history, conflicts, a change stream and sync control. " +
      `Listens on 127.0.0.1 only; every route needs \`Authorization: Bearer <token>\` with the token from \`<dataDir>/${API_TOKEN_FILE}\`.`,
    bodyLimit: options.bodyLimit ?? 2 * 1024 * 1024,
    logger,
    clock: options.clock ?? systemClock,
  });
  const limits = {
    failureLimit: options.authFailureLimit ?? { burst: 20, perMinute: 60 },
    totalFailureLimit: options.authFailureTotalLimit ?? { burst: 100, perMinute: 60 },
    clock: options.clock ?? systemClock,
    logger,
  };
  // One count of wrong tokens for the API and its /metrics.
  const guard = {
    ...limits,
    limiter: new AuthFailureLimiter(limits),
    verify: (token: string) => tokenMatches(token, hash),
    hint: `read the token from ${API_TOKEN_FILE} in the agent's data directory`,
  };
  registerProtectedApi(app, {
    guard,
    routes: [
      localRoutes(child, { streams, eventHeartbeatMs: options.eventHeartbeatMs ?? 15_000, logger }),
      replicaReadRoutes(() => child.records()),
      fileReadRoutes(() => child.files),
      localFileRoutes(child, { maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES }),
    ],
  });
  // Outside /api, as Prometheus expects, behind the same token.
  void app.register(
    metricsRoute(() => child.metricsText(), {
      onRequest: [
        async () => {
          if (!child.isStarted()) throw new NotStartedError('the child agent');
        },
        bearerGuard(guard),
      ],
      errors: [401, 429, 503],
    }),
  );
  return app;
}

/**
 * The child agent's local REST API as a Startable, on 127.0.0.1 only. Start it
 * after the child agent and stop it before.
 */
export class LocalApiServer implements Startable {
  private readonly listener: HttpApiListener;

  constructor(child: LocalPort, options: LocalApiOptions) {
    assertLocalOnly(options);
    const port = options.port ?? DEFAULT_CHILD_API_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new InvalidOptionError('port', 'must be an integer from 0 to 65535 (0 picks a free port)');
    }
    if (typeof options.dataDir !== 'string' || options.dataDir === '') {
      throw new InvalidOptionError('dataDir', "must be the child agent's data directory");
    }
    const upload = options.maxUploadBytes;
    if (upload !== undefined && !(upload > 0 && (Number.isSafeInteger(upload) || upload === Infinity))) {
      throw new InvalidOptionError(
        'maxUploadBytes',
        'must be a positive number of bytes (Infinity: no limit)',
      );
    }
    this.listener = new HttpApiListener(() => buildLocalApi(child, options), {
      host: LOCAL_API_HOST,
      port,
      portOption: '--api-port (localApi.port)',
      what: 'local API',
      logger: componentLogger(options.logger ?? silentLogger, 'local-api'),
    });
  }

  isStarted(): boolean {
    return this.listener.isStarted();
  }

  /** The port the API listens on (useful with port 0). */
  get port(): number {
    return this.listener.address().port;
  }

  /** The address the API is bound to: always 127.0.0.1. */
  address(): { address: string; port: number; family: string } {
    return this.listener.address();
  }

  async start(): Promise<void> {
    await this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }
}

/**
 * Refuses any other address: the API is for apps on this machine, and a token
 * file readable by the user is no protection on the network.
 */
function assertLocalOnly(options: LocalApiOptions): void {
  const host = (options as { host?: unknown }).host;
  if (host !== undefined && host !== LOCAL_API_HOST) {
    throw new InvalidOptionError(
      'host',
      `the local API listens on ${LOCAL_API_HOST} only, for apps on this machine; it cannot listen on ${String(host)}`,
    );
  }
}
