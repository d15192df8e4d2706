/**
 * DNS-SD over multicast DNS (RFC 6762, RFC 6763): the hub registers
 * `_trosyn-sync._tcp.local` so standard tools (dig, avahi-browse, dns-sd) list it, and
 * a child can browse for it as a second way to find its hub. mdns.ts has the sockets.
 */
import type { RemoteInfo } from 'node:dgram';
import type makeMdns from 'multicast-dns';
import type { Logger } from 'pino';
import { shortDeviceId } from '../transport/device-id.js';
import { isDeviceId } from '../sync/ids.js';
import { Advertiser, type AdvertiserOptions } from './advertiser.js';
import { type BrowserOptions, DiscoveryBrowser } from './browser.js';
import type { MulticastEndpoint } from './endpoint.js';
import { DiscoveryOptionError } from './errors.js';
import { selectInterfaces } from './interfaces.js';
import {
  type Answer,
  DNS_SD_SERVICE,
  MDNS_PORT,
  MdnsChannel,
  type MdnsChannelOptions,
  parseTxt,
  type Question,
  sameName,
  SERVICES_META,
  toLabel,
} from './mdns.js';
import {
  type HubIdentityOptions,
  positiveInteger,
  type ResolvedSockets,
  resolveHubIdentity,
  resolveSockets,
  type SocketOptions,
} from './options.js';
import type { DiscoveryCounters } from './types.js';
import { isPort, isValidHubName, isVersionList } from './wire.js';

/** Record TTL in a legacy unicast answer (RFC 6762 section 6.7: no more than 10 s). */
const LEGACY_TTL_S = 10;
/** Time between the two announcements at start (RFC 6762 section 8.3: at least one second). */
const REANNOUNCE_DELAY_MS = 1_000;

/** Options shared by the DNS-SD publisher and browser. */
export interface DnsSdOptions extends SocketOptions {
  /** UDP port; only tests change it. Default 5353. */
  mdnsPort?: number;
}

/** One mDNS channel per family, counting into `counters`, reading what `reads` says. */
function createChannels(
  s: ResolvedSockets,
  counters: DiscoveryCounters,
  logger: Logger,
  reads: Pick<MdnsChannelOptions, 'onQuery' | 'onResponse'>,
): MdnsChannel[] {
  const { port, selection, clock, table } = s;
  return s.families.map(
    (family) => new MdnsChannel({ family, port, selection, counters, logger, clock, table, ...reads }),
  );
}

/** Options of a {@link DnsSdPublisher}. */
export interface DnsSdPublisherOptions extends DnsSdOptions, HubIdentityOptions, AdvertiserOptions {
  /**
   * The DNS-SD instance label. Default `<name>-<first group of the device ID>`, so two
   * hubs with the same name still differ. At most 63 bytes; dots become dashes.
   */
  instanceName?: string;
  /** Host name of the SRV target, without `.local`. Default `trosyn-<first 12 hex of the device ID>`. */
  hostName?: string;
  /** TTL of the published records (s). Default 120 (RFC 6762 section 10 for SRV, TXT and address records). */
  recordTtlSeconds?: number;
}

/**
 * The hub's DNS-SD registration: answers mDNS questions for the service type, its
 * instance, the instance's SRV and TXT records and the host's addresses, announces
 * them twice at start and withdraws them (TTL 0) at stop.
 *
 * Not done: name-conflict probing (the default instance and host names carry the
 * device ID, so two hubs do not collide) and known-answer suppression.
 */
export class DnsSdPublisher extends Advertiser {
  private readonly channels: MdnsChannel[];
  private readonly sockets: ResolvedSockets;
  private readonly ttl: number;
  /** `<instance>._trosyn-sync._tcp.local`. */
  readonly instance: string;
  /** `<host>.local`. */
  readonly host: string;
  private readonly syncPort: number;
  private readonly txt: string[];

