import type { TLSSocket } from 'node:tls';
import type { DeviceId } from '../store/types.js';
import { deviceIdOf } from './device-id.js';
import type { DeviceIdentity } from './identity.js';

/**
 * TLS settings shared by server and client: TLS 1.3 only, this device's key and
 * certificate presented on every connection. Certificates are self-signed, so the
 * usual CA check is off and replaced by pinning: each side hashes the other's
 * certificate into a device ID and checks that ID itself before sending anything.
 */
export function tlsOptions(identity: DeviceIdentity) {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    rejectUnauthorized: false,
  };
}

/** The device ID of the certificate the peer presented, or undefined when it presented none. */
export function peerDeviceId(socket: TLSSocket): DeviceId | undefined {
  const cert = socket.getPeerCertificate(false);
  if (!cert || !cert.raw || cert.raw.length === 0) return undefined;
  return deviceIdOf(cert.raw);
}

/** `host:port` with IPv6 in brackets, for logs and messages. */
export function formatAddress(host: string | undefined, port: number | undefined): string {
  const h = host ?? '?';
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}
