/**
 * What every child-side discovery method does the same way: the lifecycle of its
 * sockets and timers, the expiring list of hubs with its found and lost events, and
 * the diagnostics. A method (multicast, DNS-SD) adds only how it asks and how it reads
 * an answer.
 */
import type { RemoteInfo } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { familyOfRemote, type MulticastEndpoint } from './endpoint.js';
import { EndpointSet } from './endpoint-set.js';
import { HubTable } from './hub-table.js';
import { interfaceForAddress } from './interfaces.js';
import { positiveInteger, type ResolvedSockets } from './options.js';
import type {
  DiscoveredHub,
  Discovery,
  DiscoveryDiagnostics,
  DiscoveryEvents,
  DiscoveryVia,
} from './types.js';
import { emptyCounters } from './types.js';

/** Default time after which a hub not heard from is dropped (ms): three announce intervals. */
export const DEFAULT_EXPIRY_MS = 90_000;

/** Options every browser takes, whatever the method. */
export interface BrowserOptions {
  /**
   * A hub not heard from for this long (ms) is dropped and 'lost' is emitted. Default
   * 90 000, three announce (or query) intervals, so one or two lost datagrams drop nothing.
   */
  expiryMs?: number;
  /** How often expiry is checked (ms). Default a tenth of `expiryMs`, at least 10, at most 5 000. */
  sweepIntervalMs?: number;
  /**
   * Most entries kept. Entries are per (deviceId, address), and anyone on the LAN can
   * announce any number of them; new ones beyond this are dropped and counted. Default 256.
   */
  maxEntries?: number;
}

/** How a method's browser is set up: what the base needs beyond {@link BrowserOptions}. */
export interface BrowserSetup extends BrowserOptions {
  via: DiscoveryVia;
  /** The role in the log lines. */
  logRole: string;
  sockets: ResolvedSockets;
  logger: Logger | undefined;
  /** Query once the sockets are open. */
  queryOnStart: boolean;
  /** Query again this often (ms); undefined: only on start and on `query()`. */
  queryIntervalMs?: number;
}

/**
 * The shared base of `HubBrowser` and `DnsSdBrowser`. Entries are hints: nothing here
 * is verified, the transport's certificate pinning decides which hub is real.
 */
export abstract class DiscoveryBrowser<Note = undefined>
  extends EventEmitter<DiscoveryEvents>
  implements Discovery
{
  protected readonly counters = emptyCounters();
  protected readonly clock: Clock;
  protected readonly logger: Logger;
  protected readonly expiryMs: number;
  protected readonly maxEntries: number;
  protected readonly hubs: HubTable<Note>;
  private readonly sweepMs: number;
  private readonly endpointSet: EndpointSet;

  constructor(private readonly setup: BrowserSetup) {
    super();
    this.clock = setup.sockets.clock;
    this.logger = componentLogger(setup.logger ?? silentLogger, 'discovery', { role: setup.logRole });
    this.expiryMs = positiveInteger('expiryMs', setup.expiryMs, DEFAULT_EXPIRY_MS, 10);
    this.sweepMs = positiveInteger(
      'sweepIntervalMs',
      setup.sweepIntervalMs,
      Math.max(10, Math.min(5_000, Math.floor(this.expiryMs / 10))),
      10,
    );
    this.maxEntries = positiveInteger('maxEntries', setup.maxEntries, 256);
    this.hubs = new HubTable<Note>({
      expiryMs: this.expiryMs,
      maxEntries: this.maxEntries,
      clock: this.clock,
      logger: this.logger,
      locate: (address) => interfaceForAddress(address, setup.sockets.table),
      onFound: (hub) => this.emitSafely('found', hub),
      onLost: (hub) => this.emitSafely('lost', hub),
      onDropped: () => this.counters.entriesDropped++,
    });
    this.endpointSet = new EndpointSet(() => this.endpoints(), setup.sockets.port, this.clock);
  }

  /** The method's sockets, one endpoint per address family. */
  protected abstract endpoints(): readonly MulticastEndpoint[];

  /** Sends the method's query through its bound endpoints; called only while listening. */
  protected abstract ask(): void;

  /** Runs after each expiry sweep, for what the method keeps beside the table. */
  protected afterSweep(): void {}

  /** Runs at stop, once the sockets are closed, for what the method keeps beside the table. */
  protected forgetAll(): void {}

  /** True while datagrams are read and queries sent. */
  protected get isListening(): boolean {
    return this.endpointSet.isOpen;
  }

  isStarted(): boolean {
    return this.endpointSet.isStarted();
  }

  /** Binds, joins the groups and (by default) queries. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.endpointSet.start(() => {
      this.logger.debug({ via: this.setup.via, port: this.setup.sockets.port }, 'browsing for hubs');
      this.endpointSet.every(() => this.sweep(), this.sweepMs);
      if (this.setup.queryIntervalMs !== undefined)
        this.endpointSet.every(() => this.query(), this.setup.queryIntervalMs);
      if (this.setup.queryOnStart) this.query();
    });
  }

  /** Releases sockets and timers and forgets every entry (without emitting 'lost'). */
  stop(): Promise<void> {
    return this.endpointSet.stop(undefined, () => {
      this.hubs.clear();
      this.forgetAll();
    });
  }

  list(): DiscoveredHub[] {
    return this.hubs.list();
  }

  /** Asks hubs to answer now, on every interface; answers arrive as 'found'. Ignored while stopped. */
  query(): void {
    if (!this.isListening) {
      this.logger.debug('query() while stopped: ignored');
      return;
    }
    this.ask();
  }

  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: this.setup.via,
        role: 'browser',
        started: this.isStarted(),
        families: this.endpointSet.families(),
        counters: { ...this.counters },
      },
    ];
  }

  /** Lists (or refreshes) what a datagram from `rinfo` said about a hub. */
  protected sighted(
    rinfo: RemoteInfo,
    said: Pick<DiscoveredHub, 'deviceId' | 'name' | 'port' | 'versions'>,
    note: Note,
  ): void {
    this.hubs.see(
      {
        deviceId: said.deviceId,
        name: said.name,
        port: said.port,
        versions: said.versions,
        address: rinfo.address,
        family: familyOfRemote(rinfo),
        via: this.setup.via,
      },
      note,
    );
  }

  private sweep(): void {
    this.hubs.expire();
    this.afterSweep();
  }

  private emitSafely(event: keyof DiscoveryEvents, hub: DiscoveredHub): void {
    try {
      this.emit(event, hub);
    } catch (err) {
      // A listener's bug must not surface as an exception from the socket.
      this.logger.error({ err, event }, 'discovery listener threw');
    }
  }
}
