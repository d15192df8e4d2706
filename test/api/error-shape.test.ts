import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildLocalApi } from '../../src/child/local-api/server.js';
import { buildAdminApi } from '../../src/hub/admin-api/server.js';
import { MAX_PATH_PARAM_LENGTH } from '../../src/http/app.js';
import { HTTP_STATUS_BY_CODE } from '../../src/http/errors.js';
import { tempDir } from '../helpers.js';
import { type ApiUnderTest, bothApis } from './helpers.js';

/**
 * Every error either API answers, fastify's own included, must be
 * `{ code, message, details? }` with a code that docs/ERRORS.md explains and
 * docs/API.md lists under the status it is sent with. This file provokes each
 * error condition it can on both APIs and checks exactly that.
 */

const dir = tempDir('trosyn-error-shape-');
let apis: Awaited<ReturnType<typeof bothApis>>;
before(async () => {
  // A small per-address limit, so the walk can reach 429 too.
  apis = await bothApis(dir.path, {
    admin: { authFailureLimit: { burst: 2, perMinute: 1 } },
    local: { authFailureLimit: { burst: 2, perMinute: 1 } },
  });
});
after(async () => {
  await apis.close();
  dir.remove();
});

/** Codes with a row of their own in docs/ERRORS.md. */
const explained = new Set(
  [...readFileSync('docs/ERRORS.md', 'utf8').matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]),
);

