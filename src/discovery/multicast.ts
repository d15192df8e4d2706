/**
 * Trosyn's own discovery over UDP multicast: the hub announces where its sync service
 * listens and answers queries; a child listens and asks. IPv4 and IPv6, every
 * interface. docs/DISCOVERY.md describes the datagrams and timing.
 */
import type { RemoteInfo } from 'node:dgram';
import type { Logger } from 'pino';
import {
  DEFAULT_DISCOVERY_PORT,
  DISCOVERY_GROUP_V4,
  DISCOVERY_GROUP_V6_LINK,
  DISCOVERY_GROUP_V6_SITE,
} from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { Advertiser, type AdvertiserOptions } from './advertiser.js';
import { collectHubs } from './attempt.js';
import { type BrowserOptions, DiscoveryBrowser } from './browser.js';
import { type EndpointSocket, familyOfRemote, MulticastEndpoint } from './endpoint.js';
import { DiscoveryOptionError } from './errors.js';
import {
  type HubIdentityOptions,
  positiveInteger,
  type ResolvedSockets,
  resolveHubIdentity,
  resolveSockets,
  type SocketOptions,
} from './options.js';
import type { AddressFamily, DiscoveredHub, DiscoveryCounters } from './types.js';
import { type DiscoveryMessage, decodeDiscoveryMessage, encodeDiscoveryMessage } from './wire.js';

/** Default time between a hub's unsolicited announcements (ms). */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 30_000;
/** Share of the announce interval by which each interval varies at random, so hubs started together drift apart. */
const ANNOUNCE_JITTER = 0.1;

/** Options shared by the announcer and the browser. */
export interface MulticastDiscoveryOptions extends SocketOptions {
  /** UDP port of discovery. Default 17702 (DEFAULT_DISCOVERY_PORT); hub and children must agree. */
  discoveryPort?: number;
  /**
   * Multicast TTL (IPv4) and hop limit (IPv6). Default 1: discovery stays on the local
   * link. Raise it only where routers forward 239.255.77.2 / ff05::7702 between segments.
   */
  ttl?: number;
}

interface ResolvedCommon extends ResolvedSockets {
  ttl: number;
}

function resolveCommon(o: MulticastDiscoveryOptions): ResolvedCommon {
  const ttl = positiveInteger('ttl', o.ttl, 1);
  if (ttl > 255) throw new DiscoveryOptionError('ttl', 'must be 1-255');
  return { ...resolveSockets(o, 'discoveryPort', o.discoveryPort, DEFAULT_DISCOVERY_PORT), ttl };
}

function groupsOf(family: AddressFamily): string[] {
  return family === 4 ? [DISCOVERY_GROUP_V4] : [DISCOVERY_GROUP_V6_LINK, DISCOVERY_GROUP_V6_SITE];
}

/** Decodes a datagram; one that is not a usable message is counted, logged and dropped. */
function readMessage(
  data: Buffer,
  rinfo: RemoteInfo,
  counters: DiscoveryCounters,
  logger: Logger,
): DiscoveryMessage | undefined {
  counters.received++;
  const result = decodeDiscoveryMessage(data);
  if (result.ok) return result.message;
  if (result.reason === 'oversized') counters.oversized++;
  else if (result.reason === 'malformed') counters.malformed++;
  else counters.ignored++;
  logger.debug({ from: rinfo.address, reason: result.reason, detail: result.detail }, 'datagram dropped');
  return undefined;
}

function createEndpoints(
  c: ResolvedCommon,
  logger: Logger,
  onMessage: (data: Buffer, rinfo: RemoteInfo, socket: EndpointSocket) => void,
): MulticastEndpoint[] {
  return c.families.map(
    (family) =>
      new MulticastEndpoint({
        family,
        port: c.port,
        groups: groupsOf(family),
        selection: c.selection,
        ttl: c.ttl,
        sendFrom: 'ephemeral',
        onMessage,
        logger,
        clock: c.clock,
        ...(c.table && { table: c.table }),
      }),
  );
}

