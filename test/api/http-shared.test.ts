import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { TrosynError } from '../../src/errors.js';
import { tokenHash, tokenMatches } from '../../src/http/bearer.js';
import { errorResponse, HTTP_STATUS_BY_CODE } from '../../src/http/errors.js';
import { contentDisposition, parseRange } from '../../src/http/file-content.js';
import { EventStreams } from '../../src/http/sse.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  InvalidBodyError,
  InvalidCollectionError,
  InvalidRecordIdError,
  NoConflictError,
  RecordNotFoundError,
  RecordTooLargeError,
  RevisionNotFoundError,
  RevisionPrunedError,
} from '../../src/sync/errors.js';
import { eventually } from '../helpers.js';

describe('the shared error mapping', () => {
  it('maps engine errors to their HTTP status and keeps code, message and details', () => {
    const cases: Array<[TrosynError, number]> = [
      [new InvalidBodyError('not an object'), 400],
      [new InvalidCollectionError('_x', 'reserved'), 400],
      [new InvalidRecordIdError('', 'empty'), 400],
      [new RecordTooLargeError(2_000_000, 1_048_576), 413],
      [new RecordNotFoundError('c', 'i'), 404],
      [new RevisionNotFoundError('c', 'i', 'abcd'), 404],
      [new NoConflictError('c', 'i'), 409],
      [new RevisionPrunedError('abcd'), 410],
    ];
    for (const [err, status] of cases) {
      const res = errorResponse(err, 'req-1');
      assert.equal(res.status, status, err.code);
      assert.deepEqual(res.body, err.toJSON());
    }
  });

  it('answers anything unmapped as 500 INTERNAL_ERROR without its message', () => {
    for (const err of [
      new Error('/etc/shadow is gone'),
      new TrosynError('STORE_OPEN_FAILED', 'cannot open /srv/x'),
      'a string',
    ]) {
      const res = errorResponse(err, 'req-7');
      assert.equal(res.status, 500);
      assert.equal(res.body.code, 'INTERNAL_ERROR');
      assert.deepEqual(res.body.details, { requestId: 'req-7' });
      assert.ok(!JSON.stringify(res.body).includes('/etc') && !JSON.stringify(res.body).includes('/srv'));
    }
  });

  it('every mapped status is a 4xx or 503', () => {
    for (const [code, status] of Object.entries(HTTP_STATUS_BY_CODE)) {
      assert.ok((status >= 400 && status < 500) || status === 503, code);
    }
  });
});

describe('tokens', () => {
  it('match their hash only; a missing or malformed hash never matches', () => {
    const hash = tokenHash('tsa_abc');
    assert.equal(tokenMatches('tsa_abc', hash), true);
    assert.equal(tokenMatches('tsa_abd', hash), false);
    assert.equal(tokenMatches('', hash), false);
    assert.equal(tokenMatches('tsa_abc', undefined), false);
    assert.equal(tokenMatches('tsa_abc', 'zz'), false);
    assert.equal(tokenMatches('tsa_abc', hash.toUpperCase()), false);
  });
});

describe('event streams', () => {
  it('drop a client that stops reading instead of buffering without limit', async () => {
    const streams = new EventStreams();
    let closedByServer = 0;
    const app = Fastify();
    app.get('/s', async (_req, reply) => {
      const stream = streams.start(
        reply,
        { logger: silentLogger, maxBufferedBytes: 64 * 1024 },
        () => closedByServer++,
      );
      const payload = 'x'.repeat(16 * 1024);
      // Far more than socket buffers hold: the unread rest piles up on the server.
      const timer = setInterval(() => {
        for (let i = 0; i < 64 && !stream.closed; i++) stream.send('blob', payload);
        if (stream.closed) clearInterval(timer);
      }, 5);
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const req = request(`http://127.0.0.1:${port}/s`, (res) => res.pause());
    req.on('error', () => undefined);
    req.end();
    await eventually(() => closedByServer === 1, 10_000, 'the slow client was dropped');
    assert.equal(streams.size, 0);
    req.destroy();
    await app.close();
  });
});

describe('download ranges and names', () => {
  it('one range is served; several, other units and malformed headers get the whole; past the end is unsatisfiable', () => {
    const size = 1000;
    const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
      [undefined, { kind: 'whole' }],
      ['bytes=0-0', { kind: 'partial', start: 0, end: 1 }],
      ['bytes=0-99', { kind: 'partial', start: 0, end: 100 }],
      ['BYTES = 10 - 19', { kind: 'partial', start: 10, end: 20 }],
      ['bytes=990-5000', { kind: 'partial', start: 990, end: 1000 }],
      ['bytes=999-', { kind: 'partial', start: 999, end: 1000 }],
      ['bytes=-1', { kind: 'partial', start: 999, end: 1000 }],
      ['bytes=-5000', { kind: 'partial', start: 0, end: 1000 }],
      ['bytes=0-99,', { kind: 'partial', start: 0, end: 100 }],
      ['bytes=1000-', { kind: 'unsatisfiable' }],
      ['bytes=99999999999999999999-', { kind: 'unsatisfiable' }],
      ['bytes=-0', { kind: 'unsatisfiable' }],
      ['bytes=0-1,5-6', { kind: 'whole' }],
      ['bytes=5-1', { kind: 'whole' }],
      ['bytes=-', { kind: 'whole' }],
      ['bytes=a-b', { kind: 'whole' }],
      ['items=0-1', { kind: 'whole' }],
      ['', { kind: 'whole' }],
    ];
    for (const [header, expected] of cases)
      assert.deepEqual(parseRange(header, size), expected, String(header));
    assert.deepEqual(parseRange('bytes=0-10', 0), { kind: 'whole' }, 'an empty file has no range to serve');
  });

  it('Content-Disposition names the file by its last part, in ASCII and in UTF-8', () => {
    assert.equal(
      contentDisposition('projects/2026/plan.docx'),
      `attachment; filename="plan.docx"; filename*=UTF-8''plan.docx`,
    );
    assert.equal(
      contentDisposition('Résumé "final" (1).pdf'),
      `attachment; filename="R_sum_ _final_ (1).pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%20%281%29.pdf`,
    );
  });
});
