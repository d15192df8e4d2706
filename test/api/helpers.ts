import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Child } from '../../src/child/child.js';
import { buildLocalApi, ensureApiToken, type LocalApiOptions } from '../../src/child/local-api/server.js';
import {
  type AdminApiOptions,
  buildAdminApi,
  ensureAdminToken,
  resetAdminToken,
} from '../../src/hub/admin-api/server.js';
import { offlineChild, startTestHub } from '../fixtures/nodes.js';
import type { Hub } from '../../src/hub/hub.js';
import { openReplica } from '../../src/index.js';
import type { CollectionOptions, Replica } from '../../src/sync/replica.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { transfer } from '../../src/sync/transfer.js';
import { eventually } from '../helpers.js';
import { noise } from '../fixtures/bytes.js';

export { noise };

/** One parsed Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * A minimal Server-Sent Events client on a real socket: collects events and
 * comments as they arrive, like a browser's EventSource would see them.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  private readonly req: ClientRequest;
  private buffer = '';
  ended = false;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => this.feed(chunk));
      res.on('end', () => (this.ended = true));
      res.on('close', () => (this.ended = true));
    });
    this.req.on('error', () => (this.ended = true));
    this.req.end();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      const event: SseEvent = { event: 'message', data: '' };
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim());
        } else if (line.startsWith('event: ')) {
          event.event = line.slice(7);
          fields++;
        } else if (line.startsWith('data: ')) {
          event.data = line.slice(6);
          fields++;
        } else if (line.startsWith('id: ')) {
          event.id = line.slice(4);
        }
      }
      if (fields > 0) this.events.push(event);
    }
  }

  /** Waits for the first event that `match` accepts, and returns it. */
  async next(match: (e: SseEvent) => boolean, what: string, timeoutMs = 10_000): Promise<SseEvent> {
    await eventually(() => this.events.some(match), timeoutMs, what);
    return this.events.find(match) as SseEvent;
  }

  close(): void {
    this.req.destroy();
  }
}

/** A conflict on `target`: another replica writes the same record concurrently, then its changes arrive. */
export async function makeConflict(
  target: Replica,
  dir: string,
  collections: Record<string, CollectionOptions>,
  collection: string,
  id: string,
): Promise<void> {
  const other = await openReplica({
    path: join(dir, `other-${Math.random().toString(36).slice(2)}.db`),
    deviceId: randomDeviceId(),
    collections,
    synchronous: 'off',
  });
  await target.put(collection, id, { side: 'ours' });
  await other.put(collection, id, { side: 'theirs' });
  await transfer(other, target);
  await other.stop();
}

/** inject() with a bearer token. */
export function authed(app: FastifyInstance, token: string) {
  return (options: InjectOptions) =>
    app.inject({ ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } });
}

/** A request for every route of an API, with concrete parameters. */
export interface RouteCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** The route's path as the OpenAPI document writes it. */
  path: string;
  payload?: unknown;
}

/** The OpenAPI operations of a document, as "METHOD path". */
export function operations(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

/** One API under test, built without listening: its app, its token and its name for messages. */
export interface ApiUnderTest {
  name: 'admin' | 'local';
  app: FastifyInstance;
  token: string;
}

/**
 * A started hub with its admin API and an offline child with its local API (it
 * never finds a hub: the local API works offline), each app built with `options`.
 * `close()` stops everything.
 */
export async function bothApis(
  dir: string,
  options: { admin?: AdminApiOptions; local?: Omit<LocalApiOptions, 'dataDir'> } = {},
  collections: Record<string, CollectionOptions> = {},
): Promise<{ hub: Hub; child: Child; admin: ApiUnderTest; local: ApiUnderTest; close(): Promise<void> }> {
  const hub = await startTestHub(join(dir, 'hub'), { collections });
  const adminToken = (await ensureAdminToken(hub.registry)) ?? (await resetAdminToken(hub.registry));
  const childDir = join(dir, 'child');
  const child = offlineChild(childDir, { collections });
  await child.start();
  const admin: ApiUnderTest = { name: 'admin', app: buildAdminApi(hub, options.admin), token: adminToken };
  const local: ApiUnderTest = {
    name: 'local',
    app: buildLocalApi(child, { dataDir: childDir, ...options.local }),
    token: ensureApiToken(childDir),
  };
  return {
    hub,
    child,
    admin,
    local,
    close: async () => {
      await admin.app.close();
      await local.app.close();
      await child.stop();
      await hub.stop();
    },
  };
}

/** An HTTP answer read in full. */
export interface RawAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/**
 * A request over a real socket whose body is written piece by piece as `body`
 * yields them, waiting for the socket to drain (no Content-Length unless given:
 * the body goes chunked, as a client streaming a file of unknown size sends it).
 */
export function streamRequest(
  url: string,
  options: {
    method: string;
    headers?: Record<string, string>;
    body?: AsyncIterable<Buffer> | Iterable<Buffer>;
    /** The path as sent, not resolved as a URL parser would (`/api/files/..` stays). */
    rawPath?: string;
  },
): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const target = { hostname, port, path: options.rawPath ?? url.slice(url.indexOf('/', 8)) };
    const req = httpRequest({ ...target, method: options.method, headers: options.headers ?? {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      try {
        for await (const piece of options.body ?? []) {
          if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}
