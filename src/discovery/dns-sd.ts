/**
 * DNS-SD over multicast DNS (RFC 6762, RFC 6763): the hub registers
 * `_trosyn-sync._tcp.local` so standard tools (dig, avahi-browse, dns-sd) list it, and
 * a child can browse for it as a second way to find its hub.
 *
 * Why multicast-dns rather than bonjour-service: bonjour-service always answers by
 * multicast, so a legacy unicast query (dig, or any resolver querying from a port
 * other than 5353) never gets its answer, and it picks interfaces itself. With
 * multicast-dns as the DNS codec and our own sockets, the same per-interface
 * membership and diagnostics serve both discovery methods, and a legacy query is
 * answered by unicast with its ID and question echoed, as RFC 6762 section 6.7 asks.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import makeMdns from 'multicast-dns';
import type { Logger } from 'pino';
import { type Clock, type Startable, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { DEFAULT_SYNC_PORT, DNS_SD_TYPE, PROTOCOL_VERSIONS } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { shortDeviceId } from '../transport/device-id.js';
import { MulticastEndpoint } from './endpoint.js';
import { DiscoveryBindError, DiscoveryOptionError } from './errors.js';
import {
  type InterfaceSelectionOptions,
  type InterfaceTable,
  interfaceForAddress,
  selectInterfaces,
} from './interfaces.js';
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
import { SerialQueue } from './serial.js';
import { isPort, isValidHubName, isVersionList } from './wire.js';

type Answer = makeMdns.ResponsePacket['answers'][number];
type Question = makeMdns.QueryPacket['questions'][number];

/** UDP port of multicast DNS. */
export const MDNS_PORT = 5353;
/** Multicast DNS group, IPv4. */
export const MDNS_GROUP_V4 = '224.0.0.251';
/** Multicast DNS group, IPv6 (link-local scope). */
export const MDNS_GROUP_V6 = 'ff02::fb';
/** The service type hubs register under. */
export const DNS_SD_SERVICE = `_${DNS_SD_TYPE}._tcp.local`;
/** The DNS-SD meta-query name that lists every service type on the link. */
const SERVICES_META = '_services._dns-sd._udp.local';
/** Largest mDNS message read (RFC 6762 section 17: 9000 bytes). */
const MAX_MDNS_BYTES = 9000;
/** Record TTL in a legacy unicast answer (RFC 6762 section 6.7: no more than 10 s). */
const LEGACY_TTL_S = 10;
/** Time between the two announcements at start (RFC 6762 section 8.3: at least one second). */
const REANNOUNCE_DELAY_MS = 1_000;
/** How long stop() waits for the goodbye to leave (ms). */
const GOODBYE_TIMEOUT_MS = 500;

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Options shared by the DNS-SD publisher and browser. */
export interface DnsSdOptions extends InterfaceSelectionOptions {
  /** Address families to use. Default `[4, 6]`. */
  families?: readonly AddressFamily[];
  /** UDP port; only tests change it. Default 5353. */
  mdnsPort?: number;
  logger?: Logger;
  clock?: Clock;
  /** The interface table (default `os.networkInterfaces`); for tests. */
  interfaceTable?: InterfaceTable;
}

/**
 * One family's mDNS sockets. multicast-dns does the DNS encoding and decoding on top
 * of a stand-in socket whose `send` goes through our endpoint: to the group on every
 * interface when the target is the group, else by unicast.
 */
class MdnsChannel {
  readonly endpoint: MulticastEndpoint;
  readonly mdns: makeMdns.MulticastDNS;
  private readonly adapter = new EventEmitter();
  private readonly group: string;

