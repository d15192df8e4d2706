import type { Logger } from 'pino';
import { createApiApp } from '../http/app.js';
import { metricsRoute } from '../http/metrics-route.js';
import { HttpApiListener } from '../http/server.js';
import type { Startable } from '../lifecycle.js';
import { componentLogger } from '../observability/logger.js';
import { InvalidOptionError } from '../sync/errors.js';
import { APP_VERSION } from '../version.js';

/** Where the hub's own metrics listener is, when asked for one. */
export interface MetricsListenerOptions {
  /**
   * Address to listen on. Anyone who reaches it reads the metrics without a token
   * (device names and groups included): give a trusted network's address only.
   * @default '127.0.0.1'
   */
  host?: string;
  /** TCP port; 0 picks a free port. */
  port: number;
}

/** The address a metrics listener given only a port listens on: this machine. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** Checks the options before anything starts, naming the option to change. */
export function checkMetricsListener(options: MetricsListenerOptions): void {
  const { port, host } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new InvalidOptionError(
      'metrics.port (--metrics-port)',
      'must be an integer from 0 to 65535 (0 picks a free port)',
    );
  if (host !== undefined && (typeof host !== 'string' || host.trim() === ''))
    throw new InvalidOptionError(
      'metrics.host (--metrics-host)',
      "must be an address such as '127.0.0.1', '0.0.0.0' or '::'",
    );
}

/**
 * A plain-HTTP listener that serves `GET /metrics` and nothing else, without a
 * token: for a Prometheus server on a trusted network that should not hold the
 * admin token. Off unless the hub is given `metrics`.
 */
export class MetricsListener implements Startable {
  private readonly listener: HttpApiListener;

  constructor(options: MetricsListenerOptions, scrape: () => Promise<string>, logger: Logger) {
    checkMetricsListener(options);
    const log = componentLogger(logger, 'metrics');
    this.listener = new HttpApiListener(
      () => {
        const { app } = createApiApp({
          title: 'Trosyn Sync metrics',
          version: APP_VERSION,
          description: "The hub's Prometheus metrics, without a token.",
          bodyLimit: 1024,
          logger: log,
        });
        void app.register(metricsRoute(scrape, { errors: [503] }));
        return app;
      },
      {
        host: options.host ?? DEFAULT_METRICS_HOST,
        port: options.port,
        portOption: '--metrics-port (metrics.port)',
        what: 'metrics listener',
        logger: log,
      },
    );
  }

  isStarted(): boolean {
    return this.listener.isStarted();
  }

  /** The port it listens on (useful with port 0). */
  get port(): number {
    return this.listener.address().port;
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }
}
