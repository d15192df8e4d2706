import type { ErrorCode } from '../error-codes.js';
import type { DeviceId } from '../store/types.js';

/** Who is knocking: the device ID from the client certificate and the source address. */
export interface PeerCredentials {
  deviceId: DeviceId;
  address: string;
}

/**
 * What a connecting device may do: sync, only run the pairing exchange (an unknown
 * device holding a pairing code), or nothing (with a stable code and reason).
 */
export type AuthDecision = { allow: 'sync' } | { allow: 'pairing' } | { deny: ErrorCode; reason: string };

/**
 * Decides, from a client certificate's device ID, whether a connection proceeds.
 * The hub's device registry is one implementation; every implementation must pass
 * `./testing/authenticator-suite.ts`.
 */
export interface Authenticator {
  authenticate(peer: PeerCredentials): AuthDecision | Promise<AuthDecision>;
}

/** Allows a fixed set of devices to sync and refuses everyone else. */
export class StaticAuthenticator implements Authenticator {
  private readonly allowed: Set<string>;

  constructor(allowed: Iterable<DeviceId>) {
    this.allowed = new Set(allowed);
  }

  allow(deviceId: DeviceId): void {
    this.allowed.add(deviceId);
  }

  revoke(deviceId: DeviceId): void {
    this.allowed.delete(deviceId);
  }

  authenticate(peer: PeerCredentials): AuthDecision {
    return this.allowed.has(peer.deviceId)
      ? { allow: 'sync' }
      : { deny: 'DEVICE_NOT_ALLOWED', reason: 'this device is not registered with the hub; pair it first' };
  }
}
