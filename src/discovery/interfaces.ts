/**
 * Which network interfaces discovery uses, per address family.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { AddressFamily } from './types.js';

/** Options that choose the interfaces discovery joins and sends on. */
export interface InterfaceSelectionOptions {
  /**
   * Interface names to use, e.g. `['eth0']`. Named interfaces are used even when they
   * are loopback. Default: every interface that is up, multicast-capable and has an
   * address of the family, except loopback (see `includeLoopback`).
   */
  interfaces?: readonly string[];
  /**
   * With the default interface list, also use loopback interfaces. Default false:
   * on a real network the hub and its children are on different machines; tests and
   * a child running on the hub's own machine may want it.
   */
  includeLoopback?: boolean;
}

/** An interface chosen for one family. */
export interface SelectedInterface {
  name: string;
  family: AddressFamily;
  /** Its addresses of that family, IPv6 without scope. */
  addresses: string[];
  /** What `addMembership` / `setMulticastInterface` take: an IPv4 address, or `::%name`. */
  membershipAddress: string;
  /** True for loopback interfaces. */
  internal: boolean;
}

/** The interfaces chosen for one family, and those left out with the reason. */
export interface InterfaceSelection {
  selected: SelectedInterface[];
  skipped: { name: string; reason: string }[];
}

/** Reads the interface table; injectable so tests can describe any machine. */
export type InterfaceTable = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Reads an interface's flags (IFF_*), or undefined where the platform does not tell. */
export type InterfaceFlagsReader = (name: string) => number | undefined;

const IFF_UP = 0x1;
const IFF_MULTICAST = 0x1000;

/**
 * Linux publishes each interface's flags in sysfs; Node's interface table does not
 * carry them. Elsewhere (or when sysfs is not mounted) nothing is known and the
 * interface is tried: a failing join then shows up in the diagnostics instead.
 */
export const sysfsInterfaceFlags: InterfaceFlagsReader = (name) => {
  if (process.platform !== 'linux' || !/^[\w.:@-]+$/.test(name)) return undefined;
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
  } catch {
    return undefined;
  }
};

function familyOf(info: NetworkInterfaceInfo): AddressFamily {
  // Node 18.0-18.3 reported the family as a number; later versions as 'IPv4'/'IPv6'.
  return (info.family as unknown) === 4 || info.family === 'IPv4' ? 4 : 6;
}

/**
 * Chooses the interfaces for one family. Never throws: an interface that cannot be
 * used is listed in `skipped` with the reason, for the diagnostics report.
 */
export function selectInterfaces(
  family: AddressFamily,
  options: InterfaceSelectionOptions = {},
  table: InterfaceTable = networkInterfaces,
  flagsOf: InterfaceFlagsReader = sysfsInterfaceFlags,
): InterfaceSelection {
  const all = table();
  const selected: SelectedInterface[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const explicit = options.interfaces !== undefined;
  const names = explicit ? [...new Set(options.interfaces)] : Object.keys(all);
  const label = family === 4 ? 'IPv4' : 'IPv6';
  for (const name of names) {
    const infos = all[name];
    if (!infos || infos.length === 0) {
      // Node lists only interfaces that are up and have an address.
      skipped.push({ name, reason: 'not found, down, or without any address' });
      continue;
    }
    const own = infos.filter((i) => familyOf(i) === family);
    if (own.length === 0) {
      skipped.push({ name, reason: `no ${label} address` });
      continue;
    }
    const internal = own.some((i) => i.internal);
    if (internal && !explicit && !options.includeLoopback) {
      skipped.push({ name, reason: 'loopback (enable includeLoopback or name it in interfaces)' });
      continue;
    }
    const flags = flagsOf(name);
    if (flags !== undefined && (flags & IFF_UP) === 0) {
      skipped.push({ name, reason: 'interface is down' });
      continue;
    }
    // Loopback has no IFF_MULTICAST yet carries IPv4 multicast within the machine.
    if (flags !== undefined && (flags & IFF_MULTICAST) === 0 && !(internal && family === 4)) {
      skipped.push({ name, reason: 'multicast is off on this interface (ip link set dev X multicast on)' });
      continue;
    }
    const addresses = own.map((i) => i.address.replace(/%.*$/, ''));
    selected.push({
      name,
      family,
      addresses,
      membershipAddress: family === 4 ? (addresses[0] as string) : `::%${name}`,
      internal,
    });
  }
  return { selected, skipped };
}

/**
 * The local interface whose subnet holds `address`, if any: tells which interface an
 * IPv4 or global IPv6 datagram arrived on (Node does not expose IP_PKTINFO).
 * A scoped IPv6 address (`fe80::1%eth0`) names its interface itself.
 */
export function interfaceForAddress(
  address: string,
  table: InterfaceTable = networkInterfaces,
): string | undefined {
  const scope = /%(.+)$/.exec(address);
  if (scope) return scope[1];
  const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!type) return undefined;
  for (const [name, infos] of Object.entries(table())) {
    for (const info of infos ?? []) {
      if ((familyOf(info) === 4) !== (type === 'ipv4')) continue;
      const prefix = Number(info.cidr?.split('/')[1]);
      if (!Number.isInteger(prefix)) continue;
      const list = new BlockList();
      try {
        list.addSubnet(info.address.replace(/%.*$/, ''), prefix, type);
        if (list.check(address, type)) return name;
      } catch {
        // An address Node cannot parse is simply not matched.
      }
    }
  }
  return undefined;
}
