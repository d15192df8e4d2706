import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Startable } from '../lifecycle.js';
import { NotStartedError } from '../sync/errors.js';
import { listenError } from './errors.js';

/** Where an API listens, and the names its errors and logs use. */
export interface HttpListenOptions {
  host: string;
  port: number;
  /** The option a user changes to pick another port, named in the error when the port is taken. */
  portOption: string;
  /** What the server is, for logs and errors ("the admin API"). */
  what: string;
  logger: Logger;
}

/**
 * The lifecycle of an HTTP API: `start()` builds the app and listens, `stop()`
 * ends open event streams and releases the socket. Both are idempotent; a new app
 * is built on every start, since a closed fastify instance cannot listen again.
 */
export class HttpApiListener implements Startable {
  private readonly build: () => FastifyInstance;
  private readonly options: HttpListenOptions;
  private app: FastifyInstance | undefined;
  private starting: Promise<void> | undefined;

  constructor(build: () => FastifyInstance, options: HttpListenOptions) {
    this.build = build;
    this.options = options;
  }

  isStarted(): boolean {
    return this.app !== undefined;
  }

  /** The address the server listens on. */
  address(): AddressInfo {
    const address = this.app?.server.address();
    if (!address || typeof address === 'string') throw new NotStartedError(this.options.what);
    return address;
  }

  async start(): Promise<void> {
    if (this.app) return;
    this.starting ??= this.listen().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    await app.close();
    this.options.logger.info(`${this.options.what} stopped`);
  }

  private async listen(): Promise<void> {
    const { host, port } = this.options;
    let app = this.build();
    try {
      await app.listen({ host, port });
    } catch (err) {
      await app.close();
      // A machine with IPv6 switched off cannot bind '::'; all IPv4 addresses is what was meant.
      const code = (err as NodeJS.ErrnoException).code;
      if (host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) {
        throw listenError(err, host, port, this.options.portOption);
      }
      app = this.build();
      try {
        await app.listen({ host: '0.0.0.0', port });
      } catch (err2) {
        await app.close();
        throw listenError(err2, '0.0.0.0', port, this.options.portOption);
      }
    }
    this.app = app;
    const address = app.server.address() as AddressInfo;
    this.options.logger.info({ host: address.address, port: address.port }, `${this.options.what} listening`);
  }
}
