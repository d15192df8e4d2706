/**
 * Multicast DNS on discovery's own sockets: the constants of RFC 6762 and RFC 6763 the
 * DNS-SD publisher and browser share, and one family's mDNS channel.
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
import type { Clock } from '../lifecycle.js';
import { DNS_SD_TYPE } from '../protocol/constants.js';
import { MulticastEndpoint } from './endpoint.js';
import type { InterfaceSelectionOptions, InterfaceTable } from './interfaces.js';
import type { AddressFamily, DiscoveryCounters } from './types.js';

export type Answer = makeMdns.ResponsePacket['answers'][number];
export type Question = makeMdns.QueryPacket['questions'][number];

/** UDP port of multicast DNS. */
export const MDNS_PORT = 5353;
/** Multicast DNS group, IPv4. */
export const MDNS_GROUP_V4 = '224.0.0.251';
/** Multicast DNS group, IPv6 (link-local scope). */
export const MDNS_GROUP_V6 = 'ff02::fb';
/** The service type hubs register under. */
export const DNS_SD_SERVICE = `_${DNS_SD_TYPE}._tcp.local`;
/** The DNS-SD meta-query name that lists every service type on the link. */
export const SERVICES_META = '_services._dns-sd._udp.local';
/** Largest mDNS message read (RFC 6762 section 17: 9000 bytes). */
const MAX_MDNS_BYTES = 9000;

/** DNS names compare without regard to case (RFC 1035 section 2.3.3). */
export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Cuts a DNS label to 63 bytes of UTF-8 without splitting a character. */
export function toLabel(text: string): string {
  let label = text.replace(/\./g, '-');
  while (Buffer.byteLength(label, 'utf8') > 63) label = label.slice(0, -1);
  return label;
}

/** A TXT record's `key=value` strings (RFC 6763 section 6), keys in lower case. */
export function parseTxt(data: unknown): Map<string, string> {
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

/** Options of an {@link MdnsChannel}. */
export interface MdnsChannelOptions {
  family: AddressFamily;
  port: number;
  selection: InterfaceSelectionOptions;
  /** The owner's counters, which the channel adds its datagrams to. */
  counters: DiscoveryCounters;
  /** Reads a query (a publisher does); without it, queries are counted as ignored. */
  onQuery?(channel: MdnsChannel, packet: makeMdns.QueryPacket, rinfo: RemoteInfo): void;
  /** Reads a response (a browser does); without it, responses are counted as ignored. */
  onResponse?(channel: MdnsChannel, packet: makeMdns.ResponsePacket, rinfo: RemoteInfo): void;
  logger: Logger;
  clock: Clock;
  table: InterfaceTable | undefined;
}

/**
 * One family's mDNS sockets. multicast-dns does the DNS encoding and decoding on top
 * of a stand-in socket whose `send` goes through our endpoint: to the group on every
 * interface when the target is the group, else by unicast.
 */
export class MdnsChannel {
  readonly endpoint: MulticastEndpoint;
  readonly mdns: makeMdns.MulticastDNS;
  private readonly adapter = new EventEmitter();
  private readonly group: string;
  private readonly port: number;
  private readonly counters: DiscoveryCounters;

  constructor(o: MdnsChannelOptions) {
    this.group = o.family === 4 ? MDNS_GROUP_V4 : MDNS_GROUP_V6;
    this.port = o.port;
    this.counters = o.counters;
    this.endpoint = new MulticastEndpoint({
      family: o.family,
      port: o.port,
      groups: [this.group],
      selection: o.selection,
      // RFC 6762 section 11: mDNS is sent with IP TTL 255 (receivers may check it).
      ttl: 255,
      sendFrom: 'listen',
      onMessage: (data, rinfo) => this.onDatagram(data, rinfo),
      logger: o.logger,
      clock: o.clock,
      ...(o.table && { table: o.table }),
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
      port: o.port,
      ip: this.group,
    });
    // multicast-dns reports undecodable packets as warnings: count them as malformed.
    this.mdns.on('warning', () => this.counters.malformed++);
    this.mdns.on('query', (packet, rinfo) =>
      o.onQuery ? o.onQuery(this, packet, rinfo) : this.counters.ignored++,
    );
    this.mdns.on('response', (packet, rinfo) =>
      o.onResponse ? o.onResponse(this, packet, rinfo) : this.counters.ignored++,
    );
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
