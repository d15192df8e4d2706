import type { Startable } from '../lifecycle.js';
import type { DeviceId } from '../store/types.js';

/** IP address family of a socket or an address. */
export type AddressFamily = 4 | 6;

/** How a hub was found. */
export type DiscoveryVia = 'multicast' | 'dns-sd' | 'static';

/**
 * What one announcement (or DNS-SD answer) said about a hub, and where it came from.
 *
 * This is a hint, never a proof: anyone on the LAN can send an announcement that
 * claims any device ID. The transport pins the hub's certificate; a child connects to
 * `address:port` and the TLS handshake decides whether the peer really is `deviceId`.
 * Discovery therefore keeps one entry per (deviceId, address) and never merges two
 * addresses that claim the same ID.
 */
export interface DiscoveredHub {
  /** Device ID the hub claims (64 hex characters). Unverified. */
  deviceId: DeviceId;
  /** Name the hub announces (shown to people; not unique, not verified). */
  name: string;
  /** TCP port of the hub's sync service. */
  port: number;
  /** Protocol versions the hub says it speaks. */
  versions: number[];
  /**
   * Source IP address of the announcement; an IPv6 link-local address carries its
   * scope (`fe80::1%eth0`), so it can be connected to as it is.
   */
  address: string;
  /** Address family of `address`. */
  family: AddressFamily;
  /** The method that found it. */
  via: DiscoveryVia;
  /** The local interface the announcement arrived on, when it can be told. */
  interface?: string;
  /** When the hub was last heard from (ms since the epoch, from the injected clock). */
  lastSeen: number;
}

/** Events of a {@link Discovery}. */
export type DiscoveryEvents = {
  /** A hub not in the list before (by deviceId + address), or whose announced port, name or versions changed. */
  found: [hub: DiscoveredHub];
  /** A hub's entry expired (not heard from within the expiry time) or it said goodbye. */
  lost: [hub: DiscoveredHub];
};

/** One error seen on one interface, for diagnostics. */
export interface InterfaceError {
  /** What was being done: joining a group, sending, leaving. */
  op: 'join' | 'send' | 'leave' | 'set-interface';
  /** The group concerned, if any. */
  group?: string;
  /** The system error code, e.g. `EADDRNOTAVAIL`, `ENETUNREACH`, `EPERM`. */
  code: string;
  message: string;
  /** When it happened (ms since the epoch). */
  at: number;
}

/** What discovery did on one interface for one address family. */
export interface InterfaceDiagnostics {
  name: string;
  family: AddressFamily;
  /** The interface's addresses of that family (IPv6 without scope). */
  addresses: string[];
  /** Groups joined on it. */
  joined: string[];
  /** Datagrams sent to the groups through it. */
  sent: number;
  /** The latest errors (at most 10 kept). */
  errors: InterfaceError[];
}

/** One address family's socket: what it bound, which interfaces it used or skipped. */
export interface FamilyDiagnostics {
  family: AddressFamily;
  /** UDP port the listening socket is bound to. */
  port: number;
  /** Multicast groups of this family. */
  groups: string[];
  /** Whether the listening socket is bound. */
  bound: boolean;
  /** Why binding failed (`CODE: message`), if it did. */
  bindError?: string;
  /** Interfaces in use. */
  interfaces: InterfaceDiagnostics[];
  /** Interfaces left out, and why. */
  skipped: { name: string; reason: string }[];
}

/** Datagram counters of a discovery component. */
export interface DiscoveryCounters {
  /** Datagrams received (all sockets). */
  received: number;
  /** Datagrams that were not valid discovery messages (bad JSON, bad fields, not DNS). */
  malformed: number;
  /** Datagrams over the size limit, dropped unread. */
  oversized: number;
  /** Valid messages that needed nothing (another program's, an unknown type, our own). */
  ignored: number;
  /** Datagrams sent. */
  sent: number;
  /** Sends that failed. */
  sendErrors: number;
  /** Queries sent (browsers) or answered (announcers and publishers). */
  queries: number;
  /** Answers not sent because of the answer rate limit. */
  answersSuppressed: number;
  /** New hubs not listed because the list was full. */
  entriesDropped: number;
}

/** Everything a discovery component tried, for the `discover` command and logs. */
export interface DiscoveryDiagnostics {
  via: DiscoveryVia;
  role: 'announcer' | 'browser' | 'publisher';
  started: boolean;
  families: FamilyDiagnostics[];
  counters: DiscoveryCounters;
  /** Addresses queried by unicast, if any. */
  unicastTargets?: string[];
}

/**
 * The child's side of discovery: a source of hints about hubs. Implementations:
 * `HubBrowser` (multicast), `DnsSdBrowser` (DNS-SD over mDNS), `DiscoverySet` (several at once).
 */
export interface Discovery extends Startable {
  on<E extends keyof DiscoveryEvents>(event: E, listener: (...args: DiscoveryEvents[E]) => void): this;
  off<E extends keyof DiscoveryEvents>(event: E, listener: (...args: DiscoveryEvents[E]) => void): this;
  /** Every hub currently known (copies), oldest first. */
  list(): DiscoveredHub[];
  /** Ask hubs to answer now. Does nothing when not started. */
  query(): void;
  /** What was tried: interfaces, groups, errors, counters. */
  diagnostics(): DiscoveryDiagnostics[];
}

/** Counters of a discovery component, all at zero. */
export function emptyCounters(): DiscoveryCounters {
  return {
    received: 0,
    malformed: 0,
    oversized: 0,
    ignored: 0,
    sent: 0,
    sendErrors: 0,
    queries: 0,
    answersSuppressed: 0,
    entriesDropped: 0,
  };
}
