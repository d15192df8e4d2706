import { EventEmitter } from 'node:events';
import { LifecycleGuard, startAll, stopAll } from '../lifecycle.js';
import type { DiscoveredHub, Discovery, DiscoveryDiagnostics, DiscoveryEvents } from './types.js';

/**
 * Several discovery sources seen as one (e.g. multicast and DNS-SD on a child): their
 * events pass through, `list()` and `diagnostics()` concatenate. Entries are not merged
 * across sources, since each is a separate hint.
 */
export class DiscoverySet extends EventEmitter<DiscoveryEvents> implements Discovery {
  private readonly sources: readonly Discovery[];
  private readonly guard = new LifecycleGuard();
  private readonly forwardFound = (hub: DiscoveredHub): void => void this.emit('found', hub);
  private readonly forwardLost = (hub: DiscoveredHub): void => void this.emit('lost', hub);

  constructor(sources: readonly Discovery[]) {
    super();
    this.sources = [...sources];
  }

  isStarted(): boolean {
    return this.guard.isStarted();
  }

  /** Starts every source; if one fails, those already started are stopped again and the error is raised. */
  start(): Promise<void> {
    return this.guard.start(async () => {
      for (const s of this.sources) {
        s.on('found', this.forwardFound);
        s.on('lost', this.forwardLost);
      }
      try {
        await startAll(this.sources);
      } catch (err) {
        this.detach();
        throw err;
      }
    });
  }

  stop(): Promise<void> {
    return this.guard.stop(async () => {
      try {
        await stopAll(this.sources);
      } finally {
        this.detach();
      }
    });
  }

  private detach(): void {
    for (const s of this.sources) {
      s.off('found', this.forwardFound);
      s.off('lost', this.forwardLost);
    }
  }

  list(): DiscoveredHub[] {
    return this.sources.flatMap((s) => s.list());
  }

  query(): void {
    for (const s of this.sources) s.query();
  }

  diagnostics(): DiscoveryDiagnostics[] {
    return this.sources.flatMap((s) => s.diagnostics());
  }
}
