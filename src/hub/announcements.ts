import type { Logger } from 'pino';
import { DnsSdPublisher } from '../discovery/dns-sd.js';
import { HubAnnouncer } from '../discovery/multicast.js';
import type { DiscoveryDiagnostics } from '../discovery/types.js';
import type { Clock, Startable } from '../lifecycle.js';
import { stopAll } from '../lifecycle.js';
import type { DeviceId } from '../store/types.js';
import type { HubInit } from './options.js';

export interface LanAnnouncementsOptions {
  settings: Exclude<HubInit['discovery'], false | undefined>;
  deviceId: DeviceId;
  name: string;
  /** The sync service's port, once it listens. */
  syncPort: () => number;
  logger: Logger;
  clock: Clock;
  /** Told when an announcer cannot start (the hub runs on without it). */
  onUnavailable: (err: Error & { code?: string }) => void;
}

/**
 * The hub's LAN announcements: multicast announce and answer (IPv4 and IPv6) and
 * DNS-SD. A network without multicast still works with static addresses, so an
 * announcer that cannot start is reported and left out, never fatal.
 */
export class LanAnnouncements implements Startable {
  private readonly options: LanAnnouncementsOptions;
  private running: Startable[] = [];
  private started = false;

  constructor(options: LanAnnouncementsOptions) {
    this.options = options;
  }

  isStarted(): boolean {
    return this.started;
  }

  async start(): Promise<void> {
    if (this.started) return;
    const o = this.options;
    const settings = o.settings === true ? {} : o.settings;
    const common = {
      deviceId: o.deviceId,
      name: o.name.slice(0, 64),
      syncPort: o.syncPort(),
      logger: o.logger,
      clock: o.clock,
      ...(settings.interfaces && { interfaces: settings.interfaces }),
      ...(settings.includeLoopback !== undefined && { includeLoopback: settings.includeLoopback }),
      ...(settings.discoveryPort !== undefined && { discoveryPort: settings.discoveryPort }),
    };
    const parts: Startable[] = [
      new HubAnnouncer({
        ...common,
        ...(settings.announceIntervalMs !== undefined && { announceIntervalMs: settings.announceIntervalMs }),
      }),
    ];
    if (settings.dnsSd !== false) parts.push(new DnsSdPublisher(common));
    for (const part of parts) {
      try {
        await part.start();
        this.running.push(part);
      } catch (err) {
        o.logger.warn(
          { err: (err as Error).message },
          'LAN announcements unavailable; children need a static address',
        );
        o.onUnavailable(err as Error & { code?: string });
      }
    }
    this.started = true;
  }

  async stop(): Promise<void> {
    const parts = this.running;
    this.running = [];
    this.started = false;
    await stopAll(parts);
  }

  /** What each announcer tried and saw, for the hub's status. */
  diagnostics(): DiscoveryDiagnostics[] {
    return this.running.flatMap(
      (a) => (a as { diagnostics?: () => DiscoveryDiagnostics[] }).diagnostics?.() ?? [],
    );
  }
}
