import { DEFAULT_MAX_FRAME_BYTES } from './constants.js';
import type { CompressionCodec } from './compression.js';
import { ProtocolError } from './errors.js';

/** Bytes before a frame's payload: length (4), kind (1), flags (1). */
export const FRAME_HEADER_BYTES = 6;

/** What a frame's payload is: a JSON message, or raw bytes (file chunks). */
export const FrameKind = { Message: 1, Chunk: 2 } as const;

/** A frame's kind byte. */
export type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

/** One decoded frame. */
export interface Frame {
  kind: 1 | 2;
  /** Compression of `payload`, from the flag bits; `payload` is still compressed. */
  codec: CompressionCodec;
  /**
   * The payload as it travelled. Unless the decoder's input is reused, it may share
   * memory with the chunk it was cut from, so the pushed chunk must not be modified
   * afterwards.
   */
  payload: Buffer;
  /**
   * Set when `payload` was taken from the decoder's `allocate`: call it once nothing
   * reads the payload any more, so its memory can be used again.
   */
  release?: () => void;
}

/** Largest value the 32-bit length field can hold. */
const MAX_LENGTH_FIELD = 0xffff_ffff;
/** Bytes of the length field counted in it: kind and flags. */
const COUNTED_HEADER_BYTES = FRAME_HEADER_BYTES - 4;
const CODEC_BITS = 0b11;

const CODEC_TO_BITS: Readonly<Record<CompressionCodec, number>> = { none: 0, zstd: 1, br: 2 };
const BITS_TO_CODEC: readonly (CompressionCodec | undefined)[] = ['none', 'zstd', 'br', undefined];

/**
 * Builds one frame around `payload`. The payload is taken as it is: when `codec`
 * is not `none` the caller has already compressed it, and `codec` only sets the
 * flag bits.
 */
export function encodeFrame(kind: FrameKindValue, payload: Buffer, codec: CompressionCodec = 'none'): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(frame, kind, payload.length, codec);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Writes a frame header into the first FRAME_HEADER_BYTES of `target`, for a
 * payload of `payloadBytes` that the caller writes after it (saves a copy when the
 * payload is produced straight into the frame).
 */
export function writeFrameHeader(
  target: Buffer,
  kind: FrameKindValue,
  payloadBytes: number,
  codec: CompressionCodec = 'none',
): void {
  if (kind !== FrameKind.Message && kind !== FrameKind.Chunk)
    throw new ProtocolError('BAD_FRAME', `unknown frame kind ${String(kind)}`, { kind });
  const bits = CODEC_TO_BITS[codec];
  if (bits === undefined)
    throw new ProtocolError('UNSUPPORTED_COMPRESSION', `unknown compression ${String(codec)}`, {
      codec: String(codec),
    });
  const length = payloadBytes + COUNTED_HEADER_BYTES;
  if (length > MAX_LENGTH_FIELD)
    throw new ProtocolError('FRAME_TOO_LARGE', `a payload of ${payloadBytes} bytes does not fit in a frame`, {
      bytes: payloadBytes,
    });
  target.writeUInt32BE(length, 0);
  target[4] = kind;
  target[5] = bits;
}

/** Options of a FrameDecoder. */
export interface FrameDecoderOptions {
  /**
   * Largest accepted value of a frame's length field (bytes of kind, flags and
   * payload). Default DEFAULT_MAX_FRAME_BYTES (16 MiB). Larger frames are refused
   * from their length field alone, before anything is buffered.
   */
  maxFrameBytes?: number;
  /**
   * Where the payload of a chunk frame that spans pieces is assembled (default: a
   * buffer of its own). The frame's `release` is the region's.
   */
  allocate?: (bytes: number) => { bytes: Buffer; release: () => void };
  /**
   * The pieces pushed lie in memory the caller overwrites after `push` returns: no
   * frame is then a view of one (each is copied, a chunk frame into `allocate`).
   */
  inputReused?: boolean;
}

/** Checks a maxFrameBytes option; shared by the decoder and MessageCodec. */
export function resolveMaxFrameBytes(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(value) || value < COUNTED_HEADER_BYTES || value > MAX_LENGTH_FIELD)
    throw new ProtocolError(
      'INVALID_OPTION',
      `option maxFrameBytes: expected an integer from ${COUNTED_HEADER_BYTES} to ${MAX_LENGTH_FIELD}, got ${String(value)}`,
      { option: 'maxFrameBytes' },
    );
  return value;
}

