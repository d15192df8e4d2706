import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519';
import { bytesToNumberLE } from '@noble/curves/utils';
import { TransportError } from './errors.js';

/**
 * CPace (draft-irtf-cfrg-cpace) on ristretto255 with SHA-512: a balanced PAKE. Two
 * parties who share a low-entropy password (the pairing code) derive a strong key.
 * An eavesdropper, or a man in the middle running the exchange with each side,
 * learns nothing that lets it test code guesses offline: each guess costs one
 * online attempt, which the hub counts and limits.
 *
 * The channel identifier binds the key to both device IDs as each side sees them
 * (its own certificate and the peer's), so a relay with its own certificates makes
 * the two sides derive different keys and the confirmation tags fail.
 */
const Point = ristretto255.Point;
const DST = 'trosyn-sync/CPaceRistretto255/v1';
const ISK_LABEL = Buffer.from('CPaceRistretto255_ISK');

function lengthPrefixed(...parts: Uint8Array[]): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(part.length);
    chunks.push(len, Buffer.from(part));
  }
  return Buffer.concat(chunks);
}

export interface CPaceParams {
  /** The shared low-entropy secret. */
  password: string;
  /** Both parties' identities, in the same order on both sides. */
  channel: Uint8Array;
  /** Fresh session id contributed by both sides. */
  sid: Uint8Array;
}

export interface CPaceParty {
  /** This side's public share, to send to the peer (32 bytes). */
  readonly share: Uint8Array;
  /** The intermediate session key from the peer's share; throws on an invalid share. */
  finish(peerShare: Uint8Array): Buffer;
}

/**
 * Starts one side. `role` orders the two shares in the transcript identically on
 * both sides: the initiator's share first.
 */
export function cpace(params: CPaceParams, role: 'initiator' | 'responder'): CPaceParty {
  const generator = ristretto255_hasher.hashToCurve(
    lengthPrefixed(Buffer.from(params.password, 'utf8'), params.channel, params.sid),
    { DST },
  ) as unknown as InstanceType<typeof Point>;
  let scalar = 0n;
  while (scalar === 0n) scalar = Point.Fn.create(bytesToNumberLE(randomBytes(64)));
  const share = generator.multiply(scalar).toBytes();
  return {
    share,
    finish(peerShare: Uint8Array): Buffer {
      let peer: InstanceType<typeof Point>;
      try {
        peer = Point.fromBytes(peerShare);
      } catch {
        throw new TransportError('PAIRING_FAILED', 'the peer sent an invalid key share');
      }
      if (peer.is0()) throw new TransportError('PAIRING_FAILED', 'the peer sent the identity element');
      const k = peer.multiply(scalar);
      if (k.is0()) throw new TransportError('PAIRING_FAILED', 'key exchange produced the identity element');
      const [first, second] = role === 'initiator' ? [share, peerShare] : [peerShare, share];
      return createHash('sha512')
        .update(lengthPrefixed(ISK_LABEL, params.sid, k.toBytes(), first, second))
        .digest();
    },
  };
}

/** A key-confirmation tag: proves knowledge of the session key, per direction. */
export function confirmationTag(
  isk: Buffer,
  label: 'initiator' | 'responder',
  transcript: Uint8Array,
): Buffer {
  return createHmac('sha256', isk)
    .update(lengthPrefixed(Buffer.from(`confirm:${label}`), transcript))
    .digest();
}

/** Constant-time comparison of two tags. */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export { lengthPrefixed };
