import { PROTOCOL_VERSIONS } from './constants.js';
import {
  type CompressionCodec,
  compress,
  decompress,
  isCompressionCodec,
  supportedCodecs,
} from './compression.js';
import { ProtocolError } from './errors.js';
import {
  FRAME_HEADER_BYTES,
  type Frame,
  FrameKind,
  resolveMaxFrameBytes,
  writeFrameHeader,
} from './frame.js';
import { type Message, parseMessage } from './messages.js';

/** Options of a MessageCodec. */
export interface CodecOptions {
  /**
   * Codec for frames this side sends. Default `none`; set it with
   * `setCompression` once the handshake has chosen one.
   */
  compression?: CompressionCodec;
  /**
   * Payloads up to this many bytes are sent uncompressed even when a codec is set:
   * compressing a heartbeat costs more than it saves. Default 512.
   */
  compressAboveBytes?: number;
  /**
   * Largest frame sent or accepted (its length field: kind, flags and payload).
   * A compressed payload may not inflate beyond what an uncompressed frame could
   * carry. Default DEFAULT_MAX_FRAME_BYTES (16 MiB); both peers should use the
   * same value.
   */
  maxFrameBytes?: number;
}

/**
 * The frames of one message, encoded once per codec setting: a message sent to many
 * connections is encoded (and compressed) once for all that use the same settings.
 * Whoever holds it must not put another message's frames in it.
 */
export interface FrameCache {
  get(key: string): Buffer | undefined;
  set(key: string, frame: Buffer): void;
}

/** A decoded frame: a validated message, or the bytes of a chunk. */
export type Decoded = { kind: 'message'; message: Message } | { kind: 'chunk'; bytes: Buffer };

/** Options of one `encodeChunk` call. */
export interface ChunkOptions {
  /**
   * Compress the chunk with the connection's codec (when above the threshold).
   * Default true; pass false for content known to be compressed already (images,
   * archives), where trying only costs time.
   */
  compress?: boolean;
}

const DEFAULT_COMPRESS_ABOVE_BYTES = 512;

/** Bytes of a large chunk compressed first, to see whether compressing it pays. */
const SAMPLE_BYTES = 4096;

const EMPTY = Buffer.alloc(0);

/** The first SAMPLE_BYTES of `head` followed by `body`. */
function sampleOf(head: Buffer, body: Buffer): Buffer {
  if (head.length >= SAMPLE_BYTES || body.length === 0) return head.subarray(0, SAMPLE_BYTES);
  return Buffer.concat([head, body.subarray(0, SAMPLE_BYTES - head.length)]);
}

/** True when `sample` compresses to at most 95 % of its size. */
function shrinks(codec: CompressionCodec, sample: Buffer): boolean {
  return compress(codec, sample).length <= sample.length * 0.95;
}

/**
 * Turns messages into frames and frames into validated messages, for one
 * connection. Pure: no I/O; the transport writes what `encode` returns and feeds
 * what a FrameDecoder cuts to `decode`.
 */
export class MessageCodec {
  private compression: CompressionCodec = 'none';
  private readonly compressAboveBytes: number;
  private readonly maxFrameBytes: number;

  constructor(options: CodecOptions = {}) {
    this.maxFrameBytes = resolveMaxFrameBytes(options.maxFrameBytes);
    const threshold = options.compressAboveBytes ?? DEFAULT_COMPRESS_ABOVE_BYTES;
    if (!Number.isSafeInteger(threshold) || threshold < 0)
      throw new ProtocolError(
        'INVALID_OPTION',
        `option compressAboveBytes: expected a non-negative integer, got ${String(threshold)}`,
        { option: 'compressAboveBytes' },
      );
    this.compressAboveBytes = threshold;
    this.setCompression(options.compression ?? 'none');
  }

  /** The codec used for frames sent from now on. */
  getCompression(): CompressionCodec {
    return this.compression;
  }

  /**
   * Sets the codec for frames sent from now on (after the handshake chose it).
   * Throws UNSUPPORTED_COMPRESSION for a codec this build cannot use.
   */
  setCompression(codec: CompressionCodec): void {
    if (!isCompressionCodec(codec) || !supportedCodecs().includes(codec))
      throw new ProtocolError('UNSUPPORTED_COMPRESSION', `compression ${String(codec)} is not available`, {
        codec: String(codec),
      });
    this.compression = codec;
  }