  constructor(
    family: AddressFamily,
    private readonly port: number,
    selection: InterfaceSelectionOptions,
    private readonly counters: DiscoveryCounters,
    logger: Logger,
    clock: Clock,
    table: InterfaceTable | undefined,
  ) {
    this.group = family === 4 ? MDNS_GROUP_V4 : MDNS_GROUP_V6;
    this.endpoint = new MulticastEndpoint({
      family,
      port,
      groups: [this.group],
      selection,
      // RFC 6762 section 11: mDNS is sent with IP TTL 255 (receivers may check it).
      ttl: 255,
      sendFrom: 'listen',
      onMessage: (data, rinfo) => this.onDatagram(data, rinfo),
      logger,
      clock,
      ...(table && { table }),
    });
    const socket = Object.assign(this.adapter, {
      send: (
        buf: Buffer,
        offset: number,
        length: number,
        toPort: number,
        address: string,
        cb: (err: Error | null) => void,
      ): void => {
        const data = buf.subarray(offset, offset + length);
        if (address === this.group) {
          void this.endpoint.sendToGroups(data, toPort).then((r) => {
            this.counters.sent += r.sent;
            this.counters.sendErrors += r.failed;
            cb(null);
          });
        } else {
          void this.endpoint.sendTo(data, address, toPort).then((err) => {
            if (err) this.counters.sendErrors++;
            else this.counters.sent++;
            cb(err ?? null);
          });
        }
      },
      close: (cb?: () => void) => cb?.(),
    });
    this.mdns = makeMdns({
      socket: socket as unknown as Socket,
      bind: false,
      multicast: false,
      port,
      ip: this.group,
    });
    // multicast-dns reports undecodable packets as warnings: count them as malformed.
    this.mdns.on('warning', () => this.counters.malformed++);
  }

  private onDatagram(data: Buffer, rinfo: RemoteInfo): void {
    this.counters.received++;
    if (data.length > MAX_MDNS_BYTES) {
      this.counters.oversized++;
      return;
    }
    this.adapter.emit('message', data, rinfo);
  }

  /** Sends to the mDNS group through every interface; resolves once sent (failures are counted, not thrown). */
  multicast(
    packet: makeMdns.ResponseOutgoingPacket | makeMdns.QueryOutgoingPacket,
    kind: 'query' | 'response',
  ): Promise<void> {
    const rinfo = { address: this.group, port: this.port };
    return new Promise((resolve) => {
      if (kind === 'query') this.mdns.query(packet as makeMdns.QueryOutgoingPacket, rinfo, () => resolve());
      else this.mdns.respond(packet as makeMdns.ResponseOutgoingPacket, rinfo, () => resolve());
    });
  }
}

function resolveFamilies(families: readonly AddressFamily[] | undefined): AddressFamily[] {
  const list = [...new Set<AddressFamily>(families ?? [4, 6])];
  if (list.length === 0 || list.some((f) => f !== 4 && f !== 6))
    throw new DiscoveryOptionError('families', 'list 4, 6 or both');
  return list;
}

function resolveSelection(o: DnsSdOptions): InterfaceSelectionOptions {
  const s: InterfaceSelectionOptions = {};
  if (o.interfaces !== undefined) s.interfaces = [...o.interfaces];
  if (o.includeLoopback !== undefined) s.includeLoopback = o.includeLoopback;
  return s;
}

async function openChannels(channels: MdnsChannel[], port: number): Promise<void> {
  const results = await Promise.all(channels.map((c) => c.endpoint.open()));
  if (!results.some(Boolean)) {
    await Promise.all(channels.map((c) => c.endpoint.close()));
    throw new DiscoveryBindError(
      port,
      channels.map((c) => {
        const d = c.endpoint.diagnostics();
        return `IPv${d.family}: ${d.bindError ?? 'not bound'}`;
      }),
    );
  }
}

