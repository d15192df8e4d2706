/**
 * One discovery component's endpoints (one per address family), opened and closed
 * together under one lifecycle guard, with the timers that run while they are open.
 * Browsers and advertisers both run on it, so a start that fails, two concurrent
 * starts and the timers a stop must cancel are handled in one place.
 */
import { type Clock, LifecycleGuard, type Timer } from '../lifecycle.js';
import { type MulticastEndpoint, openEndpoints } from './endpoint.js';
import type { FamilyDiagnostics } from './types.js';

export class EndpointSet {
  private readonly guard = new LifecycleGuard();
  private timers: Timer[] = [];
  private opened = false;

  /**
   * `endpoints` is read at start and stop (the owner builds them after this set);
   * `port` names the port in the bind error; `clock` runs the timers.
   */
  constructor(
    private readonly endpoints: () => readonly MulticastEndpoint[],
    private readonly port: number,
    private readonly clock: Clock,
  ) {}

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  /** True from the bind in start() to the beginning of stop(): datagrams are read and answered. */
  get isOpen(): boolean {
    return this.opened;
  }

  /**
   * Opens the endpoints (DISCOVERY_BIND_FAILED when no family binds), then runs
   * `started`. If that fails, everything is released again: the guard counts a failed
   * start as never started, so no stop() would.
   */
  start(started: () => Promise<void> | void): Promise<void> {
    return this.guard.start(async () => {
      await openEndpoints(this.endpoints(), this.port);
      this.opened = true;
      try {
        await started();
      } catch (err) {
        await this.release();
        throw err;
      }
    });
  }

  /**
   * Closes: timers and handlers stop acting at once, `last` runs (a goodbye still
   * goes out), then the sockets and timers are released and `released` runs.
   */
  stop(last?: () => Promise<void>, released?: () => void): Promise<void> {
    return this.guard.stop(async () => {
      this.opened = false;
      await last?.();
      await this.release();
      released?.();
    });
  }

  /** Calls `fn` every `ms` on the clock while open. */
  every(fn: () => void, ms: number): void {
    this.timers.push(this.clock.setInterval(() => this.opened && fn(), ms));
  }

  /** Calls `fn` once, `ms` from now on the clock, if still open by then. */
  later(fn: () => void, ms: number): void {
    if (!this.opened) return;
    const timer = this.clock.setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (this.opened) fn();
    }, ms);
    this.timers.push(timer);
  }

  /** Each family's state, for the component's diagnostics. */
  families(): FamilyDiagnostics[] {
    return this.endpoints().map((e) => e.diagnostics());
  }

  private async release(): Promise<void> {
    this.opened = false;
    for (const t of this.timers) t.cancel();
    this.timers = [];
    await Promise.all(this.endpoints().map((e) => e.close()));
  }
}
