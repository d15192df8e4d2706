/**
 * One bounded look for hubs through any discovery sources: what the `discover`
 * command and `findHub` run.
 */
import { type Clock, systemClock, type Timer } from '../lifecycle.js';
import type { DiscoveredHub, Discovery, DiscoveryDiagnostics } from './types.js';

/** The outcome of {@link collectHubs}: what was found and what was tried. */
export interface DiscoveryAttempt {
  /** Every hub the sources list at the end (one entry per method, deviceId and address). */
  hubs: DiscoveredHub[];
  /** The first hub that satisfied `until`, if one did. */
  match?: DiscoveredHub;
  /** What each source tried: interfaces, groups, errors, counters. */
  diagnostics: DiscoveryDiagnostics[];
  /** How long the attempt took (ms, on the clock). */
  waitedMs: number;
}

/** Options of {@link collectHubs}. */
export interface CollectHubsOptions {
  /** How long to look (ms, on the clock). Default 3 000. */
  timeoutMs?: number;
  /** Time between repeated queries (ms), in case a query or its answer was lost. Default 1 000. */
  requeryIntervalMs?: number;
  /** Stop as soon as a hub satisfies this; without it the attempt lasts `timeoutMs`. */
  until?: (hub: DiscoveredHub) => boolean;
  /** Aborts the attempt; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Time and timers for the time limit and the repeated queries. Default the system clock. */
  clock?: Clock;
}

/**
 * Starts the sources that are not started (and stops them again at the end), queries,
 * re-queries every `requeryIntervalMs`, and resolves when `until` is met or the time
 * is up. Sources that were already running are left running.
 */
export async function collectHubs(
  sources: Discovery | readonly Discovery[],
  options: CollectHubsOptions = {},
): Promise<DiscoveryAttempt> {
  const list = Array.isArray(sources) ? [...(sources as readonly Discovery[])] : [sources as Discovery];
  const timeoutMs = options.timeoutMs ?? 3_000;
  const requeryMs = options.requeryIntervalMs ?? 1_000;
  const { until, signal } = options;
  const clock = options.clock ?? systemClock;
  signal?.throwIfAborted();
  const began = clock.now();
  const ownStarted: Discovery[] = [];
  let match: DiscoveredHub | undefined;
  let finish: (() => void) | undefined;
  const onFound = (hub: DiscoveredHub): void => {
    if (match === undefined && until?.(hub)) {
      match = hub;
      finish?.();
    }
  };
  const timers: Timer[] = [];
  let onAbort: (() => void) | undefined;
  try {
    for (const s of list) s.on('found', onFound);
    for (const s of list) {
      if (s.isStarted()) {
        s.query();
        continue;
      }
      await s.start();
      ownStarted.push(s);
    }
    if (until) match = list.flatMap((s) => s.list()).find(until);
    if (match === undefined) {
      await new Promise<void>((resolve, reject) => {
        finish = resolve;
        timers.push(clock.setTimeout(resolve, timeoutMs));
        timers.push(
          clock.setInterval(() => {
            for (const s of list) s.query();
          }, requeryMs),
        );
        if (signal) {
          onAbort = () => reject(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
        }
      });
    }
    return {
      hubs: list.flatMap((s) => s.list()),
      ...(match && { match }),
      diagnostics: list.flatMap((s) => s.diagnostics()),
      // The system clock is the wall clock, which may step back while we wait.
      waitedMs: Math.max(0, Math.round(clock.now() - began)),
    };
  } finally {
    for (const t of timers) t.cancel();
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    for (const s of list) s.off('found', onFound);
    await Promise.all(ownStarted.map((s) => s.stop()));
  }
}
