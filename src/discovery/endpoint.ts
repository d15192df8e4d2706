/**
 * One address family's multicast sockets, shared by every discovery component
 * (Trosyn announcements and DNS-SD alike): bind, join the groups on every chosen
 * interface, send to the groups through each interface, and record what happened.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import { DiscoveryBindError } from './errors.js';
import {
  type InterfaceFlagsReader,
  type InterfaceSelectionOptions,
  type InterfaceTable,
  type SelectedInterface,
  selectInterfaces,
} from './interfaces.js';
import type { AddressFamily, FamilyDiagnostics, InterfaceDiagnostics, InterfaceError } from './types.js';

/** Which socket a datagram arrived on. */
export type EndpointSocket = 'listen' | 'ephemeral';

/** Options of a {@link MulticastEndpoint}. */
export interface MulticastEndpointOptions {
  family: AddressFamily;
  /** UDP port of the listening socket (bound with SO_REUSEADDR so several programs share it). */
  port: number;
  /** Groups joined on every chosen interface. */
  groups: readonly string[];
  selection: InterfaceSelectionOptions;
  /** Multicast TTL / hop limit. */
  ttl: number;
  /**
   * The socket datagrams leave from. `ephemeral`: a socket of its own on a random
   * port, so unicast answers come back to this process alone (a unicast datagram to a
   * port several processes share reaches only one of them). `listen`: the listening
   * socket, for mDNS, whose multicast messages must come from port 5353.
   */
  sendFrom: EndpointSocket;
  onMessage: (data: Buffer, rinfo: RemoteInfo, socket: EndpointSocket) => void;
  logger: Logger;
  clock: Clock;
  table?: InterfaceTable;
  flagsOf?: InterfaceFlagsReader;
}

interface Membership {
  iface: SelectedInterface;
  diag: InterfaceDiagnostics;
}

const MAX_ERRORS_KEPT = 10;

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for an IPv6 group of link-local (or interface-local) scope, which needs a `%scope` to send to. */
function isLinkScopeGroup(group: string): boolean {
  return /^ff[0-9a-f][12]:/i.test(group);
}

/** The address family a datagram came from. */
export function familyOfRemote(rinfo: RemoteInfo): AddressFamily {
  // Node 18.0-18.3 reported the family as a number.
  return (rinfo.family as unknown) === 4 || rinfo.family === 'IPv4' ? 4 : 6;
}

/**
 * The sockets of one family. Not a Startable itself: the component that owns it
 * (announcer, browser, publisher) starts and stops it and exposes the lifecycle.
 */
