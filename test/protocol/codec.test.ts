import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MessageCodec, negotiateVersion } from '../../src/protocol/codec.js';
import { compress, type CompressionCodec } from '../../src/protocol/compression.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { encodeFrame, type Frame, FrameDecoder, FrameKind } from '../../src/protocol/frame.js';
import type { Message } from '../../src/protocol/messages.js';
import { sampleMessages } from './fixtures.js';

const codecs: CompressionCodec[] = ['none', 'zstd', 'br'];

/** Frames out of one encoded buffer, through a fresh decoder. */
function frames(bytes: Buffer, maxFrameBytes?: number): Frame[] {
  return new FrameDecoder({ maxFrameBytes }).push(bytes);
}

function decodeOne(codec: MessageCodec, bytes: Buffer): Message {
  const [frame, ...rest] = frames(bytes);
  assert.ok(frame);
  assert.equal(rest.length, 0);
  const decoded = codec.decode(frame);
  assert.equal(decoded.kind, 'message');
  return (decoded as { message: Message }).message;
}

describe('MessageCodec', () => {
  for (const compression of codecs) {
    it(`round-trips every message type, small and large, with ${compression}`, () => {
      const sender = new MessageCodec({ compression });
      const receiver = new MessageCodec();
      for (const { name, message } of sampleMessages()) {
        const bytes = sender.encode(message);
        const size = Buffer.byteLength(JSON.stringify(message));
        const flagged = bytes[5];
        if (compression === 'none' || size <= 512) assert.equal(flagged, 0, `${name} is sent uncompressed`);
        else assert.equal(flagged, compression === 'zstd' ? 1 : 2, `${name} is compressed`);
        assert.deepEqual(decodeOne(receiver, bytes), JSON.parse(JSON.stringify(message)), name);
      }
    });

    it(`round-trips chunks with ${compression}`, () => {
      const sender = new MessageCodec({ compression });
      const receiver = new MessageCodec();
      for (const bytes of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.alloc(100_000, 'chunk')]) {
        const [frame] = frames(sender.encodeChunk(bytes));
        assert.equal(frame?.kind, FrameKind.Chunk);
        const decoded = receiver.decode(frame as Frame);
        assert.equal(decoded.kind, 'chunk');
        assert.ok(decoded.kind === 'chunk' && decoded.bytes.equals(bytes));
      }
      const raw = sender.encodeChunk(Buffer.alloc(100_000, 'chunk'), { compress: false });
      assert.equal(raw[5], 0);
    });
  }

  it('sends a payload uncompressed when compression would not make it smaller', () => {
    const codec = new MessageCodec({ compression: 'zstd', compressAboveBytes: 0 });
    for (const compression of ['zstd', 'br'] as const) {
      codec.setCompression(compression);
      assert.equal(codec.encodeChunk(randomBytes(4096))[5], 0, compression);
    }
  });

  it('a large chunk whose first 4 KiB do not compress is sent as it is; one whose start compresses is compressed', () => {
    const codec = new MessageCodec({ compression: 'zstd' });
    const random = randomBytes(64 * 1024);
    // Random bytes with a compressible tail: the sample decides, so it goes raw.
    const mixed = Buffer.concat([random.subarray(0, 8192), Buffer.alloc(56 * 1024, 'a')]);
    assert.equal(codec.encodeChunk(mixed)[5], 0, 'judged by its start');
    const text = Buffer.from('quarterly report, page after page '.repeat(2000));
    const packed = codec.encodeChunk(text);
    assert.equal(packed[5], 1, 'text is compressed');
    assert.ok(packed.length < text.length / 10);
    // A chunk under 16 KiB is tried whole, however its start looks.
    const small = Buffer.concat([random.subarray(0, 4096), Buffer.alloc(8192, 'b')]);
    assert.equal(codec.encodeChunk(small)[5], 1, 'a small chunk is tried whole');
  });

  it('setCompression applies to frames sent afterwards', () => {
    const codec = new MessageCodec();
    const message: Message = { type: 'pong', t: 1, ...{} };
    const big: Message = { type: 'error', code: 'X', message: 'y'.repeat(1000) };
    assert.equal(codec.encode(big)[5], 0);
    codec.setCompression('br');
    assert.equal(codec.getCompression(), 'br');
    assert.equal(codec.encode(big)[5], 2);
    assert.equal(codec.encode(message)[5], 0, 'small messages stay uncompressed');
    assert.throws(() => codec.setCompression('lz4' as CompressionCodec), { code: 'UNSUPPORTED_COMPRESSION' });
  });

  it('refuses to encode a message larger than the frame limit', () => {
    const codec = new MessageCodec({ maxFrameBytes: 1000, compression: 'zstd' });
    const message: Message = { type: 'error', code: 'X', message: 'y'.repeat(1000) };
    assert.throws(() => codec.encode(message), { code: 'FRAME_TOO_LARGE' });
    assert.throws(() => codec.encodeChunk(Buffer.alloc(999)), { code: 'FRAME_TOO_LARGE' });
    assert.equal(codec.encodeChunk(Buffer.alloc(998), { compress: false }).length, 1004);
  });

  it('refuses a payload that inflates past the frame limit', () => {
    const receiver = new MessageCodec({ maxFrameBytes: 64 * 1024 });
    for (const c of ['zstd', 'br'] as const) {
      const json = Buffer.from(JSON.stringify({ type: 'error', code: 'X', message: 'x'.repeat(100_000) }));
      const frame = encodeFrame(FrameKind.Message, compress(c, json), c);
      const [cut] = frames(frame, 64 * 1024);
      assert.throws(() => receiver.decode(cut as Frame), { code: 'DECOMPRESSION_FAILED' });
    }
  });

  it('refuses payloads that are not UTF-8 JSON messages', () => {
    const codec = new MessageCodec();
    const cases: Array<[Buffer, string]> = [
      [Buffer.from('{"type":"ping",'), 'INVALID_MESSAGE'],
      [Buffer.from(''), 'INVALID_MESSAGE'],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'INVALID_MESSAGE'],
      [Buffer.from('\ufeff{"type":"ping","t":1}'), 'INVALID_MESSAGE'],
      [Buffer.from('[1,2]'), 'INVALID_MESSAGE'],
      [Buffer.from('{"type":"nope"}'), 'UNKNOWN_MESSAGE_TYPE'],
    ];
    for (const [payload, code] of cases)
      assert.throws(() => codec.decode({ kind: 1, codec: 'none', payload }), { code }, payload.toString());
    assert.throws(() => codec.decode({ kind: 1, codec: 'br', payload: Buffer.from('garbage') }), {
      code: 'DECOMPRESSION_FAILED',
    });
    assert.throws(() => codec.decode({ kind: 7 as 1, codec: 'none', payload: Buffer.from('{}') }), {
      code: 'BAD_FRAME',
    });
  });

  it('decodes deeply nested JSON without overflowing the stack', () => {
    const codec = new MessageCodec();
    const depth = 100_000;
    const json = `{"type":"request","id":1,"method":"a","params":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const decoded = codec.decode({ kind: 1, codec: 'none', payload: Buffer.from(json) });
    assert.equal(decoded.kind === 'message' && decoded.message.type, 'request');
  });

  it('checks its options', () => {
    assert.throws(() => new MessageCodec({ compressAboveBytes: -1 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new MessageCodec({ maxFrameBytes: 0 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new MessageCodec({ compression: 'gzip' as CompressionCodec }), {
      code: 'UNSUPPORTED_COMPRESSION',
    });
  });

  it('never throws anything but a ProtocolError on random bytes', () => {
    const check = (bytes: Uint8Array, splits: number[]) => {
      const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      const codec = new MessageCodec({ maxFrameBytes: 1 << 20 });
      const buffer = Buffer.from(bytes);
      const cuts = [...new Set(splits.map((s) => s % (buffer.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      try {
        for (const to of [...cuts, buffer.length]) {
          for (const frame of decoder.push(buffer.subarray(from, to))) codec.decode(frame);
          from = to;
        }
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
      }
    };
    // Random bytes, and random bytes behind a plausible header (so payload decoding is reached).
    const header = fc.record({
      kind: fc.constantFrom(1, 2),
      flags: fc.constantFrom(0, 1, 2),
      body: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 5 }), check), {
      numRuns: 500,
    });
    fc.assert(
      fc.property(
        fc.array(header, { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (parts, splits) => {
          const bytes = Buffer.concat(
            parts.map((p) => {
              const h = Buffer.alloc(6);
              h.writeUInt32BE(p.body.length + 2, 0);
              h[4] = p.kind;
              h[5] = p.flags;
              return Buffer.concat([h, p.body]);
            }),
          );
          check(bytes, splits);
        },
      ),
      { numRuns: 500 },
    );
    // JSON-shaped garbage: valid JSON that is not a valid message.
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(...codecs), (value, c) => {
        const json = Buffer.from(JSON.stringify(value) ?? 'null');
        const frame = encodeFrame(FrameKind.Message, compress(c, json), c);
        check(frame, []);
        const typed = Buffer.from(JSON.stringify({ ...(value as object), type: 'sync.changes' }));
        check(encodeFrame(FrameKind.Message, typed), []);
      }),
      { numRuns: 500 },
    );
  });
});

describe('negotiateVersion', () => {
  it('picks the highest version both sides speak', () => {
    assert.equal(negotiateVersion([1]), 1);
    assert.equal(negotiateVersion([1, 2, 3], [1, 2]), 2);
    assert.equal(negotiateVersion([3, 1, 2], [2, 3, 4]), 3);
    assert.equal(negotiateVersion([2, 3], [1]), undefined);
    assert.equal(negotiateVersion([], [1]), undefined);
  });
});