/** Options of a {@link DnsSdPublisher}. */
export interface DnsSdPublisherOptions extends DnsSdOptions {
  deviceId: DeviceId;
  /** The hub's name (TXT `name`, and the start of the instance name). */
  name: string;
  /** TCP port of the sync service (the SRV record's port). Default 17700. */
  syncPort?: number;
  /** Protocol versions (TXT `versions`). Default PROTOCOL_VERSIONS. */
  versions?: readonly number[];
  /**
   * The DNS-SD instance label. Default `<name>-<first group of the device ID>`, so two
   * hubs with the same name still differ. At most 63 bytes; dots become dashes.
   */
  instanceName?: string;
  /** Host name of the SRV target, without `.local`. Default `trosyn-<first 12 hex of the device ID>`. */
  hostName?: string;
  /** TTL of the published records (s). Default 120 (RFC 6762 section 10 for SRV, TXT and address records). */
  recordTtlSeconds?: number;
  /** Most answers per second; more are dropped and counted. Default 50. */
  maxAnswersPerSecond?: number;
}

/** Cuts a DNS label to 63 bytes of UTF-8 without splitting a character. */
function toLabel(text: string): string {
  let label = text.replace(/\./g, '-');
  while (Buffer.byteLength(label, 'utf8') > 63) label = label.slice(0, -1);
  return label;
}

/**
 * The hub's DNS-SD registration: answers mDNS questions for the service type, its
 * instance, the instance's SRV and TXT records and the host's addresses, announces
 * them twice at start and withdraws them (TTL 0) at stop.
 *
 * Not done: name-conflict probing (the default instance and host names carry the
 * device ID, so two hubs do not collide) and known-answer suppression.
 */
export class DnsSdPublisher implements Startable {
  private readonly logger: Logger;
  private readonly channels: MdnsChannel[];
  private readonly counters = emptyCounters();
  private readonly selection: InterfaceSelectionOptions;
  private readonly table: InterfaceTable | undefined;
  private readonly families: AddressFamily[];
  private readonly port: number;
  private readonly ttl: number;
  private readonly answers: AnswerBudget;
  /** `<instance>._trosyn-sync._tcp.local`. */
  readonly instance: string;
  /** `<host>.local`. */
  readonly host: string;
  private readonly syncPort: number;
  private readonly txt: string[];
  private readonly clock: Clock;
  private readonly lifecycle = new SerialQueue();
  private started = false;
  private reannounce: NodeJS.Timeout | undefined;

