import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  chooseCodec,
  compress,
  type CompressionCodec,
  decompress,
  supportedCodecs,
} from '../../src/protocol/compression.js';

const MiB = 1024 * 1024;

/** A zstd frame written by a streaming encoder: no content size in its header. */
function zstdStreamed(data: Buffer): Buffer {
  const binding = createRequire(import.meta.url)('zstd-napi/binding');
  const cctx = new binding.CCtx();
  const out: Buffer[] = [];
  let rest = data;
  for (;;) {
    const piece = Buffer.alloc(1 << 17);
    const [remaining, produced, consumed] = cctx.compressStream2(piece, rest, binding.EndDirective.end);
    out.push(piece.subarray(0, produced));
    rest = rest.subarray(consumed);
    if (remaining === 0 && rest.length === 0) break;
  }
  return Buffer.concat(out);
}

describe('compression', () => {
  it('offers zstd first, then brotli, then none', () => {
    assert.deepEqual(supportedCodecs(), ['zstd', 'br', 'none']);
  });

  it('chooses the first of our preferences that the peer offered', () => {
    assert.equal(chooseCodec(['br', 'zstd', 'none']), 'zstd');
    assert.equal(chooseCodec(['br', 'none']), 'br');
    assert.equal(chooseCodec(['lz4', 'none']), 'none');
    assert.equal(chooseCodec([]), 'none');
    assert.equal(chooseCodec(['zstd', 'br'], ['br', 'none']), 'br');
    assert.equal(chooseCodec(['zstd'], ['br', 'none']), 'none');
  });

  for (const codec of ['none', 'zstd', 'br'] as CompressionCodec[]) {
    it(`${codec}: round trip of text, random bytes and an empty buffer`, () => {
      for (const data of [Buffer.from('hello '.repeat(1000)), randomBytes(100_000), Buffer.alloc(0)]) {
        const packed = compress(codec, data);
        assert.ok(decompress(codec, packed, data.length).equals(data));
      }
    });
  }

  for (const codec of ['zstd', 'br'] as const) {
    it(`${codec}: refuses a decompression bomb (64 MiB of zeros, 1 MiB limit)`, () => {
      const bomb = compress(codec, Buffer.alloc(64 * MiB));
      assert.ok(bomb.length < 64 * 1024, `the bomb is small (${bomb.length} bytes)`);
      const before = process.memoryUsage().arrayBuffers;
      assert.throws(() => decompress(codec, bomb, MiB), {
        name: 'ProtocolError',
        code: 'DECOMPRESSION_FAILED',
      });
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 16 * MiB, `no large allocation (${grown} bytes)`);
    });

    it(`${codec}: refuses corrupt, truncated and trailing input`, () => {
      const packed = compress(codec, Buffer.from('some text to compress '.repeat(200)));
      const corrupt = Buffer.from(packed);
      for (let i = 4; i < corrupt.length; i += 7) corrupt[i] = (corrupt[i] as number) ^ 0x5a;
      const trailing = Buffer.concat([packed, Buffer.from('junk')]);
      for (const bad of [
        corrupt,
        packed.subarray(0, packed.length >> 1),
        Buffer.from('not compressed'),
        trailing,
      ])
        assert.throws(() => decompress(codec, bad, MiB), { code: 'DECOMPRESSION_FAILED' });
    });

    it(`${codec}: the limit is exact`, () => {
      const data = Buffer.alloc(1000, 1);
      assert.equal(decompress(codec, compress(codec, data), 1000).length, 1000);
      assert.throws(() => decompress(codec, compress(codec, data), 999), { code: 'DECOMPRESSION_FAILED' });
    });
  }

  it('zstd: bounds frames without a declared size too', () => {
    const data = Buffer.from('streamed '.repeat(10_000));
    const streamed = zstdStreamed(data);
    assert.ok(decompress('zstd', streamed, data.length).equals(data));
    assert.throws(() => decompress('zstd', streamed, data.length - 1), { code: 'DECOMPRESSION_FAILED' });
    const bomb = zstdStreamed(Buffer.alloc(64 * MiB));
    assert.throws(() => decompress('zstd', bomb, MiB), { code: 'DECOMPRESSION_FAILED' });
    assert.throws(() => decompress('zstd', streamed.subarray(0, streamed.length - 3), MiB), {
      code: 'DECOMPRESSION_FAILED',
    });
  });

  it('zstd: several frames back to back decode as one payload', () => {
    const a = Buffer.from('first frame '.repeat(100));
    const b = Buffer.from('second frame '.repeat(100));
    const both = Buffer.concat([compress('zstd', a), zstdStreamed(b), compress('zstd', b)]);
    assert.equal(decompress('zstd', both, MiB).toString(), a.toString() + b.toString() + b.toString());
    const declared = Buffer.concat([compress('zstd', a), compress('zstd', b)]);
    assert.throws(() => decompress('zstd', declared, a.length + b.length - 1), {
      code: 'DECOMPRESSION_FAILED',
    });
  });

  it('refuses an unknown codec with UNSUPPORTED_COMPRESSION', () => {
    assert.throws(() => compress('lz4' as CompressionCodec, Buffer.alloc(1)), {
      code: 'UNSUPPORTED_COMPRESSION',
    });
    assert.throws(() => decompress('lz4' as CompressionCodec, Buffer.alloc(1), 10), {
      code: 'UNSUPPORTED_COMPRESSION',
    });
  });
});
