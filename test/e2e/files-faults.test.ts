/**
 * Documents under faults, with real processes: the hub killed with SIGKILL while it
 * pulls a child's new file, the link cut in the middle of a transfer, and a child's
 * disk full in the middle of one. Each transfer keeps what arrived, fetches only the
 * rest, and ends with the exact bytes; a full disk pauses the transfer with a clear
 * code, harms nothing else, and it resumes when space returns.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { commandExists, loudSkip } from '../netns/harness.js';
import { CLI, freePort, hubArgs, runCli, startAgent, startChildAgent, type Agent } from './helpers.js';
import { noise, sha } from '../fixtures/bytes.js';

const dir = tempDir('trosyn-e2e-files-faults-');
const MiB = 1024 * 1024;

/** A TCP relay to 127.0.0.1:`target` whose connections can all be cut at once. */
async function relay(target: number): Promise<{ port: number; cut(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(target, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Node {
  name: string;
  data: string;
  agent?: Agent;
  apiPort?: number;
}

interface FilesProgress {
  pending: number;
  bytesHere: number;
  bytesTotal: number;
  error?: { code: string; message: string };
}

async function api<T>(node: Node, path: string, method = 'GET'): Promise<T> {
  const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${node.apiPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const status = (node: Node) => api<{ state: string; files: FilesProgress }>(node, '/api/status');

describe('documents under faults, between real processes', () => {
  let port = 0;
  let adminPort = 0;
  let adminToken = '';
  const hub: Node = { name: 'hub', data: join(dir.path, 'hub') };
  const a: Node = { name: 'desk-a', data: join(dir.path, 'a') };
  const b: Node = { name: 'desk-b', data: join(dir.path, 'b') };

  const files = (node: Node, ...args: string[]) => runCli(['files', ...args, '--data', node.data]);

  async function startHub(): Promise<void> {
    hub.agent = startAgent(
      hubArgs(hub.data, port, '--http-port', String(adminPort), '--http-host', '127.0.0.1'),
    );
    const started = await hub.agent.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    if (typeof started.adminToken === 'string') adminToken = started.adminToken;
  }

  async function hubTransfers(): Promise<{
    progress: FilesProgress;
    devices: Array<{ name: string; bytesIn: number; bytesOut: number }>;
  }> {
    const res = await fetch(`http://127.0.0.1:${adminPort}/api/files/transfers`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    assert.equal(res.status, 200);
    return (await res.json()) as Awaited<ReturnType<typeof hubTransfers>>;
  }

  /** Pairs `node` through 127.0.0.1:`via` (the address it remembers and tries first). */
  async function pair(node: Node, via = port): Promise<void> {
    mkdirSync(node.data, { recursive: true });
    const code = (await runCli(['pairing-code', '--data', hub.data])).code as string;
    await runCli(['pair', code, '--hub', `127.0.0.1:${via}`, '--data', node.data, '--name', node.name]);
  }

  /** Waits until `node` has all of `name` at `rev` and returns its bytes, as the CLI writes them. */
  async function contentOn(node: Node, name: string, rev: string, timeoutMs = 90_000): Promise<Buffer> {
    const out = join(dir.path, `${node.name}-${name}-${rev.slice(0, 8)}`);
    await eventually(
      async () => {
        try {
          return (await files(node, 'get', name, '--rev', rev, '-o', out)).rev === rev;
        } catch {
          return false;
        }
      },
      timeoutMs,
      `${name}@${rev.slice(0, 8)} on ${node.name}`,
    );
    return readFileSync(out);
  }

  before(async () => {
    port = await freePort();
    adminPort = await freePort();
    mkdirSync(hub.data, { recursive: true });
    await startHub();
    assert.ok(adminToken, 'the first start prints the admin token');
  });

  after(async () => {
    for (const n of [hub, a, b]) await n.agent?.kill('SIGKILL');
    dir.remove();
  });

  it('the hub killed with SIGKILL while it pulls a child’s new file fetches only the rest after it restarts', async (t: TestContext) => {
    await pair(a);
    ({ agent: a.agent, apiPort: a.apiPort } = await startChildAgent(a.data, port, a.name));
    const bytes = noise(48 * MiB, 21);
    const path = join(dir.path, 'survey.tif');
    writeFileSync(path, bytes);
    const v = (await files(a, 'put', path)) as { rev: string };

    await eventually(
      async () => (await hubTransfers()).progress.bytesHere > 0,
      60_000,
      'content arriving at the hub',
    );
    const cut = (await hubTransfers()).progress;
    await hub.agent?.kill('SIGKILL');
    await startHub();

    assert.equal(
      sha(await contentOn(hub, 'survey.tif', v.rev)),
      sha(bytes),
      `after the kill (${JSON.stringify(cut)})`,
    );
    // What the hub fetched from the child over the new connection is the rest, not the whole.
    const fromA = (await hubTransfers()).devices.find((d) => d.name === a.name);
    assert.ok(fromA, 'the child is connected again');
    t.diagnostic(`here at the kill: ${cut.bytesHere} of ${bytes.length}; fetched after it: ${fromA.bytesIn}`);
    assert.ok(
      fromA.bytesIn <= bytes.length - cut.bytesHere + MiB,
      `fetched ${fromA.bytesIn} bytes after the restart; ${cut.bytesHere} of ${bytes.length} were here before it`,
    );
    await eventually(async () => (await status(a)).state === 'synced', 30_000, 'child a synced');
  });

  it('a link cut in the middle of a transfer: the child keeps what arrived and finishes over the next connection', async (t: TestContext) => {
    const link = await relay(port);
    await pair(b, link.port);
    try {
      ({ agent: b.agent, apiPort: b.apiPort } = await startChildAgent(b.data, link.port, b.name));
      // b also gets the first test's file; wait for it so this transfer is the only one.
      await eventually(async () => (await status(b)).state === 'synced', 90_000, 'child b synced');
      const bytes = noise(40 * MiB, 22);
      const path = join(dir.path, 'site-plan.dwg');
      writeFileSync(path, bytes);
      const v = (await files(hub, 'put', path)) as { rev: string };

      await eventually(async () => (await status(b)).files.bytesHere > 0, 60_000, 'content arriving at b');
      const before = (await status(b)).files;
      assert.ok(link.cut() > 0, 'there was a connection to cut');
      const afterCut = (await status(b)).files;
      t.diagnostic(`here at the cut: ${before.bytesHere} of ${bytes.length}`);
      assert.ok(
        afterCut.bytesHere >= before.bytesHere,
        `kept what arrived: ${afterCut.bytesHere} >= ${before.bytesHere}`,
      );
      assert.equal(sha(await contentOn(b, 'site-plan.dwg', v.rev)), sha(bytes));
      await eventually(async () => (await status(b)).state === 'synced', 30_000, 'child b synced again');
    } finally {
      await b.agent?.kill('SIGTERM');
      await link.close();
    }
  });

  it('a full disk pauses a transfer with CHUNK_STORE_FULL, harms nothing else, and the transfer resumes when space returns', async (t: TestContext) => {
    const reason = cannotMountTmpfs();
    if (reason) {
      if (process.env.CI) assert.fail(`cannot run on this CI machine: ${reason}`);
      t.skip(loudSkip(t.name, reason));
      return;
    }
    const c: Node = { name: 'desk-c', data: join(dir.path, 'c') };
    await pair(c);
    const chunks = join(c.data, 'chunks');
    mkdirSync(chunks, { recursive: true });
    // The child's chunk store on a 12 MiB tmpfs of its own mount namespace; its
    // store (trosyn.db) stays on the real disk.
    c.agent = startAgent(
      [
        'child',
        '--data',
        c.data,
        '--hub',
        `127.0.0.1:${port}`,
        '--no-discovery',
        '--retry-max',
        '300',
        '--api-port',
        '0',
        '--name',
        c.name,
      ],
      {
        prefix: [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          'mount -t tmpfs -o size=12m tmpfs "$1" && shift && exec "$@"',
          'sh',
          chunks,
        ],
      },
    );
    try {
      const started = await c.agent.waitFor((l) => l.event === 'started', 20_000, 'child c starts');
      c.apiPort = started.apiPort as number;
      // What the hub already holds (two files, 88 MiB) does not fit: the disk fills.
      await eventually(
        async () => (await status(c)).files.error?.code === 'CHUNK_STORE_FULL',
        90_000,
        'CHUNK_STORE_FULL in the status',
      );
      const full = await status(c);
      assert.notEqual(full.state, 'synced', 'not synced while content is missing');
      assert.ok(full.files.pending > 0);

      // Records still sync while the chunk store's disk is full.
      await runCli(['put', 'notes', 'while-full', '{"n":1}', '--data', hub.data]);
      await eventually(
        async () => {
          const token = readFileSync(join(c.data, 'api-token'), 'utf8').trim();
          const res = await fetch(`http://127.0.0.1:${c.apiPort}/api/records/notes/while-full`, {
            headers: { authorization: `Bearer ${token}` },
          });
          return res.status === 200;
        },
        30_000,
        'a record reaches the child while its disk is full',
      );

      // Space returns; a sync now resumes the transfer without waiting out the backoff.
      const grow = spawnSync(
        'nsenter',
        ['-t', String(c.agent.proc.pid), '-m', 'mount', '-o', 'remount,size=200m', chunks],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(grow.status, 0, `remount: ${grow.stderr}`);
      await api(c, '/api/sync/now', 'POST');
      await eventually(
        async () => (await status(c)).state === 'synced',
        120_000,
        'child c synced after space returned',
      );
      const done = await status(c);
      assert.equal(done.files.pending, 0);
      assert.equal(done.files.error, undefined, 'the error clears once the transfer succeeds');
      // The CLI runs in the agent's mount namespace, where the chunk store's tmpfs is.
      const ls = runNs(c.agent.proc.pid as number, ['files', 'ls', '--data', c.data]);
      assert.equal(ls.status, 0, ls.stderr);
      const list = JSON.parse(ls.stdout) as Array<{ name: string; here: boolean }>;
      assert.deepEqual(
        list.map((f) => [f.name, f.here]),
        [
          ['site-plan.dwg', true],
          ['survey.tif', true],
        ],
      );
      const out = join(dir.path, 'c-survey.tif');
      const got = await runNs(c.agent.proc.pid as number, [
        'files',
        'get',
        'survey.tif',
        '-o',
        out,
        '--data',
        c.data,
      ]);
      assert.equal(got.status, 0, got.stderr);
      assert.equal(sha(readFileSync(out)), sha(noise(48 * MiB, 21)));
    } finally {
      await c.agent.kill('SIGTERM');
    }
  });
});

/** Why a tmpfs cannot be mounted in a private mount namespace here, or undefined. */
function cannotMountTmpfs(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux mount namespaces';
  if (process.getuid?.() !== 0) return 'needs root, to mount a small tmpfs in a private mount namespace';
  for (const cmd of ['unshare', 'mount', 'nsenter'])
    if (!commandExists(cmd)) return `needs ${cmd} (util-linux)`;
  const probe = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt'],
    {
      encoding: 'utf8',
    },
  );
  return probe.status === 0
    ? undefined
    : `mounting a tmpfs in a private mount namespace failed: ${probe.stderr.trim()}`;
}

/** Runs the CLI inside the mount namespace of process `pid` (where the child's chunk store is). */
function runNs(pid: number, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', ['-t', String(pid), '-m', process.execPath, CLI, ...args, '--json'], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
