/**
 * Trosyn's own discovery over UDP multicast: the hub announces where its sync service
 * listens and answers queries; a child listens and asks. IPv4 and IPv6, every
 * interface. docs/DISCOVERY.md describes the datagrams and timing.
 */
import type { RemoteInfo } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import {
  DEFAULT_DISCOVERY_PORT,
  DEFAULT_SYNC_PORT,
  DISCOVERY_GROUP_V4,
  DISCOVERY_GROUP_V6_LINK,
  DISCOVERY_GROUP_V6_SITE,
  PROTOCOL_VERSIONS,
} from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { collectHubs } from './attempt.js';
import { type EndpointSocket, MulticastEndpoint } from './endpoint.js';
import { DiscoveryBindError, DiscoveryOptionError } from './errors.js';
import { SerialQueue } from './serial.js';
import { type InterfaceSelectionOptions, type InterfaceTable, interfaceForAddress } from './interfaces.js';
import type {
  AddressFamily,
  DiscoveredHub,
  Discovery,
  DiscoveryCounters,
  DiscoveryDiagnostics,
  DiscoveryEvents,
} from './types.js';
import { emptyCounters } from './types.js';
import { AnswerBudget } from './answer-budget.js';
import {
  type DecodeResult,
  type DiscoveryMessage,
  decodeDiscoveryMessage,
  encodeDiscoveryMessage,
  isPort,
  isValidHubName,
  isVersionList,
} from './wire.js';

/** Default time between a hub's unsolicited announcements (ms). */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 30_000;
/** Default time after which a hub not heard from is dropped (ms): three announce intervals. */
export const DEFAULT_EXPIRY_MS = 3 * DEFAULT_ANNOUNCE_INTERVAL_MS;
/** Share of the announce interval by which each interval varies at random, so hubs started together drift apart. */
const ANNOUNCE_JITTER = 0.1;
/** How long stop() waits for the goodbye datagrams to leave (ms). */
const BYE_TIMEOUT_MS = 500;

/** Options shared by the announcer and the browser. */
export interface MulticastDiscoveryOptions extends InterfaceSelectionOptions {
  /** UDP port of discovery. Default 17702 (DEFAULT_DISCOVERY_PORT); hub and children must agree. */
  discoveryPort?: number;
  /** Address families to use. Default both, `[4, 6]`; a family that cannot bind is recorded and skipped. */
  families?: readonly AddressFamily[];
  /**
   * Multicast TTL (IPv4) and hop limit (IPv6). Default 1: discovery stays on the local
   * link. Raise it only where routers forward 239.255.77.2 / ff05::7702 between segments.
   */
  ttl?: number;
  logger?: Logger;
  clock?: Clock;
  /** The interface table (default `os.networkInterfaces`); for tests that describe a machine. */
  interfaceTable?: InterfaceTable;
}

interface ResolvedCommon {
  port: number;
  families: AddressFamily[];
  ttl: number;
  selection: InterfaceSelectionOptions;
  clock: Clock;
  table: InterfaceTable | undefined;
}

function positiveInteger(option: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min)
    throw new DiscoveryOptionError(option, `must be an integer of at least ${min}, got ${String(value)}`);
  return value;
}

function resolveCommon(o: MulticastDiscoveryOptions): ResolvedCommon {
  const port = o.discoveryPort ?? DEFAULT_DISCOVERY_PORT;
  if (!isPort(port)) throw new DiscoveryOptionError('discoveryPort', 'must be an integer 1-65535');
  const families = [...new Set<AddressFamily>(o.families ?? [4, 6])];
  if (families.length === 0 || families.some((f) => f !== 4 && f !== 6))
    throw new DiscoveryOptionError('families', 'list 4, 6 or both');
  const ttl = positiveInteger('ttl', o.ttl, 1);
  if (ttl > 255) throw new DiscoveryOptionError('ttl', 'must be 1-255');
  if (
    o.interfaces !== undefined &&
    (!Array.isArray(o.interfaces) || o.interfaces.some((n) => typeof n !== 'string'))
  )
    throw new DiscoveryOptionError('interfaces', 'must be a list of interface names, e.g. ["eth0"]');
  const selection: InterfaceSelectionOptions = {};
  if (o.interfaces !== undefined) selection.interfaces = [...o.interfaces];
  if (o.includeLoopback !== undefined) selection.includeLoopback = o.includeLoopback;
  return { port, families, ttl, selection, clock: o.clock ?? systemClock, table: o.interfaceTable };
}

