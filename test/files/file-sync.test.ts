/**
 * Files between a hub and its children over mutual TLS on loopback: a version
 * written anywhere reaches every node with its content, an edit moves only the
 * chunks it changed, and a transfer cut short resumes from what arrived.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Child } from '../../src/child/child.js';
import type { TrosynError } from '../../src/errors.js';
import { PackChunkStore } from '../../src/files/chunk-store-pack.js';
import { DEFAULT_CHUNKER_OPTIONS } from '../../src/files/chunker-options.js';
import type { FileVersion, NodeFiles } from '../../src/files/node-files.js';
import type { Hub } from '../../src/hub/hub.js';
import { childOf, pairedChildOf, startTestHub } from '../fixtures/nodes.js';
import { eventually, tempDir } from '../helpers.js';
import { noise, sha } from '../fixtures/bytes.js';

const dir = tempDir('trosyn-file-sync-');
after(() => dir.remove());
let n = 0;
const next = (what: string) => join(dir.path, `${what}-${++n}`);

async function* chunksOf(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += 1 << 20) yield bytes.subarray(i, i + (1 << 20));
}

async function readAll(files: NodeFiles, version: FileVersion): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of files.read(version)) parts.push(part);
  return Buffer.concat(parts);
}

/** Waits until `files` holds `name` at `rev` with all its content, and returns its bytes. */
async function contentAt(
  files: NodeFiles,
  name: string,
  rev: string,
  what: string,
  collection = 'files',
): Promise<Buffer> {
  let bytes: Buffer | undefined;
  await eventually(
    async () => {
      try {
        const v = await files.version(name, { collection });
        if (v.rev !== rev) return false;
        bytes = await readAll(files, v);
        return true;
      } catch {
        return false;
      }
    },
    20_000,
    what,
  );
  return bytes as Buffer;
}

