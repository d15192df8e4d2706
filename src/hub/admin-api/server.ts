import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createApiApp, registerProtectedApi } from '../../http/app.js';
import { fileReadRoutes } from '../../http/file-routes.js';
import { replicaReadRoutes } from '../../http/replica-routes.js';
import { HttpApiError } from '../../http/errors.js';
import { HttpApiListener } from '../../http/server.js';
import { type Clock, type Startable, systemClock } from '../../lifecycle.js';
import { componentLogger, silentLogger } from '../../observability/logger.js';
import { DEFAULT_ADMIN_HOST, DEFAULT_ADMIN_PORT } from '../../protocol/constants.js';
import { InvalidOptionError, NotStartedError } from '../../sync/errors.js';
import { APP_VERSION } from '../../version.js';
import { AuthFailureLimiter, bearerGuard } from '../../http/bearer.js';
import { metricsRoute } from '../../http/metrics-route.js';
import type { AdminPort } from './port.js';
import { adminRoutes } from './routes.js';
import { eventRoutes } from './event-routes.js';
import { ADMIN_SESSION_COOKIE, sessionRoutes, signInRoutes } from './session-routes.js';
import { adminSessionOf } from './sign-in.js';
import { builtDashboardDir, DashboardSite } from './dashboard-site.js';
import type { RateLimit } from '../../transport/rate-limit.js';
import {
  type AdminServing,
  type AdminTls,
  adminServing,
  certificateFingerprint,
  checkAdminCertificate,
  isLoopbackHost,
  type PemCertificate,
} from './serving.js';

export type { AdminPort } from './port.js';
export type { AdminTls, PemCertificate } from './serving.js';
export { isLoopbackHost } from './serving.js';

export { ADMIN_TOKEN_SETTING, ensureAdminToken, resetAdminToken, verifyAdminToken } from './token.js';

