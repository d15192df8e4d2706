import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { offlineChild } from '../fixtures/nodes.js';
import type { Child } from '../../src/child/child.js';
import {
  API_TOKEN_FILE,
  buildLocalApi,
  ensureApiToken,
  LocalApiServer,
} from '../../src/child/local-api/server.js';
import * as s from '../../src/child/local-api/schemas.js';
import * as shared from '../../src/http/schemas.js';
import { eventually, tempDir } from '../helpers.js';
import { authed, makeConflict, operations, type RouteCall, SseClient } from './helpers.js';

const dir = tempDir('trosyn-local-api-');
after(() => dir.remove());

const collections = { tickets: { conflict: 'manual' as const } };
const dataDir = join(dir.path, 'child');
let child: Child;
let app: FastifyInstance;
let token: string;
let call: ReturnType<typeof authed>;

/** A child that never finds its hub: the local API works offline. */
const offline = (path: string) => offlineChild(path, { collections });

before(async () => {
  child = offline(dataDir);
  await child.start();
  app = buildLocalApi(child, { dataDir, authFailureLimit: { burst: 1000, perMinute: 1000 } });
  // Read the way an app in any language would: the file in the data directory.
  token = readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim();
  call = authed(app, token);
});
after(async () => {
  await app.close();
  await child.stop();
});

function json<T>(schema: z.ZodType<T>, body: string): T {
  return schema.parse(JSON.parse(body));
}

function routeTable(): RouteCall[] {
  return [
    { method: 'GET', url: '/api/status', path: '/api/status' },
    // Outside /api, as Prometheus expects, behind the same token.
    { method: 'GET', url: '/metrics', path: '/metrics' },
    { method: 'POST', url: '/api/sync/now', path: '/api/sync/now' },
    { method: 'POST', url: '/api/sync/pause', path: '/api/sync/pause' },
    { method: 'POST', url: '/api/sync/resume', path: '/api/sync/resume' },
    { method: 'GET', url: '/api/changes', path: '/api/changes' },
    { method: 'GET', url: '/api/collections', path: '/api/collections' },
    { method: 'GET', url: '/api/records/notes', path: '/api/records/{collection}' },
    { method: 'POST', url: '/api/records/notes', path: '/api/records/{collection}', payload: { a: 1 } },
    { method: 'GET', url: '/api/records/notes/n1', path: '/api/records/{collection}/{id}' },
    {
      method: 'PUT',
      url: '/api/records/notes/n1',
      path: '/api/records/{collection}/{id}',
      payload: { a: 1 },
    },
    { method: 'DELETE', url: '/api/records/notes/n1', path: '/api/records/{collection}/{id}' },
    { method: 'GET', url: '/api/records/notes/n1/history', path: '/api/records/{collection}/{id}/history' },
    {
      method: 'POST',
      url: '/api/records/notes/n1/revert',
      path: '/api/records/{collection}/{id}/revert',
      payload: { rev: 'abcd' },
    },
    { method: 'GET', url: '/api/conflicts', path: '/api/conflicts' },
    { method: 'GET', url: '/api/conflicts/1', path: '/api/conflicts/{conflictId}' },
    {
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      path: '/api/conflicts/{collection}/{id}/resolve',
      payload: { rev: 'abcd' },
    },
    { method: 'GET', url: '/api/files', path: '/api/files' },
    { method: 'PUT', url: '/api/files/a.txt', path: '/api/files/{name}', payload: 'hello' },
    { method: 'DELETE', url: '/api/files/a.txt', path: '/api/files/{name}' },
    { method: 'GET', url: '/api/files/a.txt/content', path: '/api/files/{name}/content' },
    { method: 'GET', url: '/api/files/a.txt/history', path: '/api/files/{name}/history' },
    {
      method: 'POST',
      url: '/api/files/a.txt/revert',
      path: '/api/files/{name}/revert',
      payload: { rev: 'abcd' },
    },
  ];
}