function groupsOf(family: AddressFamily): string[] {
  return family === 4 ? [DISCOVERY_GROUP_V4] : [DISCOVERY_GROUP_V6_LINK, DISCOVERY_GROUP_V6_SITE];
}

function familyOfRemote(rinfo: RemoteInfo): AddressFamily {
  return (rinfo.family as unknown) === 4 || rinfo.family === 'IPv4' ? 4 : 6;
}

/** Counts a datagram that is not a usable message; true when it was one. */
function countDecoded(
  counters: DiscoveryCounters,
  result: DecodeResult,
): result is DecodeResult & { ok: true } {
  if (result.ok) return true;
  if (result.reason === 'oversized') counters.oversized++;
  else if (result.reason === 'malformed') counters.malformed++;
  else counters.ignored++;
  return false;
}

function createEndpoints(
  c: ResolvedCommon,
  logger: Logger,
  onMessage: (data: Buffer, rinfo: RemoteInfo, socket: EndpointSocket) => void,
): Map<AddressFamily, MulticastEndpoint> {
  const endpoints = new Map<AddressFamily, MulticastEndpoint>();
  for (const family of c.families) {
    endpoints.set(
      family,
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
  return endpoints;
}

async function openEndpoints(endpoints: Map<AddressFamily, MulticastEndpoint>, port: number): Promise<void> {
  const results = await Promise.all([...endpoints.values()].map((e) => e.open()));
  if (!results.some(Boolean)) {
    const causes = [...endpoints.values()].map((e) => {
      const d = e.diagnostics();
      return `IPv${d.family}: ${d.bindError ?? 'not bound'}`;
    });
    throw new DiscoveryBindError(port, causes);
  }
}

/** Options of a {@link HubAnnouncer}. */
export interface HubAnnouncerOptions extends MulticastDiscoveryOptions {
  /** The hub's device ID (SHA-256 of its certificate). */
  deviceId: DeviceId;
  /** Name shown to people choosing a hub: 1-64 characters, no control characters. */
  name: string;
  /** TCP port of the hub's sync service, which announcements advertise. Default 17700. */
  syncPort?: number;
  /** Protocol versions advertised. Default PROTOCOL_VERSIONS. */
  versions?: readonly number[];
  /**
   * Time between unsolicited announcements (ms), varied by up to 10% each time.
   * Default 30 000. Children expire a hub after three intervals by default, so a
   * longer interval here needs a longer `expiryMs` there. Queries are answered at
   * once whatever the interval.
   */
  announceIntervalMs?: number;
  /**
   * Most query answers per second; more are dropped (and counted) so that a flood of
   * queries cannot turn the hub into a traffic amplifier. Default 50.
   */
  maxAnswersPerSecond?: number;
}

/**
 * The hub's side: joins the discovery groups on every chosen interface, announces at
 * start and every `announceIntervalMs`, answers each query at once by unicast to the
 * querier (faster than multicast, and only the asking child needs it), and says
 * goodbye on stop.
 */
export class HubAnnouncer implements Startable {
  private readonly c: ResolvedCommon;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly answers: AnswerBudget;
  private readonly deviceId: DeviceId;
  private readonly syncPort: number;
  private readonly announcement: Buffer;
  private readonly bye: Buffer;
  private readonly endpoints: Map<AddressFamily, MulticastEndpoint>;
  private readonly lifecycle = new SerialQueue();
  private readonly counters = emptyCounters();
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  /** Counts starts, so timers of an earlier run recognise they are stale. */
  private run = 0;

  constructor(options: HubAnnouncerOptions) {
    this.c = resolveCommon(options);
    if (!isDeviceId(options.deviceId))
      throw new DiscoveryOptionError('deviceId', 'must be the hub device ID as 64 lowercase hex characters');
    if (!isValidHubName(options.name))
      throw new DiscoveryOptionError('name', 'must be 1-64 characters without control characters');
    const syncPort = options.syncPort ?? DEFAULT_SYNC_PORT;
    if (!isPort(syncPort)) throw new DiscoveryOptionError('syncPort', 'must be an integer 1-65535');
    const versions = [...(options.versions ?? PROTOCOL_VERSIONS)];
    if (!isVersionList(versions))
      throw new DiscoveryOptionError('versions', 'must list 1-16 integers 1-65535');
    this.intervalMs = positiveInteger(
      'announceIntervalMs',
      options.announceIntervalMs,
      DEFAULT_ANNOUNCE_INTERVAL_MS,
      100,
    );
    this.answers = new AnswerBudget(
      positiveInteger('maxAnswersPerSecond', options.maxAnswersPerSecond, 50),
      this.c.clock,
    );
    this.deviceId = options.deviceId;
    this.syncPort = syncPort;
    this.logger = componentLogger(options.logger ?? silentLogger, 'discovery', { role: 'announcer' });
    this.announcement = encodeDiscoveryMessage({
      type: 'announce',
      deviceId: options.deviceId,
      name: options.name,
      port: syncPort,
      versions,
    });
    this.bye = encodeDiscoveryMessage({ type: 'bye', deviceId: options.deviceId, port: syncPort });
    this.endpoints = createEndpoints(this.c, this.logger, (data, rinfo, socket) =>
      this.onMessage(data, rinfo, socket),
    );
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Binds, joins the groups and announces. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (this.started) return;
      try {
        await openEndpoints(this.endpoints, this.c.port);
      } catch (err) {
        await Promise.all([...this.endpoints.values()].map((e) => e.close()));
        throw err;
      }
      this.started = true;
      this.run++;
      this.logger.info(
        { deviceId: this.deviceId, syncPort: this.syncPort, families: this.c.families, port: this.c.port },
        'announcing hub',
      );
      await this.announce();
      this.schedule();
    });
  }

  /** Says goodbye (best effort, bounded), then releases the sockets and the timer. */
  stop(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (!this.started) return;
      this.started = false;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      await Promise.race([
        this.sendToAll(this.bye),
        new Promise((resolve) => setTimeout(resolve, BYE_TIMEOUT_MS).unref()),
      ]);
      await Promise.all([...this.endpoints.values()].map((e) => e.close()));
      this.logger.info('stopped announcing');
    });
  }

  /** Announces now on every interface (also done at start and periodically). */
  async announce(): Promise<void> {
    if (!this.started) return;
    for (const e of this.endpoints.values()) e.refresh();
    await this.sendToAll(this.announcement);
  }

  private async sendToAll(data: Buffer): Promise<void> {
    const results = await Promise.all([...this.endpoints.values()].map((e) => e.sendToGroups(data)));
    for (const r of results) {
      this.counters.sent += r.sent;
      this.counters.sendErrors += r.failed;
    }
  }

  private schedule(): void {
    const delay = this.intervalMs * (1 + ANNOUNCE_JITTER * (2 * Math.random() - 1));
    // A run started before a stop() and a new start() must not schedule a second chain of timers.
    const run = this.run;
    this.timer = setTimeout(() => {
      if (!this.started || run !== this.run) return;
      this.announce().then(
        () => this.started && run === this.run && this.schedule(),
        (err: unknown) => this.logger.warn({ err }, 'announce failed'),
      );
    }, delay);
    this.timer.unref();
  }

  private onMessage(data: Buffer, rinfo: RemoteInfo, socket: EndpointSocket): void {
    this.counters.received++;
    const result = decodeDiscoveryMessage(data);
    if (!countDecoded(this.counters, result)) {
      this.logger.debug(
        { from: rinfo.address, reason: result.reason, detail: result.detail },
        'datagram dropped',
      );
      return;
    }
    const message: DiscoveryMessage = result.message;
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
    this.counters.queries++;
    if (!this.answers.take()) {
      this.counters.answersSuppressed++;
      return;
    }
    const endpoint = this.endpoints.get(familyOfRemote(rinfo));
    if (!endpoint) return;
    void endpoint.sendTo(this.announcement, rinfo.address, rinfo.port).then((err) => {
      if (err) {
        this.counters.sendErrors++;
        this.logger.debug({ to: rinfo.address, err: err.message }, 'answer not sent');
      } else this.counters.sent++;
    });
  }

  /** What the announcer joined, sent and received. */
  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: 'multicast',
        role: 'announcer',
        started: this.started,
        families: [...this.endpoints.values()].map((e) => e.diagnostics()),
        counters: { ...this.counters },
      },
    ];
  }
}