  constructor(options: DnsSdPublisherOptions) {
    if (!isDeviceId(options.deviceId))
      throw new DiscoveryOptionError('deviceId', 'must be 64 lowercase hex characters');
    if (!isValidHubName(options.name))
      throw new DiscoveryOptionError('name', 'must be 1-64 characters without control characters');
    this.syncPort = options.syncPort ?? DEFAULT_SYNC_PORT;
    if (!isPort(this.syncPort)) throw new DiscoveryOptionError('syncPort', 'must be an integer 1-65535');
    const versions = [...(options.versions ?? PROTOCOL_VERSIONS)];
    if (!isVersionList(versions))
      throw new DiscoveryOptionError('versions', 'must list 1-16 integers 1-65535');
    this.port = options.mdnsPort ?? MDNS_PORT;
    if (!isPort(this.port)) throw new DiscoveryOptionError('mdnsPort', 'must be an integer 1-65535');
    this.ttl = options.recordTtlSeconds ?? 120;
    if (!Number.isInteger(this.ttl) || this.ttl < 1)
      throw new DiscoveryOptionError('recordTtlSeconds', 'must be a positive integer');
    const maxAnswers = options.maxAnswersPerSecond ?? 50;
    if (!Number.isInteger(maxAnswers) || maxAnswers < 1)
      throw new DiscoveryOptionError('maxAnswersPerSecond', 'must be a positive integer');
    const label = toLabel(options.instanceName ?? `${options.name}-${shortDeviceId(options.deviceId)}`);
    if (label.length === 0) throw new DiscoveryOptionError('instanceName', 'must not be empty');
    const hostLabel = options.hostName ?? `trosyn-${options.deviceId.slice(0, 12)}`;
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(hostLabel))
      throw new DiscoveryOptionError('hostName', 'must be one DNS label: letters, digits and dashes');
    this.instance = `${label}.${DNS_SD_SERVICE}`;
    this.host = `${hostLabel}.local`;
    this.txt = [
      'txtvers=1',
      `deviceId=${options.deviceId}`,
      `versions=${versions.join(',')}`,
      `name=${options.name}`,
    ];
    this.families = resolveFamilies(options.families);
    this.selection = resolveSelection(options);
    this.table = options.interfaceTable;
    this.logger = componentLogger(options.logger ?? silentLogger, 'discovery', { role: 'dns-sd-publisher' });
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.answers = new AnswerBudget(maxAnswers, clock);
    this.channels = this.families.map((family) => {
      const channel = new MdnsChannel(
        family,
        this.port,
        this.selection,
        this.counters,
        this.logger,
        clock,
        this.table,
      );
      channel.mdns.on('query', (query, rinfo) => this.onQuery(channel, query, rinfo));
      channel.mdns.on('response', () => this.counters.ignored++);
      return channel;
    });
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Binds port 5353, joins the mDNS groups and announces twice. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (this.started) return;
      await openChannels(this.channels, this.port);
      this.started = true;
      this.logger.info(
        { instance: this.instance, host: this.host, syncPort: this.syncPort },
        'DNS-SD service published',
      );
      await this.announce(this.ttl);
      this.reannounce = setTimeout(() => void (this.started && this.announce(this.ttl)), REANNOUNCE_DELAY_MS);
      this.reannounce.unref();
    });
  }

  /** Withdraws the records (TTL 0 goodbye, bounded wait), then releases the sockets. */
  stop(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (!this.started) return;
      this.started = false;
      if (this.reannounce) clearTimeout(this.reannounce);
      this.reannounce = undefined;
      await Promise.race([
        this.announce(0),
        new Promise((resolve) => setTimeout(resolve, GOODBYE_TIMEOUT_MS).unref()),
      ]);
      await Promise.all(this.channels.map((c) => c.endpoint.close()));
    });
  }

  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: 'dns-sd',
        role: 'publisher',
        started: this.started,
        families: this.channels.map((c) => c.endpoint.diagnostics()),
        counters: { ...this.counters },
      },
    ];
  }

  private addressRecords(ttl: number): Answer[] {
    const records: Answer[] = [];
    for (const family of [4, 6] as const) {
      for (const iface of selectInterfaces(family, this.selection, this.table).selected) {
        for (const address of iface.addresses)
          records.push({
            name: this.host,
            type: family === 4 ? 'A' : 'AAAA',
            ttl,
            data: address,
            flush: true,
          });
      }
    }
    return records;
  }

  private serviceRecords(ttl: number): { ptr: Answer; srv: Answer; txt: Answer; meta: Answer } {
    return {
      ptr: { name: DNS_SD_SERVICE, type: 'PTR', ttl, data: this.instance },
      meta: { name: SERVICES_META, type: 'PTR', ttl, data: DNS_SD_SERVICE },
      srv: {
        name: this.instance,
        type: 'SRV',
        ttl,
        flush: true,
        data: { port: this.syncPort, target: this.host, priority: 0, weight: 0 },
      },
      txt: { name: this.instance, type: 'TXT', ttl, flush: true, data: this.txt },
    };
  }

  private async announce(ttl: number): Promise<void> {
    const r = this.serviceRecords(ttl);
    const answers = [r.ptr, r.srv, r.txt, ...this.addressRecords(ttl)];
    await Promise.all(
      this.channels.filter((c) => c.endpoint.bound).map((c) => c.multicast({ answers }, 'response')),
    );
  }

  private answersFor(q: Question, ttl: number): { answers: Answer[]; additionals: Answer[] } {
    const r = this.serviceRecords(ttl);
    // dns-packet's types omit ANY, which it does decode.
    const any = (q.type as string) === 'ANY';
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    if (sameName(q.name, DNS_SD_SERVICE) && (any || q.type === 'PTR')) {
      answers.push(r.ptr);
      additionals.push(r.srv, r.txt, ...this.addressRecords(ttl));
    } else if (sameName(q.name, SERVICES_META) && (any || q.type === 'PTR')) {
      answers.push(r.meta);
    } else if (sameName(q.name, this.instance)) {
      if (any || q.type === 'SRV') answers.push(r.srv);
      if (any || q.type === 'TXT') answers.push(r.txt);
      if (answers.length > 0) additionals.push(...this.addressRecords(ttl));
    } else if (sameName(q.name, this.host)) {
      answers.push(...this.addressRecords(ttl).filter((a) => any || a.type === q.type));
    }
    return { answers, additionals };
  }

  private onQuery(channel: MdnsChannel, query: makeMdns.QueryPacket, rinfo: RemoteInfo): void {
    if (!this.started) return;
    // A query from a port other than 5353 is a legacy unicast query (RFC 6762 6.7):
    // the asker listens only there, wants its ID and question back, and short TTLs.
    const legacy = rinfo.port !== this.port;
    const ttl = legacy ? Math.min(LEGACY_TTL_S, this.ttl) : this.ttl;
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    for (const q of query.questions ?? []) {
      const a = this.answersFor(q, ttl);
      answers.push(...a.answers);
      additionals.push(...a.additionals);
    }
    if (answers.length === 0) {
      this.counters.ignored++;
      return;
    }
    this.counters.queries++;
    if (!this.answers.take()) {
      this.counters.answersSuppressed++;
      return;
    }
    if (legacy) {
      // Legacy resolvers reject an answer whose cache-flush bit sets the class's top bit.
      const plain = (list: Answer[]): Answer[] => list.map((a) => ({ ...a, flush: false }) as Answer);
      channel.mdns.respond(
        {
          id: query.id,
          questions: query.questions,
          answers: plain(answers),
          additionals: plain(additionals),
        },
        { address: rinfo.address, port: rinfo.port },
      );
    } else {
      void channel.multicast({ answers, additionals }, 'response');
    }
  }
}