describe('local API: token and authentication', () => {
  it('the token file is created owner-only and reused', () => {
    const path = join(dataDir, API_TOKEN_FILE);
    assert.match(token, /^tsc_[A-Za-z0-9_-]{43}$/);
    if (process.platform !== 'win32') assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(ensureApiToken(dataDir), token, 'reused on the next start');
  });

  it('a token file readable by others is made owner-only; one without a valid token is replaced', () => {
    const other = join(dir.path, 'tokens');
    const first = ensureApiToken(other);
    const path = join(other, API_TOKEN_FILE);
    if (process.platform !== 'win32') {
      chmodSync(path, 0o644);
      assert.equal(ensureApiToken(other), first);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    }
    writeFileSync(path, 'short\n');
    const replaced = ensureApiToken(other);
    assert.notEqual(replaced, first);
    assert.equal(readFileSync(path, 'utf8'), replaced);
  });

  it('the OpenAPI document is public and has a path for every route', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = JSON.parse(res.body) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(
      operations(doc),
      routeTable()
        .map((r) => `${r.method} ${r.path}`)
        .sort(),
    );
  });

  it('every /api route answers 401 UNAUTHORIZED without a token and with a wrong one', async () => {
    for (const route of routeTable()) {
      for (const headers of [{}, { authorization: 'Bearer tsc_wrong' }]) {
        const res = await app.inject({
          method: route.method,
          url: route.url,
          headers,
          ...(route.payload !== undefined && { payload: route.payload as object }),
        });
        assert.equal(res.statusCode, 401, `${route.method} ${route.url}`);
        assert.equal(JSON.parse(res.body).code, 'UNAUTHORIZED');
      }
    }
    assert.equal(
      (await call({ method: 'GET', url: '/api/records/notes/n1' })).statusCode,
      404,
      'nothing was written',
    );
  });
});

