import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createChild } from '../../src/child/factory.js';
import { createHub } from '../../src/hub/factory.js';
import type { DeviceId } from '../../src/store/types.js';
import { StaticAuthenticator } from '../../src/transport/authenticator.js';
import { loadOrCreateIdentity } from '../../src/transport/identity.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

async function childIdentity(name: string) {
  return (await loadOrCreateIdentity(join(dir.path, name, 'identity'))).deviceId;
}

describe('sync over mutual TLS (in one process)', () => {
  it('a write on one child reaches the other through the hub; a restarted child gets only the new changes', async () => {
    const [a, b] = await Promise.all([childIdentity('a'), childIdentity('b')]);
    const auth = new StaticAuthenticator([a, b] as DeviceId[]);
    const hub = createHub(
      {
        discovery: false,
        dataDir: join(dir.path, 'hub'),
        host: '127.0.0.1',
        port: 0,
        synchronous: 'off',
      },
      { authenticator: auth },
    );
    await hub.start();
    const makeChild = (name: string) =>
      createChild({
        dataDir: join(dir.path, name),
        name,
        hubId: hub.deviceId,
        hubAddresses: () => [{ host: '127.0.0.1', port: hub.port }],
        backoff: { initialMs: 50, maxMs: 500 },
        synchronous: 'off',
      });
    const childA = makeChild('a');
    let childB = makeChild('b');
    await Promise.all([childA.start(), childB.start()]);

    const w = await childA.replica.put('notes', 'n1', { text: 'over TLS' });
    await eventually(
      async () => (await childB.replica.get('notes', 'n1'))?.rev === w.rev,
      10_000,
      'write relayed A -> hub -> B',
    );
    assert.deepEqual((await hub.replica.get('notes', 'n1'))?.body, { text: 'over TLS' });
    await eventually(async () => (await childA.status()).state === 'synced', 5000, 'A reports synced');

    await childB.stop();
    for (let i = 0; i < 20; i++) await childA.replica.put('notes', `later-${i}`, { i });
    childB = makeChild('b');
    await childB.start();
    await eventually(
      async () => (await childB.replica.list('notes', { limit: 100 })).length === 21,
      10_000,
      'B caught up',
    );
    await eventually(
      async () => (await childB.status()).session?.applied === 20,
      5000,
      'B applied exactly the 20 new revisions',
    );
    assert.equal((await childB.status()).session?.duplicates, 0);

    await Promise.all([childA.stop(), childB.stop()]);
    await hub.stop();
  });

  it('start and stop are idempotent; stop before start is safe; everything is released', async () => {
    const hub = createHub(
      {
        discovery: false,
        dataDir: join(dir.path, 'idem-hub'),
        host: '127.0.0.1',
        port: 0,
        synchronous: 'off',
      },
      { authenticator: new StaticAuthenticator([]) },
    );
    await hub.stop();
    await hub.start();
    const port = hub.port;
    await hub.start();
    assert.equal(hub.port, port);
    await hub.stop();
    await hub.stop();
    // The port and the database are free again.
    const again = createHub(
      {
        discovery: false,
        dataDir: join(dir.path, 'idem-hub'),
        host: '127.0.0.1',
        port,
        synchronous: 'off',
      },
      { authenticator: new StaticAuthenticator([]) },
    );
    await again.start();
    assert.equal(again.port, port);
    await again.stop();
  });
});
