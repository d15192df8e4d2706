import { DEFAULT_EVENT_RETENTION_DAYS } from '../protocol/constants.js';
import { LIVE_ONLY_EVENT_TYPES } from './event-types.js';
import type { Logger } from 'pino';
import type { Clock, Startable, Timer } from '../lifecycle.js';
import { InvalidOptionError } from '../sync/errors.js';
import type { HubEvent, HubEventType } from './events.js';
import type { RegistryBackend, StoredEventQuery } from './registry-backend.js';

/** Events sent live only, never kept (see LIVE_ONLY_EVENT_TYPES). */
export const LIVE_ONLY_EVENTS: ReadonlySet<HubEventType> = new Set<HubEventType>(LIVE_ONLY_EVENT_TYPES);

export { DEFAULT_EVENT_RETENTION_DAYS };

const DAY_MS = 86_400_000;
/** Rows dropped per statement while pruning, so a long backlog never holds the database for long. */
const PRUNE_BATCH = 5000;

/** Where the log keeps events: the registry (hub.db), through its backend seam. */
export type HubEventStore = Pick<
  RegistryBackend,
  'appendEvents' | 'listEvents' | 'eventBounds' | 'pruneEvents'
>;

/** A hub event with the id the log gave it; live-only events have none. */
export interface LoggedEvent {
  id?: number;
  event: HubEvent;
}

/** Filters of the log, as the admin API takes them. */
export type EventLogQuery = Omit<StoredEventQuery, 'order' | 'afterId'>;

export interface EventLogOptions {
  store: HubEventStore;
  /** Days an event is kept. Default 30. */
  retentionDays?: number;
  /**
   * Events arriving within this many ms are written in one transaction, then sent
   * to the stream's subscribers with their ids. Default 100.
   */
  flushMs?: number;
  /** How often events past retention are dropped (ms), and once at start. Default 1 hour. */
  pruneEveryMs?: number;
  logger: Logger;
  clock: Clock;
}

/**
 * The hub's event log: every event worth keeping is written to the registry with an
 * increasing id, in batches (one transaction per `flushMs`, never a commit per
 * event on the sync path), and only then handed to subscribers, so an id a client
 * has seen is always one the log can resume from. Live-only events
 * (LIVE_ONLY_EVENTS) travel in the same ordered batches, without an id. Events
 * older than the retention are pruned at start and then periodically.
 */
export class EventLog implements Startable {
  private readonly o: Required<Omit<EventLogOptions, 'store' | 'logger' | 'clock'>> & EventLogOptions;
  private readonly listeners = new Set<(logged: LoggedEvent) => void>();
  private queue: HubEvent[] = [];
  private flushTimer: Timer | undefined;
  private pruneTimer: Timer | undefined;
  /** The flush under way: flushes run one at a time, so events keep their order. */
  private flushing: Promise<void> = Promise.resolve();
  private pruning: Promise<number> | undefined;
  private started = false;

  constructor(options: EventLogOptions) {
    const retentionDays = options.retentionDays ?? DEFAULT_EVENT_RETENTION_DAYS;
    if (!(Number.isFinite(retentionDays) && retentionDays > 0 && retentionDays <= 3650))
      throw new InvalidOptionError(
        'eventRetentionDays (--event-retention-days)',
        'must be a number of days above 0 and at most 3650',
      );
    this.o = { flushMs: 100, pruneEveryMs: 3600_000, ...options, retentionDays };
  }

  /** Days an event is kept. */
  get retentionDays(): number {
    return this.o.retentionDays;
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.prune();
    this.pruneTimer = this.o.clock.setInterval(() => {
      this.prune().catch((err: unknown) => this.o.logger.warn({ err }, 'could not prune the event log'));
    }, this.o.pruneEveryMs);
  }

  /** Writes what is queued and stops pruning; the store must still be open. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.pruneTimer?.cancel();
    this.pruneTimer = undefined;
    await this.flush();
    await this.pruning?.catch(() => undefined);
  }

  /** Queues an event: it is written with the next batch, then sent to subscribers. Never blocks. */
  append(event: HubEvent): void {
    this.queue.push(event);
    if (this.flushTimer === undefined)
      this.flushTimer = this.o.clock.setTimeout(() => void this.flush(), this.o.flushMs);
  }

  /** Writes the queued events now and sends them; resolves once they are sent. */
  flush(): Promise<void> {
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(() => this.write(batch));
    return this.flushing;
  }

  /** Calls `listener` with every event once written (with its id) or, live-only, as its batch goes out. */
  subscribe(listener: (logged: LoggedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Subscribers now (one per open event stream). */
  get subscribers(): number {
    return this.listeners.size;
  }

  /** Kept events matching `query`, newest first. */
  async list(query: EventLogQuery): Promise<Required<LoggedEvent>[]> {
    return (await this.o.store.listEvents({ ...query, order: 'desc' })).map(toLogged);
  }

  /** Kept events after `id`, oldest first, at most `limit`: what a client that saw `id` missed. */
  async after(id: number, limit: number): Promise<Required<LoggedEvent>[]> {
    return (await this.o.store.listEvents({ afterId: id, order: 'asc', limit })).map(toLogged);
  }

  /** The oldest id kept (undefined when none is) and the latest id given (0 before any). */
  bounds(): Promise<{ oldest: number | undefined; latest: number }> {
    return this.o.store.eventBounds();
  }

  /** Drops events older than the retention; returns how many. */
  prune(): Promise<number> {
    this.pruning ??= (async () => {
      const before = this.o.clock.now() - this.o.retentionDays * DAY_MS;
      let dropped = 0;
      for (;;) {
        const n = await this.o.store.pruneEvents(before, PRUNE_BATCH);
        dropped += n;
        if (n < PRUNE_BATCH) break;
      }
      if (dropped > 0)
        this.o.logger.info({ dropped, retentionDays: this.o.retentionDays }, 'event log pruned');
      return dropped;
    })().finally(() => {
      this.pruning = undefined;
    });
    return this.pruning;
  }

  private async write(batch: HubEvent[]): Promise<void> {
    const kept = batch.filter((e) => !LIVE_ONLY_EVENTS.has(e.type));
    let ids: number[] = [];
    try {
      if (kept.length > 0)
        ids = await this.o.store.appendEvents(
          kept.map((e) => ({ at: e.at, type: e.type, deviceId: deviceOf(e), data: JSON.stringify(e) })),
        );
    } catch (err) {
      // Still sent live, without ids: a client cannot resume from an event the log does not hold.
      // After stop (the registry closed) that is expected: the hub is going away.
      this.o.logger[this.started ? 'warn' : 'debug'](
        { err, events: kept.length },
        'could not write events to the event log',
      );
    }
    const idOf = new Map(kept.map((e, i) => [e, ids[i]]));
    for (const event of batch) {
      const id = idOf.get(event);
      const logged: LoggedEvent = id === undefined ? { event } : { id, event };
      for (const listener of this.listeners) {
        try {
          listener(logged);
        } catch (err) {
          this.o.logger.error({ err }, 'event log subscriber failed');
        }
      }
    }
  }
}

/** The device an event is about, if any: its `deviceId`, or its session's. */
export function deviceOf(event: HubEvent): string | null {
  if ('deviceId' in event && typeof event.deviceId === 'string') return event.deviceId;
  if ('session' in event) return event.session.deviceId;
  return null;
}

function toLogged(row: { id: number; data: string }): Required<LoggedEvent> {
  return { id: row.id, event: JSON.parse(row.data) as HubEvent };
}