/**
 * Cuts a byte stream into frames. Push the bytes as they arrive, in any pieces;
 * each call returns the frames completed by that piece. A frame that arrives
 * whole inside one piece is returned as a view of it (no copy); a frame split
 * across pieces is assembled once into a buffer of its exact size.
 *
 * A malformed header throws a ProtocolError (BAD_FRAME, FRAME_TOO_LARGE); after
 * that the decoder is failed for good and every later push throws the same error,
 * since the stream can no longer be cut reliably.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly allocate: FrameDecoderOptions['allocate'];
  private readonly inputReused: boolean;
  /** Header bytes of the current frame while it is incomplete. */
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** Payload of the current frame once its header is complete and it spans pieces. */
  private body: Buffer | undefined;
  private bodyRelease: (() => void) | undefined;
  private bodyFill = 0;
  private kind: 1 | 2 = FrameKind.Message;
  private codec: CompressionCodec = 'none';
  private error: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = resolveMaxFrameBytes(options.maxFrameBytes);
    this.allocate = options.allocate;
    this.inputReused = options.inputReused ?? false;
  }

  /** Bytes held for a frame that is not complete yet. */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /** Feeds bytes from the stream; returns the frames they complete, in order. */
  push(chunk: Buffer): Frame[] {
    if (this.error) throw this.error;
    try {
      return this.cut(chunk);
    } catch (err) {
      this.error =
        err instanceof ProtocolError
          ? err
          : new ProtocolError('BAD_FRAME', `frame decoding failed: ${String(err)}`);
      this.header.fill(0);
      this.headerFill = 0;
      this.body = undefined;
      this.bodyRelease = undefined;
      this.bodyFill = 0;
      throw this.error;
    }
  }

  private cut(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.body !== undefined) {
        const take = Math.min(this.body.length - this.bodyFill, end - at);
        chunk.copy(this.body, this.bodyFill, at, at + take);
        this.bodyFill += take;
        at += take;
        if (this.bodyFill === this.body.length) this.endBody(frames);
        continue;
      }
      if (this.headerFill === 0 && end - at >= FRAME_HEADER_BYTES) {
        // The common case: the header is whole in this piece, read it in place.
        const payloadBytes = this.readHeader(chunk, at);
        at += FRAME_HEADER_BYTES;
        if (end - at >= payloadBytes) {
          const whole = chunk.subarray(at, at + payloadBytes);
          if (this.inputReused && payloadBytes > 0) {
            whole.copy(this.startBody(payloadBytes));
            this.endBody(frames);
          } else frames.push({ kind: this.kind, codec: this.codec, payload: whole });
          at += payloadBytes;
        } else {
          this.startBody(payloadBytes);
        }
        continue;
      }
      // A header split across pieces: gather it, checking the length as soon as
      // its four bytes are in, so an oversized frame is refused before its header
      // is even complete.
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, end - at);
      chunk.copy(this.header, this.headerFill, at, at + take);
      this.headerFill += take;
      at += take;
      if (this.headerFill >= 4) this.checkLength(this.header.readUInt32BE(0));
      if (this.headerFill < FRAME_HEADER_BYTES) continue;
      const payloadBytes = this.readHeader(this.header, 0);
      this.headerFill = 0;
      if (payloadBytes === 0) frames.push({ kind: this.kind, codec: this.codec, payload: Buffer.alloc(0) });
      else this.startBody(payloadBytes);
    }
    return frames;
  }

  /** Gives the assembled body as a frame; the next frame starts afresh. */
  private endBody(frames: Frame[]): void {
    frames.push({
      kind: this.kind,
      codec: this.codec,
      payload: this.body as Buffer,
      ...(this.bodyRelease && { release: this.bodyRelease }),
    });
    this.body = undefined;
    this.bodyRelease = undefined;
    this.bodyFill = 0;
  }

  private startBody(payloadBytes: number): Buffer {
    if (this.allocate && this.kind === FrameKind.Chunk) {
      const region = this.allocate(payloadBytes);
      this.body = region.bytes;
      this.bodyRelease = region.release;
    } else this.body = Buffer.allocUnsafe(payloadBytes);
    this.bodyFill = 0;
    return this.body;
  }

  private checkLength(length: number): void {
    if (length > this.maxFrameBytes)
      throw new ProtocolError(
        'FRAME_TOO_LARGE',
        `frame of ${length} bytes is over the limit of ${this.maxFrameBytes} bytes`,
        { bytes: length, limit: this.maxFrameBytes },
      );
    if (length < COUNTED_HEADER_BYTES)
      throw new ProtocolError('BAD_FRAME', `frame length ${length} is shorter than its kind and flags`, {
        length,
      });
  }

  /** Validates a whole header at `offset`; sets kind and codec; returns the payload size. */
  private readHeader(source: Buffer, offset: number): number {
    const length = source.readUInt32BE(offset);
    this.checkLength(length);
    const kind = source[offset + 4] as number;
    const flags = source[offset + 5] as number;
    if (kind !== FrameKind.Message && kind !== FrameKind.Chunk)
      throw new ProtocolError('BAD_FRAME', `unknown frame kind ${kind}`, { kind });
    if ((flags & ~CODEC_BITS) !== 0)
      throw new ProtocolError('BAD_FRAME', `reserved flag bits set (flags ${flags})`, { flags });
    const codec = BITS_TO_CODEC[flags & CODEC_BITS];
    if (codec === undefined)
      throw new ProtocolError('BAD_FRAME', `reserved compression value ${flags & CODEC_BITS}`, { flags });
    this.kind = kind;
    this.codec = codec;
    return length - COUNTED_HEADER_BYTES;
  }
}