/** Options of a {@link HubAnnouncer}. */
export interface HubAnnouncerOptions
  extends MulticastDiscoveryOptions, HubIdentityOptions, AdvertiserOptions {
  /**
   * Time between unsolicited announcements (ms), varied by up to 10% each time.
   * Default 30 000. Children expire a hub after three intervals by default, so a
   * longer interval here needs a longer `expiryMs` there. Queries are answered at
   * once whatever the interval.
   */
  announceIntervalMs?: number;
}

/**
 * The hub's side: joins the discovery groups on every chosen interface, announces at
 * start and every `announceIntervalMs`, answers each query at once by unicast to the
 * querier (faster than multicast, and only the asking child needs it), and says
 * goodbye on stop.
 */
export class HubAnnouncer extends Advertiser {
  private readonly c: ResolvedCommon;
  private readonly intervalMs: number;
  private readonly deviceId: DeviceId;
  private readonly syncPort: number;
  private readonly announcement: Buffer;
  private readonly bye: Buffer;
  private readonly families: MulticastEndpoint[];

  constructor(options: HubAnnouncerOptions) {
    const c = resolveCommon(options);
    super({
      via: 'multicast',
      role: 'announcer',
      logRole: 'announcer',
      sockets: c,
      logger: options.logger,
      maxAnswersPerSecond: options.maxAnswersPerSecond,
    });
    this.c = c;
    const hub = resolveHubIdentity(options);
    this.intervalMs = positiveInteger(
      'announceIntervalMs',
      options.announceIntervalMs,
      DEFAULT_ANNOUNCE_INTERVAL_MS,
      100,
    );
    this.deviceId = hub.deviceId;
    this.syncPort = hub.syncPort;
    this.announcement = encodeDiscoveryMessage({
      type: 'announce',
      deviceId: hub.deviceId,
      name: hub.name,
      port: hub.syncPort,
      versions: hub.versions,
    });
    this.bye = encodeDiscoveryMessage({ type: 'bye', deviceId: hub.deviceId, port: hub.syncPort });
    this.families = createEndpoints(c, this.logger, (data, rinfo, socket) =>
      this.onMessage(data, rinfo, socket),
    );
  }

  protected endpoints(): readonly MulticastEndpoint[] {
    return this.families;
  }

  /** Announces now on every interface (also done at start and periodically). */
  async announce(): Promise<void> {
    if (!this.isLive) return;
    for (const e of this.families) e.refresh();
    await this.sendToAll(this.announcement);
  }

  protected goodbye(): Promise<void> {
    return this.sendToAll(this.bye);
  }

  protected started(): void {
    this.logger.info(
      { deviceId: this.deviceId, syncPort: this.syncPort, families: this.c.families, port: this.c.port },
      'announcing hub',
    );
    this.schedule();
  }

  private async sendToAll(data: Buffer): Promise<void> {
    const results = await Promise.all(this.families.map((e) => e.sendToGroups(data)));
    for (const r of results) {
      this.counters.sent += r.sent;
      this.counters.sendErrors += r.failed;
    }
  }

  private schedule(): void {
    const delay = this.intervalMs * (1 + ANNOUNCE_JITTER * (2 * Math.random() - 1));
    // An announcement still leaving when stop() and a new start() ran must not start a second chain.
    const run = this.run;
    this.later(() => {
      this.announce().then(
        () => run === this.run && this.schedule(),
        (err: unknown) => this.logger.warn({ err }, 'announce failed'),
      );
    }, delay);
  }

  private onMessage(data: Buffer, rinfo: RemoteInfo, socket: EndpointSocket): void {
    const message = readMessage(data, rinfo, this.counters, this.logger);
    if (!message) return;
    // Announcements and goodbyes (other hubs', or our own looped back) need nothing
    // from a hub; nor does a query for another hub.
    if (
      message.type !== 'query' ||
      socket !== 'listen' ||
      (message.deviceId !== undefined && message.deviceId !== this.deviceId)
    ) {
      this.counters.ignored++;
      return;
    }
    if (!this.mayAnswer()) return;
    const family = familyOfRemote(rinfo);
    const endpoint = this.families.find((e) => e.family === family);
    if (!endpoint) return;
    void endpoint.sendTo(this.announcement, rinfo.address, rinfo.port).then((err) => {
      if (err) {
        this.counters.sendErrors++;
        this.logger.debug({ to: rinfo.address, err: err.message }, 'answer not sent');
      } else this.counters.sent++;
    });
  }
}

