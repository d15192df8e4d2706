/**
 * The local API's routes against a fake LocalPort, through fastify's inject() (and
 * a real socket where streaming is the point): no hub and no connection, a real
 * replica (in memory) for the records and real NodeFiles over a real chunk store on
 * disk for the files. Each sync control is one port call, and a paused agent
 * refuses "sync now" with a reason.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { LocalFiles, LocalPort } from '../../src/child/local-api/port.js';
import { buildLocalApi, ensureApiToken } from '../../src/child/local-api/server.js';
import type { SyncStatus } from '../../src/child/sync-status.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import type { ContentProgress } from '../../src/files/content-sync.js';
import { FileStore } from '../../src/files/file-store.js';
import { NodeFiles } from '../../src/files/node-files.js';
import { fileHistory, fileList, fileView } from '../../src/http/schemas.js';
import { openReplica } from '../../src/index.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { eventually, tempDir } from '../helpers.js';
import { authed, noise, SseClient, streamRequest } from './helpers.js';

/** What the fake saw of one upload: how the bytes reached `putStream`. */
interface UploadSeen {
  /** The source was an iterable of pieces, not one buffer or string. */
  iterable: boolean;
  pieces: number;
  largest: number;
  bytes: number;
}

class FakeLocalPort implements LocalPort {
  readonly calls: string[] = [];
  readonly uploads: UploadSeen[] = [];
  readonly fileListeners = new Set<(p: ContentProgress) => void>();
  state: SyncStatus['state'] = 'synced';
  constructor(
    private readonly replica: Replica,
    private readonly nodeFiles: NodeFiles,
  ) {}
  isStarted(): boolean {
    return true;
  }
  records(): Replica {
    return this.replica;
  }
  async status(): Promise<SyncStatus> {
    this.calls.push('status');
    return {
      state: this.state,
      connection: { state: 'connected', attempts: 0 },
      hubId: 'a'.repeat(64) as DeviceId,
      deviceId: this.replica.deviceId,
      pending: 0,
      files: { pending: 0, bytesHere: 0, bytesTotal: 0, busy: false, files: [] },
      refused: [],
    };
  }
  syncNow(): void {
    this.calls.push('syncNow');
  }
  metricsText(): never {
    throw new Error('the metrics are tested with a real child (test/observability/metrics.test.ts)');
  }
  async pause(): Promise<void> {
    this.calls.push('pause');
    this.state = 'paused';
  }
  async resume(): Promise<void> {
    this.calls.push('resume');
    this.state = 'synced';
  }
  /** The real files, with uploads counted piece by piece as they reach `putStream`. */
  get files(): LocalFiles {
    const real = this.nodeFiles;
    const uploads = this.uploads;
    return {
      version: (...a) => real.version(...a),
      read: (...a) => real.read(...a),
      list: (...a) => real.list(...a),
      history: (...a) => real.history(...a),
      revert: (...a) => real.revert(...a),
      remove: (...a) => real.remove(...a),
      isHere: (...a) => real.isHere(...a),
      putStream: (source, meta) => {
        const seen: UploadSeen = {
          iterable: !Buffer.isBuffer(source) && typeof source !== 'string',
          pieces: 0,
          largest: 0,
          bytes: 0,
        };
        uploads.push(seen);
        const counted = async function* () {
          for await (const piece of source) {
            seen.pieces++;
            seen.bytes += piece.length;
            seen.largest = Math.max(seen.largest, piece.length);
            yield piece;
          }
        };
        return real.putStream(counted(), meta);
      },
    };
  }
  watchFiles(listener: (progress: ContentProgress) => void): () => void {
    this.fileListeners.add(listener);
    return () => this.fileListeners.delete(listener);
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('local routes over a fake port', () => {
  const dir = tempDir();
  let replica: Replica;
  let chunks: DiskChunkStore;
  let port: FakeLocalPort;
  let app: FastifyInstance;
  let token: string;
  let call: ReturnType<typeof authed>;

  before(async () => {
    replica = await openReplica({ path: ':memory:', deviceId: randomDeviceId() });
    chunks = new DiskChunkStore({ dir: join(dir.path, 'chunks'), fsync: false });
    await chunks.start();
    port = new FakeLocalPort(replica, new NodeFiles(replica, new FileStore(chunks)));
    app = buildLocalApi(port, { dataDir: dir.path });
    token = ensureApiToken(dir.path);
    call = authed(app, token);
  });
  after(async () => {
    await app.close();
    await chunks.stop();
    await replica.stop();
    dir.remove();
  });

  /** Uploads `bytes` through inject(); answers the response. */
  const upload = (name: string, bytes: Buffer, headers: Record<string, string> = {}) =>
    call({ method: 'PUT', url: `/api/files/${name}`, payload: bytes, headers });
  const download = (name: string, headers: Record<string, string> = {}, query = '') =>
    call({ method: 'GET', url: `/api/files/${name}/content${query}`, headers });

  it('writes and reads go to the port’s records', async () => {
    const put = await call({ method: 'PUT', url: '/api/records/notes/n1', payload: { text: 'hi' } });
    assert.equal(put.statusCode, 200);
    assert.deepEqual((await replica.get('notes', 'n1'))?.body, { text: 'hi' });
    const got = await call({ method: 'GET', url: '/api/records/notes/n1' });
    assert.deepEqual(JSON.parse(got.body).body, { text: 'hi' });
  });

  it('pause, sync now while paused (409 SYNC_PAUSED), resume and sync now: one port call each', async () => {
    port.calls.length = 0;
    assert.equal((await call({ method: 'POST', url: '/api/sync/pause' })).statusCode, 200);
    const refused = await call({ method: 'POST', url: '/api/sync/now' });
    assert.equal(refused.statusCode, 409);
    assert.equal(JSON.parse(refused.body).code, 'SYNC_PAUSED');
    assert.equal((await call({ method: 'POST', url: '/api/sync/resume' })).statusCode, 200);
    assert.equal((await call({ method: 'POST', url: '/api/sync/now' })).statusCode, 202);
    assert.deepEqual(port.calls, ['pause', 'status', 'status', 'resume', 'status', 'status', 'syncNow']);
  });

  it('a 20 MB upload over a real socket is streamed: stored while the client still sends, in socket-sized pieces', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const bytes = noise(20 * 1024 * 1024, 7);
    const before = port.uploads.length;
    let heldBack = false;
    const body = async function* () {
      // 3 MiB, over the 2 MiB limit of JSON bodies; then the rest only once the
      // server has handed bytes on. A server that buffered the body first would
      // wait for the end that never comes, and this test would time out.
      const first = 3 * 1024 * 1024;
      for (let i = 0; i < first; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
      await eventually(() => (port.uploads[before]?.bytes ?? 0) > 0, 10_000, 'the server storing bytes');
      heldBack = (port.uploads[before]?.bytes ?? 0) < bytes.length;
      for (let i = first; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    };
    const res = await streamRequest(`${base}/api/files/big.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: body(),
    });
    assert.equal(res.status, 201, res.body.toString());
    const v = fileView.parse(JSON.parse(res.body.toString()));
    assert.equal(v.size, bytes.length);
    assert.equal(v.sha256, sha(bytes));
    assert.equal(v.here, true);
    assert.equal(v.type, 'application/octet-stream');
    const seen = port.uploads[before] as UploadSeen;
    assert.ok(heldBack, 'bytes were stored before the client had sent them all');
    assert.equal(seen.iterable, true);
    assert.ok(seen.pieces > 20, `arrived in many pieces (${seen.pieces})`);
    assert.ok(seen.largest <= 1024 * 1024, `no piece was the whole body (largest ${seen.largest})`);

    const got = await fetch(`${base}/api/files/big.bin/content`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-length'), String(bytes.length));
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), 'the download is the upload');
  });

  it('downloads: headers, ranges (first bytes, middle, suffix, open-ended), 416, multi-range, If-Range, If-None-Match, HEAD', async () => {
    const bytes = noise(300_000, 11);
    const put = await upload('report.pdf', bytes, {
      'content-type': 'application/octet-stream',
      'x-modified-at': '1750000000000',
    });
    assert.equal(put.statusCode, 201, put.body);
    const v = fileView.parse(JSON.parse(put.body));
    assert.equal(v.type, 'application/pdf', 'octet-stream says nothing: the type comes from the name');
    assert.equal(v.modifiedAt, 1_750_000_000_000);

    const whole = await download('report.pdf');
    assert.equal(whole.statusCode, 200);
    assert.ok(whole.rawPayload.equals(bytes));
    assert.equal(whole.headers['content-length'], String(bytes.length));
    assert.equal(whole.headers['content-type'], 'application/pdf');
    assert.equal(whole.headers['etag'], `"${sha(bytes)}"`);
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(whole.headers['x-file-rev'], v.rev);
    assert.equal(whole.headers['last-modified'], new Date(1_750_000_000_000).toUTCString());
    assert.match(String(whole.headers['content-disposition']), /^attachment; filename="report.pdf"/);

    const cases: Array<[string, number, number]> = [
      ['bytes=0-99', 0, 100],
      ['bytes=100000-165535', 100_000, 165_536],
      ['bytes=-500', bytes.length - 500, bytes.length],
      ['bytes=1000-', 1000, bytes.length],
      ['bytes=299990-400000', 299_990, bytes.length],
    ];
    for (const [range, start, end] of cases) {
      const res = await download('report.pdf', { range });
      assert.equal(res.statusCode, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end - 1}/${bytes.length}`, range);
      assert.equal(res.headers['content-length'], String(end - start), range);
      assert.ok(res.rawPayload.equals(bytes.subarray(start, end)), `${range}: the bytes`);
    }

    for (const range of [`bytes=${bytes.length}-`, 'bytes=999999-1000000', 'bytes=-0']) {
      const res = await download('report.pdf', { range });
      assert.equal(res.statusCode, 416, range);
      assert.equal(res.headers['content-range'], `bytes */${bytes.length}`);
      assert.equal(JSON.parse(res.body).code, 'RANGE_NOT_SATISFIABLE');
      assert.equal(JSON.parse(res.body).details.size, bytes.length);
    }

    // Several ranges, another unit, or a malformed header: the whole file, 200.
    for (const range of ['bytes=0-9,20-29', 'items=0-1', 'bytes=9-2', 'bytes=x']) {
      const res = await download('report.pdf', { range });
      assert.equal(res.statusCode, 200, range);
      assert.ok(res.rawPayload.equals(bytes), range);
    }

    const ifRange = await download('report.pdf', { range: 'bytes=0-9', 'if-range': `"${sha(bytes)}"` });
    assert.equal(ifRange.statusCode, 206);
    const changed = await download('report.pdf', { range: 'bytes=0-9', 'if-range': '"another"' });
    assert.equal(changed.statusCode, 200, 'another version: the whole content');
    assert.equal(changed.rawPayload.length, bytes.length);

    const cached = await download('report.pdf', { 'if-none-match': `"${sha(bytes)}"` });
    assert.equal(cached.statusCode, 304);
    assert.equal(cached.rawPayload.length, 0);

    const head = await call({
      method: 'HEAD',
      url: '/api/files/report.pdf/content',
      headers: { range: 'bytes=-10' },
    });
    assert.equal(head.statusCode, 206);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.rawPayload.length, 0);
  });

  it('the upload type is Content-Type when it names one; a JSON file is stored as its bytes; Content-Encoding is refused', async () => {
    const text = Buffer.from('{"not":"parsed"');
    const json = await upload('data.json', text, { 'content-type': 'application/json' });
    assert.equal(json.statusCode, 201, json.body);
    assert.equal(fileView.parse(JSON.parse(json.body)).type, 'application/json');
    assert.ok((await download('data.json')).rawPayload.equals(text));

    const typed = await upload('notes.txt', Buffer.from('hello'), {
      'content-type': 'text/plain; charset=utf-8',
    });
    assert.equal(fileView.parse(JSON.parse(typed.body)).type, 'text/plain; charset=utf-8');
    assert.equal((await download('notes.txt')).headers['content-type'], 'text/plain; charset=utf-8');

    const form = await upload('scan.png', Buffer.from('png?'), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(
      fileView.parse(JSON.parse(form.body)).type,
      'image/png',
      'curl --data-binary’s default type',
    );

    const empty = await call({ method: 'PUT', url: '/api/files/empty.txt' });
    assert.equal(empty.statusCode, 201, empty.body);
    assert.equal(fileView.parse(JSON.parse(empty.body)).size, 0);
    const emptyDown = await download('empty.txt', { range: 'bytes=0-10' });
    assert.equal(emptyDown.statusCode, 200);
    assert.equal(emptyDown.headers['content-length'], '0');

    const gzip = await upload('x.txt', Buffer.from('x'), { 'content-encoding': 'gzip' });
    assert.equal(gzip.statusCode, 415);
    assert.equal(JSON.parse(gzip.body).code, 'UNSUPPORTED_MEDIA_TYPE');
    const badTime = await upload('x.txt', Buffer.from('x'), { 'x-modified-at': 'yesterday' });
    assert.equal(badTime.statusCode, 400);
    assert.equal(JSON.parse(badTime.body).code, 'INVALID_REQUEST');
    assert.equal((await download('x.txt')).statusCode, 404, 'nothing was recorded');
  });

  it('list, history, revert and delete', async () => {
    const v1 = noise(70_000, 1);
    const v2 = noise(90_000, 2);
    const first = fileView.parse(JSON.parse((await upload('plan.docx', v1)).body));
    const second = fileView.parse(JSON.parse((await upload('plan.docx', v2)).body));
    assert.notEqual(first.rev, second.rev);

    const list = fileList.parse(JSON.parse((await call({ method: 'GET', url: '/api/files' })).body));
    const listed = list.files.find((f) => f.name === 'plan.docx');
    assert.equal(listed?.rev, second.rev);
    assert.equal(listed?.here, true);
    assert.equal(listed?.collection, 'files');

    const history = fileHistory.parse(
      JSON.parse((await call({ method: 'GET', url: '/api/files/plan.docx/history' })).body),
    ).history;
    assert.deepEqual(
      history.map((h) => [h.rev, h.file?.sha256, h.current, h.file?.here]),
      [
        [first.rev, sha(v1), false, true],
        [second.rev, sha(v2), true, true],
      ],
    );

    const old = await download('plan.docx', {}, `?rev=${first.rev.slice(0, 8)}`);
    assert.ok(old.rawPayload.equals(v1), 'an older version by a prefix of its revision');

    const reverted = await call({
      method: 'POST',
      url: '/api/files/plan.docx/revert',
      payload: { rev: first.rev.slice(0, 8) },
    });
    assert.equal(reverted.statusCode, 200, reverted.body);
    const now = fileView.parse(JSON.parse(reverted.body));
    assert.equal(now.sha256, sha(v1));
    assert.notEqual(now.rev, first.rev, 'a new version with the old content');
    assert.ok((await download('plan.docx')).rawPayload.equals(v1));

    const del = await call({ method: 'DELETE', url: '/api/files/plan.docx' });
    assert.equal(del.statusCode, 204);
    const gone = await download('plan.docx');
    assert.equal(gone.statusCode, 404);
    assert.equal(JSON.parse(gone.body).code, 'RECORD_NOT_FOUND');
    const again = await call({ method: 'DELETE', url: '/api/files/plan.docx' });
    assert.equal(again.statusCode, 404);
    const after = fileList.parse(JSON.parse((await call({ method: 'GET', url: '/api/files' })).body));
    assert.ok(!after.files.some((f) => f.name === 'plan.docx'));
    const kept = fileHistory.parse(
      JSON.parse((await call({ method: 'GET', url: '/api/files/plan.docx/history' })).body),
    ).history;
    assert.equal(kept.length, 4);
    assert.equal(kept.at(-1)?.deleted, true);
    assert.equal(kept.at(-1)?.file, null);

    // Folders are part of a name: `/` goes URL-encoded.
    const nested = await upload('projects%2F2026%2Fplan.docx', v2);
    assert.equal(nested.statusCode, 201, nested.body);
    assert.equal(fileView.parse(JSON.parse(nested.body)).name, 'projects/2026/plan.docx');
    const nestedDown = await download('projects%2F2026%2Fplan.docx');
    assert.ok(nestedDown.rawPayload.equals(v2));
    assert.match(String(nestedDown.headers['content-disposition']), /filename="plan.docx"/);

    const otherCollection = await upload('a.txt', Buffer.from('x'), {});
    assert.equal(otherCollection.statusCode, 201);
    const inDocs = await call({
      method: 'PUT',
      url: '/api/files/a.txt?collection=docs',
      payload: Buffer.from('y'),
    });
    assert.equal(fileView.parse(JSON.parse(inDocs.body)).collection, 'docs');
    assert.equal((await download('a.txt', {}, '?collection=docs')).body, 'y');
    assert.equal((await download('a.txt')).body, 'x');
  });

  it('invalid names are 400 INVALID_FILE_NAME on every file route, and nothing is written', async () => {
    const names = ['a%2F..%2Fb', '%2Fa', 'a%2F%2Fb', 'a%2F', 'a%01b', 'tab%09', 'a%5Cb', 'n'.repeat(300)];
    const latest = await replica.latestSeq();
    for (const name of names) {
      for (const [method, url, payload] of [
        ['PUT', `/api/files/${name}`, Buffer.from('x')],
        ['GET', `/api/files/${name}/content`, undefined],
        ['GET', `/api/files/${name}/history`, undefined],
        ['POST', `/api/files/${name}/revert`, { rev: 'abcd' }],
        ['DELETE', `/api/files/${name}`, undefined],
      ] as const) {
        const res = await call({ method, url, ...(payload !== undefined && { payload }) });
        assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
        assert.equal(JSON.parse(res.body).code, 'INVALID_FILE_NAME', `${method} ${url}`);
      }
    }
    // `..` and `.` reach the server only from a client that sends the path as it is
    // (`curl --path-as-is`): URL parsers resolve them as steps, `%2E%2E` included.
    if (!app.server.listening) await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const name of ['..', '.', '%2E%2E']) {
      for (const [method, path] of [
        ['PUT', `/api/files/${name}`],
        ['GET', `/api/files/${name}/content`],
      ] as const) {
        const res = await streamRequest(base, {
          method,
          rawPath: path,
          headers: { authorization: `Bearer ${token}` },
          ...(method === 'PUT' && { body: [Buffer.from('x')] }),
        });
        assert.equal(res.status, 400, `${method} ${path}: ${res.body.toString()}`);
        assert.equal(JSON.parse(res.body.toString()).code, 'INVALID_FILE_NAME');
      }
    }
    assert.equal(await replica.latestSeq(), latest, 'nothing was written');
  });

  it('content not here is 409 FILE_CONTENT_MISSING; a plain record is 409 NOT_A_FILE; an unknown file 404', async () => {
    // A version whose record arrived but whose chunks did not (yet).
    const absent = 'f'.repeat(64);
    await replica.put('files', 'arriving.pdf', {
      name: 'arriving.pdf',
      size: 1000,
      type: 'application/pdf',
      modifiedAt: 1,
      sha256: 'e'.repeat(64),
      chunkCount: 1,
      manifest: [absent],
    });
    const res = await download('arriving.pdf');
    assert.equal(res.statusCode, 409);
    assert.equal(JSON.parse(res.body).code, 'FILE_CONTENT_MISSING');
    assert.equal(res.headers['etag'], undefined, 'no download header on the error');
    const ranged = await download('arriving.pdf', { range: 'bytes=0-9' });
    assert.equal(ranged.statusCode, 409);
    const list = fileList.parse(JSON.parse((await call({ method: 'GET', url: '/api/files' })).body));
    assert.equal(list.files.find((f) => f.name === 'arriving.pdf')?.here, false);

    await replica.put('files', 'plain', { text: 'not a file' });
    const plain = await download('plain');
    assert.equal(plain.statusCode, 409);
    assert.equal(JSON.parse(plain.body).code, 'NOT_A_FILE');
    const plainHistory = await call({ method: 'GET', url: '/api/files/plain/history' });
    assert.equal(JSON.parse(plainHistory.body).code, 'NOT_A_FILE');
    assert.ok(!list.files.some((f) => f.name === 'plain'), 'the list shows files only');

    const unknown = await download('nobody.txt');
    assert.equal(unknown.statusCode, 404);
    assert.equal(JSON.parse(unknown.body).code, 'RECORD_NOT_FOUND');
    const noRev = await download('notes.txt', {}, '?rev=0000000000');
    assert.equal(noRev.statusCode, 404);
  });

  it('an upload over the upload limit is 413 REQUEST_TOO_LARGE, by its Content-Length or as it arrives; nothing is recorded', async () => {
    const small = buildLocalApi(port, { dataDir: dir.path, maxUploadBytes: 1024 * 1024 });
    const send = authed(small, token);
    try {
      const announced = await send({
        method: 'PUT',
        url: '/api/files/too-big.bin',
        headers: { 'content-length': String(2 * 1024 * 1024) },
        payload: Buffer.alloc(10),
      });
      assert.equal(announced.statusCode, 413);
      assert.equal(JSON.parse(announced.body).code, 'REQUEST_TOO_LARGE');

      // No Content-Length: counted as the pieces arrive.
      const pieces = Readable.from(
        (function* () {
          for (let i = 0; i < 32; i++) yield noise(64 * 1024, i + 1);
        })(),
      );
      const streamed = await send({
        method: 'PUT',
        url: '/api/files/too-big.bin',
        headers: { 'transfer-encoding': 'chunked' },
        payload: pieces,
      });
      assert.equal(streamed.statusCode, 413, streamed.body);
      assert.equal(JSON.parse(streamed.body).code, 'REQUEST_TOO_LARGE');
      assert.equal(streamed.headers['connection'], 'close', 'the rest is not read');
      assert.equal((await download('too-big.bin')).statusCode, 404, 'nothing was recorded');

      const fits = await send({ method: 'PUT', url: '/api/files/fits.bin', payload: noise(1024 * 1024, 3) });
      assert.equal(fits.statusCode, 201, 'up to the limit itself');
    } finally {
      await small.close();
    }
  });

  it('file routes need the token', async () => {
    for (const [method, url] of [
      ['PUT', '/api/files/secret.txt'],
      ['GET', '/api/files'],
      ['GET', '/api/files/notes.txt/content'],
      ['GET', '/api/files/notes.txt/history'],
      ['POST', '/api/files/notes.txt/revert'],
      ['DELETE', '/api/files/notes.txt'],
    ] as const) {
      const res = await app.inject({ method, url, payload: method === 'PUT' ? Buffer.from('x') : undefined });
      assert.equal(res.statusCode, 401, `${method} ${url}`);
      assert.equal(JSON.parse(res.body).code, 'UNAUTHORIZED');
    }
    assert.equal((await download('secret.txt')).statusCode, 404, 'nothing was recorded');
  });

  it('the change stream sends files-progress from watchFiles (not on a stream of one collection) and lets go of the listener when the client leaves', async () => {
    if (!app.server.listening) await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const auth = { authorization: `Bearer ${token}` };
    const stream = new SseClient(`${base}/api/changes`, auth);
    const notes = new SseClient(`${base}/api/changes?collection=notes`, auth);
    await eventually(
      () => stream.comments.includes('connected') && notes.comments.includes('connected'),
      5000,
      'the streams opened',
    );
    assert.equal(port.fileListeners.size, 1, 'a stream of one collection has no file progress');
    const progress: ContentProgress = {
      pending: 1,
      bytesHere: 10,
      bytesTotal: 100,
      busy: true,
      files: [{ collection: 'files', name: 'a.pdf', rev: 'c'.repeat(64), bytesHere: 10, bytesTotal: 100 }],
    };
    for (const listener of port.fileListeners) listener(progress);
    const event = await stream.next((e) => e.event === 'files-progress', 'files-progress event');
    assert.deepEqual(JSON.parse(event.data), progress);
    stream.close();
    await eventually(() => port.fileListeners.size === 0, 5000, 'the listener was removed');
    assert.deepEqual(notes.events, []);
    notes.close();
  });
});