/** Options of a {@link DnsSdBrowser}. */
export interface DnsSdBrowserOptions extends DnsSdOptions {
  /** A hub not heard from for this long (ms) is dropped and 'lost' is emitted. Default 90 000. */
  expiryMs?: number;
  /** Time between repeated queries that keep entries fresh (ms). Default 30 000. */
  queryIntervalMs?: number;
  /** Most entries kept; new ones beyond are dropped and counted. Default 256. */
  maxEntries?: number;
}

function parseTxt(data: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const items = Array.isArray(data) ? (data as unknown[]) : [data];
  for (const item of items) {
    const text = Buffer.isBuffer(item) ? item.toString('utf8') : typeof item === 'string' ? item : '';
    const eq = text.indexOf('=');
    // RFC 6763 6.4: keys are case-insensitive and the first occurrence wins.
    const key = (eq === -1 ? text : text.slice(0, eq)).toLowerCase();
    if (key.length > 0 && !out.has(key)) out.set(key, eq === -1 ? '' : text.slice(eq + 1));
  }
  return out;
}

/**
 * The child's DNS-SD browser: asks for `_trosyn-sync._tcp.local` by multicast from
 * port 5353 (so it shares answers with other mDNS browsers on the machine) and lists
 * each instance whose TXT record carries a valid device ID. Like every discovery
 * result, a hint: nothing here is verified.
 */
export class DnsSdBrowser extends EventEmitter<DiscoveryEvents> implements Discovery {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly channels: MdnsChannel[];
  private readonly counters = emptyCounters();
  private readonly table: InterfaceTable | undefined;
  private readonly port: number;
  private readonly expiryMs: number;
  private readonly queryIntervalMs: number;
  private readonly maxEntries: number;
  private readonly hubs = new Map<string, DiscoveredHub & { instance: string }>();
  /** Instances whose SRV/TXT were asked for (lower case), and when. */
  private readonly asked = new Map<string, number>();
  private readonly lifecycle = new SerialQueue();
  private started = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private queryTimer: NodeJS.Timeout | undefined;