  constructor(options: DnsSdPublisherOptions) {
    const sockets = resolveSockets(options, 'mdnsPort', options.mdnsPort, MDNS_PORT);
    super({
      via: 'dns-sd',
      role: 'publisher',
      logRole: 'dns-sd-publisher',
      sockets,
      logger: options.logger,
      maxAnswersPerSecond: options.maxAnswersPerSecond,
    });
    this.sockets = sockets;
    const hub = resolveHubIdentity(options);
    this.syncPort = hub.syncPort;
    this.ttl = positiveInteger('recordTtlSeconds', options.recordTtlSeconds, 120);
    const label = toLabel(options.instanceName ?? `${hub.name}-${shortDeviceId(hub.deviceId)}`);
    if (label.length === 0) throw new DiscoveryOptionError('instanceName', 'must not be empty');
    const hostLabel = options.hostName ?? `trosyn-${hub.deviceId.slice(0, 12)}`;
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(hostLabel))
      throw new DiscoveryOptionError('hostName', 'must be one DNS label: letters, digits and dashes');
    this.instance = `${label}.${DNS_SD_SERVICE}`;
    this.host = `${hostLabel}.local`;
    this.txt = [
      'txtvers=1',
      `deviceId=${hub.deviceId}`,
      `versions=${hub.versions.join(',')}`,
      `name=${hub.name}`,
    ];
    this.channels = createChannels(sockets, this.counters, this.logger, {
      onQuery: (channel, query, rinfo) => this.onQuery(channel, query, rinfo),
    });
  }

  protected endpoints(): readonly MulticastEndpoint[] {
    return this.channels.map((c) => c.endpoint);
  }

  protected announce(): Promise<void> {
    return this.send(this.ttl);
  }

  /** The same records with TTL 0: caches drop them at once (RFC 6762 section 10.1). */
  protected goodbye(): Promise<void> {
    return this.send(0);
  }

  protected started(): void {
    this.logger.info(
      { instance: this.instance, host: this.host, syncPort: this.syncPort },
      'DNS-SD service published',
    );
    // RFC 6762 section 8.3: a second announcement, in case the first was lost.
    this.later(() => void this.send(this.ttl), REANNOUNCE_DELAY_MS);
  }

  private addressRecords(ttl: number): Answer[] {
    const records: Answer[] = [];
    for (const family of [4, 6] as const) {
      for (const iface of selectInterfaces(family, this.sockets.selection, this.sockets.table).selected) {
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

  private async send(ttl: number): Promise<void> {
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
    if (!this.isLive) return;
    // A query from a port other than 5353 is a legacy unicast query (RFC 6762 6.7):
    // the asker listens only there, wants its ID and question back, and short TTLs.
    const legacy = rinfo.port !== this.sockets.port;
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
    if (!this.mayAnswer()) return;
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
export interface DnsSdBrowserOptions extends DnsSdOptions, BrowserOptions {
  /** Time between repeated queries that keep entries fresh (ms). Default 30 000. */
  queryIntervalMs?: number;
}

/**
 * The child's DNS-SD browser: asks for `_trosyn-sync._tcp.local` by multicast from
 * port 5353 (so it shares answers with other mDNS browsers on the machine) and lists
 * each instance whose TXT record carries a valid device ID. Each entry notes its
 * instance name, which a goodbye names. Like every discovery result, a hint.
 */
export class DnsSdBrowser extends DiscoveryBrowser<string> {
  private readonly channels: MdnsChannel[];
  /** Instances whose SRV/TXT were asked for (lower case), and when. */
  private readonly asked = new Map<string, number>();

  constructor(options: DnsSdBrowserOptions = {}) {
    const sockets = resolveSockets(options, 'mdnsPort', options.mdnsPort, MDNS_PORT);
    super({
      expiryMs: options.expiryMs,
      sweepIntervalMs: options.sweepIntervalMs,
      maxEntries: options.maxEntries,
      via: 'dns-sd',
      logRole: 'dns-sd-browser',
      sockets,
      logger: options.logger,
      queryOnStart: true,
      queryIntervalMs: positiveInteger('queryIntervalMs', options.queryIntervalMs, 30_000),
    });
    this.channels = createChannels(sockets, this.counters, this.logger, {
      onResponse: (channel, packet, rinfo) => this.onResponse(channel, packet, rinfo),
    });
  }

  protected endpoints(): readonly MulticastEndpoint[] {
    return this.channels.map((c) => c.endpoint);
  }

  protected ask(): void {
    for (const c of this.channels) {
      if (!c.endpoint.bound) continue;
      c.endpoint.refresh();
      this.counters.queries++;
      void c.multicast({ questions: [{ name: DNS_SD_SERVICE, type: 'PTR' }] }, 'query');
    }
  }

  /** An instance asked for long ago may be asked for again. */
  protected override afterSweep(): void {
    const now = this.clock.now();
    for (const [instance, at] of this.asked) if (now - at > this.expiryMs) this.asked.delete(instance);
  }

  protected override forgetAll(): void {
    this.asked.clear();
  }

  private onResponse(channel: MdnsChannel, packet: makeMdns.ResponsePacket, rinfo: RemoteInfo): void {
    if (!this.isListening) return;
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
    this.hubs.forget((hub, noted) => hub.address === address && sameName(noted, instance));
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
    this.sighted(rinfo, { deviceId, name, port, versions }, instance);
  }
}