describe('files sync between a hub and its children', () => {
  const running: Array<Hub | Child> = [];
  after(async () => {
    for (const node of running.reverse()) await node.stop();
  });

  it('a file put on the hub reaches each child; an edit on a child reaches the hub and the other child', async () => {
    const hub = await startTestHub(next('hub'));
    running.push(hub);
    const a = await pairedChildOf(hub, next('a'), { name: 'a' });
    const b = await pairedChildOf(hub, next('b'), { name: 'b' });
    running.push(a, b);
    await a.start();
    await b.start();

    const original = noise(3 * 1024 * 1024 + 777, 1);
    const v1 = await hub.files.putStream(chunksOf(original), { name: 'report.pdf' });
    assert.equal(v1.size, original.length);
    for (const [child, what] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      const got = await contentAt(child.files, 'report.pdf', v1.rev, `the hub's file on child ${what}`);
      assert.equal(sha(got), sha(original), `child ${what} holds the hub's bytes`);
    }
    await eventually(async () => (await a.status()).state === 'synced', 10_000, 'child a synced');
    const status = await a.status();
    assert.equal(status.files.pending, 0);
    assert.equal(status.files.busy, false);

    // Child a edits the middle: 64 KiB written over at 1 MiB.
    const edited = Buffer.from(original);
    noise(64 * 1024, 2).copy(edited, 1024 * 1024);
    const hubChunksBefore = (await hub.files.store.chunks.stats()).chunks;
    const v2 = await a.files.putStream(chunksOf(edited), { name: 'report.pdf' });
    const onHub = await contentAt(hub.files, 'report.pdf', v2.rev, 'the edit on the hub');
    assert.equal(sha(onHub), sha(edited));
    const onB = await contentAt(b.files, 'report.pdf', v2.rev, 'the edit on child b');
    assert.equal(sha(onB), sha(edited));

    // Only the chunks the edit touched moved: a handful, not the file's ~50.
    const added = (await hub.files.store.chunks.stats()).chunks - hubChunksBefore;
    assert.ok(added >= 1 && added <= 5, `the edit added ${added} chunks on the hub`);

    // Both versions stay readable everywhere; history lists them oldest first.
    const history = await b.files.history('report.pdf');
    assert.deepEqual(
      history.map((h) => h.rev),
      [v1.rev, v2.rev],
    );
    assert.equal(
      sha(await readAll(b.files, await b.files.version('report.pdf', { rev: v1.rev }))),
      sha(original),
    );
  });

  it('a child stopped mid-transfer keeps what arrived and fetches only the rest after it starts again', async () => {
    // The hub serves 100 chunks, then holds the rest until the gate opens.
    const served: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const disk = new PackChunkStore({ dir: next('hub-chunks') });
    const chunks = new Proxy(disk, {
      get(target, prop, receiver) {
        if (prop === 'get')
          return async (hash: string) => {
            served.push(hash);
            if (served.length > 100) await gate;
            return target.get(hash);
          };
        // Chunks served to a peer are lent (read with their neighbours): held back alike.
        if (prop === 'lend')
          return (
            hashes: readonly string[],
            each: (hash: string, bytes: Buffer | undefined) => Promise<void>,
            options?: { verify?: boolean },
          ) =>
            target.lend(
              hashes,
              async (hash, bytes) => {
                served.push(hash);
                if (served.length > 100) await gate;
                await each(hash, bytes);
              },
              options,
            );
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const hub = await startTestHub(next('hub'), {}, { chunks });
    running.push(hub);
    const childDir = next('child');
    const child = await pairedChildOf(hub, childDir, { name: 'c' });
    running.push(child);

    const big = noise(16 * 1024 * 1024, 3);
    const v = await hub.files.putStream(chunksOf(big), { name: 'big.bin' });
    const total = (await disk.stats()).chunks;
    await child.start();
    await eventually(async () => (await child.status()).files.bytesHere > 0, 20_000, 'content arriving');
    await eventually(() => served.length > 100, 20_000, 'the hub holding back');
    await child.stop();
    const onDisk = new PackChunkStore({ dir: join(childDir, 'chunks') });
    await onDisk.start();
    const kept = (await onDisk.stats()).chunks;
    assert.ok(kept > 0 && kept < total, `the child kept ${kept} of ${total} chunks`);

    open();
    const entries = await hub.files.store.entries(v);
    const lacking = new Set(await onDisk.missing(entries.map((e) => e.hash)));
    const lackedBytes = entries.filter((e) => lacking.has(e.hash)).reduce((n, e) => n + e.length, 0);
    await onDisk.stop();
    await child.start();
    const got = await contentAt(child.files, 'big.bin', v.rev, 'the big file after the restart');
    assert.equal(sha(got), sha(big));
    // Over the new connection the hub served only what the child lacked. (Give or
    // take one chunk: a chunk asked for by the round and by the read at once may be
    // served twice.)
    const link = hub.fileTransfers().devices.find((d) => d.peer === child.deviceId);
    assert.ok(link, 'the child is connected');
    assert.ok(
      link.bytesOut <= lackedBytes + DEFAULT_CHUNKER_OPTIONS.maxSize,
      `after the restart the hub served ${link.bytesOut} bytes; the child lacked ${lackedBytes} (${lacking.size} chunks)`,
    );
    assert.equal((await child.status()).files.pending, 0);
  });
  it('an on-demand collection brings content when a version is read, and says FILE_CONTENT_UNAVAILABLE while the hub is away', async () => {
    const policy = { files: 'eager', archive: 'on-demand' } as const;
    const hubDir = next('hub');
    const hub = await startTestHub(hubDir, { fileCollections: policy });
    running.push(hub);
    const child = await pairedChildOf(hub, next('child'), { name: 'd', fileCollections: policy });
    running.push(child);
    await child.start();

    const first = noise(2 * 1024 * 1024, 21);
    const second = noise(1024 * 1024, 22);
    const v1 = await hub.files.putStream(chunksOf(first), { name: 'old.tar', collection: 'archive' });
    const v2 = await hub.files.putStream(chunksOf(second), { name: 'older.tar', collection: 'archive' });
    await eventually(
      async () =>
        (await child.files.list('archive')).length === 2 && (await child.status()).state === 'synced',
      20_000,
      'the records on the child',
    );
    const onChild = await child.files.version('old.tar', { collection: 'archive' });
    assert.equal(await child.files.isHere(onChild), false, 'on demand: no content before it is read');
    assert.equal((await child.status()).files.pending, 0, 'on-demand versions are not waited for');

    assert.equal(sha(await readAll(child.files, onChild)), sha(first), 'read fetches the content');
    assert.equal(await child.files.isHere(onChild), true);
    assert.equal(onChild.rev, v1.rev);

    await hub.stop();
    const away = await child.files.version('older.tar', { collection: 'archive' });
    assert.equal(away.rev, v2.rev);
    await assert.rejects(
      readAll(child.files, away),
      (err: TrosynError) => err.code === 'FILE_CONTENT_UNAVAILABLE',
    );
    // What was fetched stays readable offline.
    assert.equal(sha(await readAll(child.files, onChild)), sha(first));
  });

  it('a collection made eager later, and a store read again after it was lost, fetch the versions already held', async () => {
    const hub = await startTestHub(next('hub'), { fileCollections: { files: 'eager', archive: 'eager' } });
    running.push(hub);
    const childDir = next('child');
    const lazy = { files: 'eager', archive: 'on-demand' } as const;
    let child = await pairedChildOf(hub, childDir, { name: 'd', fileCollections: lazy });
    running.push(child);
    await child.start();
    const bytes = noise(1024 * 1024, 41);
    const v = await hub.files.putStream(chunksOf(bytes), { name: 'plan.tar', collection: 'archive' });
    await eventually(
      async () =>
        (await child.files.list('archive')).length === 1 && (await child.status()).state === 'synced',
      20_000,
      'the record on the child',
    );
    assert.equal(
      await child.files.isHere(await child.files.version('plan.tar', { collection: 'archive' })),
      false,
    );
    await child.stop();

    // Restarted with the collection eager: the version it already held is fetched.
    child = childOf(hub, childDir, { name: 'd', fileCollections: { files: 'eager', archive: 'eager' } });
    running.push(child);
    await child.start();
    // Content that arrives by itself, not fetched by a read (which would fetch it on demand).
    const arrives = async (node: Child, what: string) => {
      await eventually(
        async () =>
          node.files
            .version('plan.tar', { collection: 'archive' })
            .then((version) => node.files.isHere(version))
            .catch(() => false),
        20_000,
        what,
      );
      const here = await node.files.version('plan.tar', { collection: 'archive' });
      assert.equal(here.rev, v.rev);
      assert.equal(sha(await readAll(node.files, here)), sha(bytes));
    };
    await arrives(child, 'made eager');

    // The store is lost (files.db stays; the chunks go too): its new change log is read
    // from the start, so the versions the hub gives back are fetched again.
    await child.stop();
    rmSync(join(childDir, 'chunks'), { recursive: true, force: true });
    for (const f of ['trosyn.db', 'trosyn.db-wal', 'trosyn.db-shm'])
      rmSync(join(childDir, f), { force: true });
    child = childOf(hub, childDir, {
      name: 'd',
      fileCollections: { files: 'eager', archive: 'eager' },
      recover: true,
    });
    running.push(child);
    await child.start();
    await arrives(child, 'after the loss');
  });

  for (const strategy of ['lww', 'manual'] as const) {
    it(`two children editing a document offline: a ${strategy} conflict, both versions kept with their content on every node`, async () => {
      const collections = { files: { conflict: strategy } };
      const hub = await startTestHub(next('hub'), { collections });
      running.push(hub);
      const a = await pairedChildOf(hub, next('child'), { name: 'a', collections });
      const b = await pairedChildOf(hub, next('child'), { name: 'b', collections });
      running.push(a, b);
      await Promise.all([a.start(), b.start()]);
      const base = noise(3 * 1024 * 1024, 51);
      const v0 = await hub.files.putStream(chunksOf(base), { name: 'budget.xlsx' });
      for (const node of [a, b]) await contentAt(node.files, 'budget.xlsx', v0.rev, 'the first version');

      // The hub goes away; each child edits its copy.
      await hub.stop();
      const onA = Buffer.concat([
        base.subarray(0, 1_000_000),
        Buffer.from('edited on a'),
        base.subarray(1_000_000),
      ]);
      const onB = Buffer.concat([
        base.subarray(0, 2_000_000),
        Buffer.from('edited on b'),
        base.subarray(2_000_000),
      ]);
      const va = await a.files.putStream(chunksOf(onA), { name: 'budget.xlsx' });
      const vb = await b.files.putStream(chunksOf(onB), { name: 'budget.xlsx' });
      await hub.start();

      const nodes = [hub, a, b] as const;
      await eventually(
        async () => {
          for (const node of nodes) {
            const heads = (await node.files.history('budget.xlsx'))
              .filter((h) => h.head)
              .map((h) => h.rev as string);
            if (heads.length !== 2 || !heads.includes(va.rev) || !heads.includes(vb.rev)) return false;
          }
          return (await a.status()).state === 'synced' && (await b.status()).state === 'synced';
        },
        30_000,
        'both edits on every node',
      );
      const current = new Set<string>();
      for (const node of nodes) {
        const [conflict] = await node.replica.conflicts({ collection: 'files' });
        assert.ok(conflict, `a conflict is listed on ${node === hub ? 'the hub' : 'a child'}`);
        assert.deepEqual([...conflict.heads].sort(), [va.rev, vb.rev].sort());
        assert.equal(conflict.status, strategy === 'manual' ? 'open' : 'auto');
        current.add((await node.files.version('budget.xlsx')).rev);
        // Both sides' content is on every node, readable by revision.
        assert.equal(
          sha(await readAll(node.files, await node.files.version('budget.xlsx', { rev: va.rev }))),
          sha(onA),
        );
        assert.equal(
          sha(await readAll(node.files, await node.files.version('budget.xlsx', { rev: vb.rev }))),
          sha(onB),
        );
      }
      assert.equal(current.size, 1, 'every node shows the same current version');

      // A person picks b's version: it becomes current everywhere, without copying content.
      const chosen = await a.replica.resolve('files', 'budget.xlsx', { rev: vb.rev });
      for (const node of nodes) {
        await eventually(
          async () => (await node.files.version('budget.xlsx')).rev === chosen.rev,
          20_000,
          'the choice everywhere',
        );
        assert.equal(sha(await readAll(node.files, await node.files.version('budget.xlsx'))), sha(onB));
      }
      assert.equal((await a.replica.conflicts({ status: 'open' })).length, 0);
    });
  }
});
