import type { DeviceId } from '../store/types.js';
import { lvCat } from './lv-encoding.js';

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

/**
 * The first field of CI. CPace's own domain tag (its DSI) is fixed by the
 * specification, so this label is what keeps keys of this exchange apart from
 * those of any other protocol or version that uses CPace with the same code.
 */
export const CHANNEL_LABEL = 'trosyn-sync pairing v1';

/** PRS, the CPace password: the normalised 12-character code as ASCII bytes. */
export function pairingPassword(code: string): Uint8Array {
  return new TextEncoder().encode(normalizeCode(code));
}

/**
 * CI, the channel identifier: lv_cat(label, child device ID, hub device ID), each
 * device ID as its 32 raw bytes. The child is CPace's initiator and comes first, as
 * the specification asks; each side fills in what it saw in its own TLS session.
 */
export function pairingChannel(childId: DeviceId, hubId: DeviceId): Uint8Array {
  return lvCat(
    new TextEncoder().encode(CHANNEL_LABEL),
    Buffer.from(childId, 'hex'),
    Buffer.from(hubId, 'hex'),
  );
}

/** Bytes of each side's nonce; sid = child nonce || hub nonce (64 bytes). */
export const PAIRING_NONCE_BYTES = 32;

/**
 * What a pairing QR code encodes: the code, the hub's device ID (so the child can
 * check it is pairing with the right hub) and its sync port.
 */
export function pairingUri(code: string, hubId: DeviceId, syncPort: number): string {
  const query = new URLSearchParams({ code, hub: hubId, port: String(syncPort) });
  return `trosyn-sync://pair?${query.toString()}`;
}
