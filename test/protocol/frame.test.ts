import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  encodeFrame,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameKind,
} from '../../src/protocol/frame.js';

/** A raw header, for frames the encoder would never build. */
function header(length: number, kind: number, flags: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  h[4] = kind;
  h[5] = flags;
  return h;
}

function simple(frames: Frame[]): Array<{ kind: number; codec: string; payload: string }> {
  return frames.map((f) => ({ kind: f.kind, codec: f.codec, payload: f.payload.toString('hex') }));
}

describe('frames', () => {
  it('encodeFrame writes length, kind, flags and payload big-endian', () => {
    const frame = encodeFrame(FrameKind.Message, Buffer.from('{}'), 'br');
    assert.deepEqual([...frame], [0, 0, 0, 4, 1, 2, 0x7b, 0x7d]);
    assert.deepEqual([...encodeFrame(FrameKind.Chunk, Buffer.alloc(0))], [0, 0, 0, 2, 2, 0]);
    assert.deepEqual([...encodeFrame(FrameKind.Chunk, Buffer.from([9]), 'zstd')], [0, 0, 0, 3, 2, 1, 9]);
  });

  it('decodes a frame split at every possible byte boundary, and in single bytes', () => {
    const payload = Buffer.from(JSON.stringify({ type: 'ping', t: 1 }));
    const stream = Buffer.concat([
      encodeFrame(FrameKind.Message, payload, 'none'),
      encodeFrame(FrameKind.Chunk, Buffer.alloc(0)),
      encodeFrame(FrameKind.Chunk, Buffer.from([1, 2, 3]), 'zstd'),
    ]);
    const expected = simple(new FrameDecoder().push(stream));
    assert.equal(expected.length, 3);
    for (let i = 0; i <= stream.length; i++)
      for (let j = i; j <= stream.length; j++) {
        const d = new FrameDecoder();
        const got = [
          ...d.push(stream.subarray(0, i)),
          ...d.push(stream.subarray(i, j)),
          ...d.push(stream.subarray(j)),
        ];
        assert.deepEqual(simple(got), expected, `split at ${i} and ${j}`);
        assert.equal(d.bufferedBytes, 0);
      }
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (const byte of stream) got.push(...d.push(Buffer.from([byte])));
    assert.deepEqual(simple(got), expected);
  });

  it('decodes many frames from one chunk, without copying whole frames', () => {
    const frames = Array.from({ length: 1000 }, (_, i) =>
      encodeFrame(i % 2 ? FrameKind.Chunk : FrameKind.Message, Buffer.from(`payload ${i}`)),
    );
    const stream = Buffer.concat(frames);
    const got = new FrameDecoder().push(stream);
    assert.equal(got.length, 1000);
    got.forEach((f, i) => {
      assert.equal(f.payload.toString(), `payload ${i}`);
      assert.equal(f.payload.buffer, stream.buffer, 'a whole frame is a view of the pushed chunk');
    });
  });

  it('assembles a large frame arriving in socket-sized pieces', () => {
    const payload = Buffer.alloc(700_000, 7);
    const stream = encodeFrame(FrameKind.Message, payload);
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let at = 0; at < stream.length; at += 65536) got.push(...d.push(stream.subarray(at, at + 65536)));
    assert.equal(got.length, 1);
    assert.ok(got[0]?.payload.equals(payload));
  });

  it('assembles chunk frames that span pieces in memory from `allocate`, message frames in their own', () => {
    const given: { bytes: Buffer; released: number }[] = [];
    const decoder = new FrameDecoder({
      allocate: (n) => {
        const region = { bytes: Buffer.alloc(n), released: 0 };
        given.push(region);
        return { bytes: region.bytes, release: () => region.released++ };
      },
    });
    const chunk = Buffer.from('c'.repeat(40_000));
    const message = Buffer.from(JSON.stringify({ type: 'ping', t: 1, pad: 'x'.repeat(40_000) }));
    const small = Buffer.from([7, 8, 9]);
    const stream = Buffer.concat([
      encodeFrame(FrameKind.Chunk, chunk),
      encodeFrame(FrameKind.Message, message),
      encodeFrame(FrameKind.Chunk, small),
    ]);
    const frames: Frame[] = [];
    for (let at = 0; at < stream.length; at += 16_384)
      frames.push(...decoder.push(stream.subarray(at, at + 16_384)));
    assert.equal(frames.length, 3);
    const [c, m, s] = frames as [Frame, Frame, Frame];
    assert.equal(given.length, 1, 'only the spanning chunk frame was allocated');
    assert.equal(c.payload, given[0]?.bytes);
    assert.deepEqual(c.payload, chunk);
    c.release?.();
    assert.equal(given[0]?.released, 1, "the frame's release is the region's");
    assert.deepEqual(m.payload, message);
    assert.equal(m.release, undefined, 'a message frame has nothing to release');
    assert.deepEqual(s.payload, small);
    assert.equal(s.release, undefined, 'a chunk frame whole in one piece is a view of it');
  });

  it('with input it reuses, no frame is a view of it: each is copied out before push returns', () => {
    const regions: number[] = [];
    const decoder = new FrameDecoder({
      inputReused: true,
      allocate: (n) => {
        regions.push(n);
        return { bytes: Buffer.alloc(n), release: () => undefined };
      },
    });
    const payloads = [Buffer.from('{"type":"ping","t":1}'), randomBytes(3000), randomBytes(20_000)];
    const stream = Buffer.concat([
      encodeFrame(FrameKind.Message, payloads[0] as Buffer),
      encodeFrame(FrameKind.Chunk, payloads[1] as Buffer),
      encodeFrame(FrameKind.Chunk, payloads[2] as Buffer),
      encodeFrame(FrameKind.Chunk, Buffer.alloc(0)),
    ]);
    const input = Buffer.alloc(8192);
    const frames: Frame[] = [];
    for (let at = 0; at < stream.length; at += input.length) {
      const n = stream.copy(input, 0, at, at + input.length);
      frames.push(...decoder.push(input.subarray(0, n)));
      input.fill(0xee);
    }
    assert.deepEqual(
      frames.map((f) => f.payload),
      [...payloads, Buffer.alloc(0)],
    );
    assert.deepEqual(regions, [3000, 20_000], 'chunk frames, whole or spanning pieces, go to allocate');
  });

  it('refuses an oversized frame from its 4 length bytes alone, before buffering it', () => {
    const d = new FrameDecoder();
    const claim = Buffer.alloc(4);
    claim.writeUInt32BE(1024 * 1024 * 1024, 0);
    assert.throws(() => d.push(claim), { name: 'ProtocolError', code: 'FRAME_TOO_LARGE' });
    assert.ok(d.bufferedBytes < FRAME_HEADER_BYTES);

    const small = new FrameDecoder({ maxFrameBytes: 100 });
    assert.deepEqual(simple(small.push(Buffer.concat([header(100, 1, 0), Buffer.alloc(98)]))).length, 1);
    assert.throws(() => small.push(header(101, 1, 0).subarray(0, 4)), { code: 'FRAME_TOO_LARGE' });

    const byDefault = new FrameDecoder();
    assert.throws(() => byDefault.push(header(DEFAULT_MAX_FRAME_BYTES + 1, 1, 0)), {
      code: 'FRAME_TOO_LARGE',
    });
  });

  it('refuses malformed headers with BAD_FRAME', () => {
    const cases: Array<[string, Buffer]> = [
      ['length 0', header(0, 1, 0)],
      ['length 1', header(1, 1, 0)],
      ['kind 0', header(2, 0, 0)],
      ['kind 3', header(2, 3, 0)],
      ['kind 255', header(2, 255, 0)],
      ['reserved flag bit 2', header(2, 1, 0b100)],
      ['reserved flag bit 7', header(2, 1, 0x80)],
      ['compression 3', header(2, 1, 3)],
    ];
    for (const [what, bytes] of cases) {
      assert.throws(() => new FrameDecoder().push(bytes), { code: 'BAD_FRAME' }, what);
      // The same, with the header arriving byte by byte.
      const d = new FrameDecoder();
      assert.throws(
        () => {
          for (const b of bytes) d.push(Buffer.from([b]));
        },
        { code: 'BAD_FRAME' },
        `${what}, byte by byte`,
      );
    }
  });

  it('stays failed after an error, throwing the same error', () => {
    const d = new FrameDecoder();
    let first: unknown;
    try {
      d.push(header(2, 9, 0));
    } catch (err) {
      first = err;
    }
    assert.ok(first instanceof ProtocolError);
    const good = encodeFrame(FrameKind.Message, Buffer.from('{}'));
    assert.throws(
      () => d.push(good),
      (err) => err === first,
    );
    assert.throws(
      () => d.push(Buffer.alloc(0)),
      (err) => err === first,
    );
    assert.equal(d.bufferedBytes, 0);
  });

  it('checks its options', () => {
    assert.throws(() => new FrameDecoder({ maxFrameBytes: 1 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new FrameDecoder({ maxFrameBytes: 2 ** 32 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new FrameDecoder({ maxFrameBytes: 1.5 }), { code: 'INVALID_OPTION' });
    assert.doesNotThrow(() => new FrameDecoder({ maxFrameBytes: undefined }));
  });
});
