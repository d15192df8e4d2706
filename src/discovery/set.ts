import { EventEmitter } from 'node:events';
import { SerialQueue } from './serial.js';
import type { DiscoveredHub, Discovery, DiscoveryDiagnostics, DiscoveryEvents } from './types.js';

/**
 * Several discovery sources seen as one (e.g. multicast and DNS-SD on a child): their
 * events pass through, `list()` and `diagnostics()` concatenate. Entries are not merged
 * across sources, since each is a separate hint.
 */
export class DiscoverySet extends EventEmitter<DiscoveryEvents> implements Discovery {
  private readonly sources: readonly Discovery[];
  private readonly lifecycle = new SerialQueue();
  private started = false;
  private readonly forwardFound = (hub: DiscoveredHub): void => void this.emit('found', hub);
  private readonly forwardLost = (hub: DiscoveredHub): void => void this.emit('lost', hub);

  constructor(sources: readonly Discovery[]) {
    super();
    this.sources = [...sources];
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Starts every source; if one fails, those already started are stopped again and the error is raised. */
  start(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (this.started) return;
      const done: Discovery[] = [];
      try {
        for (const s of this.sources) {
          s.on('found', this.forwardFound);
          s.on('lost', this.forwardLost);
          await s.start();
          done.push(s);
        }
      } catch (err) {
        await Promise.all(done.map((s) => s.stop()));
        this.detach();
        throw err;
      }
      this.started = true;
    });
  }

  stop(): Promise<void> {
    return this.lifecycle.run(async () => {
      if (!this.started) return;
      this.started = false;
      await Promise.all(this.sources.map((s) => s.stop()));
      this.detach();
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
