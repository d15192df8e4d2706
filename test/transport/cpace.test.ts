import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { confirmationTag, cpace, tagsEqual } from '../../src/transport/cpace.js';

const channel = Buffer.from('child:aaaa|hub:bbbb');

describe('CPace', () => {
  it('two parties with the same code, channel and session id derive the same key', () => {
    const sid = randomBytes(32);
    const a = cpace({ password: '7K2M-QX4P-9TZB', channel, sid }, 'initiator');
    const b = cpace({ password: '7K2M-QX4P-9TZB', channel, sid }, 'responder');
    const ka = a.finish(b.share);
    const kb = b.finish(a.share);
    assert.ok(ka.equals(kb));
    assert.ok(tagsEqual(confirmationTag(ka, 'initiator', sid), confirmationTag(kb, 'initiator', sid)));
  });

  it('a wrong code, another channel (a relay with its own certificates) or another session all give different keys', () => {
    const sid = randomBytes(32);
    const base = { password: '7K2M-QX4P-9TZB', channel, sid };
    const variants = [
      { ...base, password: '7K2M-QX4P-9TZC' },
      { ...base, channel: Buffer.from('child:aaaa|hub:cccc') },
      { ...base, sid: randomBytes(32) },
    ];
    for (const other of variants) {
      const a = cpace(base, 'initiator');
      const b = cpace(other, 'responder');
      assert.ok(!a.finish(b.share).equals(b.finish(a.share)));
    }
  });

  it('shares are fresh each time, so a recorded exchange cannot be replayed', () => {
    const sid = randomBytes(32);
    const a1 = cpace({ password: 'x', channel, sid }, 'initiator');
    const a2 = cpace({ password: 'x', channel, sid }, 'initiator');
    assert.ok(!Buffer.from(a1.share).equals(Buffer.from(a2.share)));
  });

  it('refuses invalid shares and the identity element', () => {
    const a = cpace({ password: 'x', channel, sid: randomBytes(32) }, 'initiator');
    assert.throws(() => a.finish(new Uint8Array(32)), { code: 'PAIRING_FAILED' });
    assert.throws(() => a.finish(Buffer.alloc(32, 0xff)), { code: 'PAIRING_FAILED' });
    assert.throws(() => a.finish(Buffer.alloc(7)), { code: 'PAIRING_FAILED' });
  });
});
