/**
 * What every hub-side discovery method does the same way: open its sockets, announce
 * at start, say goodbye (bounded) at stop, and report what it tried. A method
 * (multicast announcements, DNS-SD) adds what it sends and how it answers.
 */
import type { Logger } from 'pino';
import type { Clock, Startable, Timer } from '../lifecycle.js';
import { componentLogger, silentLogger } from '../observability/logger.js';
import { AnswerBudget } from './answer-budget.js';
import type { MulticastEndpoint } from './endpoint.js';
import { EndpointSet } from './endpoint-set.js';
import { positiveInteger, type ResolvedSockets } from './options.js';
import type { DiscoveryDiagnostics, DiscoveryVia } from './types.js';
import { emptyCounters } from './types.js';

/** How long stop() waits for the goodbye datagrams to leave (ms). */
const GOODBYE_TIMEOUT_MS = 500;

/** Options every advertiser takes, whatever the method. */
export interface AdvertiserOptions {
  /**
   * Most query answers per second; more are dropped (and counted) so that a flood of
   * queries cannot turn the hub into a traffic amplifier. Default 50.
   */
  maxAnswersPerSecond?: number;
}

/** How a method's advertiser is set up. */
export interface AdvertiserSetup extends AdvertiserOptions {
  via: DiscoveryVia;
  role: 'announcer' | 'publisher';
  /** The role in the log lines. */
  logRole: string;
  sockets: ResolvedSockets;
  logger: Logger | undefined;
}

/** The shared base of `HubAnnouncer` and `DnsSdPublisher`. */
export abstract class Advertiser implements Startable {
  protected readonly counters = emptyCounters();
  protected readonly clock: Clock;
  protected readonly logger: Logger;
  private readonly answers: AnswerBudget;
  private readonly endpointSet: EndpointSet;
  /** Counts starts, so work begun before a stop() and a new start() can tell it is stale. */
  private generation = 0;

  constructor(private readonly setup: AdvertiserSetup) {
    this.clock = setup.sockets.clock;
    this.logger = componentLogger(setup.logger ?? silentLogger, 'discovery', { role: setup.logRole });
    this.answers = new AnswerBudget(
      positiveInteger('maxAnswersPerSecond', setup.maxAnswersPerSecond, 50),
      this.clock,
    );
    this.endpointSet = new EndpointSet(() => this.endpoints(), setup.sockets.port, this.clock);
  }

  /** The method's sockets, one endpoint per address family. */
  protected abstract endpoints(): readonly MulticastEndpoint[];

  /** Tells the link about the hub (at start, then as the method schedules it). */
  protected abstract announce(): Promise<void>;

  /** Tells the link the hub is leaving; stop() waits for it at most half a second. */
  protected abstract goodbye(): Promise<void>;

  /** Runs once the first announcement has left, to schedule the next ones with `later()`. */
  protected abstract started(): void;

  /** True while the hub is announced: answers and scheduled announcements check it. */
  protected get isLive(): boolean {
    return this.endpointSet.isOpen;
  }

  /** Which start the advertiser is in; compare before continuing work that outlived an await. */
  protected get run(): number {
    return this.generation;
  }

  isStarted(): boolean {
    return this.endpointSet.isStarted();
  }

  /** Binds, joins the groups and announces. Rejects with DISCOVERY_BIND_FAILED when no family can bind. */
  start(): Promise<void> {
    return this.endpointSet.start(async () => {
      this.generation++;
      await this.announce();
      this.started();
    });
  }

  /** Says goodbye (best effort, bounded), then releases the sockets and timers. */
  stop(): Promise<void> {
    return this.endpointSet.stop(
      async () => {
        // A send that never completes (an interface gone mid-send) must not hold up the stop.
        let bound: Timer | undefined;
        await Promise.race([
          this.goodbye(),
          new Promise<void>((resolve) => (bound = this.clock.setTimeout(resolve, GOODBYE_TIMEOUT_MS))),
        ]);
        bound?.cancel();
      },
      () => this.logger.info('stopped announcing'),
    );
  }

  /** What the advertiser joined, sent and received. */
  diagnostics(): DiscoveryDiagnostics[] {
    return [
      {
        via: this.setup.via,
        role: this.setup.role,
        started: this.isStarted(),
        families: this.endpointSet.families(),
        counters: { ...this.counters },
      },
    ];
  }

  /** Counts a query that asks for this hub; false when this second's answers are used up. */
  protected mayAnswer(): boolean {
    this.counters.queries++;
    if (this.answers.take()) return true;
    this.counters.answersSuppressed++;
    return false;
  }

  /** Calls `fn` once, `ms` from now on the clock, unless the advertiser stopped by then. */
  protected later(fn: () => void, ms: number): void {
    this.endpointSet.later(fn, ms);
  }
}