/** Options of a {@link HubBrowser}. */
export interface HubBrowserOptions extends MulticastDiscoveryOptions {
  /**
   * Ask only this hub to answer queries. Announcements of other hubs that arrive
   * anyway are still listed: discovery reports what it sees.
   */
  deviceId?: DeviceId;
  /**
   * A hub not heard from for this long (ms) is dropped and 'lost' is emitted. Default
   * 90 000, three announce intervals, so one or two lost datagrams drop nothing.
   */
  expiryMs?: number;
  /** How often expiry is checked (ms). Default a tenth of `expiryMs`, at most 5 000. */
  sweepIntervalMs?: number;
  /**
   * Most entries kept. Entries are per (deviceId, address), and anyone on the LAN can
   * announce any number of them; new ones beyond this are dropped and counted. Default 256.
   */
  maxEntries?: number;
  /** Send a query at start, so a running hub answers within a round trip. Default true. */
  queryOnStart?: boolean;
}

/**
 * The child's side: listens for announcements on every chosen interface and family,
 * asks at start and on `query()`, keeps one entry per (deviceId, address) and expires
 * entries not heard from. What it lists are hints; the transport's certificate
 * pinning decides which hub is real.
 */
export class HubBrowser extends EventEmitter<DiscoveryEvents> implements Discovery {
  private readonly c: ResolvedCommon;
  private readonly logger: Logger;
  private readonly wanted: DeviceId | undefined;
  private readonly expiryMs: number;
  private readonly sweepMs: number;
  private readonly maxEntries: number;
  private readonly queryOnStart: boolean;
  private readonly endpoints: Map<AddressFamily, MulticastEndpoint>;
  private readonly lifecycle = new SerialQueue();
  private readonly counters = emptyCounters();
  private readonly hubs = new Map<string, DiscoveredHub>();
  private readonly queryDatagram: Buffer;
  private started = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: HubBrowserOptions = {}) {
    super();
    this.c = resolveCommon(options);
    if (options.deviceId !== undefined && !isDeviceId(options.deviceId))
      throw new DiscoveryOptionError('deviceId', 'must be 64 lowercase hex characters');
    this.wanted = options.deviceId;
    this.expiryMs = positiveInteger('expiryMs', options.expiryMs, DEFAULT_EXPIRY_MS, 10);
    this.sweepMs = positiveInteger(
      'sweepIntervalMs',
      options.sweepIntervalMs,
      Math.max(10, Math.min(5_000, Math.floor(this.expiryMs / 10))),
      10,
    );
    this.maxEntries = positiveInteger('maxEntries', options.maxEntries, 256);
    this.queryOnStart = options.queryOnStart ?? true;
    this.logger = componentLogger(options.logger ?? silentLogger, 'discovery', { role: 'browser' });
    this.queryDatagram = encodeDiscoveryMessage(
      this.wanted === undefined ? { type: 'query' } : { type: 'query', deviceId: this.wanted },
    );
    this.endpoints = createEndpoints(this.c, this.logger, (data, rinfo) => this.onMessage(data, rinfo));
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Binds, joins the groups and (by default) queries. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (this.started) return;
      try {
        await openEndpoints(this.endpoints, this.c.port);
      } catch (err) {
        await Promise.all([...this.endpoints.values()].map((e) => e.close()));
        throw err;
      }
      this.started = true;
      this.logger.debug({ families: this.c.families, port: this.c.port }, 'browsing for hubs');
      this.timer = setInterval(() => this.sweep(), this.sweepMs);
      this.timer.unref();
      if (this.queryOnStart) this.query();
    });
  }

  /** Releases sockets and timer and forgets every entry (without emitting 'lost'). */
  stop(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (!this.started) return;
      this.started = false;
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      await Promise.all([...this.endpoints.values()].map((e) => e.close()));
      this.hubs.clear();
    });
  }

  list(): DiscoveredHub[] {
    return [...this.hubs.values()].map((h) => ({ ...h, versions: [...h.versions] }));
  }

  /** Sends a query to every group on every interface; answers arrive as 'found'. */
  query(): void {
    if (!this.started) {
      this.logger.debug('query() while stopped: ignored');
      return;
    }
    for (const e of this.endpoints.values()) {
      e.refresh();
      this.counters.queries++;
      void e.sendToGroups(this.queryDatagram).then((r) => {
        this.counters.sent += r.sent;
        this.counters.sendErrors += r.failed;
      });
    }
  }

  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: 'multicast',
        role: 'browser',
        started: this.started,
        families: [...this.endpoints.values()].map((e) => e.diagnostics()),
        counters: { ...this.counters },
      },
    ];
  }

  private sweep(): void {
    if (!this.started) return;
    const now = this.c.clock.now();
    for (const [key, hub] of this.hubs) {
      if (now - hub.lastSeen <= this.expiryMs) continue;
      this.hubs.delete(key);
      this.logger.debug({ deviceId: hub.deviceId, address: hub.address }, 'hub expired');
      this.emitSafely('lost', hub);
    }
    // An interface that appeared since the last look gets a query of its own.
    let added = 0;
    for (const e of this.endpoints.values()) added += e.refresh();
    if (added > 0) this.query();
  }

  private emitSafely(event: keyof DiscoveryEvents, hub: DiscoveredHub): void {
    try {
      this.emit(event, { ...hub, versions: [...hub.versions] });
    } catch (err) {
      // A listener's bug must not surface as an exception from the socket.
      this.logger.error({ err, event }, 'discovery listener threw');
    }
  }

  private onMessage(data: Buffer, rinfo: RemoteInfo): void {
    if (!this.started) return;
    this.counters.received++;
    const result = decodeDiscoveryMessage(data);
    if (!countDecoded(this.counters, result)) {
      this.logger.debug(
        { from: rinfo.address, reason: result.reason, detail: result.detail },
        'datagram dropped',
      );
      return;
    }
    const message = result.message;
    if (message.type === 'query') {
      // Another child asking (or our own query looped back).
      this.counters.ignored++;
      return;
    }
    const key = `${message.deviceId}|${rinfo.address}`;
    const existing = this.hubs.get(key);
    if (message.type === 'bye') {
      if (existing && existing.port === message.port) {
        this.hubs.delete(key);
        this.emitSafely('lost', existing);
      } else this.counters.ignored++;
      return;
    }
    const now = this.c.clock.now();
    if (existing) {
      const changed =
        existing.port !== message.port ||
        existing.name !== message.name ||
        existing.versions.join() !== message.versions.join();
      existing.lastSeen = now;
      if (!changed) return;
      existing.port = message.port;
      existing.name = message.name;
      existing.versions = message.versions;
      this.emitSafely('found', existing);
      return;
    }
    if (this.hubs.size >= this.maxEntries) {
      this.counters.entriesDropped++;
      return;
    }
    const hub: DiscoveredHub = {
      deviceId: message.deviceId,
      name: message.name,
      port: message.port,
      versions: message.versions,
      address: rinfo.address,
      family: familyOfRemote(rinfo),
      via: 'multicast',
      lastSeen: now,
    };
    const iface = interfaceForAddress(rinfo.address, this.c.table);
    if (iface !== undefined) hub.interface = iface;
    this.hubs.set(key, hub);
    this.logger.debug({ deviceId: hub.deviceId, address: hub.address, port: hub.port }, 'hub found');
    this.emitSafely('found', hub);
  }
}

/** Options of {@link findHub}. */
export interface FindHubOptions extends HubBrowserOptions {
  /** How long to look (ms). Default 3 000. */
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
    until: (hub) => wanted === undefined || hub.deviceId === wanted,
  });
  return attempt.match;
}
