/**
 * Option checks every discovery component shares, so that the multicast and DNS-SD
 * sides refuse the same bad input with the same INVALID_OPTION message.
 */
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lifecycle.js';
import { DEFAULT_SYNC_PORT, PROTOCOL_VERSIONS } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { DiscoveryOptionError } from './errors.js';
import type { InterfaceSelectionOptions, InterfaceTable } from './interfaces.js';
import type { AddressFamily } from './types.js';
import { isPort, isValidHubName, isVersionList } from './wire.js';

/** `value`, or `fallback` when it is undefined; an integer below `min` is refused. */
export function positiveInteger(
  option: string,
  value: number | undefined,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min)
    throw new DiscoveryOptionError(option, `must be an integer of at least ${min}, got ${String(value)}`);
  return value;
}

/** A UDP or TCP port, `fallback` when undefined. */
export function portOption(option: string, value: number | undefined, fallback: number): number {
  const port = value ?? fallback;
  if (!isPort(port)) throw new DiscoveryOptionError(option, 'must be an integer 1-65535');
  return port;
}

/** Where and how a discovery method (multicast or DNS-SD) opens its sockets. */
export interface SocketOptions extends InterfaceSelectionOptions {
  /** Address families to use. Default both, `[4, 6]`; a family that cannot bind is recorded and skipped. */
  families?: readonly AddressFamily[];
  logger?: Logger;
  /** Time and timers: announcements, queries, expiry sweeps, time limits. Default the system clock. */
  clock?: Clock;
  /** The interface table (default `os.networkInterfaces`); for tests that describe a machine. */
  interfaceTable?: InterfaceTable;
}

/** {@link SocketOptions} checked, with the port the method binds. */
export interface ResolvedSockets {
  port: number;
  families: AddressFamily[];
  selection: InterfaceSelectionOptions;
  clock: Clock;
  table: InterfaceTable | undefined;
}

/** Checks the socket options; `port` is the method's own option (named `portName`), `fallback` its default. */
export function resolveSockets(
  o: SocketOptions,
  portName: string,
  port: number | undefined,
  fallback: number,
): ResolvedSockets {
  return {
    port: portOption(portName, port, fallback),
    families: resolveFamilies(o.families),
    selection: resolveSelection(o),
    clock: o.clock ?? systemClock,
    table: o.interfaceTable,
  };
}

/** The address families to use, each once; both by default. */
export function resolveFamilies(families: readonly AddressFamily[] | undefined): AddressFamily[] {
  const list = [...new Set<AddressFamily>(families ?? [4, 6])];
  if (list.length === 0 || list.some((f) => f !== 4 && f !== 6))
    throw new DiscoveryOptionError('families', 'list 4, 6 or both');
  return list;
}

/** A copy of the interface selection, checked: the options may come from a config file. */
export function resolveSelection(o: InterfaceSelectionOptions): InterfaceSelectionOptions {
  if (
    o.interfaces !== undefined &&
    (!Array.isArray(o.interfaces) || o.interfaces.some((n) => typeof n !== 'string'))
  )
    throw new DiscoveryOptionError('interfaces', 'must be a list of interface names, e.g. ["eth0"]');
  const s: InterfaceSelectionOptions = {};
  if (o.interfaces !== undefined) s.interfaces = [...o.interfaces];
  if (o.includeLoopback !== undefined) s.includeLoopback = o.includeLoopback;
  return s;
}

/** What a hub tells the link about itself, by multicast announcement and by DNS-SD alike. */
export interface HubIdentityOptions {
  /** The hub's device ID (SHA-256 of its certificate). */
  deviceId: DeviceId;
  /** Name shown to people choosing a hub: 1-64 characters, no control characters. */
  name: string;
  /** TCP port of the hub's sync service. Default 17700. */
  syncPort?: number;
  /** Protocol versions advertised. Default PROTOCOL_VERSIONS. */
  versions?: readonly number[];
}

/** {@link HubIdentityOptions}, checked and with the defaults filled in. */
export interface HubIdentity {
  deviceId: DeviceId;
  name: string;
  syncPort: number;
  versions: number[];
}

export function resolveHubIdentity(o: HubIdentityOptions): HubIdentity {
  if (!isDeviceId(o.deviceId))
    throw new DiscoveryOptionError('deviceId', 'must be the hub device ID as 64 lowercase hex characters');
  if (!isValidHubName(o.name))
    throw new DiscoveryOptionError('name', 'must be 1-64 characters without control characters');
  const syncPort = portOption('syncPort', o.syncPort, DEFAULT_SYNC_PORT);
  const versions = [...(o.versions ?? PROTOCOL_VERSIONS)];
  if (!isVersionList(versions)) throw new DiscoveryOptionError('versions', 'must list 1-16 integers 1-65535');
  return { deviceId: o.deviceId, name: o.name, syncPort, versions };
}
