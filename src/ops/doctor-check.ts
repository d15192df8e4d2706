/** What the doctor reports: its checks, and the facts some of them carry for `doctor --json`. */
import type { AddressFamily } from '../discovery/types.js';
import type { DeviceId } from '../store/types.js';
import type { ClockOffset } from '../transport/clock-offset.js';

/** One thing the doctor looked at, in plain words. */
export interface Check {
  id:
    | 'data-dir'
    | 'identity'
    | 'agent'
    | 'databases'
    | 'postgres'
    | 'disk'
    | 'ports'
    | 'hub'
    | 'clock'
    | 'discovery';
  title: string;
  status: 'ok' | 'warn' | 'fail';
  /** What was found. */
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
  /** More lines for people (the discovery check: one per interface). */
  lines?: string[];
  /** The clock check: the offsets measured. */
  clock?: ClockFinding;
  /** The discovery check: what each network interface could do, and the hubs that answered there. */
  interfaces?: InterfaceDiscovery[];
}

/** What the clock check measured, for `doctor --json`. */
export interface ClockFinding {
  /** On a child: the hub's clock minus this device's, and where the figure came from. */
  hub?: ClockOffset & { source: 'agent' | 'probe' };
  /** On a hub: each device's clock minus the hub's, as last measured. */
  devices?: Array<ClockOffset & { deviceId: DeviceId; name: string }>;
}

/** What discovery did with one address family on one interface. */
export interface FamilyOnInterface {
  family: AddressFamily;
  /** The interface's addresses of that family. */
  addresses: string[];
  /** The discovery groups of the family, and those joined on this interface. */
  groups: string[];
  joined: string[];
  /** Queries sent through it, and sends that failed. */
  sent: number;
  sendErrors: number;
  /** What failed, in words (`join ff05::7702: EADDRNOTAVAIL`, `send 239.255.77.2: EPERM`). */
  problems: string[];
}

/** A hub that answered on an interface. */
export interface HubSeen {
  deviceId: DeviceId;
  name: string;
  address: string;
  port: number;
  family: AddressFamily;
  /** It claims the device ID this child is paired with (a claim: only TLS proves it). */
  paired: boolean;
}

/** Discovery on one network interface. */
export interface InterfaceDiscovery {
  name: string;
  /**
   * ok: the groups of at least one family joined and queries sent; failed: neither
   * could be done (see `problems` of each family); skipped: discovery does not use it.
   */
  status: 'ok' | 'failed' | 'skipped';
  families: FamilyOnInterface[];
  /** Why it was skipped (down, multicast off, no address), when skipped. */
  skipped?: string;
  hubs: HubSeen[];
}