describe('local API: records', () => {
  it('PUT creates and replaces, GET reads, DELETE deletes (then 404)', async () => {
    const put = await call({ method: 'PUT', url: '/api/records/notes/n1', payload: { text: 'first' } });
    assert.equal(put.statusCode, 200);
    const w1 = json(shared.writeResult, put.body);
    assert.deepEqual(w1.record.body, { text: 'first' });
    const put2 = await call({
      method: 'PUT',
      url: '/api/records/notes/n1',
      payload: { text: 'second', n: [1, null] },
    });
    assert.notEqual(json(shared.writeResult, put2.body).rev, w1.rev);

    const got = await call({ method: 'GET', url: '/api/records/notes/n1' });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(json(shared.recordView, got.body).body, { text: 'second', n: [1, null] });
    assert.deepEqual((await child.replica.get('notes', 'n1'))?.body, { text: 'second', n: [1, null] });

    const del = await call({ method: 'DELETE', url: '/api/records/notes/n1' });
    assert.equal(del.statusCode, 200);
    assert.equal(json(shared.writeResult, del.body).record.deleted, true);
    assert.equal((await call({ method: 'GET', url: '/api/records/notes/n1' })).statusCode, 404);
    const again = await call({ method: 'DELETE', url: '/api/records/notes/n1' });
    assert.equal(again.statusCode, 404);
    assert.equal(JSON.parse(again.body).code, 'RECORD_NOT_FOUND');
  });

  it('POST creates a record with a ULID id; list pages with a next cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call({ method: 'POST', url: '/api/records/tasks', payload: { i } });
      assert.equal(res.statusCode, 201);
      const w = json(shared.writeResult, res.body);
      assert.match(w.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
      ids.push(w.id);
    }
    const first = json(
      shared.recordsPage,
      (await call({ method: 'GET', url: '/api/records/tasks?limit=2' })).body,
    );
    assert.equal(first.records.length, 2);
    assert.ok(first.next);
    const second = json(
      shared.recordsPage,
      (await call({ method: 'GET', url: `/api/records/tasks?limit=2&after=${first.next}` })).body,
    );
    assert.equal(second.next, null);
    assert.deepEqual(
      [...first.records, ...second.records].map((r) => r.id),
      [...ids].sort(),
    );
    const cols = json(shared.collections, (await call({ method: 'GET', url: '/api/collections' })).body);
    assert.ok(cols.collections.includes('tasks'));
  });

  it('history and revert; an unknown revision is 404, a pruned one 410', async () => {
    const w1 = json(
      shared.writeResult,
      (await call({ method: 'PUT', url: '/api/records/docs/d1', payload: { v: 1 } })).body,
    );
    await call({ method: 'PUT', url: '/api/records/docs/d1', payload: { v: 2 } });
    const hist = json(
      shared.history,
      (await call({ method: 'GET', url: '/api/records/docs/d1/history' })).body,
    );
    assert.deepEqual(
      hist.history.map((h) => h.body),
      [{ v: 1 }, { v: 2 }],
    );
    const reverted = await call({
      method: 'POST',
      url: '/api/records/docs/d1/revert',
      payload: { rev: w1.rev.slice(0, 10) },
    });
    assert.equal(reverted.statusCode, 200);
    assert.deepEqual(json(shared.writeResult, reverted.body).record.body, { v: 1 });

    const unknown = await call({
      method: 'POST',
      url: '/api/records/docs/d1/revert',
      payload: { rev: 'ffffffff' },
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal(JSON.parse(unknown.body).code, 'REVISION_NOT_FOUND');
    const noRecord = await call({
      method: 'POST',
      url: '/api/records/docs/nope/revert',
      payload: { rev: 'ffffffff' },
    });
    assert.equal(noRecord.statusCode, 404);
    assert.equal(JSON.parse(noRecord.body).code, 'RECORD_NOT_FOUND');

    await child.replica.prune({ maxRevisions: 1 });
    const pruned = await call({
      method: 'POST',
      url: '/api/records/docs/d1/revert',
      payload: { rev: w1.rev },
    });
    assert.equal(pruned.statusCode, 410);
    assert.equal(JSON.parse(pruned.body).code, 'REVISION_PRUNED');
  });

  it('engine errors map to HTTP: invalid collection 400, not an object 400, too large 413', async () => {
    const reserved = await call({ method: 'PUT', url: '/api/records/_system/x', payload: { a: 1 } });
    assert.equal(reserved.statusCode, 400);
    assert.equal(JSON.parse(reserved.body).code, 'INVALID_COLLECTION');
    const array = await call({
      method: 'PUT',
      url: '/api/records/notes/x',
      payload: [1, 2] as unknown as object,
    });
    assert.equal(array.statusCode, 400);
    assert.equal(JSON.parse(array.body).code, 'INVALID_REQUEST');
    const big = await call({
      method: 'PUT',
      url: '/api/records/notes/big',
      payload: { text: 'x'.repeat(1_100_000) },
    });
    assert.equal(big.statusCode, 413);
    assert.equal(JSON.parse(big.body).code, 'RECORD_TOO_LARGE');
    const huge = await call({
      method: 'PUT',
      url: '/api/records/notes/huge',
      payload: { text: 'x'.repeat(3_000_000) },
    });
    assert.equal(huge.statusCode, 413);
    assert.equal(JSON.parse(huge.body).code, 'REQUEST_TOO_LARGE');
    const text = await call({
      method: 'PUT',
      url: '/api/records/notes/t',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    assert.equal(text.statusCode, 415);
    assert.equal(JSON.parse(text.body).code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('conflicts: listed and resolved with a new body', async () => {
    await makeConflict(child.replica, dir.path, collections, 'tickets', 't1');
    const open = json(
      shared.conflicts,
      (await call({ method: 'GET', url: '/api/conflicts?status=open' })).body,
    );
    assert.equal(open.conflicts.length, 1);
    const res = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      payload: { body: { side: 'merged by hand' } },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(json(shared.writeResult, res.body).record.body, { side: 'merged by hand' });
    const none = await call({
      method: 'POST',
      url: '/api/conflicts/tickets/t1/resolve',
      payload: { body: null },
    });
    assert.equal(none.statusCode, 409);
    assert.equal(JSON.parse(none.body).code, 'NO_CONFLICT');
  });
});

describe('local API: sync control', () => {
  it('status, pause, resume and sync now', async () => {
    const status = json(s.syncStatus, (await call({ method: 'GET', url: '/api/status' })).body);
    assert.equal(status.deviceId, child.deviceId);
    assert.notEqual(status.state, 'paused');
    assert.ok(status.pending > 0, 'local writes wait for the hub');

    const paused = await call({ method: 'POST', url: '/api/sync/pause' });
    assert.equal(paused.statusCode, 200);
    assert.equal(json(s.syncStatus, paused.body).state, 'paused');
    // Sync now cannot run while paused: it says so rather than accepting and doing nothing.
    const refused = await call({ method: 'POST', url: '/api/sync/now' });
    assert.equal(refused.statusCode, 409);
    const error = JSON.parse(refused.body) as { code: string; message: string };
    assert.equal(error.code, 'SYNC_PAUSED');
    assert.match(error.message, /resume/);
    assert.equal(
      json(s.syncStatus, (await call({ method: 'GET', url: '/api/status' })).body).state,
      'paused',
    );
    const resumed = await call({ method: 'POST', url: '/api/sync/resume' });
    assert.equal(resumed.statusCode, 200);
    assert.notEqual(json(s.syncStatus, resumed.body).state, 'paused');
    const now = await call({ method: 'POST', url: '/api/sync/now' });
    assert.equal(now.statusCode, 202);
    json(s.syncStatus, now.body);
  });

  it('a child agent that is not started answers 503 NOT_STARTED', async () => {
    const idleDir = join(dir.path, 'idle');
    const idle = offline(idleDir);
    const api = buildLocalApi(idle, { dataDir: idleDir });
    const idleCall = authed(api, ensureApiToken(idleDir));
    for (const url of ['/api/status', '/api/records/notes/x', '/api/changes']) {
      const res = await idleCall({ method: 'GET', url });
      assert.equal(res.statusCode, 503, url);
      assert.equal(JSON.parse(res.body).code, 'NOT_STARTED');
    }
    for (const url of ['/api/sync/now', '/api/sync/pause', '/api/sync/resume']) {
      const res = await idleCall({ method: 'POST', url });
      assert.equal(res.statusCode, 503, url);
      assert.equal(JSON.parse(res.body).code, 'NOT_STARTED');
    }
    await api.close();
  });
});

describe('local API server on 127.0.0.1', () => {
  it('listens on 127.0.0.1 only and refuses any other host', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'localhost']) {
      assert.throws(() => new LocalApiServer(child, { dataDir, host } as never), { code: 'INVALID_OPTION' });
      assert.throws(() => buildLocalApi(child, { dataDir, host } as never), { code: 'INVALID_OPTION' });
    }
    const server = new LocalApiServer(child, { dataDir, port: 0, host: '127.0.0.1' } as never);
    await server.start();
    assert.equal(server.address().address, '127.0.0.1');
    assert.equal(server.address().family, 'IPv4');
    await server.stop();
  });

  it('streams record changes as SSE with the seq as event id; filters by collection; unsubscribes on disconnect', async () => {
    const server = new LocalApiServer(child, { dataDir, port: 0, eventHeartbeatMs: 200 });
    await server.start();
    const base = `http://127.0.0.1:${server.port}`;
    const headers = { authorization: `Bearer ${token}` };
    // Count live subscriptions on the replica, to see the stream's cleanup.
    let live = 0;
    const subscribe = child.replica.subscribe.bind(child.replica);
    child.replica.subscribe = (listener) => {
      live++;
      const off = subscribe(listener);
      return () => {
        live--;
        off();
      };
    };
    try {
      const all = new SseClient(`${base}/api/changes`, headers);
      const onlyTasks = new SseClient(`${base}/api/changes?collection=tasks&token=${token}`);
      await eventually(
        () => all.comments.includes('connected') && onlyTasks.comments.includes('connected'),
        5000,
        'streams open',
      );
      assert.equal(live, 2);

      const put = await fetch(`${base}/api/records/notes/live`, {
        method: 'PUT',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'hi' }),
      });
      assert.equal(put.status, 200);
      const written = (await put.json()) as { seq: number; rev: string };
      await child.replica.put('tasks', 'k', { done: false });

      const change = await all.next(
        (e) => e.event === 'change' && JSON.parse(e.data).id === 'live',
        'the change',
      );
      const data = json(s.changeEvent, change.data);
      assert.equal(data.rev, written.rev);
      assert.equal(data.origin, 'local');
      assert.deepEqual(data.body, { text: 'hi' });
      assert.equal(change.id, String(written.seq));
      const task = await onlyTasks.next((e) => e.event === 'change', 'a tasks change');
      assert.equal(JSON.parse(task.data).collection, 'tasks');
      assert.ok(onlyTasks.events.every((e) => JSON.parse(e.data).collection === 'tasks'));
      await eventually(() => all.comments.includes('heartbeat'), 5000, 'a heartbeat');

      all.close();
      await eventually(() => live === 1, 5000, 'the first stream unsubscribed');
      await server.stop();
      await eventually(() => live === 0 && onlyTasks.ended, 5000, 'stop ends the other');
    } finally {
      child.replica.subscribe = subscribe;
      await server.stop();
    }
  });

  it('lifecycle: stop before start, start twice, stop twice; the port is released', async () => {
    const server = new LocalApiServer(child, { dataDir, port: 0 });
    await server.stop();
    await Promise.all([server.start(), server.start()]);
    const port = server.port;
    await server.start();
    assert.equal(server.port, port);
    const res = await fetch(`http://127.0.0.1:${port}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    await server.stop();
    await server.stop();
    assert.equal(server.isStarted(), false);
    const again = new LocalApiServer(child, { dataDir, port });
    await again.start();
    assert.equal(again.port, port);
    await again.stop();
  });
});
