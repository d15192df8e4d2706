/**
 * The file routes over real sockets, with a real hub and a real child syncing over
 * mutual TLS: what an app uploads to its agent's local API reaches the hub's admin
 * API, what the hub holds reaches the child, and the child's change stream shows
 * the content arriving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Child } from '../../src/child/child.js';
import { ensureApiToken } from '../../src/child/local-api/server.js';
import { fileTransfers } from '../../src/hub/admin-api/schemas.js';
import { AdminApiServer } from '../../src/hub/admin-api/server.js';
import type { Hub } from '../../src/hub/hub.js';
import { contentProgress, fileList, fileView } from '../../src/http/schemas.js';
import { pairedChildOf, startTestHub } from '../fixtures/nodes.js';
import { eventually, tempDir } from '../helpers.js';
import { noise, SseClient, streamRequest } from './helpers.js';

const dir = tempDir('trosyn-files-live-');
after(() => dir.remove());
let n = 0;
const next = (what: string) => join(dir.path, `${what}-${++n}`);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* pieces(bytes: Buffer, size = 256 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** A hub with its admin API, and a paired child with its local API, both started and connected. */
async function network(): Promise<{
  hub: Hub;
  child: Child;
  admin: { base: string; headers: Record<string, string> };
  local: { base: string; headers: Record<string, string> };
  stop(): Promise<void>;
}> {
  const hub = await startTestHub(next('hub'));
  const server = new AdminApiServer(hub, { host: '127.0.0.1', port: 0 });
  await server.start();
  const adminToken = server.takeCreatedToken() as string;
  const childDir = next('child');
  const child = await pairedChildOf(hub, childDir, { name: 'reception', localApi: { port: 0 } });
  await child.start();
  await eventually(() => hub.connectedChildren().length === 1, 10_000, 'the child connected');
  return {
    hub,
    child,
    admin: { base: `http://127.0.0.1:${server.port}`, headers: { authorization: `Bearer ${adminToken}` } },
    local: {
      base: `http://127.0.0.1:${child.apiPort as number}`,
      headers: { authorization: `Bearer ${ensureApiToken(childDir)}` },
    },
    stop: async () => {
      await child.stop();
      await server.stop();
      await hub.stop();
    },
  };
}

async function download(
  url: string,
  headers: Record<string, string>,
): Promise<{ res: Response; body: Buffer }> {
  const res = await fetch(url, { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

describe('file routes over real sockets, a hub and a child syncing', () => {
  it('a file put on the hub arrives at the child: its change stream sends files-progress, then its API downloads it', async () => {
    const net = await network();
    try {
      const stream = new SseClient(`${net.local.base}/api/changes`, net.local.headers);
      await eventually(() => stream.comments.includes('connected'), 5000, 'the stream opened');

      const bytes = noise(3 * 1024 * 1024, 21);
      const version = await net.hub.files.putStream(pieces(bytes), { name: 'handbook.pdf' });

      const arriving = await stream.next(
        (e) =>
          e.event === 'files-progress' &&
          contentProgress.parse(JSON.parse(e.data)).files.some((f) => f.rev === version.rev),
        'files-progress naming the version',
        20_000,
      );
      const progress = contentProgress.parse(JSON.parse(arriving.data));
      assert.ok(progress.pending >= 1);
      assert.equal(progress.files.find((f) => f.rev === version.rev)?.name, 'handbook.pdf');
      const later = stream.events.indexOf(arriving) + 1;
      await eventually(
        () =>
          stream.events
            .slice(later)
            .some(
              (e) => e.event === 'files-progress' && contentProgress.parse(JSON.parse(e.data)).pending === 0,
            ),
        20_000,
        'files-progress once all is here',
      );

      const listed = fileList.parse(
        await (await fetch(`${net.local.base}/api/files`, { headers: net.local.headers })).json(),
      );
      assert.deepEqual(
        listed.files.map((f) => [f.name, f.rev, f.here]),
        [['handbook.pdf', version.rev, true]],
      );
      const whole = await download(`${net.local.base}/api/files/handbook.pdf/content`, net.local.headers);
      assert.equal(whole.res.status, 200);
      assert.equal(whole.res.headers.get('etag'), `"${sha(bytes)}"`);
      assert.ok(whole.body.equals(bytes), 'the child serves the hub’s bytes');
      const middle = await download(`${net.local.base}/api/files/handbook.pdf/content`, {
        ...net.local.headers,
        range: 'bytes=1000000-1999999',
      });
      assert.equal(middle.res.status, 206);
      assert.ok(middle.body.equals(bytes.subarray(1_000_000, 2_000_000)));
      stream.close();
    } finally {
      await net.stop();
    }
  });

  it('an upload to the child’s local API reaches the hub: the admin API lists it, downloads ranges of it and shows the transfer', async () => {
    const net = await network();
    try {
      const refused = await streamRequest(`${net.local.base}/api/files/quarterly.xlsx`, {
        method: 'PUT',
        body: pieces(Buffer.from('no token')),
      });
      assert.equal(refused.status, 401);
      assert.equal(JSON.parse(refused.body.toString()).code, 'UNAUTHORIZED');

      const bytes = noise(5 * 1024 * 1024 + 123, 22);
      const put = await streamRequest(`${net.local.base}/api/files/reports%2Fquarterly.xlsx`, {
        method: 'PUT',
        headers: net.local.headers,
        body: pieces(bytes),
      });
      assert.equal(put.status, 201, put.body.toString());
      const version = fileView.parse(JSON.parse(put.body.toString()));
      assert.equal(version.name, 'reports/quarterly.xlsx');
      assert.equal(version.type, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      assert.equal(version.size, bytes.length);

      await eventually(
        async () => {
          const list = fileList.parse(
            await (await fetch(`${net.admin.base}/api/files`, { headers: net.admin.headers })).json(),
          );
          return list.files.some((f) => f.rev === version.rev && f.here);
        },
        20_000,
        'the hub has the version and all of its content',
      );
      const url = `${net.admin.base}/api/files/reports%2Fquarterly.xlsx/content`;
      const whole = await download(url, net.admin.headers);
      assert.equal(whole.res.status, 200);
      assert.equal(whole.res.headers.get('content-length'), String(bytes.length));
      assert.ok(whole.body.equals(bytes), 'the hub serves the child’s bytes');
      for (const [range, start, end] of [
        ['bytes=0-99', 0, 100],
        ['bytes=-500', bytes.length - 500, bytes.length],
        ['bytes=1000-', 1000, bytes.length],
      ] as const) {
        const part = await download(url, { ...net.admin.headers, range });
        assert.equal(part.res.status, 206, range);
        assert.equal(part.res.headers.get('content-range'), `bytes ${start}-${end - 1}/${bytes.length}`);
        assert.ok(part.body.equals(bytes.subarray(start, end)), range);
      }
      const outside = await download(url, { ...net.admin.headers, range: `bytes=${bytes.length}-` });
      assert.equal(outside.res.status, 416);
      assert.equal(outside.res.headers.get('content-range'), `bytes */${bytes.length}`);

      const transfers = fileTransfers.parse(
        await (await fetch(`${net.admin.base}/api/files/transfers`, { headers: net.admin.headers })).json(),
      );
      assert.equal(transfers.progress.pending, 0);
      const device = transfers.devices.find((d) => d.deviceId === net.child.deviceId);
      assert.equal(device?.name, 'reception');
      assert.ok((device?.bytesIn ?? 0) >= bytes.length, 'the content came from the child');
    } finally {
      await net.stop();
    }
  });
});