/** Everything the admin API is configured with. */
export interface AdminApiOptions {
  /**
   * Address to listen on. Default '127.0.0.1': only this machine reaches the
   * admin API and dashboard. Another address (a LAN address, '::' or '0.0.0.0')
   * serves HTTPS (see `tls`) unless `insecureHttp` is set.
   */
  host?: string;
  /**
   * The certificate of HTTPS. Default: none on a loopback `host` (plain HTTP),
   * `'hub'` on any other (the hub's own self-signed certificate, whose SHA-256
   * fingerprint `certificateSha256` gives, for the admin to check against the
   * browser's warning). A `{ certPem, keyPem }` of the admin's serves HTTPS on any
   * address, loopback included.
   */
  tls?: AdminTls;
  /**
   * Serve plain HTTP on a non-loopback `host`: the admin token and session
   * cookie then cross the network in clear, so the hub warns at start. Only for a
   * reverse proxy that adds TLS on the same trusted network. Default false.
   */
  insecureHttp?: boolean;
  /** TCP port. Default 17701 (DEFAULT_ADMIN_PORT); 0 picks a free port. */
  port?: number;
  /**
   * Wrong admin tokens allowed per client address. Default burst 10, then 10 per
   * minute; past it the address gets 429 RATE_LIMITED, even with the right token,
   * until an attempt has refilled.
   */
  authFailureLimit?: RateLimit;
  /**
   * Wrong admin tokens allowed from all addresses together. Default burst 100,
   * then 60 per minute; past it, addresses that have not presented the right token
   * in the last 24 hours get 429 RATE_LIMITED until an attempt has refilled, while
   * those that have are still served. Lower it on a LAN with untrusted machines.
   */
  authFailureTotalLimit?: RateLimit;
  /**
   * The built dashboard served at `/`: a directory of static files (its
   * `index.html` and `assets/`), or false for none. Default: the one built into the
   * package (`dist/dashboard`); none when the package was built without it.
   */
  dashboard?: string | false;
  /** Interval (ms) of the heartbeat comment on `/api/events`. Default 15 s. */
  eventHeartbeatMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/**
 * Builds the admin API without listening (tests use `inject()`). Every `/api`
 * route but the sign-in needs `Authorization: Bearer <admin token>` or a
 * dashboard session's cookie, the OpenAPI document included. The hub may be
 * started after this is built: requests before then get 503 NOT_STARTED.
 */
export function buildAdminApi(
  hub: AdminPort,
  options: AdminApiOptions = {},
  https?: PemCertificate,
): FastifyInstance {
  const logger = componentLogger(options.logger ?? silentLogger, 'admin-api');
  const clock = options.clock ?? systemClock;
  const dashboardDir = options.dashboard === undefined ? builtDashboardDir() : options.dashboard || undefined;
  const site = dashboardDir === undefined ? undefined : new DashboardSite(dashboardDir);
  const { app, streams } = createApiApp({
    title: 'Trosyn Sync admin API',
    version: APP_VERSION,
    description:
      "The Admin Hub's HTTP API: devices, pairing codes, groups, records, files, conflicts and a live event stream. " +
      'Every route needs `Authorization: Bearer <admin token>`.',
    bodyLimit: 2 * 1024 * 1024,
    logger,
    clock: clock,
    ...(https && { https: { cert: https.certPem, key: https.keyPem } }),
    ...(site && { site: (request, reply) => site.serve(request, reply) }),
  });
  const limits = {
    failureLimit: options.authFailureLimit ?? { burst: 10, perMinute: 10 },
    totalFailureLimit: options.authFailureTotalLimit ?? { burst: 100, perMinute: 60 },
    clock,
    logger,
  };
  // On loopback, only loopback names: a page from another name that resolves here (DNS rebinding) is refused.
  const host = options.host ?? DEFAULT_ADMIN_HOST;
  if (isLoopbackHost(host)) {
    app.addHook('onRequest', async (request) => {
      const named = hostName(request.headers.host ?? '');
      if (named === host.toLowerCase().replace(/^\[|\]$/g, '') || isLoopbackHost(named)) return;
      throw new HttpApiError(
        'HOST_NOT_ALLOWED',
        `the admin API listens on loopback and answers only to localhost, 127.0.0.1 or [::1], not to ${JSON.stringify(named.slice(0, 100))}`,
      );
    });
  }
  // One count of wrong credentials, whether tried as a bearer token or at the sign-in form.
  const limiter = new AuthFailureLimiter(limits);
  registerProtectedApi(app, {
    // A hub that is not running cannot check a token: say so, rather than fail on its closed registry.
    ready: () => hub.isStarted(),
    notReady: () => new NotStartedError('the hub'),
    guard: {
      ...limits,
      limiter,
      verify: (token) => hub.verifyAdminToken(token),
      hint: 'the admin token is shown once when the hub first starts; `trosyn-sync admin-token --reset` makes a new one',
      session: {
        name: ADMIN_SESSION_COOKIE,
        verify: async (secret) => (await adminSessionOf(hub.signIns, secret, clock.now())) !== undefined,
      },
    },
    publicRoutes: [signInRoutes(hub, { limiter, clock, logger })],
    // Signed out, nothing under /api/ answers but the sign-in: not even the route list.
    publicOpenApi: false,
    routes: [
      sessionRoutes(hub, { clock }),
      adminRoutes(hub, { logger }),
      eventRoutes(hub, { streams, eventHeartbeatMs: options.eventHeartbeatMs ?? 15_000, logger, clock }),
      replicaReadRoutes(() => hub.records()),
      fileReadRoutes(() => hub.files),
    ],
  });
  // Outside /api, as Prometheus expects, behind the same token (a scraper sends it as a bearer credential).
  void app.register(
    metricsRoute(() => hub.metricsText(), {
      onRequest: [
        async () => {
          if (!hub.isStarted()) throw new NotStartedError('the hub');
        },
        bearerGuard({
          ...limits,
          limiter,
          verify: (token) => hub.verifyAdminToken(token),
          hint: 'a scraper sends the admin token as `Authorization: Bearer <token>`',
        }),
      ],
      errors: [401, 429, 503],
    }),
  );
  return app;
}

/** What the admin API server takes from the hub besides the AdminPort. */
export interface AdminApiParts {
  /** The hub's identity certificate and key, served when `tls` is `'hub'` (read at start). */
  hubCertificate?: () => PemCertificate;
}

/**
 * The hub's admin HTTP API as a Startable: start it after the hub (it creates the
 * admin token on first start) and stop it before the hub.
 */
export class AdminApiServer implements Startable {
  private readonly hub: AdminPort;
  private readonly logger: Logger;
  private readonly listener: HttpApiListener;
  private readonly serving: AdminServing;
  private readonly parts: AdminApiParts;
  private certificate: PemCertificate | undefined;
  private createdToken: string | undefined;