  constructor(options: DnsSdBrowserOptions = {}) {
    super();
    this.port = options.mdnsPort ?? MDNS_PORT;
    if (!isPort(this.port)) throw new DiscoveryOptionError('mdnsPort', 'must be an integer 1-65535');
    this.expiryMs = options.expiryMs ?? 90_000;
    this.queryIntervalMs = options.queryIntervalMs ?? 30_000;
    this.maxEntries = options.maxEntries ?? 256;
    for (const [name, v] of [
      ['expiryMs', this.expiryMs],
      ['queryIntervalMs', this.queryIntervalMs],
      ['maxEntries', this.maxEntries],
    ] as const)
      if (!Number.isInteger(v) || v < 1) throw new DiscoveryOptionError(name, 'must be a positive integer');
    this.table = options.interfaceTable;
    this.clock = options.clock ?? systemClock;
    this.logger = componentLogger(options.logger ?? silentLogger, 'discovery', { role: 'dns-sd-browser' });
    const selection = resolveSelection(options);
    this.channels = resolveFamilies(options.families).map((family) => {
      const channel = new MdnsChannel(
        family,
        this.port,
        selection,
        this.counters,
        this.logger,
        this.clock,
        this.table,
      );
      channel.mdns.on('response', (packet, rinfo) => this.onResponse(channel, packet, rinfo));
      channel.mdns.on('query', () => this.counters.ignored++);
      return channel;
    });
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Binds port 5353, joins the mDNS groups and queries. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (this.started) return;
      await openChannels(this.channels, this.port);
      this.started = true;
      this.sweepTimer = setInterval(
        () => this.sweep(),
        Math.max(10, Math.min(5_000, Math.floor(this.expiryMs / 10))),
      );
      this.sweepTimer.unref();
      this.queryTimer = setInterval(() => this.query(), this.queryIntervalMs);
      this.queryTimer.unref();
      this.query();
    });
  }

  /** Releases sockets and timers and forgets every entry (without emitting 'lost'). */
  stop(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (!this.started) return;
      this.started = false;
      clearInterval(this.sweepTimer);
      clearInterval(this.queryTimer);
      this.sweepTimer = undefined;
      this.queryTimer = undefined;
      await Promise.all(this.channels.map((c) => c.endpoint.close()));
      this.hubs.clear();
      this.asked.clear();
    });
  }

  list(): DiscoveredHub[] {
    return [...this.hubs.values()].map(({ instance: _instance, ...h }) => ({
      ...h,
      versions: [...h.versions],
    }));
  }

  /** Asks for the service type's instances on every interface. */
  query(): void {
    if (!this.started) return;
    for (const c of this.channels) {
      if (!c.endpoint.bound) continue;
      c.endpoint.refresh();
      this.counters.queries++;
      void c.multicast({ questions: [{ name: DNS_SD_SERVICE, type: 'PTR' }] }, 'query');
    }
  }

  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: 'dns-sd',
        role: 'browser',
        started: this.started,
        families: this.channels.map((c) => c.endpoint.diagnostics()),
        counters: { ...this.counters },
      },
    ];
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, hub] of this.hubs) {
      if (now - hub.lastSeen <= this.expiryMs) continue;
      this.hubs.delete(key);
      this.emitSafely('lost', hub);
    }
    for (const [instance, at] of this.asked) if (now - at > this.expiryMs) this.asked.delete(instance);
  }

  private emitSafely(event: keyof DiscoveryEvents, hub: DiscoveredHub & { instance: string }): void {
    const { instance: _instance, ...copy } = hub;
    try {
      this.emit(event, { ...copy, versions: [...copy.versions] });
    } catch (err) {
      this.logger.error({ err, event }, 'discovery listener threw');
    }
  }

  private onResponse(channel: MdnsChannel, packet: makeMdns.ResponsePacket, rinfo: RemoteInfo): void {
    if (!this.started) return;
    const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])];
    const instances = new Set<string>();
    for (const r of records) {
      if (r.type === 'PTR' && sameName(r.name, DNS_SD_SERVICE)) {
        const { data, ttl } = r as { data?: unknown; ttl?: number };
        if (ttl === 0) this.goodbye(String(data), rinfo.address);
        else instances.add(String(data));
      } else if (r.type === 'SRV' && this.asked.has(r.name.toLowerCase())) {
        // The answer to a follow-up question carries SRV and TXT without the PTR.
        instances.add(r.name);
      }
    }
    if (instances.size === 0) {
      this.counters.ignored++;
      return;
    }
    for (const instance of instances) {
      const srv = records.find((r) => r.type === 'SRV' && sameName(r.name, instance));
      const txt = records.find((r) => r.type === 'TXT' && sameName(r.name, instance));
      if (!srv || !txt) {
        this.askFor(channel, instance);
        continue;
      }
      this.asked.delete(instance.toLowerCase());
      this.upsert(instance, srv, txt, rinfo);
    }
  }

  /** Another responder may send only the PTR: ask for the rest, once per expiry period per instance. */
  private askFor(channel: MdnsChannel, instance: string): void {
    const key = instance.toLowerCase();
    if (this.asked.has(key) || this.asked.size >= this.maxEntries) return;
    this.asked.set(key, this.clock.now());
    void channel.multicast(
      {
        questions: [
          { name: instance, type: 'SRV' },
          { name: instance, type: 'TXT' },
        ],
      },
      'query',
    );
  }

  private goodbye(instance: string, address: string): void {
    for (const [key, hub] of this.hubs) {
      if (hub.address !== address || !sameName(hub.instance, instance)) continue;
      this.hubs.delete(key);
      this.emitSafely('lost', hub);
    }
  }

  private upsert(instance: string, srv: Answer, txt: Answer, rinfo: RemoteInfo): void {
    const fields = parseTxt((txt as { data?: unknown }).data);
    const deviceId = fields.get('deviceid');
    const port = ((srv as { data?: unknown }).data as { port?: unknown } | undefined)?.port;
    const versions = (fields.get('versions') ?? fields.get('version') ?? '').split(',').map(Number);
    const name = fields.get('name') ?? instance.split('.')[0] ?? '';
    if (!isDeviceId(deviceId) || !isPort(port) || !isVersionList(versions) || !isValidHubName(name)) {
      this.counters.malformed++;
      this.logger.debug(
        { instance, from: rinfo.address },
        'DNS-SD instance without valid deviceId, port, versions or name',
      );
      return;
    }
    const key = `${deviceId}|${rinfo.address}`;
    const now = this.clock.now();
    const existing = this.hubs.get(key);
    if (existing) {
      const changed =
        existing.port !== port || existing.name !== name || existing.versions.join() !== versions.join();
      Object.assign(existing, { lastSeen: now, port, name, versions, instance });
      if (changed) this.emitSafely('found', existing);
      return;
    }
    if (this.hubs.size >= this.maxEntries) {
      this.counters.entriesDropped++;
      return;
    }
    const hub: DiscoveredHub & { instance: string } = {
      deviceId,
      name,
      port,
      versions,
      address: rinfo.address,
      family: rinfo.family === 'IPv4' ? 4 : 6,
      via: 'dns-sd',
      lastSeen: now,
      instance,
    };
    const iface = interfaceForAddress(rinfo.address, this.table);
    if (iface !== undefined) hub.interface = iface;
    this.hubs.set(key, hub);
    this.emitSafely('found', hub);
  }
}