  /**
   * One whole frame carrying `message` as JSON, compressed when a codec is set and
   * the JSON is larger than `compressAboveBytes` (and compression makes it smaller).
   * Throws FRAME_TOO_LARGE when the JSON is larger than `maxFrameBytes` or the
   * frame would be.
   */
  encode(message: Message): Buffer {
    const json = JSON.stringify(message);
    const bytes = Buffer.byteLength(json, 'utf8');
    this.checkSize(bytes, (message as { type?: unknown }).type);
    if (this.compression !== 'none' && bytes > this.compressAboveBytes) {
      const raw = Buffer.from(json, 'utf8');
      const packed = compress(this.compression, raw);
      if (packed.length < raw.length) return this.frame(FrameKind.Message, packed, this.compression);
      return this.frame(FrameKind.Message, raw, 'none');
    }
    // Written straight into the frame: no intermediate buffer for the biggest messages.
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes);
    writeFrameHeader(frame, FrameKind.Message, bytes, 'none');
    frame.write(json, FRAME_HEADER_BYTES, 'utf8');
    return frame;
  }

  /**
   * The frame of `message` as `encode` makes it with this codec's settings, from
   * `cache` when a codec with the same settings encoded it before (the bytes are
   * the same: encoding has no per-connection part).
   */
  encodeCached(message: Message, cache: FrameCache): Buffer {
    const key = `${this.compression}/${this.compressAboveBytes}/${this.maxFrameBytes}`;
    const cached = cache.get(key);
    if (cached) return cached;
    const frame = this.encode(message);
    cache.set(key, frame);
    return frame;
  }

  /**
   * One whole frame carrying `bytes` as a chunk, compressed like a message unless
   * `options.compress` is false. Throws FRAME_TOO_LARGE as `encode` does.
   */
  encodeChunk(bytes: Buffer, options: ChunkOptions = {}): Buffer {
    const parts = this.encodeChunkParts(bytes, EMPTY, options);
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /**
   * A chunk frame whose payload is `head` followed by `body`, as buffers to write one
   * after the other: uncompressed, the body is not copied (a 64 KiB chunk read from
   * disk goes to the socket as it is). Compressed like `encodeChunk`.
   */
  encodeChunkParts(head: Buffer, body: Buffer = EMPTY, options: ChunkOptions = {}): Buffer[] {
    const length = head.length + body.length;
    this.checkSize(length, 'chunk');
    if (
      options.compress !== false &&
      this.compression !== 'none' &&
      length > this.compressAboveBytes &&
      // Most documents are compressed already (images, archives, office files): a
      // sample that does not shrink says the chunk will not either, for a fraction
      // of the cost of trying it whole.
      (length < 4 * SAMPLE_BYTES || shrinks(this.compression, sampleOf(head, body)))
    ) {
      const payload = body.length === 0 ? head : Buffer.concat([head, body]);
      const packed = compress(this.compression, payload);
      if (packed.length < payload.length) return [this.frame(FrameKind.Chunk, packed, this.compression)];
    }
    const start = Buffer.allocUnsafe(FRAME_HEADER_BYTES + head.length);
    writeFrameHeader(start, FrameKind.Chunk, length, 'none');
    head.copy(start, FRAME_HEADER_BYTES);
    return body.length === 0 ? [start] : [start, body];
  }

  /**
   * The content of a frame from the FrameDecoder: decompressed (to at most the
   * payload an uncompressed frame could carry, `maxFrameBytes` - 2), and for a message parsed and validated. Throws a
   * ProtocolError: DECOMPRESSION_FAILED, UNSUPPORTED_COMPRESSION, INVALID_MESSAGE
   * (not UTF-8, not JSON, or fails its schema), UNKNOWN_MESSAGE_TYPE, BAD_FRAME.
   */
  decode(frame: Frame): Decoded {
    if (frame.kind === FrameKind.Chunk)
      return { kind: 'chunk', bytes: decompress(frame.codec, frame.payload, this.maxPayloadBytes) };
    if (frame.kind !== FrameKind.Message)
      throw new ProtocolError('BAD_FRAME', `unknown frame kind ${String(frame.kind)}`);
    const payload = decompress(frame.codec, frame.payload, this.maxPayloadBytes);
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      throw new ProtocolError('INVALID_MESSAGE', 'message is not valid UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ProtocolError('INVALID_MESSAGE', 'message is not valid JSON');
    }
    return { kind: 'message', message: parseMessage(value) };
  }

  /**
   * Most payload bytes a frame can carry uncompressed. Compression must not let a
   * peer send more than that, so it also bounds every decompressed payload.
   */
  private get maxPayloadBytes(): number {
    return this.maxFrameBytes - (FRAME_HEADER_BYTES - 4);
  }

  private checkSize(bytes: number, what: unknown): void {
    // The uncompressed size counts even when the compressed frame would be
    // smaller: the receiver refuses payloads that inflate past the same limit.
    if (bytes > this.maxPayloadBytes)
      throw new ProtocolError(
        'FRAME_TOO_LARGE',
        `${String(what)} of ${bytes} bytes is over the frame limit of ${this.maxFrameBytes} bytes`,
        { bytes, limit: this.maxFrameBytes },
      );
  }

  private frame(kind: 1 | 2, payload: Buffer, codec: CompressionCodec): Buffer {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    writeFrameHeader(frame, kind, payload.length, codec);
    payload.copy(frame, FRAME_HEADER_BYTES);
    return frame;
  }
}

/** Fatal, so that bytes which are not UTF-8 are refused rather than silently replaced. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The version a connection speaks: the highest one both sides list, or undefined
 * when they share none (the server then answers UNSUPPORTED_VERSION).
 */
export function negotiateVersion(
  offered: readonly number[],
  ours: readonly number[] = PROTOCOL_VERSIONS,
): number | undefined {
  let best: number | undefined;
  for (const v of ours) if (offered.includes(v) && (best === undefined || v > best)) best = v;
  return best;
}
