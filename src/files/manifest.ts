/**
 * A file version's chunk list, kept as chunks itself (as casync does): 36 bytes per
 * chunk (its SHA-256, then its length as u32 big-endian), cut into chunks by the same
 * content-defined chunker as the file. A 4 GiB file has about 65,000 chunks, a 2.3 MB
 * list; the record names only the list's few chunks, and a small edit of the file
 * changes a few entries, so only a chunk or two of the list are new.
 */
import { TrosynError } from '../errors.js';
import { chunkBuffer } from './chunker.js';

/** One chunk of a file, in file order. */
export interface ManifestEntry {
  hash: string;
  length: number;
}

/** Bytes of one entry in the encoded list. */
export const MANIFEST_ENTRY_BYTES = 36;

/** The encoded list does not decode: a chunk of it is damaged or not one. */
export class ManifestInvalidError extends TrosynError {
  constructor(reason: string) {
    super('FILE_MANIFEST_INVALID', `a file's chunk list is damaged: ${reason}`);
  }
}

/** Encodes a chunk list. */
export function encodeManifest(entries: readonly ManifestEntry[]): Buffer {
  const out = Buffer.allocUnsafe(entries.length * MANIFEST_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const at = i * MANIFEST_ENTRY_BYTES;
    out.write(e.hash, at, 32, 'hex');
    out.writeUInt32BE(e.length, at + 32);
  });
  return out;
}

/**
 * A chunk list encoded as it grows, for a put: 36 bytes an entry, where an entry
 * object and its hash string take about 150 (a 4 GiB file has 65,000 entries).
 */
export class ManifestBuilder {
  private bytes = Buffer.allocUnsafe(MANIFEST_ENTRY_BYTES * 1024);
  private n = 0;

  push(hash: string, length: number): void {
    const at = this.n * MANIFEST_ENTRY_BYTES;
    if (at + MANIFEST_ENTRY_BYTES > this.bytes.length) {
      const grown = Buffer.allocUnsafe(this.bytes.length * 2);
      this.bytes.copy(grown, 0, 0, at);
      this.bytes = grown;
    }
    if (this.bytes.write(hash, at, 32, 'hex') !== 32) throw new Error(`not a chunk hash: ${hash}`);
    this.bytes.writeUInt32BE(length, at + 32);
    this.n++;
  }

  /** Entries pushed so far. */
  get count(): number {
    return this.n;
  }

  /** The list as encodeManifest gives it. */
  encode(): Buffer {
    return this.bytes.subarray(0, this.n * MANIFEST_ENTRY_BYTES);
  }
}

/** Decodes a chunk list (the list's chunks concatenated in order). */
export function decodeManifest(bytes: Uint8Array): ManifestEntry[] {
  const { count } = manifestTotals(bytes);
  return manifestEntries(bytes, 0, count);
}

/**
 * The entries of an encoded list and the sum of their lengths, without decoding
 * them into objects (a 4 GiB file's list is 65,000 entries). Fails with
 * FILE_MANIFEST_INVALID where decodeManifest would.
 */
export function manifestTotals(bytes: Uint8Array): { count: number; size: number } {
  if (bytes.length % MANIFEST_ENTRY_BYTES !== 0)
    throw new ManifestInvalidError(`${bytes.length} bytes is not a whole number of entries`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size = 0;
  for (let at = 32; at < bytes.length; at += MANIFEST_ENTRY_BYTES) {
    const length = view.getUint32(at);
    if (length === 0) throw new ManifestInvalidError('an entry of length 0');
    size += length;
  }
  return { count: bytes.length / MANIFEST_ENTRY_BYTES, size };
}

/** Entries `from` to `from + count` (at most) of an encoded list that manifestTotals accepted. */
export function manifestEntries(bytes: Uint8Array, from: number, count: number): ManifestEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = Math.min(buf.length / MANIFEST_ENTRY_BYTES, from + count);
  const entries: ManifestEntry[] = [];
  for (let i = from; i < end; i++) entries.push(manifestEntry(buf, i));
  return entries;
}

/** Entry `i` of an encoded list. */
export function manifestEntry(list: Buffer, i: number): ManifestEntry {
  const at = i * MANIFEST_ENTRY_BYTES;
  return { hash: list.toString('hex', at, at + 32), length: list.readUInt32BE(at + 32) };
}

/** The chunks an encoded list is kept as, each with its hash and bytes. */
export function manifestChunks(encoded: Uint8Array): Array<{ hash: string; data: Uint8Array }> {
  return chunkBuffer(encoded).map((c) => ({ hash: c.hash, data: c.data }));
}
