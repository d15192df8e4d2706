/**
 * The doctor's LAN discovery report: per network interface, whether discovery could
 * join its IPv4 and IPv6 multicast groups and send on it, and which hubs answered
 * there within a short window. It runs discovery's own browser (the sockets, the
 * interface choice and the diagnostics a child uses), so what it reports is what a
 * child would meet.
 */
import { collectHubs, type DiscoveryAttempt } from '../discovery/attempt.js';
import { HubBrowser } from '../discovery/multicast.js';
import type { DiscoveredHub, FamilyDiagnostics } from '../discovery/types.js';
import { DEFAULT_DISCOVERY_PORT } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { formatDeviceId } from '../transport/device-id.js';
import type { Check, InterfaceDiscovery } from './doctor-check.js';

/** Options of {@link checkDiscovery}. */
export interface DiscoveryCheckOptions {
  /** How long to listen for answers (ms). */
  windowMs: number;
  /** The hub this child is paired with, if it is a child. */
  pairedHub?: DeviceId;
  /** This node's own device ID (a hub hears itself). */
  self?: DeviceId;
  /** UDP port of discovery. Default 17702. */
  discoveryPort?: number;
}

/** Asks on every interface for hubs and reports, per interface, what could be done and who answered. */
export async function checkDiscovery(o: DiscoveryCheckOptions): Promise<Check> {
  let attempt: DiscoveryAttempt;
  try {
    const browser = new HubBrowser({ discoveryPort: o.discoveryPort ?? DEFAULT_DISCOVERY_PORT });
    attempt = await collectHubs([browser], { timeoutMs: o.windowMs, requeryIntervalMs: 500 });
  } catch (err) {
    return {
      id: 'discovery',
      title: TITLE,
      status: 'warn',
      detail: `discovery cannot listen on this machine: ${(err as Error).message}`,
      fix: `another program may hold UDP ${o.discoveryPort ?? DEFAULT_DISCOVERY_PORT} without sharing it; children can still be given the hub's address (--hub HOST:PORT)`,
      interfaces: [],
    };
  }
  const interfaces = interfaceReport(attempt, o.pairedHub);
  return summarise(interfaces, attempt, o);
}

const TITLE = 'LAN discovery (multicast, per interface)';

