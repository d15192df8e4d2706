import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { freePort, hubArgs, openNode, runCli, startAgent } from './helpers.js';

const dir = tempDir();
after(() => dir.remove());

describe('two processes over TLS', () => {
  it('the hub is killed with SIGKILL and restarted; the child reconnects by itself and nothing is lost or doubled', async () => {
    const port = await freePort();
    const hubDir = join(dir.path, 'hub');
    const childDir = join(dir.path, 'child');
    const args = hubArgs(hubDir, port);
    let hub = startAgent(args);
    const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub start');
    await runCli([
      'pair',
      String(started.pairingCode),
      '--hub',
      `127.0.0.1:${port}`,
      '--data',
      childDir,
      '--name',
      'laptop',
    ]);
    const child = startAgent([
      'child',
      '--data',
      childDir,
      '--hub',
      `127.0.0.1:${port}`,
      '--no-discovery',
      '--retry-max',
      '500',
    ]);
    await child.waitFor((l) => l.event === 'connected', 15_000, 'child connects');

    // 100 writes on the hub reach the child.
    const hubStore = await openNode(hubDir);
    await hubStore.writeMany(
      Array.from({ length: 100 }, (_, i) => ({
        op: 'put' as const,
        collection: 'docs',
        id: `h${i}`,
        body: { i },
      })),
    );
    await hubStore.stop();
    const childStore = await openNode(childDir);
    await eventually(
      async () => (await childStore.stats()).records === 100,
      15_000,
      'first 100 records on the child',
    );

    // Kill the hub hard; the child keeps working offline, and the hub's store takes writes too.
    await hub.kill('SIGKILL');
    await childStore.writeMany(
      Array.from({ length: 50 }, (_, i) => ({
        op: 'put' as const,
        collection: 'docs',
        id: `c${i}`,
        body: { i },
      })),
    );
    const hubOffline = await openNode(hubDir);
    await hubOffline.writeMany(
      Array.from({ length: 50 }, (_, i) => ({
        op: 'put' as const,
        collection: 'docs',
        id: `h2-${i}`,
        body: { i },
      })),
    );
    await hubOffline.stop();

    hub = startAgent(args);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub restart');
    await child.waitFor((l) => l.event === 'connected', 15_000, 'child reconnects on its own');
    const hubStore2 = await openNode(hubDir);
    await eventually(
      async () => (await childStore.stats()).records === 200 && (await hubStore2.stats()).records === 200,
      20_000,
      'both hold all 200',
    );
    // No duplicates: exactly one revision per record on each side.
    assert.equal((await childStore.stats()).revisions, 200);
    assert.equal((await hubStore2.stats()).revisions, 200);
    assert.equal(child.lines.filter((l) => (l as { event?: string }).event === 'connected').length, 2);
    await childStore.stop();
    await hubStore2.stop();
    await child.kill();
    await hub.kill();
  });
});
