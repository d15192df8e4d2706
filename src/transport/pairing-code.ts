import type { DeviceId } from '../store/types.js';
import { lengthPrefixed } from './cpace.js';

/**
 * Pairing codes and the parts of the pairing exchange both sides compute
 * identically. The exchange itself is in hub/pairing.ts and child/pairing.ts;
 * PROTOCOL.md specifies it.
 */

/** Crockford's base32: no I, L, O or U, so a code read aloud or typed is hard to get wrong. */
export const CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Characters in a code: three groups of four. */
export const CODE_LENGTH = 12;
/** The first group finds the code on the hub and travels in clear; the rest is the secret. */
export const CODE_LOOKUP_LENGTH = 4;

/** Uppercases, drops separators, and maps look-alike letters (O->0, I/L->1). */
export function normalizeCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

/** `7K2MQX4P9TZB` -> `7K2M-QX4P-9TZB`. */
export function formatCode(code: string): string {
  return (normalizeCode(code).match(/.{1,4}/g) ?? []).join('-');
}

export function isWellFormedCode(code: string): boolean {
  const normal = normalizeCode(code);
  return normal.length === CODE_LENGTH && [...normal].every((c) => CODE_ALPHABET.includes(c));
}

/** Label mixed into the channel identifier, so keys from other protocols never match. */
const CHANNEL_LABEL = Buffer.from('trosyn-sync pairing v1');

/** Binds the exchange to both certificates, as each side sees them. */
export function pairingChannel(childId: DeviceId, hubId: DeviceId): Buffer {
  return lengthPrefixed(CHANNEL_LABEL, Buffer.from(childId, 'hex'), Buffer.from(hubId, 'hex'));
}

/** What both confirmation tags cover: the channel, the session id and both key shares. */
export function pairingTranscript(
  channel: Uint8Array,
  sid: Uint8Array,
  childShare: Uint8Array,
  hubShare: Uint8Array,
): Buffer {
  return lengthPrefixed(channel, sid, childShare, hubShare);
}
