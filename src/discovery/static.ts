/**
 * Static hub addresses (for networks that block multicast), the child's memory of
 * the hub's last good address, and the order in which a child tries them all.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { connect, isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { DEFAULT_SYNC_PORT } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { InvalidStaticAddressError, LastAddressSaveError } from './errors.js';
import type { DiscoveredHub } from './types.js';
import { isPort } from './wire.js';

/** A parsed static hub address. */
export interface StaticAddress {
  /** IPv4 address, IPv6 address (without brackets, with `%scope` if given) or host name. */
  host: string;
  /** TCP port of the hub's sync service. */
  port: number;
  kind: 'ipv4' | 'ipv6' | 'hostname';
}

const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parsePort(input: string, text: string | undefined, defaultPort: number): number {
  if (text === undefined) return defaultPort;
  if (!/^\d{1,5}$/.test(text))
    throw new InvalidStaticAddressError(input, `port ${JSON.stringify(text)} is not a number`);
  const port = Number(text);
  if (!isPort(port)) throw new InvalidStaticAddressError(input, 'port must be 1-65535');
  return port;
}

function checkHostName(input: string, host: string): void {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (/^[\d.]+$/.test(name))
    throw new InvalidStaticAddressError(
      input,
      'looks like an IPv4 address but is not one (four numbers 0-255)',
    );
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => LABEL_RE.test(l)))
    throw new InvalidStaticAddressError(
      input,
      'not an IPv4 address, an [IPv6] address or a host name (letters, digits, dashes and dots)',
    );
}

/**
 * Parses one static hub address: `192.168.1.10:17700`, `[fd00::10]:17700`,
 * `hub.office.lan:17700`; without a port, `defaultPort` (the sync port 17700). An
 * IPv6 address with a port needs brackets. Throws INVALID_STATIC_ADDRESS with the reason.
 */
