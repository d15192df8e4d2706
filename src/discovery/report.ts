/**
 * Turns a discovery attempt into lines a person can act on: what was found, what was
 * tried (interfaces, groups, errors) and, when nothing was found, the usual causes.
 */
import { DEFAULT_DISCOVERY_PORT, DISCOVERY_GROUP_V4 } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { formatDeviceId } from '../transport/device-id.js';
import type { DiscoveryAttempt } from './attempt.js';
import { formatHostPort, type StaticAddress } from './static.js';
import type { DiscoveredHub, DiscoveryDiagnostics, FamilyDiagnostics } from './types.js';

/** Extra facts for {@link describeAttempt}. */
export interface DescribeOptions {
  /** Static addresses configured on this device, if any. */
  statics?: readonly StaticAddress[];
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function hubLine(h: DiscoveredHub): string {
  const where = `${h.via} IPv${h.family}${h.interface ? ` on ${h.interface}` : ''}`;
  return `  ${h.name}  ${formatDeviceId(h.deviceId)}  ${formatHostPort(h.address, h.port)}  (${where}, protocol ${h.versions.join(', ')})`;
}

function roleTitle(d: DiscoveryDiagnostics): string {
  const method = d.via === 'dns-sd' ? 'DNS-SD' : d.via === 'multicast' ? 'Multicast' : 'Static';
  const port = d.families[0]?.port;
  const state = d.started ? '' : ', stopped';
  return `${method} ${d.role}${port === undefined ? '' : ` (UDP ${port}${state})`}:`;
}

function familyLines(f: FamilyDiagnostics): string[] {
  const label = `IPv${f.family} ${f.groups.join(', ')}`;
  if (!f.bound && f.bindError) return [`    ${label}: not used, bind failed: ${f.bindError}`];
  const lines: string[] = [];
  if (f.interfaces.length === 0) lines.push(`    ${label}: no usable interface`);
  for (const i of f.interfaces) {
    const joined =
      i.joined.length === f.groups.length
        ? 'joined'
        : i.joined.length === 0
          ? 'not joined'
          : `joined ${i.joined.join(', ')} only`;
    lines.push(`    ${label}: ${i.name} (${i.addresses.join(', ')}) ${joined}, ${i.sent} sent`);
    // The latest error of each kind: repeats of a periodic failure say nothing new.
    const latest = new Map<string, (typeof i.errors)[number]>();
    for (const e of i.errors) latest.set(`${e.op}|${e.group ?? ''}|${e.code}`, e);
    for (const e of latest.values())
      lines.push(
        // Node's messages mostly repeat the code and address; show them only when they say more.
        `      ${e.op}${e.group ? ` ${e.group}` : ''} failed: ${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}`,
      );
  }
  for (const s of f.skipped) lines.push(`    IPv${f.family} skipped ${s.name}: ${s.reason}`);
  return lines;
}

function allErrors(
  diagnostics: readonly DiscoveryDiagnostics[],
): { iface: string; code: string; op: string }[] {
  return diagnostics.flatMap((d) =>
    d.families.flatMap((f) =>
      f.interfaces.flatMap((i) => i.errors.map((e) => ({ iface: i.name, code: e.code, op: e.op }))),
    ),
  );
}

/** Findings specific to this attempt, before the general list of causes. */
function findings(diagnostics: readonly DiscoveryDiagnostics[]): string[] {
  const out: string[] = [];
  const families = diagnostics.flatMap((d) => d.families);
  for (const fam of [4, 6] as const) {
    const of = families.filter((f) => f.family === fam);
    if (of.length === 0) continue;
    if (of.every((f) => !f.bound)) {
      const why = of.find((f) => f.bindError)?.bindError ?? 'not bound';
      out.push(
        fam === 6
          ? `  - IPv6 could not be used (${why}): IPv6 may be disabled on this device; IPv4 alone is enough if the hub has it.`
          : `  - IPv4 could not be used (${why}): another program may hold UDP ${of[0]?.port} without sharing it.`,
      );
    } else if (of.every((f) => f.interfaces.length === 0)) {
      out.push(
        `  - No interface was usable for IPv${fam} (no interface up with an IPv${fam} address and multicast on).`,
      );
    }
  }
  const errors = allErrors(diagnostics);
  const unreachable = [
    ...new Set(
      errors.filter((e) => e.code === 'ENETUNREACH' || e.code === 'EHOSTUNREACH').map((e) => e.iface),
    ),
  ];
  if (unreachable.length > 0)
    out.push(
      `  - Sending on ${unreachable.join(', ')} failed with "network unreachable": there is no multicast route. Add one: ip route add 224.0.0.0/4 dev ${unreachable[0]}`,
    );
  const noAddr = [
    ...new Set(errors.filter((e) => e.code === 'EADDRNOTAVAIL' || e.code === 'ENODEV').map((e) => e.iface)),
  ];
  if (noAddr.length > 0)
    out.push(
      `  - Joining the groups failed on ${noAddr.join(', ')} (address or interface gone): it may have changed while looking.`,
    );
  const denied = [
    ...new Set(errors.filter((e) => e.code === 'EPERM' || e.code === 'EACCES').map((e) => e.iface)),
  ];
  if (denied.length > 0)
    out.push(
      `  - Sending on ${denied.join(', ')} was refused by the local firewall (EPERM): allow outgoing UDP ${DEFAULT_DISCOVERY_PORT}.`,
    );
  const received = diagnostics.reduce((n, d) => n + d.counters.received, 0);
  const malformed = diagnostics.reduce((n, d) => n + d.counters.malformed + d.counters.oversized, 0);
  if (malformed > 0)
    out.push(
      `  - ${malformed} datagram(s) were not valid discovery messages: another program may use the same port.`,
    );
  if (received === 0 && families.some((f) => f.interfaces.some((i) => i.sent > 0)))
    out.push('  - Queries went out but not a single datagram came back: nothing answered on this network.');
  return out;
}

const USUAL_CAUSES = [
  '  - The hub is not running, or runs on another network segment: on the hub machine check that the hub service is up.',
  `  - A firewall drops UDP ${DEFAULT_DISCOVERY_PORT} (and UDP 5353 for DNS-SD) on the hub or on this device: allow it in both directions.`,
  '  - Wi-Fi client isolation (AP isolation, guest networks) keeps wireless devices from reaching each other: turn it off, or use a cable or a static address.',
  `  - A VPN routes multicast into its tunnel: "ip route get ${DISCOVERY_GROUP_V4}" shows the interface used; disconnect the VPN or use a static address.`,
  '  - No multicast route on this device: ip route add 224.0.0.0/4 dev <interface>',
  '  - IPv6 disabled on one side while the other has only IPv6: enable IPv4 or IPv6 on both.',
  '  - Routers do not forward discovery between subnets: give this device the hub address, e.g. hub.example.lan:17700 or 192.168.1.10:17700.',
];

/**
 * Lines that describe an attempt for a person: the hubs found (device IDs in their
 * readable form) and what was tried; when nothing was found, what stood out and the
 * usual causes. Several addresses claiming one device ID are pointed out, because
 * only the certificate pinned at pairing can tell which is real.
 */
export function describeAttempt(attempt: DiscoveryAttempt, options: DescribeOptions = {}): string[] {
  const lines: string[] = [];
  const { hubs, diagnostics } = attempt;
  if (hubs.length === 0) lines.push(`No hub found after ${seconds(attempt.waitedMs)}.`);
  else {
    lines.push(`Found ${hubs.length} hub${hubs.length === 1 ? '' : 's'} in ${seconds(attempt.waitedMs)}:`);
    for (const h of hubs) lines.push(hubLine(h));
    const byId = new Map<DeviceId, Set<string>>();
    for (const h of hubs) byId.set(h.deviceId, (byId.get(h.deviceId) ?? new Set()).add(h.address));
    for (const [id, addresses] of byId) {
      if (addresses.size < 2) continue;
      lines.push(
        `Note: ${formatDeviceId(id)} was announced from ${addresses.size} addresses (${[...addresses].join(', ')}).`,
        '  A hub may have several addresses, but anyone can claim any device ID: the certificate pinned at pairing decides which one is the hub.',
      );
    }
  }
  lines.push('Tried:');
  for (const d of diagnostics) {
    lines.push(`  ${roleTitle(d)}`);
    for (const f of d.families) lines.push(...familyLines(f));
    const c = d.counters;
    lines.push(
      `    datagrams: ${c.received} received (${c.malformed} malformed, ${c.oversized} oversized, ${c.ignored} ignored), ${c.sent} sent, ${c.sendErrors} send errors`,
    );
  }
  if (options.statics && options.statics.length > 0)
    lines.push(
      `  Static addresses: ${options.statics.map((s) => formatHostPort(s.host, s.port)).join(', ')}`,
    );
  if (hubs.length === 0) {
    const specific = findings(diagnostics);
    if (specific.length > 0) lines.push('What stands out:', ...specific);
    lines.push('Usual causes:', ...USUAL_CAUSES);
  }
  return lines;
}
