import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ristretto255 } from '@noble/curves/ed25519';
import { bytesToNumberLE } from '@noble/curves/utils';
import { hmac } from '@noble/hashes/hmac';
import { sha512 } from '@noble/hashes/sha2';
import { TransportError } from './errors.js';
import { concat, lvCat, prependLen } from './lv-encoding.js';

export { leb128, lvCat, prependLen } from './lv-encoding.js';

/**
 * CPace as draft-irtf-cfrg-cpace-21 specifies it, for the cipher suite
 * CPACE-RISTR255-SHA512 in the initiator-responder setting, with the draft's
 * explicit key confirmation (its section "Key confirmation"). Every function below
 * is named after the draft's and checked against its test vectors, so a second
 * implementation can be checked against the same vectors.
 *
 * CPace is a balanced PAKE: two parties who share a low-entropy password derive a
 * strong key. An eavesdropper, or a man in the middle running the exchange with each
 * side, learns nothing that lets it test password guesses offline: each guess costs
 * one online attempt, which the hub counts and limits.
 */

/** A ristretto255 group element in its internal representation. */
type Element = InstanceType<typeof ristretto255.Point>;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** G_Ristretto255.DSI, the domain-separation identifier of the group. */
export const DSI = utf8('CPaceRistretto255');
/** G.DSI || b"_ISK": the label of the ISK derivation. */
export const DSI_ISK = utf8('CPaceRistretto255_ISK');
/** H.s_in_bytes of SHA-512: its input block size. */
export const SHA512_BLOCK_BYTES = 128;
/** G.I: the public encoding of the neutral element (32 zero bytes). */
export const IDENTITY_ENCODING: Uint8Array = new Uint8Array(32);
/** G_Ristretto255.group_size_bits: scalars are sampled below 2^252, under the group order. */
const GROUP_SIZE_BITS = 252;
const MAC_LABEL = utf8('CPaceMac');

/**
 * generator_string(DSI, PRS, CI, sid, s_in_bytes) = lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid).
 * The zero padding makes DSI and PRS fill the hash's whole first block, so the
 * work spent on the password does not depend on its length or on CI and sid.
 */
export function generatorString(
  dsi: Uint8Array,
  prs: Uint8Array,
  ci: Uint8Array,
  sid: Uint8Array,
  sInBytes: number,
): Uint8Array {
  const lenZpad = Math.max(0, sInBytes - 1 - prependLen(prs).length - prependLen(dsi).length);
  return lvCat(dsi, prs, new Uint8Array(lenZpad), ci, sid);
}

/**
 * G.calculate_generator(H, PRS, CI, sid): SHA-512 of the generator string (64
 * bytes), mapped to the group with ristretto255's element derivation (RFC 9496,
 * section 4.3.4: two Elligator maps, added).
 */
export function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Element {
  const hash = sha512(generatorString(DSI, prs, ci, sid, SHA512_BLOCK_BYTES));
  // The noble method named hashToCurve is RFC 9496's element derivation from 64
  // uniform bytes, without RFC 9380's expand_message: the map CPace calls for.
  return ristretto255.Point.hashToCurve(hash);
}

/**
 * G.sample_scalar() as the draft recommends: 32 random bytes with the bits from
 * group_size_bits up cleared, read little-endian. Zero cannot be used as a scalar
 * and is drawn again (one chance in 2^252).
 */
export function sampleScalar(): bigint {
  for (;;) {
    const bytes = randomBytes(32);
    bytes[31] = (bytes[31] as number) & (0xff >> (256 - GROUP_SIZE_BITS));
    const scalar = bytesToNumberLE(bytes);
    if (scalar !== 0n) return scalar;
  }
}

/** G.scalar_mult(y, g) = encode(y * g). */
export function scalarMult(y: bigint, g: Element): Uint8Array {
  return g.multiply(y).toBytes();
}

/**
 * G.scalar_mult_vfy(y, X): encode(y * decode(X)), or G.I when X is not a valid
 * encoding. The caller aborts on G.I (which also covers X = G.I).
 */