export function parseStaticAddress(input: string, defaultPort = DEFAULT_SYNC_PORT): StaticAddress {
  const text = input.trim();
  if (text.length === 0) throw new InvalidStaticAddressError(input, 'empty');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw new InvalidStaticAddressError(input, 'give host:port without a scheme such as tls://');
  if (/[\s/?#@]/.test(text)) throw new InvalidStaticAddressError(input, 'contains spaces, /, ?, # or @');
  if (text.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
    if (!m)
      throw new InvalidStaticAddressError(
        input,
        'an IPv6 address in brackets must look like [fd00::10]:17700',
      );
    const host = m[1] as string;
    if (!isIPv6(host)) throw new InvalidStaticAddressError(input, `${host} is not an IPv6 address`);
    return { host, port: parsePort(input, m[2], defaultPort), kind: 'ipv6' };
  }
  if (isIPv6(text)) return { host: text, port: defaultPort, kind: 'ipv6' };
  const colons = text.split(':').length - 1;
  if (colons > 1)
    throw new InvalidStaticAddressError(
      input,
      'an IPv6 address with a port needs brackets, e.g. [fd00::10]:17700',
    );
  const [host, portText] = colons === 1 ? (text.split(':') as [string, string]) : [text, undefined];
  const port = parsePort(input, portText, defaultPort);
  if (isIPv4(host)) return { host, port, kind: 'ipv4' };
  checkHostName(input, host);
  return { host: host.toLowerCase(), port, kind: 'hostname' };
}

/**
 * Parses a list of static addresses: an array, or one string separated by commas or
 * whitespace. Throws INVALID_STATIC_ADDRESS for the first bad entry.
 */
export function parseStaticAddresses(
  input: string | readonly string[],
  defaultPort = DEFAULT_SYNC_PORT,
): StaticAddress[] {
  const items = typeof input === 'string' ? input.split(/[\s,]+/) : [...input];
  return items.filter((s) => s.trim().length > 0).map((s) => parseStaticAddress(s, defaultPort));
}

/** The hub address a child last connected to successfully. */
export interface RememberedAddress {
  host: string;
  port: number;
  /** The hub's device ID, when the connection that succeeded was pinned to it. */
  deviceId?: DeviceId;
  /** When it was saved (ms since the epoch). */
  savedAt: number;
}

/** Options of {@link LastAddressMemory}. */
export interface LastAddressMemoryOptions {
  /** The child's data directory. */
  dataDir: string;
  /** File name inside it. Default `last-hub-address.json`. */
  fileName?: string;
  clock?: Clock;
  logger?: Logger;
}

/** A place a child may find its hub, in the order to try. */
export interface HubCandidate {
  host: string;
  port: number;
  /** Where the candidate came from. */
  source: 'last' | 'static' | 'multicast' | 'dns-sd';
  /** The device ID claimed (discovery) or remembered (last), if any. Unverified. */
  deviceId?: DeviceId;
  /** The announced name, for discovered hubs. */
  name?: string;
}

/**
 * The hub's last good address, kept in a small JSON file in the child's data
 * directory so that the next start tries it first. Written atomically (temporary
 * file, then rename), so a crash leaves the old file or the new one, never half of one.
 */
export class LastAddressMemory {
  /** Full path of the file. */
  readonly path: string;
  private readonly dataDir: string;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(options: LastAddressMemoryOptions) {
    this.dataDir = options.dataDir;
    this.path = join(options.dataDir, options.fileName ?? 'last-hub-address.json');
    this.clock = options.clock ?? systemClock;
    this.logger = componentLogger(options.logger ?? silentLogger, 'discovery', { role: 'last-address' });
  }

  /**
   * The remembered address, or undefined when there is none. A damaged file is
   * logged and treated as none: it only ever saves time, never decides anything.
   */
  async load(): Promise<RememberedAddress | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn(
          { path: this.path, err: (err as Error).message },
          'cannot read the last hub address',
        );
      return undefined;
    }
    try {
      const v = JSON.parse(text) as Record<string, unknown>;
      const host =
        typeof v.host === 'string' ? parseStaticAddress(formatHostPort(v.host, 1)).host : undefined;
      if (host === undefined || !isPort(v.port) || typeof v.savedAt !== 'number')
        throw new Error('missing fields');
      if (v.deviceId !== undefined && !isDeviceId(v.deviceId)) throw new Error('bad deviceId');
      const out: RememberedAddress = { host, port: v.port, savedAt: v.savedAt };
      if (v.deviceId !== undefined) out.deviceId = v.deviceId;
      return out;
    } catch (err) {
      this.logger.warn(
        { path: this.path, err: (err as Error).message },
        'ignoring a damaged last hub address file',
      );
      return undefined;
    }
  }

  /** Saves the address a connection just succeeded on. Throws LAST_ADDRESS_SAVE_FAILED. */
  async remember(address: { host: string; port: number; deviceId?: DeviceId }): Promise<RememberedAddress> {
    const saved: RememberedAddress = { host: address.host, port: address.port, savedAt: this.clock.now() };
    if (address.deviceId !== undefined) saved.deviceId = address.deviceId;
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(this.dataDir, { recursive: true });
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(saved)}\n`, 'utf8');
        // Flushed before the rename, so the new name never points at unwritten data.
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new LastAddressSaveError(this.path, err);
    }
    return saved;
  }

  /** Deletes the remembered address (e.g. after the device was paired with another hub). */
  async forget(): Promise<void> {
    await rm(this.path, { force: true });
  }

  /** {@link hubCandidates} with the remembered address loaded from the file. */
  async candidates(
    input: {
      statics?: readonly StaticAddress[];
      discovered?: readonly DiscoveredHub[];
      deviceId?: DeviceId;
    } = {},
  ): Promise<HubCandidate[]> {
    const last = await this.load();
    return hubCandidates({ ...input, ...(last && { last }) });
  }
}

/**
 * The order a child tries addresses in: the last good address first (it worked
 * before), then the static addresses in the order given, then discovered hubs
 * (multicast before DNS-SD, most recently heard first). Duplicates are dropped.
 *
 * With `deviceId` (the pinned hub), a remembered address of another hub and
 * discovered hubs claiming another ID are left out. Claims of the right ID are not
 * trusted, only preferred: the TLS handshake verifies the certificate.
 */
export function hubCandidates(input: {
  last?: RememberedAddress;
  statics?: readonly StaticAddress[];
  discovered?: readonly DiscoveredHub[];
  deviceId?: DeviceId;
}): HubCandidate[] {
  const { last, statics = [], discovered = [], deviceId } = input;
  const out: HubCandidate[] = [];
  const seen = new Set<string>();
  const add = (c: HubCandidate): void => {
    const key = formatHostPort(c.host.toLowerCase(), c.port);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(c);
  };
  if (last && (deviceId === undefined || last.deviceId === undefined || last.deviceId === deviceId)) {
    add({
      host: last.host,
      port: last.port,
      source: 'last',
      ...(last.deviceId && { deviceId: last.deviceId }),
    });
  }
  for (const s of statics) add({ host: s.host, port: s.port, source: 'static' });
  const rank = (h: DiscoveredHub): number => (h.via === 'multicast' ? 0 : h.via === 'dns-sd' ? 1 : 2);
  const hubs = discovered
    .filter((h) => deviceId === undefined || h.deviceId === deviceId)
    .sort((a, b) => rank(a) - rank(b) || b.lastSeen - a.lastSeen);
  for (const h of hubs) {
    add({
      host: h.address,
      port: h.port,
      source: h.via === 'dns-sd' ? 'dns-sd' : h.via === 'static' ? 'static' : 'multicast',
      deviceId: h.deviceId,
      name: h.name,
    });
  }
  return out;
}

/**
 * The first candidate that accepts a TCP connection, tried one after the other, each
 * for at most `timeoutMs` (default 1 000). Only reachability: whether the peer is the
 * right hub is for the TLS handshake that follows.
 */
export async function firstReachable(
  candidates: readonly HubCandidate[],
  options: { timeoutMs?: number; signal?: AbortSignal; clock?: Clock } = {},
): Promise<HubCandidate | undefined> {
  const timeoutMs = options.timeoutMs ?? 1_000;
  for (const c of candidates) {
    options.signal?.throwIfAborted();
    if (await tcpReachable(c.host, c.port, timeoutMs, options.signal, options.clock)) return c;
  }
  return undefined;
}

/** True when a TCP connection to host:port opens within `timeoutMs` (on `clock`). Never rejects. */
export function tcpReachable(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
  clock: Clock = systemClock,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = clock.setTimeout(() => done(false), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
