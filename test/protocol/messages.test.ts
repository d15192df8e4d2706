import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTOCOL_NAME } from '../../src/protocol/constants.js';
import { type Message, MESSAGE_TYPES, parseMessage } from '../../src/protocol/messages.js';
import type { SyncMessage } from '../../src/protocol/messages.js';
import { sampleMessages } from './fixtures.js';

const hello = {
  type: 'hello',
  protocol: PROTOCOL_NAME,
  versions: [1],
  name: 'pc',
  role: 'child',
  appVersion: '0.1.0',
  compression: ['zstd'],
  features: [],
};

function code(value: unknown): string | undefined {
  try {
    parseMessage(value);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

/** A valid sync.changes message that the cases below break one field of. */
const changes = {
  type: 'sync.changes',
  log: 'c'.repeat(32),
  since: 0,
  upTo: 1,
  check: '',
  more: false,
  revisions: [],
};

describe('message schemas', () => {
  it('accept one valid message of every type', () => {
    const samples = sampleMessages();
    assert.deepEqual(new Set(samples.map((s) => s.message.type)), new Set(MESSAGE_TYPES));
    for (const { name, message } of samples)
      assert.deepEqual(
        parseMessage(JSON.parse(JSON.stringify(message))),
        JSON.parse(JSON.stringify(message)),
        name,
      );
  });

  it('every SyncMessage is a Message', () => {
    const sync: SyncMessage = { type: 'sync.ack', upTo: 1, applied: 1, duplicates: 0, rejected: [] };
    const message: Message = sync;
    assert.equal(message.type, 'sync.ack');
  });

  it('drop unknown fields instead of failing', () => {
    const parsed = parseMessage({ type: 'ping', t: 5, future: { x: 1 } });
    assert.deepEqual(parsed, { type: 'ping', t: 5 });
    const h = parseMessage({ ...hello, newCapability: true }) as Record<string, unknown>;
    assert.equal('newCapability' in h, false);
  });

  it('refuse an unknown type with UNKNOWN_MESSAGE_TYPE, anything else with INVALID_MESSAGE', () => {
    assert.equal(code({ type: 'files.offer' }), 'UNKNOWN_MESSAGE_TYPE');
    assert.equal(code({ type: '' }), 'UNKNOWN_MESSAGE_TYPE');
    for (const value of [null, 5, 'ping', [], [{ type: 'ping', t: 1 }], {}, { type: 5 }, { t: 1 }])
      assert.equal(code(value), 'INVALID_MESSAGE', JSON.stringify(value));
  });

  it('refuse field violations with INVALID_MESSAGE, naming the field', () => {
    const cases: Array<[string, unknown, string]> = [
      ['wrong protocol name', { ...hello, protocol: 'other' }, 'protocol'],
      ['no versions', { ...hello, versions: [] }, 'versions'],
      ['17 versions', { ...hello, versions: Array.from({ length: 17 }, (_, i) => i + 1) }, 'versions'],
      ['version 0', { ...hello, versions: [0] }, 'versions.0'],
      ['fractional version', { ...hello, versions: [1.5] }, 'versions.0'],
      ['empty name', { ...hello, name: '' }, 'name'],
      ['long name', { ...hello, name: 'x'.repeat(129) }, 'name'],
      ['bad role', { ...hello, role: 'admin' }, 'role'],
      ['long appVersion', { ...hello, appVersion: 'x'.repeat(65) }, 'appVersion'],
      ['9 codecs', { ...hello, compression: Array(9).fill('br') }, 'compression'],
      ['33 features', { ...hello, features: Array(33).fill('f') }, 'features'],
      ['long feature', { ...hello, features: ['f'.repeat(65)] }, 'features.0'],
      ['heartbeat 0', { ...hello, heartbeatMs: 0 }, 'heartbeatMs'],
      ['missing features', { ...hello, features: undefined }, 'features'],
      [
        'welcome codec unknown',
        {
          type: 'welcome',
          version: 1,
          name: 'hub',
          role: 'hub',
          appVersion: '1',
          compression: 'lz4',
          features: [],
          heartbeatMs: 1000,
        },
        'compression',
      ],
      [
        'welcome without heartbeat',
        {
          type: 'welcome',
          version: 1,
          name: 'hub',
          role: 'hub',
          appVersion: '1',
          compression: 'none',
          features: [],
        },
        'heartbeatMs',
      ],
      ['ping without t', { type: 'ping' }, 't'],
      ['pong with a string t', { type: 'pong', t: '1' }, 't'],
      ['lower-case error code', { type: 'error', code: 'oops', message: 'x' }, 'code'],
      ['long error code', { type: 'error', code: 'A'.repeat(65), message: 'x' }, 'code'],
      ['long error message', { type: 'error', code: 'X', message: 'x'.repeat(1025) }, 'message'],
      ['error details not an object', { type: 'error', code: 'X', message: 'x', details: [1] }, 'details'],
      ['request id 0', { type: 'request', id: 0, method: 'a' }, 'id'],
      ['request method upper case', { type: 'request', id: 1, method: 'Devices.List' }, 'method'],
      ['request method too long', { type: 'request', id: 1, method: 'a'.repeat(65) }, 'method'],
      ['response without ok', { type: 'response', re: 1 }, 'ok'],
      ['failed response without error', { type: 'response', re: 1, ok: false }, 'error'],
      [
        'successful response with error',
        { type: 'response', re: 1, ok: true, error: { code: 'X', message: 'y' } },
        'error',
      ],
      [
        'response error code',
        { type: 'response', re: 1, ok: false, error: { code: 'x', message: 'y' } },
        'error.code',
      ],
      ['cursor neither an object nor a position', { type: 'sync.open', cursor: 'x' }, 'cursor'],
      ['negative cursor', { type: 'sync.open', cursor: { log: '', seq: -1, check: '' } }, 'cursor.seq'],
      ['cursor log not hex', { type: 'sync.open', cursor: { log: 'X', seq: 1, check: '' } }, 'cursor.log'],
      ['start without a log', { type: 'sync.start', log: '', latest: 1, from: 0 }, 'log'],
      ['start without from', { type: 'sync.start', log: 'ab', latest: 1 }, 'from'],
      ['changes without more', { ...changes, more: undefined }, 'more'],
      ['changes with an empty log', { ...changes, log: '' }, 'log'],
      ['changes check with symbols', { ...changes, check: '../' }, 'check'],
      ['revision not an object', { ...changes, revisions: [1] }, 'revisions.0'],
      ['revision an array', { ...changes, revisions: [[]] }, 'revisions.0'],
      ['revision null', { ...changes, revisions: [null] }, 'revisions.0'],
      [
        'rejected entry without code',
        {
          type: 'sync.ack',
          upTo: 1,
          applied: 0,
          duplicates: 0,
          rejected: [{ rev: 'a', collection: 'c', id: 'i', message: 'm' }],
        },
        'rejected.0.code',
      ],
    ];
    for (const [what, value, field] of cases) {
      assert.throws(
        () => parseMessage(value),
        (err: { code?: string; message: string; details?: { field?: string } }) => {
          assert.equal(err.code, 'INVALID_MESSAGE', what);
          assert.equal(err.details?.field, field, `${what}: ${err.message}`);
          return true;
        },
      );
    }
  });

  it('keep error messages short whatever the input', () => {
    const huge = 'x'.repeat(1_000_000);
    for (const value of [{ type: huge }, { type: 'hello', [huge]: 1 }, { ...hello, name: huge }]) {
      try {
        parseMessage(value);
        assert.fail('expected an error');
      } catch (err) {
        assert.ok((err as Error).message.length < 400, (err as Error).message.slice(0, 500));
        assert.ok(JSON.stringify((err as { details?: unknown }).details).length < 400);
      }
    }
  });

  it('check revisions only as objects (the engine verifies them)', () => {
    const parsed = parseMessage({ ...changes, revisions: [{ anything: true }] });
    assert.equal(parsed.type, 'sync.changes');
    assert.deepEqual(parsed.type === 'sync.changes' && parsed.revisions, [{ anything: true }]);
  });
});