/** Options of a {@link HubBrowser}. */
export interface HubBrowserOptions extends MulticastDiscoveryOptions, BrowserOptions {
  /**
   * Ask only this hub to answer queries. Announcements of other hubs that arrive
   * anyway are still listed: discovery reports what it sees.
   */
  deviceId?: DeviceId;
  /** Send a query at start, so a running hub answers within a round trip. Default true. */
  queryOnStart?: boolean;
}

/**
 * The child's side: listens for announcements on every chosen interface and family,
 * asks at start and on `query()`, keeps one entry per (deviceId, address) and expires
 * entries not heard from. What it lists are hints; the transport's certificate
 * pinning decides which hub is real.
 */
export class HubBrowser extends DiscoveryBrowser {
  private readonly families: MulticastEndpoint[];
  private readonly queryDatagram: Buffer;

  constructor(options: HubBrowserOptions = {}) {
    const c = resolveCommon(options);
    super({
      expiryMs: options.expiryMs,
      sweepIntervalMs: options.sweepIntervalMs,
      maxEntries: options.maxEntries,
      via: 'multicast',
      logRole: 'browser',
      sockets: c,
      logger: options.logger,
      queryOnStart: options.queryOnStart ?? true,
    });
    if (options.deviceId !== undefined && !isDeviceId(options.deviceId))
      throw new DiscoveryOptionError('deviceId', 'must be 64 lowercase hex characters');
    this.queryDatagram = encodeDiscoveryMessage(
      options.deviceId === undefined ? { type: 'query' } : { type: 'query', deviceId: options.deviceId },
    );
    this.families = createEndpoints(c, this.logger, (data, rinfo) => this.onMessage(data, rinfo));
  }

  protected endpoints(): readonly MulticastEndpoint[] {
    return this.families;
  }

  protected ask(): void {
    for (const e of this.families) {
      e.refresh();
      this.counters.queries++;
      void e.sendToGroups(this.queryDatagram).then((r) => {
        this.counters.sent += r.sent;
        this.counters.sendErrors += r.failed;
      });
    }
  }

  /** An interface that appeared since the last sweep gets a query of its own. */
  protected override afterSweep(): void {
    let added = 0;
    for (const e of this.families) added += e.refresh();
    if (added > 0) this.query();
  }

  private onMessage(data: Buffer, rinfo: RemoteInfo): void {
    if (!this.isListening) return;
    const message = readMessage(data, rinfo, this.counters, this.logger);
    if (!message) return;
    if (message.type === 'query') {
      // Another child asking (or our own query looped back).
      this.counters.ignored++;
      return;
    }
    if (message.type === 'bye') {
      const gone = this.hubs.forget(
        (h) => h.deviceId === message.deviceId && h.address === rinfo.address && h.port === message.port,
      );
      if (gone === 0) this.counters.ignored++;
      return;
    }
    this.sighted(rinfo, message, undefined);
  }
}

/** Options of {@link findHub}. */
export interface FindHubOptions extends HubBrowserOptions {
  /** How long to look (ms), on the clock. Default 3 000. */
  timeoutMs?: number;
  /** Time between repeated queries while nothing matching is found (ms). Default 1 000. */
  requeryIntervalMs?: number;
  /** Aborts the search; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Looks for a hub by multicast: the first one heard (or the first claiming
 * `deviceId`), or undefined when none answers within `timeoutMs`. The result is a
 * hint to connect to; the TLS handshake checks the claimed device ID.
 */
export async function findHub(options: FindHubOptions = {}): Promise<DiscoveredHub | undefined> {
  const { timeoutMs, requeryIntervalMs, signal, ...browserOptions } = options;
  const browser = new HubBrowser(browserOptions);
  const wanted = options.deviceId;
  const attempt = await collectHubs([browser], {
    timeoutMs: timeoutMs ?? 3_000,
    ...(requeryIntervalMs !== undefined && { requeryIntervalMs }),
    ...(signal && { signal }),
    ...(options.clock && { clock: options.clock }),
    until: (hub) => wanted === undefined || hub.deviceId === wanted,
  });
  return attempt.match;
}
