/**
 * Documents end to end: a hub and two children as real processes started with the
 * trosyn-sync command, files put and read with the CLI beside the running agents.
 * A version put on a child reaches the hub and the other child with its bytes; an
 * agent killed (SIGKILL) in the middle of a transfer finishes it after it restarts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { freePort, hubArgs, runCli, startAgent, startChildAgent, type Agent } from './helpers.js';
import { noise, sha } from '../fixtures/bytes.js';

const dir = tempDir('trosyn-e2e-files-');

interface Node {
  name: string;
  data: string;
  agent?: Agent;
  apiPort?: number;
}

describe('documents between real processes', () => {
  let port = 0;
  const hub: Node = { name: 'hub', data: join(dir.path, 'hub') };
  const a: Node = { name: 'desk-a', data: join(dir.path, 'a') };
  const b: Node = { name: 'desk-b', data: join(dir.path, 'b') };

  const files = (node: Node, ...args: string[]) => runCli(['files', ...args, '--data', node.data]);

  async function startChild(node: Node): Promise<void> {
    const { agent, apiPort } = await startChildAgent(node.data, port, node.name);
    node.agent = agent;
    node.apiPort = apiPort;
  }

  async function status(
    node: Node,
  ): Promise<{ state: string; files: { pending: number; bytesHere: number } }> {
    const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${node.apiPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as { state: string; files: { pending: number; bytesHere: number } };
  }

  /** Waits until `node` can write out `name` at `rev`, and returns the bytes it wrote. */
  async function contentOn(node: Node, name: string, rev: string, timeoutMs = 60_000): Promise<Buffer> {
    const out = join(dir.path, `${node.name}-${name}-${rev.slice(0, 8)}`);
    await eventually(
      async () => {
        try {
          const got = await files(node, 'get', name, '--rev', rev, '-o', out);
          return got.rev === rev;
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
    for (const n of [hub, a, b]) mkdirSync(n.data, { recursive: true });
    hub.agent = startAgent([...hubArgs(hub.data, port), '--no-admin-api']);
    await hub.agent.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    for (const node of [a, b]) {
      const code = (await runCli(['pairing-code', '--data', hub.data])).code as string;
      await runCli(['pair', code, '--hub', `127.0.0.1:${port}`, '--data', node.data, '--name', node.name]);
      await startChild(node);
    }
  });

  after(async () => {
    for (const n of [hub, a, b]) await n.agent?.kill('SIGKILL');
    dir.remove();
  });

  it('a file put on a child reaches the hub and the other child, each version with its bytes', async () => {
    const path = join(dir.path, 'plan.docx');
    const v1bytes = noise(6 * 1024 * 1024 + 13, 11);
    writeFileSync(path, v1bytes);
    const v1 = (await files(a, 'put', path)) as { rev: string; size: number; sha256: string };
    assert.equal(v1.size, v1bytes.length);
    assert.equal(v1.sha256, sha(v1bytes));
    assert.equal(sha(await contentOn(hub, 'plan.docx', v1.rev)), sha(v1bytes), 'on the hub');
    assert.equal(sha(await contentOn(b, 'plan.docx', v1.rev)), sha(v1bytes), 'on child b');

    // Child b edits it; the edit comes back to a, and the first version stays readable.
    const v2bytes = Buffer.concat([
      v1bytes.subarray(0, 3_000_000),
      Buffer.from('inserted'),
      v1bytes.subarray(3_000_000),
    ]);
    writeFileSync(path, v2bytes);
    const v2 = (await files(b, 'put', path, '--name', 'plan.docx')) as { rev: string };
    assert.equal(sha(await contentOn(a, 'plan.docx', v2.rev)), sha(v2bytes), 'the edit on child a');
    assert.equal(sha(await contentOn(a, 'plan.docx', v1.rev)), sha(v1bytes), 'the first version on child a');
    const history = (await files(a, 'history', 'plan.docx')) as unknown as Array<{ rev: string }>;
    assert.deepEqual(
      history.map((h) => h.rev),
      [v1.rev, v2.rev],
    );
    await eventually(async () => (await status(a)).state === 'synced', 20_000, 'child a synced');
    assert.equal((await status(a)).files.pending, 0);
  });

  it('a child killed with SIGKILL mid-transfer finishes the file after it restarts', async () => {
    const path = join(dir.path, 'archive.zip');
    const bytes = noise(48 * 1024 * 1024, 12);
    writeFileSync(path, bytes);
    await b.agent?.kill('SIGKILL');
    const v = (await runCli(['files', 'put', path, '--data', hub.data])) as { rev: string };
    await startChild(b);
    // Killed once part of the content is here (or, on a fast machine, all of it).
    await eventually(async () => (await status(b)).files.bytesHere > 0, 60_000, 'content arriving on b');
    const cut = (await status(b)).files;
    await b.agent?.kill('SIGKILL');
    await startChild(b);
    assert.equal(
      sha(await contentOn(b, 'archive.zip', v.rev, 120_000)),
      sha(bytes),
      `after the kill (${JSON.stringify(cut)})`,
    );
    await eventually(async () => (await status(b)).state === 'synced', 20_000, 'child b synced');
  });
});
