import { createRequire } from 'node:module';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants } from 'node:zlib';
import { ProtocolError } from './errors.js';

/**
 * Compression of a frame's payload, as named in `hello.compression` and
 * `welcome.compression`: `zstd` (Zstandard), `br` (Brotli) or `none`.
 */
export type CompressionCodec = 'none' | 'zstd' | 'br';

/** Every codec name this protocol version defines, in no particular order. */
export const COMPRESSION_CODECS: readonly CompressionCodec[] = ['none', 'zstd', 'br'];

/** True when `value` names a codec this protocol version defines. */
export function isCompressionCodec(value: unknown): value is CompressionCodec {
  return value === 'none' || value === 'zstd' || value === 'br';
}

/**
 * Zstandard level 1: on a batch of 1,000 revisions (686 KB of JSON) it compresses
 * 1.7 times as fast as zstd's default level 3 and to a smaller size (13.2 % against
 * 14.4 %: the hex hashes defeat the default's longer searches). At LAN speed the
 * sender's CPU, not the bytes, bounds a sync.
 */
const ZSTD_LEVEL = 1;
/**
 * Brotli quality: the library default (11) is two orders of magnitude slower than
 * zstd; 5 keeps encode time of a full sync batch in the low milliseconds.
 */
const BROTLI_QUALITY = 5;

/** The parts of zstd-napi used here (its binding, for bounded decompression). */
interface ZstdBinding {
  CCtx: new () => {
    setParameter(param: number, value: number): void;
    compress2(dst: Uint8Array, src: Uint8Array): number;
  };
  DCtx: new () => {
    decompress(dst: Uint8Array, src: Uint8Array): number;
    decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
    setParameter(param: number, value: number): void;
    reset(directive: number): void;
  };
  CParameter: { compressionLevel: number };
  DParameter: { windowLogMax: number };
  ResetDirective: { sessionAndParameters: number };
  getFrameContentSize(frame: Uint8Array): number | null;
  findFrameCompressedSize(frame: Uint8Array): number;
  compressBound(size: number): number;
  dParamGetBounds(param: number): { lowerBound: number; upperBound: number };
  dStreamOutSize(): number;
}

let zstdState: { binding: ZstdBinding | undefined } | undefined;

/**
 * zstd-napi is a native module: a build without it (no compiler at install time,
 * an unusual platform) must still run, just without zstd. So it is loaded lazily,
 * once, and a failure only removes zstd from the offer.
 */
function zstd(): ZstdBinding | undefined {
  if (zstdState === undefined) {
    let binding: ZstdBinding | undefined;
    try {
      binding = createRequire(import.meta.url)('zstd-napi/binding') as ZstdBinding;
      new binding.DCtx();
    } catch {
      binding = undefined;
    }
    zstdState = { binding };
  }
  return zstdState.binding;
}

/**
 * The codecs this build can use, most preferred first: `zstd` (when the native
 * module loads), then `br` (always available in Node), then `none`. This is the
 * list to send in `hello.compression`.
 */
export function supportedCodecs(): CompressionCodec[] {
  return zstd() === undefined ? ['br', 'none'] : ['zstd', 'br', 'none'];
}

/**
 * The codec for a connection: the first of `ours` (our preference order) that the
 * peer `offered`; `none` when there is no such codec. Names the peer offers that we
 * do not know are ignored, so newer peers can offer more.
 */
export function chooseCodec(offered: readonly string[], ours = supportedCodecs()): CompressionCodec {
  for (const codec of ours) if (offered.includes(codec)) return codec;
  return 'none';
}

function unsupported(codec: string): ProtocolError {
  return new ProtocolError('UNSUPPORTED_COMPRESSION', `compression ${codec} is not available in this build`, {
    codec,
  });
}

function failed(codec: CompressionCodec, reason: string, details?: Record<string, unknown>): ProtocolError {
  return new ProtocolError('DECOMPRESSION_FAILED', `${codec} payload: ${reason}`, { codec, ...details });
}

let zstdCompressor: InstanceType<ZstdBinding['CCtx']> | undefined;

/**
 * Compresses `data` with `codec` (`none` returns `data` itself). Throws
 * UNSUPPORTED_COMPRESSION when the codec is not available in this build.
 */
export function compress(codec: CompressionCodec, data: Buffer): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'br':
      return brotliCompressSync(data, {
        params: {
          [zlibConstants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
          [zlibConstants.BROTLI_PARAM_SIZE_HINT]: data.length,
        },
      });
    case 'zstd': {
      const z = zstd();
      if (z === undefined) throw unsupported(codec);
      if (zstdCompressor === undefined) {
        zstdCompressor = new z.CCtx();
        zstdCompressor.setParameter(z.CParameter.compressionLevel, ZSTD_LEVEL);
      }
      // compress2 writes the content size into the frame header, which lets the
      // receiver check the size before it allocates anything.
      const out = Buffer.allocUnsafe(z.compressBound(data.length));
      const written = zstdCompressor.compress2(out, data);
      return out.subarray(0, written);
    }
    default:
      throw unsupported(String(codec));
  }
}

