import { PROTOCOL_NAME } from '../../src/protocol/constants.js';
import type { Message } from '../../src/protocol/messages.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Revision } from '../../src/store/types.js';
import { buildRevision } from '../../src/sync/testing/revisions.js';

const author = randomDeviceId();

/** `n` real revisions of about 300 bytes of body each. */
export function revisions(n: number): Revision[] {
  return Array.from({ length: n }, (_, i) =>
    buildRevision({
      collection: 'tickets',
      id: `t-${i}`,
      author,
      wall: 1_750_000_000_000 + i,
      body: { title: `New laptop ${i}`, status: 'open', notes: 'ü'.repeat(100) + 'x'.repeat(150), n: i },
    }),
  );
}

const big = 'x'.repeat(4000);

/** One valid message of every type, each in a small and a large (above the compression threshold) form. */
export function sampleMessages(): Array<{ name: string; message: Message }> {
  const small: Message[] = [
    {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      versions: [1],
      name: 'reception-pc',
      role: 'child',
      appVersion: '0.1.0',
      compression: ['zstd', 'br', 'none'],
      features: [],
      heartbeatMs: 15000,
    },
    {
      type: 'welcome',
      version: 1,
      name: 'office-hub',
      role: 'hub',
      appVersion: '0.1.0',
      compression: 'zstd',
      features: ['files'],
      heartbeatMs: 15000,
    },
    { type: 'ping', t: 1_750_000_000_000 },
    { type: 'pong', t: 1_750_000_000_000 },
    { type: 'error', code: 'UNSUPPORTED_VERSION', message: 'no common version' },
    { type: 'request', id: 1, method: 'devices.list' },
    { type: 'response', re: 1, ok: true, result: { devices: [] } },
    { type: 'response', re: 2, ok: false, error: { code: 'RECORD_NOT_FOUND', message: 'no record' } },
    { type: 'sync.open', cursor: { log: '', seq: 0, check: '' } },
    { type: 'sync.open', cursor: { log: 'a'.repeat(32), seq: 3, check: 'b'.repeat(32) }, receive: false },
    { type: 'sync.start', log: 'c'.repeat(32), latest: 12, from: 3 },
    {
      type: 'sync.changes',
      log: 'c'.repeat(32),
      since: 0,
      upTo: 2,
      check: 'd'.repeat(32),
      more: false,
      revisions: revisions(1),
    },
    { type: 'sync.ack', upTo: 2, applied: 1, duplicates: 0, rejected: [] },
  ];
  const large: Message[] = [
    {
      type: 'hello',
      protocol: PROTOCOL_NAME,
      versions: [1, 2, 3],
      name: 'n'.repeat(128),
      role: 'child',
      appVersion: 'v'.repeat(64),
      compression: ['zstd', 'br', 'none'],
      features: Array.from({ length: 32 }, (_, i) => `feature-${i}-${'f'.repeat(50)}`),
    },
    {
      type: 'welcome',
      version: 1,
      name: 'n'.repeat(128),
      role: 'hub',
      appVersion: 'v'.repeat(64),
      compression: 'br',
      features: Array.from({ length: 32 }, (_, i) => `feature-${i}-${'f'.repeat(50)}`),
      heartbeatMs: 15000,
    },
    {
      type: 'error',
      code: 'INVALID_MESSAGE',
      message: 'm'.repeat(1024),
      details: { field: big },
    },
    { type: 'request', id: 2 ** 40, method: 'records.put', params: { body: big, list: [1, 2, 3] } },
    { type: 'response', re: 7, ok: true, result: { text: big } },
    {
      type: 'response',
      re: 8,
      ok: false,
      error: { code: 'INVALID_OPTION', message: 'm'.repeat(900), details: { big } },
    },
    {
      type: 'sync.changes',
      log: 'c'.repeat(32),
      since: 10,
      upTo: 1010,
      check: 'd'.repeat(32),
      more: true,
      revisions: revisions(1000),
    },
    {
      type: 'sync.ack',
      upTo: 1010,
      applied: 990,
      duplicates: 0,
      rejected: Array.from({ length: 10 }, (_, i) => ({
        rev: 'a'.repeat(64),
        collection: 'tickets',
        id: `t-${i}`,
        code: 'CLOCK_SKEW',
        message: `revision is ahead of this node's clock ${big.slice(0, 200)}`,
      })),
    },
  ];
  return [
    ...small.map((message) => ({ name: `${message.type} (small)`, message })),
    ...large.map((message) => ({ name: `${message.type} (large)`, message })),
  ];
}
