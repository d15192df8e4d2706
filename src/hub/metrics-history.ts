import type { Clock, Startable, Timer } from '../lifecycle.js';
import type { Throughput } from './child-sessions.js';

/** One point of a chart: rates per second over the step before `at`, and the devices connected at `at`. */
export interface MetricsSample {
  at: number;
  changesIn: number;
  changesOut: number;
  bytesIn: number;
  bytesOut: number;
  connected: number;
}

/** The windows the hub keeps: the last hour by 10 s, the last day by minute. */
export type MetricsWindow = '1h' | '24h';

/** A window's samples, oldest first. */
export interface MetricsSeries {
  window: MetricsWindow;
  /** Milliseconds between samples. */
  stepMs: number;
  samples: MetricsSample[];
}

export interface MetricsHistoryOptions {
  /** Changes and bytes moved with children since the hub started (never decreasing). */
  totals: () => Throughput;
  /** Devices connected now. */
  connected: () => number;
  clock: Clock;
  /** Step of the hour's samples (ms). Default 10 s; a day's step is six of them. */
  sampleMs?: number;
  /** Where the samples are kept between runs: loaded at start, saved each day step and at stop. */
  persist?: { load(): Promise<string | undefined>; save(text: string): Promise<void> };
}

/** One step of a window and the totals at its last sample. */
class Ring {
  readonly samples: MetricsSample[] = [];
  last: { at: number; totals: Throughput };

  constructor(
    readonly stepMs: number,
    readonly size: number,
    start: { at: number; totals: Throughput },
  ) {
    this.last = start;
  }

  /** Adds a sample once a step has passed since the last; rates over the time that really passed. */
  offer(at: number, totals: Throughput, connected: number): void {
    if (at - this.last.at < this.stepMs) return;
    const seconds = (at - this.last.at) / 1000;
    const rate = (key: keyof Throughput) => Math.max(0, (totals[key] - this.last.totals[key]) / seconds);
    this.samples.push({
      at,
      changesIn: rate('changesIn'),
      changesOut: rate('changesOut'),
      bytesIn: rate('bytesIn'),
      bytesOut: rate('bytesOut'),
      connected,
    });
    if (this.samples.length > this.size) this.samples.splice(0, this.samples.length - this.size);
    this.last = { at, totals };
  }
}

/**
 * The hub's throughput and connected devices over the last hour (every 10 s) and
 * the last day (every minute), from counters the child sessions already keep:
 * sampled on a timer of the injected clock and, with `persist`, saved every minute
 * and at stop, so a restart leaves a gap in the charts rather than empty ones.
 */
export class MetricsHistory implements Startable {
  private readonly o: MetricsHistoryOptions;
  private readonly sampleMs: number;
  private hour: Ring | undefined;
  private day: Ring | undefined;
  private timer: Timer | undefined;

  constructor(options: MetricsHistoryOptions) {
    this.o = options;
    this.sampleMs = options.sampleMs ?? 10_000;
  }

  isStarted(): boolean {
    return this.timer !== undefined;
  }

  async start(): Promise<void> {
    if (this.timer) return;
    const now = this.o.clock.now();
    const start = { at: now, totals: this.o.totals() };
    this.hour = new Ring(this.sampleMs, Math.round(3600_000 / this.sampleMs), start);
    this.day = new Ring(this.sampleMs * 6, Math.round(86_400_000 / (this.sampleMs * 6)), start);
    const saved = parseSaved(await this.o.persist?.load().catch(() => undefined));
    for (const [ring, samples, span] of [
      [this.hour, saved?.hour, 3600_000],
      [this.day, saved?.day, 86_400_000],
    ] as const) {
      if (samples)
        ring.samples.push(...samples.filter((x) => x.at > now - span && x.at <= now).slice(-ring.size));
    }
    this.timer = this.o.clock.setInterval(() => this.sample(), this.sampleMs);
  }

  async stop(): Promise<void> {
    if (!this.timer) return;
    this.timer.cancel();
    this.timer = undefined;
    await this.save();
  }

  /** Takes a sample now (the timer calls it every step). */
  sample(): void {
    const at = this.o.clock.now();
    const totals = this.o.totals();
    const connected = this.o.connected();
    this.hour?.offer(at, totals, connected);
    const before = this.day?.last.at;
    this.day?.offer(at, totals, connected);
    if (this.day && this.day.last.at !== before) void this.save();
  }

  private async save(): Promise<void> {
    if (!this.o.persist || !this.hour || !this.day) return;
    await this.o.persist
      .save(JSON.stringify({ hour: this.hour.samples, day: this.day.samples }))
      .catch(() => undefined);
  }

  /** The window's samples, oldest first; empty before the first step has passed. */
  series(window: MetricsWindow): MetricsSeries {
    const ring = window === '1h' ? this.hour : this.day;
    const stepMs = window === '1h' ? this.sampleMs : this.sampleMs * 6;
    return { window, stepMs, samples: ring ? [...ring.samples] : [] };
  }
}

/** Saved samples, or undefined when there are none or they are not readable. */
function parseSaved(text: string | undefined): { hour?: MetricsSample[]; day?: MetricsSample[] } | undefined {
  if (!text) return undefined;
  try {
    const raw = JSON.parse(text) as { hour?: unknown; day?: unknown };
    const list = (v: unknown) =>
      Array.isArray(v)
        ? (v as MetricsSample[]).filter((x) => typeof x === 'object' && x !== null && Number.isFinite(x.at))
        : undefined;
    const hour = list(raw.hour);
    const day = list(raw.day);
    return { ...(hour && { hour }), ...(day && { day }) };
  } catch {
    return undefined;
  }
}