/**
 * Decompresses `data`, never producing (nor allocating for) more than `maxBytes`
 * bytes: a payload that would inflate beyond it is refused as a decompression bomb.
 * Throws DECOMPRESSION_FAILED on corrupt or truncated input and on output over
 * `maxBytes`, UNSUPPORTED_COMPRESSION when the codec is not available here.
 */
export function decompress(codec: CompressionCodec, data: Buffer, maxBytes: number): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'br':
      return brotliDecompress(data, maxBytes);
    case 'zstd':
      return zstdDecompress(data, maxBytes);
    default:
      throw unsupported(String(codec));
  }
}

function brotliDecompress(data: Buffer, maxBytes: number): Buffer {
  let out: Buffer;
  let consumed: number;
  try {
    // maxOutputLength makes zlib stop as soon as the output passes the limit; `info`
    // (missing from the type definitions) also returns the engine, which counts the
    // input consumed.
    const options = {
      maxOutputLength: Math.max(1, maxBytes),
      finishFlush: zlibConstants.BROTLI_OPERATION_FINISH,
      info: true,
    };
    const result = brotliDecompressSync(data, options) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    out = result.buffer;
    consumed = result.engine.bytesWritten;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE')
      throw failed('br', `inflates beyond the limit of ${maxBytes} bytes`, { limit: maxBytes });
    throw failed('br', 'corrupt or truncated data');
  }
  if (out.length > maxBytes)
    throw failed('br', `inflates beyond the limit of ${maxBytes} bytes`, { limit: maxBytes });
  // zlib stops at the end of the Brotli stream and ignores what follows; the
  // protocol does not allow anything there (zstd refuses it the same way).
  if (consumed !== data.length) throw failed('br', 'bytes after the end of the compressed data');
  return out;
}

let zstdDecompressor: InstanceType<ZstdBinding['DCtx']> | undefined;

function zstdDecompress(data: Buffer, maxBytes: number): Buffer {
  const z = zstd();
  if (z === undefined) throw unsupported('zstd');
  if (data.length === 0) throw failed('zstd', 'empty payload');
  const tooLarge = () =>
    failed('zstd', `inflates beyond the limit of ${maxBytes} bytes`, { limit: maxBytes });
  const dctx = (zstdDecompressor ??= new z.DCtx());
  try {
    dctx.reset(z.ResetDirective.sessionAndParameters);
    // The window is memory the decoder allocates whatever the output size; a frame
    // may not ask for more than the limit (nor more than zstd's default ceiling).
    const bounds = z.dParamGetBounds(z.DParameter.windowLogMax);
    const windowLog = Math.min(27, Math.max(bounds.lowerBound, Math.ceil(Math.log2(Math.max(1, maxBytes)))));
    dctx.setParameter(z.DParameter.windowLogMax, windowLog);

    // Frames normally declare their content size: check it first, then decode in
    // one pass into a buffer of exactly that size (a frame that lies overflows it
    // and fails).
    let declared: number | null = 0;
    for (let rest = data; rest.length > 0 && declared !== null;) {
      const size = z.getFrameContentSize(rest);
      if (size === null) declared = null;
      else {
        declared += size;
        if (declared > maxBytes) throw tooLarge();
        rest = rest.subarray(z.findFrameCompressedSize(rest));
      }
    }
    if (declared !== null) {
      const out = Buffer.allocUnsafe(declared);
      const written = dctx.decompress(out, data);
      if (written !== declared) throw failed('zstd', 'content size does not match the frame header');
      return out;
    }

    // A streamed frame without a declared size: decode piece by piece, stopping as
    // soon as the running total passes the limit.
    const pieces: Buffer[] = [];
    let total = 0;
    let rest = data;
    const step = z.dStreamOutSize();
    for (;;) {
      const piece = Buffer.allocUnsafe(Math.min(Math.max(step, rest.length), maxBytes - total + 1));
      const [remaining, produced, consumed] = dctx.decompressStream(piece, rest);
      total += produced;
      if (total > maxBytes) throw tooLarge();
      if (produced > 0) pieces.push(piece.subarray(0, produced));
      rest = rest.subarray(consumed);
      if (rest.length === 0 && remaining === 0) break;
      // Out of input mid-frame with room left in the output: the data was cut short.
      // Input left but no progress at all would loop forever: refuse it too.
      if ((rest.length === 0 && produced < piece.length) || (produced === 0 && consumed === 0))
        throw failed('zstd', 'truncated data');
    }
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, total);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw failed('zstd', 'corrupt or truncated data');
  }
}
