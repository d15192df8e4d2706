/**
 * A sync session's `error` over mutual TLS: the side that refuses sends one
 * `error` and then nothing (PROTOCOL.md, "Errors and closing").
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DeviceId } from '../../src/store/types.js';
import { createIdentity } from '../../src/transport/identity.js';
import { testHub } from '../fixtures/nodes.js';
import { messageFrame } from '../fuzz/mutate.js';
import { FramePeer, fuzzHello } from '../fuzz/peer.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

describe('sync errors over mutual TLS', () => {
  it('a hub that refuses a batch sends one error, then closes', async () => {
    const hub = testHub(join(dir.path, 'one-error'));
    await hub.start();
    const device = await createIdentity('one-error');
    await hub.registry.register({ deviceId: device.deviceId as DeviceId, name: 'd', group: 'default' });
    const peer = await FramePeer.connect(hub.port, device);
    peer.write(messageFrame({ ...fuzzHello(), versions: [2] }));
    await peer.until(() => peer.messages().some((m) => m.type === 'sync.open'), 10_000, 'the sync.open');
    const log = 'ab'.repeat(16);
    peer.write(messageFrame({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } }));
    peer.write(messageFrame({ type: 'sync.start', log, latest: 9, from: 0 }));
    // Starts after position 5 of a log the hub has applied nothing of: a gap.
    peer.write(
      messageFrame({ type: 'sync.changes', log, since: 5, upTo: 9, check: '', more: false, revisions: [] }),
    );
    await peer.until(() => false, 10_000, 'the close');
    peer.destroy();
    const messages = peer.messages();
    const first = messages.findIndex((m) => m.type === 'error');
    assert.deepEqual(
      messages.slice(first).map((m) => (m.type === 'error' ? m.code : m.type)),
      ['SYNC_GAP'],
      'one error, and nothing after it',
    );
    await hub.stop();
  });
});