export class MulticastEndpoint {
  private readonly o: MulticastEndpointOptions;
  private listen: Socket | undefined;
  private ephemeral: Socket | undefined;
  private readonly memberships = new Map<string, Membership>();
  private skipped: { name: string; reason: string }[] = [];
  private bindError: string | undefined;
  private closed = true;
  // Sends run one at a time: the multicast interface is a socket option, so the next
  // send may only change it once the previous datagram has left.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: MulticastEndpointOptions) {
    this.o = options;
  }

  get family(): AddressFamily {
    return this.o.family;
  }

  /** True while the listening socket is bound. */
  get bound(): boolean {
    return this.listen !== undefined;
  }

  /**
   * Binds the sockets and joins the groups. Resolves false (and records why) when the
   * family cannot be used, e.g. IPv6 disabled; never rejects.
   */
  async open(): Promise<boolean> {
    if (!this.closed) return this.bound;
    this.closed = false;
    this.bindError = undefined;
    this.memberships.clear();
    this.skipped = [];
    const type = this.o.family === 4 ? 'udp4' : 'udp6';
    const any = this.o.family === 4 ? '0.0.0.0' : '::';
    try {
      this.listen = await this.bindSocket(type, this.o.port, any, 'listen');
      if (this.o.sendFrom === 'ephemeral') this.ephemeral = await this.bindSocket(type, 0, any, 'ephemeral');
    } catch (err) {
      this.bindError = `${errorCode(err)}: ${errorMessage(err)}`;
      this.o.logger.warn({ family: this.o.family, port: this.o.port, err: this.bindError }, 'cannot bind');
      await this.close();
      this.closed = true;
      return false;
    }
    for (const socket of [this.listen, this.ephemeral]) {
      if (!socket) continue;
      try {
        socket.setMulticastTTL(this.o.ttl);
        socket.setMulticastLoopback(true);
      } catch (err) {
        this.o.logger.warn({ family: this.o.family, err: errorMessage(err) }, 'cannot set multicast options');
      }
    }
    this.refresh();
    return true;
  }

  private bindSocket(
    type: 'udp4' | 'udp6',
    port: number,
    address: string,
    kind: EndpointSocket,
  ): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type, reuseAddr: true, ipv6Only: type === 'udp6' });
      const onError = (err: Error): void => {
        socket.removeListener('listening', onListening);
        try {
          socket.close();
        } catch {
          // Closing a socket that never bound may throw; it holds nothing either way.
        }
        reject(err);
      };
      const onListening = (): void => {
        socket.removeListener('error', onError);
        // Errors after binding are reported per send; this keeps a stray one from crashing the process.
        socket.on('error', (err) =>
          this.o.logger.warn({ family: this.o.family, err: errorMessage(err) }, 'socket error'),
        );
        socket.on('message', (data, rinfo) => this.o.onMessage(data, rinfo, kind));
        resolve(socket);
      };
      socket.once('error', onError);
      socket.once('listening', onListening);
      socket.bind({ port, address, exclusive: false });
    });
  }

  /**
   * Re-reads the interface table: joins the groups on interfaces that appeared (a
   * cable plugged in, Wi-Fi joined) and forgets those that went away. Cheap; the
   * owners call it on every periodic tick and query. Returns how many interfaces are new.
   */
  refresh(): number {
    const listen = this.listen;
    if (!listen) return 0;
    let added = 0;
    const { selected, skipped } = selectInterfaces(
      this.o.family,
      this.o.selection,
      this.o.table,
      this.o.flagsOf,
    );
    this.skipped = skipped;
    const present = new Set(selected.map((i) => i.name));
    for (const [name, m] of this.memberships) {
      if (present.has(name)) continue;
      for (const group of m.diag.joined) {
        try {
          listen.dropMembership(group, m.iface.membershipAddress);
        } catch {
          // The interface is gone and its memberships with it.
        }
      }
      this.memberships.delete(name);
    }
    for (const iface of selected) {
      let m = this.memberships.get(iface.name);
      if (!m) {
        m = {
          iface,
          diag: {
            name: iface.name,
            family: this.o.family,
            addresses: iface.addresses,
            joined: [],
            sent: 0,
            errors: [],
          },
        };
        this.memberships.set(iface.name, m);
        added++;
      } else if (m.iface.membershipAddress !== iface.membershipAddress) {
        // The IPv4 address changed (DHCP): memberships were bound to the old one.
        for (const group of m.diag.joined) {
          try {
            listen.dropMembership(group, m.iface.membershipAddress);
          } catch {
            // Already gone with the old address.
          }
        }
        m.diag.joined = [];
        m.iface = iface;
      }
      m.diag.addresses = iface.addresses;
      for (const group of this.o.groups) {
        if (m.diag.joined.includes(group)) continue;
        try {
          listen.addMembership(group, iface.membershipAddress);
          m.diag.joined.push(group);
        } catch (err) {
          this.recordError(m.diag, 'join', err, group);
        }
      }
    }
    return added;
  }

  private recordError(
    diag: InterfaceDiagnostics,
    op: InterfaceError['op'],
    err: unknown,
    group?: string,
  ): void {
    const entry: InterfaceError = {
      op,
      code: errorCode(err),
      message: errorMessage(err),
      at: this.o.clock.now(),
    };
    if (group !== undefined) entry.group = group;
    const last = diag.errors[diag.errors.length - 1];
    // A periodic send failing the same way every time would otherwise flood the log.
    if (!last || last.op !== op || last.code !== entry.code || last.group !== group)
      this.o.logger.debug(
        { iface: diag.name, family: this.o.family, op, group, code: entry.code },
        entry.message,
      );
    diag.errors.push(entry);
    if (diag.errors.length > MAX_ERRORS_KEPT) diag.errors.splice(0, diag.errors.length - MAX_ERRORS_KEPT);
  }

  private sender(): Socket | undefined {
    return this.o.sendFrom === 'listen' ? this.listen : this.ephemeral;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private sendRaw(socket: Socket, data: Buffer, port: number, address: string): Promise<Error | undefined> {
    return new Promise((resolve) => {
      // Node drops the callback of a send still waiting for its address lookup when the
      // socket closes; settling on 'close' keeps the queue from stalling for good.
      const onClose = (): void => resolve(new Error('socket closed'));
      socket.once('close', onClose);
      try {
        socket.send(data, port, address, (err) => {
          socket.removeListener('close', onClose);
          resolve(err ?? undefined);
        });
      } catch (err) {
        socket.removeListener('close', onClose);
        resolve(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /**
   * Sends `data` to every group through every chosen interface (to `port`, by default
   * the endpoint's own). Resolves with how many sends succeeded and how many failed;
   * failures are recorded per interface, never thrown.
   */
  sendToGroups(data: Buffer, port = this.o.port): Promise<{ sent: number; failed: number }> {
    return this.enqueue(async () => {
      let sent = 0;
      let failed = 0;
      for (const m of [...this.memberships.values()]) {
        for (const group of this.o.groups) {
          const socket = this.sender();
          if (!socket || this.closed) return { sent, failed };
          try {
            socket.setMulticastInterface(m.iface.membershipAddress);
          } catch (err) {
            this.recordError(m.diag, 'set-interface', err, group);
            failed++;
            continue;
          }
          const target = this.o.family === 6 && isLinkScopeGroup(group) ? `${group}%${m.iface.name}` : group;
          const err = await this.sendRaw(socket, data, port, target);
          if (err) {
            this.recordError(m.diag, 'send', err, group);
            failed++;
          } else {
            m.diag.sent++;
            sent++;
          }
        }
      }
      return { sent, failed };
    });
  }

  /** Sends `data` to one address (a unicast answer or probe). Resolves with the error, if any. */
  sendTo(data: Buffer, address: string, port: number): Promise<Error | undefined> {
    return this.enqueue(async () => {
      const socket = this.sender();
      if (!socket || this.closed) return new Error('endpoint closed');
      return this.sendRaw(socket, data, port, address);
    });
  }

  /** Closes both sockets (leaving every group). Safe to call at any time, twice. */
  async close(): Promise<void> {
    this.closed = true;
    const sockets = [this.listen, this.ephemeral].filter((s): s is Socket => s !== undefined);
    this.listen = undefined;
    this.ephemeral = undefined;
    // The memberships stay listed (with bound: false) so a report made after stop() still shows what was tried.
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            try {
              s.close(() => resolve());
            } catch {
              resolve();
            }
          }),
      ),
    );
  }

  /** The family's state for the diagnostics report (a copy). */
  diagnostics(): FamilyDiagnostics {
    const d: FamilyDiagnostics = {
      family: this.o.family,
      port: this.o.port,
      groups: [...this.o.groups],
      bound: this.bound,
      interfaces: [...this.memberships.values()].map((m) => ({
        ...m.diag,
        addresses: [...m.diag.addresses],
        joined: [...m.diag.joined],
        errors: m.diag.errors.map((e) => ({ ...e })),
      })),
      skipped: this.skipped.map((s) => ({ ...s })),
    };
    if (this.bindError !== undefined) d.bindError = this.bindError;
    return d;
  }
}

/**
 * Opens every family's endpoint. A family that cannot bind is only recorded (IPv6 may
 * be disabled); when none binds, every endpoint is closed again and the start fails
 * with DISCOVERY_BIND_FAILED, naming each family's reason.
 */
export async function openEndpoints(endpoints: readonly MulticastEndpoint[], port: number): Promise<void> {
  const results = await Promise.all(endpoints.map((e) => e.open()));
  if (results.some(Boolean)) return;
  await Promise.all(endpoints.map((e) => e.close()));
  throw new DiscoveryBindError(
    port,
    endpoints.map((e) => {
      const d = e.diagnostics();
      return `IPv${d.family}: ${d.bindError ?? 'not bound'}`;
    }),
  );
}