export function scalarMultVfy(y: bigint, encoded: Uint8Array): Uint8Array {
  let point: Element;
  try {
    point = ristretto255.Point.fromBytes(encoded);
  } catch {
    return IDENTITY_ENCODING;
  }
  if (point.is0()) return IDENTITY_ENCODING;
  return point.multiply(y).toBytes();
}

/** transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb): the initiator's message first. */
export function transcriptIr(ya: Uint8Array, ada: Uint8Array, yb: Uint8Array, adb: Uint8Array): Uint8Array {
  return concat(lvCat(ya, ada), lvCat(yb, adb));
}

/** ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript). */
export function intermediateSessionKey(sid: Uint8Array, k: Uint8Array, transcript: Uint8Array): Uint8Array {
  return sha512(concat(lvCat(DSI_ISK, sid, k), transcript));
}

/** mac_key = H.hash(b"CPaceMac" || sid || ISK). */
export function macKey(sid: Uint8Array, isk: Uint8Array): Uint8Array {
  return sha512(concat(MAC_LABEL, sid, isk));
}

/**
 * A party's confirmation tag: MAC(mac_key, lv_cat(Y, AD)) over the message it sent,
 * with HMAC-SHA-512 as the MAC (64 bytes).
 */
export function confirmationTag(key: Uint8Array, share: Uint8Array, ad: Uint8Array): Uint8Array {
  return hmac(sha512, key, lvCat(share, ad));
}

/** Constant-time comparison of two tags. */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The inputs both parties must hold identically for their keys to match. */
export interface CPaceInputs {
  /** PRS: the password-related string, the shared low-entropy secret. */
  prs: Uint8Array;
  /** CI: the channel identifier, binding both parties' identities (never sent). */
  ci: Uint8Array;
  /** sid: a session identifier both sides contributed to. */
  sid: Uint8Array;
  /** ADa, the initiator's associated data. Default empty. */
  adInitiator?: Uint8Array;
  /** ADb, the responder's associated data. Default empty. */
  adResponder?: Uint8Array;
}

/** What a finished exchange gives one party. */
export interface CPaceKeys {
  /** ISK, the intermediate session key. */
  isk: Uint8Array;
  /** The tag this party sends to prove it holds ISK. */
  ownTag: Uint8Array;
  /** The tag the peer must send; compare with tagsEqual. */
  peerTag: Uint8Array;
}

export interface CPaceParty {
  /** This party's public share (Ya or Yb, 32 bytes), to send to the peer. */
  readonly share: Uint8Array;
  /** Derives ISK and both tags from the peer's share; throws PAIRING_FAILED when K = G.I. */
  finish(peerShare: Uint8Array): CPaceKeys;
}

/**
 * Starts one party. The initiator's share and associated data come first in the
 * transcript on both sides. `scalar` is for test vectors only: a scalar must never
 * be used twice.
 */
export function cpace(
  inputs: CPaceInputs,
  role: 'initiator' | 'responder',
  scalar: bigint = sampleScalar(),
): CPaceParty {
  const ada = inputs.adInitiator ?? new Uint8Array(0);
  const adb = inputs.adResponder ?? new Uint8Array(0);
  const share = scalarMult(scalar, calculateGenerator(inputs.prs, inputs.ci, inputs.sid));
  return {
    share,
    finish(peerShare: Uint8Array): CPaceKeys {
      const k = scalarMultVfy(scalar, peerShare);
      if (tagsEqual(k, IDENTITY_ENCODING)) {
        throw new TransportError('PAIRING_FAILED', 'the peer sent an invalid key share');
      }
      const [ya, yb] = role === 'initiator' ? [share, peerShare] : [peerShare, share];
      const isk = intermediateSessionKey(inputs.sid, k, transcriptIr(ya, ada, yb, adb));
      const key = macKey(inputs.sid, isk);
      const tagA = confirmationTag(key, ya, ada);
      const tagB = confirmationTag(key, yb, adb);
      return role === 'initiator'
        ? { isk, ownTag: tagA, peerTag: tagB }
        : { isk, ownTag: tagB, peerTag: tagA };
    },
  };
}
