import { createHash, X509Certificate } from 'node:crypto';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';
import { InvalidDeviceIdError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const GROUP = 13;

/** Device ID of a certificate: SHA-256 of its DER encoding, as 64 hex characters. */
export function deviceIdOf(certificateDer: Uint8Array): DeviceId {
  return createHash('sha256').update(certificateDer).digest('hex') as DeviceId;
}

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Buffer {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of text) {
    value = (value << 5) | ALPHABET.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** Luhn mod 32 check character: catches any single mistyped character and most swaps. */
function luhn32(group: string): string {
  let factor = 1;
  let sum = 0;
  for (const ch of group) {
    let addend = factor * ALPHABET.indexOf(ch);
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / 32) + (addend % 32);
    sum += addend;
  }
  return ALPHABET[(32 - (sum % 32)) % 32] as string;
}

/** The device ID of the certificate in `certPem` (PEM). */
export function deviceIdOfPem(certPem: string): DeviceId {
  return deviceIdOf(new X509Certificate(certPem).raw);
}

/**
 * The readable form of a device ID: base32 of the 32-byte hash in four groups of 13,
 * each followed by a check character, shown as eight groups of seven, e.g.
 * `MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DB-ONSGYCY-LTMRWGC`.
 */
export function formatDeviceId(id: DeviceId): string {
  const text = base32(Buffer.from(id, 'hex'));
  let checked = '';
  for (let i = 0; i < 4; i++) {
    const group = text.slice(i * GROUP, (i + 1) * GROUP);
    checked += group + luhn32(group);
  }
  return (checked.match(/.{7}/g) as string[]).join('-');
}

/**
 * Accepts a device ID as 64 hex characters or in the readable form (case, dashes
 * and spaces ignored); a wrong check character means a typo and is refused.
 */
export function parseDeviceId(input: string): DeviceId {
  const trimmed = input.trim();
  if (isDeviceId(trimmed.toLowerCase())) return trimmed.toLowerCase() as DeviceId;
  const text = trimmed
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/0/g, 'O')
    .replace(/1/g, 'I')
    .replace(/8/g, 'B');
  if (text.length !== 56 || /[^A-Z2-7]/.test(text)) {
    throw new InvalidDeviceIdError(
      input,
      'expected 64 hex characters or 56 characters in groups like XXXXXXX-XXXXXXX-...',
    );
  }
  let plain = '';
  for (let i = 0; i < 4; i++) {
    const group = text.slice(i * 14, i * 14 + GROUP);
    if (luhn32(group) !== text[i * 14 + GROUP]) {
      throw new InvalidDeviceIdError(
        input,
        `check character of group ${i + 1} does not match: a character was mistyped`,
      );
    }
    plain += group;
  }
  return unbase32(plain).subarray(0, 32).toString('hex') as DeviceId;
}

/** A short form for logs and tables: the first group of the readable ID. */
export function shortDeviceId(id: DeviceId): string {
  return formatDeviceId(id).slice(0, 7);
}
