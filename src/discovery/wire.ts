/**
 * The discovery datagram codec: pure functions, no sockets. docs/DISCOVERY.md
 * describes the format field by field.
 */
import { PROTOCOL_NAME } from '../protocol/constants.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';

/** Version of the discovery datagram format (not of the sync protocol). */
export const DISCOVERY_WIRE_VERSION = 1;

/** Largest datagram read or written; anything longer is dropped unread. */
export const MAX_DATAGRAM_BYTES = 1024;

/** Longest hub name, in UTF-16 code units. */
export const MAX_HUB_NAME_LENGTH = 64;

/** Most protocol versions one announcement may list. */
export const MAX_ANNOUNCED_VERSIONS = 16;

/** A hub telling where its sync service listens (periodic, at start, and as the answer to a query). */
export interface AnnounceMessage {
  type: 'announce';
  deviceId: DeviceId;
  name: string;
  /** TCP port of the sync service. */
  port: number;
  versions: number[];
}

/** A child asking hubs to announce now; `deviceId` limits the answer to one hub. */
export interface QueryMessage {
  type: 'query';
  deviceId?: DeviceId;
}

/** A hub leaving: children drop its entry at once instead of waiting for expiry. */
export interface ByeMessage {
  type: 'bye';
  deviceId: DeviceId;
  port: number;
}

/** Every message of the discovery format. */
export type DiscoveryMessage = AnnounceMessage | QueryMessage | ByeMessage;

/** Result of decoding one datagram: a message, or why it is not one. */
export type DecodeResult =
  | { ok: true; message: DiscoveryMessage }
  | { ok: false; reason: 'oversized' | 'malformed' | 'foreign' | 'unknown-type'; detail: string };

// Control characters would let an announced name rewrite a terminal line in the CLI.
// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** True for a name a hub may announce: 1-64 characters, no control characters. */
export function isValidHubName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= MAX_HUB_NAME_LENGTH &&
    !CONTROL_RE.test(name)
  );
}

/** True for a TCP/UDP port number 1-65535. */
export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** True for a list of 1-16 protocol versions, each an integer 1-65535. */
export function isVersionList(value: unknown): value is number[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.length <= MAX_ANNOUNCED_VERSIONS &&
    value.every((v) => isPort(v))
  );
}

/** Encodes a message as a datagram (UTF-8 JSON). Throws if it would exceed the size limit. */
export function encodeDiscoveryMessage(message: DiscoveryMessage): Buffer {
  const body: Record<string, unknown> = {
    proto: PROTOCOL_NAME,
    v: DISCOVERY_WIRE_VERSION,
    type: message.type,
  };
  switch (message.type) {
    case 'announce':
      Object.assign(body, {
        deviceId: message.deviceId,
        name: message.name,
        port: message.port,
        versions: message.versions,
      });
      break;
    case 'query':
      if (message.deviceId !== undefined) body.deviceId = message.deviceId;
      break;
    case 'bye':
      Object.assign(body, { deviceId: message.deviceId, port: message.port });
      break;
  }
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  // Only reachable through a programming error: names and version lists are bounded.
  if (bytes.length > MAX_DATAGRAM_BYTES)
    throw new RangeError(`discovery datagram of ${bytes.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`);
  return bytes;
}

/**
 * Decodes one datagram. Never throws: anything that is not a valid message comes back
 * with the reason, so the caller can count it and move on. Unknown fields are ignored
 * and any `v` of 1 or more is read, so a later format that only adds fields still
 * reaches older children.
 */
export function decodeDiscoveryMessage(datagram: Uint8Array): DecodeResult {
  if (datagram.length > MAX_DATAGRAM_BYTES)
    return { ok: false, reason: 'oversized', detail: `${datagram.length} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(datagram).toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'malformed', detail: 'not a JSON object' };
  const m = value as Record<string, unknown>;
  if (m.proto !== PROTOCOL_NAME) return { ok: false, reason: 'foreign', detail: 'proto is not trosyn-sync' };
  if (typeof m.v !== 'number' || !Number.isInteger(m.v) || m.v < 1)
    return { ok: false, reason: 'malformed', detail: 'v must be an integer >= 1' };
  switch (m.type) {
    case 'announce':
      if (!isDeviceId(m.deviceId)) return bad('deviceId must be 64 lowercase hex characters');
      if (!isValidHubName(m.name)) return bad('name must be 1-64 characters without control characters');
      if (!isPort(m.port)) return bad('port must be an integer 1-65535');
      if (!isVersionList(m.versions)) return bad('versions must list 1-16 integers 1-65535');
      return {
        ok: true,
        message: {
          type: 'announce',
          deviceId: m.deviceId,
          name: m.name,
          port: m.port,
          versions: [...m.versions],
        },
      };
    case 'query':
      if (m.deviceId === undefined) return { ok: true, message: { type: 'query' } };
      if (!isDeviceId(m.deviceId)) return bad('deviceId must be 64 lowercase hex characters');
      return { ok: true, message: { type: 'query', deviceId: m.deviceId } };
    case 'bye':
      if (!isDeviceId(m.deviceId)) return bad('deviceId must be 64 lowercase hex characters');
      if (!isPort(m.port)) return bad('port must be an integer 1-65535');
      return { ok: true, message: { type: 'bye', deviceId: m.deviceId, port: m.port } };
    default:
      return { ok: false, reason: 'unknown-type', detail: `type ${JSON.stringify(m.type)}` };
  }
}

function bad(detail: string): DecodeResult {
  return { ok: false, reason: 'malformed', detail };
}
