/**
 * The hubs a browser has heard of, whatever the method: one entry per (device ID,
 * address), dropped when not heard from within the expiry time.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lifecycle.js';
import type { DiscoveredHub } from './types.js';

/** What one announcement or answer said about a hub; the table adds `lastSeen` and `interface`. */
export type HubSighting = Omit<DiscoveredHub, 'lastSeen' | 'interface'>;

/** Options of a {@link HubTable}. */
export interface HubTableOptions {
  /** An entry not heard from for longer than this (ms) is dropped by `expire()`. */
  expiryMs: number;
  /** Most entries kept; sightings of new hubs beyond this are dropped. */
  maxEntries: number;
  clock: Clock;
  logger: Logger;
  /** The local interface an address is reached through, looked up once per new entry. */
  locate(address: string): string | undefined;
  /** A new entry, or one whose port, name or versions changed (a copy). */
  onFound(hub: DiscoveredHub): void;
  /** An entry dropped by expiry or by `forget()` (a copy). */
  onLost(hub: DiscoveredHub): void;
  /** A sighting of a new hub not kept because the table was full. */
  onDropped(): void;
}

interface Entry<Note> {
  hub: DiscoveredHub;
  note: Note;
}

function copy(hub: DiscoveredHub): DiscoveredHub {
  return { ...hub, versions: [...hub.versions] };
}

/**
 * Keyed by device ID and address, never by device ID alone: anyone on the LAN can
 * claim any ID, and two addresses claiming one are two hints, not one hub. `Note` is
 * what a method keeps beside an entry (DNS-SD: the instance name its goodbye names).
 */
export class HubTable<Note = undefined> {
  private readonly entries = new Map<string, Entry<Note>>();

  constructor(private readonly o: HubTableOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records a sighting: a new entry emits found, a changed port, name or versions
   * emits found again, a repeat only refreshes `lastSeen` (and the note).
   */
  see(sighting: HubSighting, note: Note): void {
    const key = `${sighting.deviceId}|${sighting.address}`;
    const now = this.o.clock.now();
    const existing = this.entries.get(key);
    if (existing) {
      const hub = existing.hub;
      const changed =
        hub.port !== sighting.port ||
        hub.name !== sighting.name ||
        hub.versions.join() !== sighting.versions.join();
      hub.lastSeen = now;
      existing.note = note;
      if (!changed) return;
      hub.port = sighting.port;
      hub.name = sighting.name;
      hub.versions = [...sighting.versions];
      this.o.onFound(copy(hub));
      return;
    }
    if (this.entries.size >= this.o.maxEntries) {
      this.o.onDropped();
      return;
    }
    const hub: DiscoveredHub = { ...sighting, versions: [...sighting.versions], lastSeen: now };
    const iface = this.o.locate(hub.address);
    if (iface !== undefined) hub.interface = iface;
    this.entries.set(key, { hub, note });
    this.o.logger.debug({ deviceId: hub.deviceId, address: hub.address, port: hub.port }, 'hub found');
    this.o.onFound(copy(hub));
  }

  /** Drops the entries `match` picks (a goodbye), emitting lost for each; returns how many. */
  forget(match: (hub: Readonly<DiscoveredHub>, note: Note) => boolean, reason = 'goodbye'): number {
    let dropped = 0;
    for (const [key, { hub, note }] of this.entries) {
      if (!match(hub, note)) continue;
      this.entries.delete(key);
      dropped++;
      this.o.logger.debug({ deviceId: hub.deviceId, address: hub.address, reason }, 'hub lost');
      this.o.onLost(copy(hub));
    }
    return dropped;
  }

  /** Drops every entry not heard from within the expiry time, emitting lost for each. */
  expire(): void {
    const now = this.o.clock.now();
    this.forget((hub) => now - hub.lastSeen > this.o.expiryMs, 'expired');
  }

  /** Every entry (copies), oldest first. */
  list(): DiscoveredHub[] {
    return [...this.entries.values()].map((e) => copy(e.hub));
  }

  /** Forgets every entry without emitting lost (the browser stopped listening, the hubs did not leave). */
  clear(): void {
    this.entries.clear();
  }
}