/** The status docs/API.md lists each error code under, from its table of statuses and codes. */
const statusInApiDoc = new Map<string, number>();
for (const row of readFileSync('docs/API.md', 'utf8').matchAll(/^\|\s*(\d{3})\s*\|(.*)\|\s*$/gm)) {
  for (const code of (row[2] ?? '').matchAll(/`([A-Z][A-Z_]+)`/g)) {
    statusInApiDoc.set(code[1] as string, Number(row[1]));
  }
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

const seen = new Map<string, Set<string>>();

/** Asserts the documented error shape, the expected code, and that the docs list it with this status. */
function assertDocumentedError(api: string, res: Answer, status: number, code: string, what: string): void {
  const label = `${api} API, ${what}`;
  assert.equal(res.status, status, `${label}: status (body ${res.body.slice(0, 200)})`);
  assert.match(String(res.headers['content-type']), /^application\/json/, `${label}: JSON`);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.deepEqual(
    Object.keys(body).filter((k) => !['code', 'message', 'details'].includes(k)),
    [],
    `${label}: only code, message and details (fastify's own shape has error and statusCode)`,
  );
  assert.equal(body.code, code, `${label}: code`);
  assert.ok(typeof body.message === 'string' && body.message.length > 0, `${label}: a message`);
  if (body.details !== undefined) {
    assert.ok(
      typeof body.details === 'object' && body.details !== null && !Array.isArray(body.details),
      `${label}: details is an object`,
    );
  }
  assert.ok(explained.has(code), `${label}: ${code} has a row in docs/ERRORS.md`);
  assert.equal(statusInApiDoc.get(code), status, `${label}: docs/API.md lists ${code} under ${status}`);
  if (code !== 'INTERNAL_ERROR') assert.equal(HTTP_STATUS_BY_CODE[code], status, `${label}: status table`);
  const codes = seen.get(api) ?? new Set();
  codes.add(code);
  seen.set(api, codes);
}

function answer(res: LightMyRequestResponse): Answer {
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

/** One request with the right token unless the case brings its own headers. */
function send(api: ApiUnderTest, options: InjectOptions) {
  return api.app.inject({
    ...options,
    headers: { authorization: `Bearer ${api.token}`, ...options.headers },
  });
}

/** A route on each API that takes a JSON body, and a valid body for it. */
function bodyRoute(api: ApiUnderTest): { method: 'PUT'; url: string; valid: string } {
  return api.name === 'admin'
    ? { method: 'PUT', url: '/api/groups/errors', valid: '{"read":["*"],"write":[]}' }
    : { method: 'PUT', url: '/api/records/notes/errors', valid: '{"text":"hello"}' };
}

/** Raw bytes over a real socket: what Node's HTTP parser refuses never reaches inject(). */
async function raw(port: number, request: string | Buffer): Promise<Answer> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.write(request);
  await new Promise((resolve) => socket.on('close', resolve));
  const text = Buffer.concat(chunks).toString('utf8');
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const cut = line.indexOf(':');
    headers[line.slice(0, cut).trim().toLowerCase()] = line.slice(cut + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

for (const which of ['admin', 'local'] as const) {
  describe(`${which} API: every error comes in the documented shape with a documented code`, () => {
    const api = () => apis[which];

    it('unknown paths are 404 ROUTE_NOT_FOUND; a known path with another method is 405 with Allow', async () => {
      // The admin port serves the dashboard's page at `/`; outside /api/ the local API has nothing.
      const urls =
        which === 'admin'
          ? ['/api/nothing-here', '/api/records']
          : ['/api/nothing-here', '/', '/api/records'];
      for (const url of urls) {
        assertDocumentedError(
          which,
          answer(await send(api(), { method: 'GET', url })),
          404,
          'ROUTE_NOT_FOUND',
          `GET ${url}`,
        );
      }
      for (const method of ['DELETE', 'PATCH', 'PROPFIND', 'OPTIONS'] as const) {
        const res = await send(api(), { method: method as 'DELETE', url: '/api/status' });
        assertDocumentedError(which, answer(res), 405, 'METHOD_NOT_ALLOWED', `${method} /api/status`);
        assert.equal(res.headers.allow, 'GET, HEAD');
      }
      const getOnAction = await send(api(), {
        method: 'GET',
        url: which === 'admin' ? `/api/devices/${'a'.repeat(64)}/revoke` : '/api/sync/now',
      });
      assertDocumentedError(which, answer(getOnAction), 405, 'METHOD_NOT_ALLOWED', 'GET on an action');
      assert.equal(getOnAction.headers.allow, 'POST');
    });

    it('bad percent-encoding is 400 INVALID_URL, without echoing the query', async () => {
      for (const url of [
        '/api/records/notes/%E0%A4%A?token=secret-in-query',
        '/api/records/notes/100%',
        '/api/records/%zz/x',
      ]) {
        const res = await send(api(), { method: 'GET', url });
        assertDocumentedError(which, answer(res), 400, 'INVALID_URL', `GET ${url}`);
        assert.ok(!res.body.includes('secret-in-query'));
      }
    });

    it('a path parameter longer than any id is 414 URL_TOO_LONG; one over the schema limit is 400', async () => {
      const tooLong = 'x'.repeat(MAX_PATH_PARAM_LENGTH + 1);
      const res = await send(api(), { method: 'GET', url: `/api/records/notes/${tooLong}` });
      assertDocumentedError(which, answer(res), 414, 'URL_TOO_LONG', 'a 769-character id');
      const over = await send(api(), { method: 'GET', url: `/api/records/notes/${'x'.repeat(257)}` });
      assertDocumentedError(which, answer(over), 400, 'INVALID_REQUEST', 'a 257-character id');
      assert.deepEqual(JSON.parse(over.body).details.issues[0].where, 'params');
    });

    it('query and body that do not match the schema are 400 INVALID_REQUEST with the issues', async () => {
      const query = await send(api(), { method: 'GET', url: '/api/records/notes?limit=0' });
      assertDocumentedError(which, answer(query), 400, 'INVALID_REQUEST', 'limit=0');
      const route = bodyRoute(api());
      const wrong = await send(api(), {
        method: route.method,
        url: route.url,
        headers: { 'content-type': 'application/json' },
        payload: '[1,2]',
      });
      assertDocumentedError(which, answer(wrong), 400, 'INVALID_REQUEST', 'an array body');
      const missing = await send(api(), { method: route.method, url: route.url });
      assertDocumentedError(which, answer(missing), 400, 'INVALID_REQUEST', 'no body at all');
    });

    it('malformed JSON and a body shorter than its Content-Length are 400 INVALID_REQUEST', async () => {
      const route = bodyRoute(api());
      const bad = await send(api(), {
        method: route.method,
        url: route.url,
        headers: { 'content-type': 'application/json' },
        payload: '{"read": [',
      });
      assertDocumentedError(which, answer(bad), 400, 'INVALID_REQUEST', 'malformed JSON');
      assert.match(JSON.parse(bad.body).message, /not valid JSON/);
      const short = await send(api(), {
        method: route.method,
        url: route.url,
        headers: { 'content-type': 'application/json', 'content-length': '100' },
        payload: route.valid,
      });
      assertDocumentedError(which, answer(short), 400, 'INVALID_REQUEST', 'Content-Length mismatch');
    });

    it('a body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE, whatever the type', async () => {
      const route = bodyRoute(api());
      for (const type of [
        'text/plain',
        'text/plain; charset=utf-8',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'not a media type',
        undefined,
      ]) {
        const res = await send(api(), {
          method: route.method,
          url: route.url,
          headers: type === undefined ? {} : { 'content-type': type },
          payload: route.valid,
        });
        assertDocumentedError(which, answer(res), 415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type}`);
      }
    });

    it('a body over the 2 MiB limit is 413 REQUEST_TOO_LARGE, by its length or by its header', async () => {
      const route = bodyRoute(api());
      const big = await send(api(), {
        method: route.method,
        url: route.url,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ text: 'x'.repeat(3 * 1024 * 1024) }),
      });
      assertDocumentedError(which, answer(big), 413, 'REQUEST_TOO_LARGE', 'a 3 MiB body');
      const announced = await send(api(), {
        method: route.method,
        url: route.url,
        headers: { 'content-type': 'application/json', 'content-length': String(3 * 1024 * 1024) },
        payload: route.valid,
      });
      assertDocumentedError(which, answer(announced), 413, 'REQUEST_TOO_LARGE', 'a 3 MiB Content-Length');
    });

    it('a missing or wrong token is 401 UNAUTHORIZED; repeated wrong tokens are 429 RATE_LIMITED', async () => {
      const none = await api().app.inject({ method: 'GET', url: '/api/status' });
      assertDocumentedError(which, answer(none), 401, 'UNAUTHORIZED', 'no token');
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      const guess = (n: number) =>
        api().app.inject({
          method: 'GET',
          url: '/api/status',
          remoteAddress: '10.9.8.7',
          headers: { authorization: `Bearer wrong-${n}` },
        });
      assertDocumentedError(which, answer(await guess(1)), 401, 'UNAUTHORIZED', 'a wrong token');
      await guess(2);
      const limited = await guess(3);
      assertDocumentedError(which, answer(limited), 429, 'RATE_LIMITED', 'the third wrong token');
      assert.ok(Number(limited.headers['retry-after']) > 0);
    });

    it('malformed HTTP is 400 INVALID_REQUEST and oversized headers 431 HEADERS_TOO_LARGE, on a real socket', async () => {
      // Listening after inject() is fine; the app closes with the others in after().
      await api().app.listen({ host: '127.0.0.1', port: 0 });
      const port = (api().app.server.address() as AddressInfo).port;
      const garbage = await raw(port, 'THIS IS NOT HTTP\r\n\r\n');
      assertDocumentedError(which, garbage, 400, 'INVALID_REQUEST', 'a request line that is not HTTP');
      const badHeader = await raw(port, 'GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n');
      assertDocumentedError(which, badHeader, 400, 'INVALID_REQUEST', 'a header line without a colon');
      const huge = await raw(
        port,
        `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${'y'.repeat(20_000)}\r\n\r\n`,
      );
      assertDocumentedError(which, huge, 431, 'HEADERS_TOO_LARGE', '20 kB of headers');
      const hugeUrl = await raw(
        port,
        `GET /api/records/notes/${'z'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      );
      assertDocumentedError(which, hugeUrl, 431, 'HEADERS_TOO_LARGE', 'a 20 kB URL');

      // Node reports a request that arrives too slowly (headersTimeout, 60 s by
      // default) as this client error. It is raised here on a real, half-sent
      // request rather than waited for, and must be answered like any other.
      const accepted = new Promise<Socket>((resolve) => api().app.server.once('connection', resolve));
      const slow = raw(port, 'GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      const serverSide = await accepted;
      await new Promise((resolve) => setImmediate(resolve));
      api().app.server.emit(
        'clientError',
        Object.assign(new Error('request timed out'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
        serverSide,
      );
      assertDocumentedError(which, await slow, 408, 'REQUEST_TIMEOUT', 'a request that timed out');
    });

    it('file routes: a bad name, content not here, a plain record, a range past the end, an encoded upload', async () => {
      const node = which === 'admin' ? apis.hub : apis.child;
      await node.files.putStream(
        (async function* () {
          yield Buffer.from('0123456789');
        })(),
        { name: 'errors.txt' },
      );
      await node.replica.put('files', 'arriving.bin', {
        name: 'arriving.bin',
        size: 5,
        type: 'application/octet-stream',
        modifiedAt: 1,
        sha256: 'e'.repeat(64),
        chunkCount: 1,
        manifest: ['f'.repeat(64)],
      });
      await node.replica.put('files', 'plain', { text: 'a record' });
      const get = (url: string, headers: Record<string, string> = {}) =>
        send(api(), { method: 'GET', url, headers });
      assertDocumentedError(
        which,
        answer(await get('/api/files/a%2F%2Fb/content')),
        400,
        'INVALID_FILE_NAME',
        'a name with //',
      );
      // On a child whose hub is away, content not here may be fetched on demand: it cannot be now.
      const missing = answer(await get('/api/files/arriving.bin/content'));
      const code = (JSON.parse(missing.body) as { code: string }).code;
      assert.ok(['FILE_CONTENT_MISSING', 'FILE_CONTENT_UNAVAILABLE'].includes(code), code);
      assertDocumentedError(
        which,
        missing,
        code === 'FILE_CONTENT_MISSING' ? 409 : 503,
        code,
        'content not here',
      );
      assertDocumentedError(
        which,
        answer(await get('/api/files/plain/content')),
        409,
        'NOT_A_FILE',
        'a record',
      );
      const outside = await get('/api/files/errors.txt/content', { range: 'bytes=10-' });
      assertDocumentedError(which, answer(outside), 416, 'RANGE_NOT_SATISFIABLE', 'a range past the end');
      assert.equal(outside.headers['content-range'], 'bytes */10');
      if (which === 'local') {
        const gzip = await send(api(), {
          method: 'PUT',
          url: '/api/files/x.txt',
          headers: { 'content-encoding': 'gzip' },
          payload: Buffer.from('x'),
        });
        assertDocumentedError(which, answer(gzip), 415, 'UNSUPPORTED_MEDIA_TYPE', 'an encoded upload');
      }
    });

    it("a request that arrives while the API stops is 503 NOT_STARTED, not fastify's own 503", async () => {
      const app =
        which === 'admin'
          ? buildAdminApi(apis.hub)
          : buildLocalApi(apis.child, { dataDir: join(dir.path, 'child') });
      let during: Answer | undefined;
      // Runs after the API's own preClose hook, while the server still accepts connections.
      app.addHook('preClose', async () => {
        during = await raw(
          port,
          `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${api().token}\r\nConnection: close\r\n\r\n`,
        );
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as AddressInfo).port;
      const before = await raw(
        port,
        `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${api().token}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(before.status, 200, 'served before stopping');
      await app.close();
      assert.ok(during, 'a request was sent while stopping');
      assertDocumentedError(which, during, 503, 'NOT_STARTED', 'a request while stopping');
    });
  });
}

it('every code the status table maps is explained in docs/ERRORS.md and listed in docs/API.md with its status', () => {
  for (const [code, status] of Object.entries(HTTP_STATUS_BY_CODE)) {
    assert.ok(explained.has(code), `${code} has a row in docs/ERRORS.md`);
    assert.equal(statusInApiDoc.get(code), status, `docs/API.md lists ${code} under ${status}`);
  }
});

it('the walk above met every error code that fastify or the HTTP parser can produce', () => {
  const fromFastify = [
    'ROUTE_NOT_FOUND',
    'METHOD_NOT_ALLOWED',
    'INVALID_URL',
    'URL_TOO_LONG',
    'INVALID_REQUEST',
    'UNSUPPORTED_MEDIA_TYPE',
    'REQUEST_TOO_LARGE',
    'HEADERS_TOO_LARGE',
    'REQUEST_TIMEOUT',
    'UNAUTHORIZED',
    'RATE_LIMITED',
    'NOT_STARTED',
  ];
  for (const api of ['admin', 'local']) {
    assert.deepEqual(
      fromFastify.filter((c) => !seen.get(api)?.has(c)),
      [],
      `${api} API: codes the walk did not reach`,
    );
  }
});