  constructor(hub: AdminPort, options: AdminApiOptions = {}, parts: AdminApiParts = {}) {
    const port = options.port ?? DEFAULT_ADMIN_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new InvalidOptionError('port', 'must be an integer from 0 to 65535 (0 picks a free port)');
    }
    if (options.host !== undefined && (typeof options.host !== 'string' || options.host.trim() === '')) {
      throw new InvalidOptionError('host', "must be an address such as '::', '0.0.0.0' or '127.0.0.1'");
    }
    this.hub = hub;
    this.parts = parts;
    this.logger = componentLogger(options.logger ?? silentLogger, 'admin-api');
    const host = options.host ?? DEFAULT_ADMIN_HOST;
    this.serving = adminServing({ ...options, host });
    if (this.serving.tls !== undefined && this.serving.tls !== 'hub') checkAdminCertificate(this.serving.tls);
    if (this.serving.tls === 'hub' && parts.hubCertificate === undefined) {
      throw new InvalidOptionError(
        'adminApi.tls',
        "'hub' needs the hub's certificate: give a certPem and keyPem",
      );
    }
    this.listener = new HttpApiListener(() => buildAdminApi(hub, options, this.certificate), {
      host,
      port,
      portOption: '--http-port (adminApi.port)',
      what: 'admin API',
      logger: this.logger,
    });
  }

  isStarted(): boolean {
    return this.listener.isStarted();
  }

  /** The port the API listens on (useful with port 0). */
  get port(): number {
    return this.listener.address().port;
  }

  /** The address the API is bound to. */
  address(): { address: string; port: number; family: string } {
    return this.listener.address();
  }

  /** `https` or `http`: what the admin port speaks. */
  get scheme(): 'http' | 'https' {
    return this.serving.scheme;
  }

  /** True when it serves plain HTTP on an address other machines reach (`insecureHttp`). */
  get insecure(): boolean {
    return this.serving.insecure;
  }

  /** SHA-256 fingerprint (`AB:CD:...`) of the certificate served over HTTPS, once started; undefined over HTTP. */
  get certificateSha256(): string | undefined {
    return this.certificate && certificateFingerprint(this.certificate.certPem);
  }

  async start(): Promise<void> {
    if (this.listener.isStarted()) return;
    if (!this.hub.isStarted()) throw new NotStartedError('the hub');
    const { tls } = this.serving;
    this.certificate = tls === 'hub' ? this.parts.hubCertificate?.() : tls;
    await this.listener.start();
    if (this.serving.insecure)
      this.logger.warn(
        'the admin API serves plain HTTP on an address other machines reach: the admin token crosses the network in clear',
      );
    // Made only once the API listens: a failed start must not use up the one showing.
    const token = await this.hub.ensureAdminToken();
    if (token !== undefined) {
      this.createdToken = token;
      this.logger.warn('a new admin token was created; it is shown once, where the hub was started');
    }
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }

  /**
   * The admin token if this start created it, once: the caller shows it to the
   * admin (it cannot be read back later) and the server forgets it.
   */
  takeCreatedToken(): string | undefined {
    const token = this.createdToken;
    this.createdToken = undefined;
    return token;
  }
}

/** The name in a Host header, without its port or brackets, lowercase. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.indexOf(':');
  return colon >= 0 && h.indexOf(':', colon + 1) < 0 ? h.slice(0, colon) : h;
}
