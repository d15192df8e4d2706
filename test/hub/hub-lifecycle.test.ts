/**
 * The hub and the child as Startables: two starts at once start once, a start that
 * fails part-way gives back everything it took (ports, files, the directory's
 * lock), and stop before start, start twice and stop twice are harmless.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { offlineChild, testHub } from '../fixtures/nodes.js';

const dir = tempDir();
after(() => dir.remove());

describe('hub and child lifecycle', () => {
  it('two starts of a hub at once start it once; stop twice is harmless', async () => {
    const hub = testHub(join(dir.path, 'twice'));
    await hub.stop();
    await Promise.all([hub.start(), hub.start()]);
    const port = hub.port;
    await hub.start();
    assert.equal(hub.port, port, 'still the first start');
    await Promise.all([hub.stop(), hub.stop()]);
    assert.equal(hub.isStarted(), false);
    // Everything was released: the same directory and port start again.
    const again = testHub(join(dir.path, 'twice'), { port });
    await again.start();
    await again.stop();
  });

  it('a hub whose admin API cannot listen fails to start and holds nothing', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    const data = join(dir.path, 'rollback');
    try {
      const hub = testHub(data, { adminApi: { host: '127.0.0.1', port: taken } });
      await assert.rejects(hub.start(), { code: 'PORT_IN_USE' });
      assert.equal(hub.isStarted(), false);
      assert.throws(() => hub.port, { code: 'NOT_STARTED' }, 'the sync service was stopped again');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    // The lock and the stores were given back: another hub starts on the same directory.
    const next = testHub(data, { adminApi: { host: '127.0.0.1', port: taken } });
    await next.start();
    assert.ok(next.adminPort);
    await next.stop();
  });

  it('two starts of a child at once start it once', async () => {
    const child = offlineChild(join(dir.path, 'child'));
    await Promise.all([child.start(), child.start()]);
    assert.equal(child.isStarted(), true);
    await child.stop();
    await child.stop();
    assert.throws(() => child.records(), { code: 'NOT_STARTED' });
  });
});