/** Groups a discovery attempt's diagnostics and hubs by interface. */
export function interfaceReport(attempt: DiscoveryAttempt, pairedHub?: DeviceId): InterfaceDiscovery[] {
  const byName = new Map<string, InterfaceDiscovery>();
  const entry = (name: string): InterfaceDiscovery => {
    let e = byName.get(name);
    if (!e) {
      e = { name, status: 'skipped', families: [], hubs: [] };
      byName.set(name, e);
    }
    return e;
  };
  const families: FamilyDiagnostics[] = attempt.diagnostics.flatMap((d) => d.families);
  for (const f of families) {
    for (const i of f.interfaces) {
      const problems = new Map<string, string>();
      for (const e of i.errors)
        problems.set(
          `${e.op}|${e.group ?? ''}|${e.code}`,
          `${e.op}${e.group ? ` ${e.group}` : ''}: ${e.code}`,
        );
      entry(i.name).families.push({
        family: f.family,
        addresses: i.addresses,
        groups: f.groups,
        joined: i.joined,
        sent: i.sent,
        sendErrors: i.errors.filter((e) => e.op === 'send').length,
        problems: [...problems.values()],
      });
    }
  }
  for (const f of families)
    for (const s of f.skipped) {
      // Loopback is left out on purpose; an interface without one family's address is normal.
      if (s.reason.startsWith('loopback') || /^no IPv[46] address$/.test(s.reason)) continue;
      const e = entry(s.name);
      if (e.families.length === 0) e.skipped = e.skipped ?? s.reason;
    }
  for (const e of byName.values()) {
    if (e.families.length === 0) continue;
    delete e.skipped;
    e.status = e.families.some((f) => f.joined.length > 0 && f.sent > 0) ? 'ok' : 'failed';
  }
  const placed = new Set<DiscoveredHub>();
  for (const h of attempt.hubs) {
    const e = h.interface !== undefined ? byName.get(h.interface) : undefined;
    if (!e) continue;
    placed.add(h);
    if (e.hubs.some((x) => x.deviceId === h.deviceId && x.address === h.address)) continue;
    e.hubs.push(seen(h, pairedHub));
  }
  // A hub whose interface cannot be told goes with the interfaces of its family that are up.
  for (const h of attempt.hubs) {
    if (placed.has(h)) continue;
    for (const e of byName.values())
      if (e.status === 'ok' && e.families.some((f) => f.family === h.family && f.joined.length > 0))
        if (!e.hubs.some((x) => x.deviceId === h.deviceId && x.address === h.address))
          e.hubs.push(seen(h, pairedHub));
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function seen(h: DiscoveredHub, pairedHub: DeviceId | undefined): InterfaceDiscovery['hubs'][number] {
  return {
    deviceId: h.deviceId,
    name: h.name,
    address: h.address,
    port: h.port,
    family: h.family,
    paired: h.deviceId === pairedHub,
  };
}

/** One line per interface, for people. */
export function interfaceLines(interfaces: readonly InterfaceDiscovery[], self?: DeviceId): string[] {
  return interfaces.map((i) => {
    if (i.status === 'skipped') return `${i.name}: not used (${i.skipped ?? 'not usable'})`;
    const families = i.families.map((f) => {
      const state =
        f.joined.length === f.groups.length && f.sent > 0
          ? 'joined, sent'
          : f.joined.length === 0
            ? 'FAILED to join'
            : f.sent === 0
              ? `joined, FAILED to send`
              : `joined ${f.joined.join(', ')} only`;
      return `IPv${f.family} ${state}${f.problems.length > 0 ? ` (${f.problems.join('; ')})` : ''}`;
    });
    const hubs =
      i.hubs.length === 0
        ? 'no hub answered'
        : `hubs: ${[...new Set(i.hubs.map((h) => `${h.name}${h.paired ? ' (paired)' : h.deviceId === self ? ' (this hub)' : ''} ${formatDeviceId(h.deviceId).slice(0, 15)}`))].join(', ')}`;
    return `${i.name}: ${families.join('; ')}; ${hubs}`;
  });
}

function summarise(
  interfaces: InterfaceDiscovery[],
  attempt: DiscoveryAttempt,
  o: DiscoveryCheckOptions,
): Check {
  const lines = interfaceLines(interfaces, o.self);
  const base = { id: 'discovery' as const, title: TITLE, interfaces, lines };
  const ok = interfaces.filter((i) => i.status === 'ok');
  const failed = interfaces.filter((i) => i.status === 'failed');
  const window = `${(o.windowMs / 1000).toFixed(1)} s`;
  const port = o.discoveryPort ?? DEFAULT_DISCOVERY_PORT;
  const unbound = attempt.diagnostics
    .flatMap((d) => d.families)
    .filter((f) => !f.bound)
    .map((f) => `IPv${f.family}: ${f.bindError ?? 'not bound'}`);
  if (ok.length === 0) {
    const refused = failed.some((i) =>
      i.families.some((f) => f.problems.some((p) => /EPERM|EACCES/.test(p))),
    );
    const unreachable = failed.some((i) =>
      i.families.some((f) => f.problems.some((p) => /ENETUNREACH|EHOSTUNREACH/.test(p))),
    );
    return {
      ...base,
      status: 'warn',
      detail:
        interfaces.length === 0 || failed.length === 0
          ? `no network interface can carry discovery${unbound.length ? ` (${unbound.join('; ')})` : ''}: devices on the LAN cannot find each other`
          : `multicast fails on ${failed.map((i) => i.name).join(', ')}${refused ? ': sending is refused by a firewall on this machine (EPERM)' : unreachable ? ': there is no route for multicast' : ''}; devices on the LAN cannot find each other`,
      fix: refused
        ? `allow UDP ${port} to and from 239.255.77.2 and ff02::7702 / ff05::7702 in this machine's firewall (nft, ufw, Windows Defender Firewall), or give children the hub's address (--hub HOST:PORT)`
        : unreachable
          ? 'add a multicast route (ip route add 224.0.0.0/4 dev <interface>), or give children the hub address (--hub HOST:PORT)'
          : "connect the machine to the office network; where multicast cannot work, give children the hub's address (--hub HOST:PORT)",
    };
  }
  const partly = failed.length > 0 ? `; fails on ${failed.map((i) => i.name).join(', ')}` : '';
  if (o.pairedHub !== undefined) {
    const where = ok.filter((i) => i.hubs.some((h) => h.paired)).map((i) => i.name);
    if (where.length === 0)
      return {
        ...base,
        status: 'warn',
        detail: `multicast works on ${ok.map((i) => i.name).join(', ')}${partly}, but the paired hub did not answer on any interface within ${window}`,
        fix: `check that the hub runs with discovery on and is on this network segment, and that no firewall on either machine drops UDP ${port}; until then the child reaches the hub only at addresses it knows (--hub HOST:PORT)`,
      };
    return {
      ...base,
      status: 'ok',
      detail: `the paired hub answers on ${where.join(', ')}${partly}`,
    };
  }
  const heard = new Set(ok.flatMap((i) => i.hubs.map((h) => h.deviceId)));
  return {
    ...base,
    status: 'ok',
    detail: `multicast works on ${ok.map((i) => i.name).join(', ')}${partly}; ${heard.size === 0 ? 'no hub answered' : `${heard.size} hub${heard.size === 1 ? '' : 's'} answered`} within ${window}`,
  };
}
