/**
 * A sync session's `error` over mutual TLS, both ways: the side that refuses sends
 * one `error` and then nothing (PROTOCOL.md, "Errors and closing"), and the side
 * that receives CHANGE_LOG_ROLLED_BACK acts on it although the connection, not the
 * session, reads that message.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Hub } from '../../src/hub/hub.js';
import type { DeviceId } from '../../src/store/types.js';
import { createIdentity } from '../../src/transport/identity.js';
import { pairedChildOf, testHub } from '../fixtures/nodes.js';
import { messageFrame } from '../fuzz/mutate.js';
import { FramePeer, fuzzHello } from '../fuzz/peer.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

const STORE_FILES = ['trosyn.db', 'trosyn.db-wal', 'trosyn.db-shm'];

/** A device registered on `hub`, connected frame by frame, that said hello and was sent sync.open. */
async function openedPeer(hub: Hub, name: string): Promise<FramePeer> {
  const device = await createIdentity(name);
  await hub.registry.register({ deviceId: device.deviceId as DeviceId, name: 'd', group: 'default' });
  const peer = await FramePeer.connect(hub.port, device);
  peer.write(messageFrame({ ...fuzzHello(), versions: [2] }));
  await peer.until(() => peer.messages().some((m) => m.type === 'sync.open'), 10_000, 'the sync.open');
  return peer;
}

describe('sync errors over mutual TLS', () => {
  it('a hub that refuses a batch sends one error, then closes', async () => {
    const hub = testHub(join(dir.path, 'one-error'));
    await hub.start();
    const peer = await openedPeer(hub, 'one-error');
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

  it('a sync.ack before the hub has sent a batch is refused with an error', async () => {
    const hub = testHub(join(dir.path, 'stray-ack'));
    await hub.start();
    // Something to send: an ack that set the hub sending before the session knew its start broke it.
    await hub.replica.put('notes', 'n', { v: 1 });
    const peer = await openedPeer(hub, 'stray-ack');
    peer.write(messageFrame({ type: 'sync.ack', upTo: 3, applied: 0, duplicates: 0, rejected: [] }));
    await peer.until(() => false, 10_000, 'the close');
    peer.destroy();
    assert.deepEqual(peer.errorCodes(), ['UNEXPECTED_MESSAGE']);
    await hub.stop();
  });

  it("a hub's sync.ack cuts a refused revision's strings to what the message may carry", async () => {
    const hub = testHub(join(dir.path, 'long-strings'));
    await hub.start();
    const peer = await openedPeer(hub, 'long-strings');
    const log = 'cd'.repeat(16);
    const long = 'a'.repeat(5000);
    const revisions = [
      { rev: long },
      { rev: 'b'.repeat(64), collection: long },
      { rev: 'b'.repeat(64), id: long },
    ];
    peer.write(messageFrame({ type: 'sync.open', cursor: { log: '', seq: 0, check: '' } }));
    peer.write(messageFrame({ type: 'sync.start', log, latest: 1, from: 0 }));
    peer.write(
      messageFrame({ type: 'sync.changes', log, since: 0, upTo: 1, check: '', more: false, revisions }),
    );
    // Before: an ack the receiver's schema refuses (strings over 4096), so it never arrived as one.
    await peer.until(() => peer.messages().some((m) => m.type === 'sync.ack'), 10_000, 'the sync.ack');
    peer.destroy();
    const ack = peer.messages().find((m) => m.type === 'sync.ack');
    assert.equal(ack?.type === 'sync.ack' && ack.rejected.length, 3);
    await hub.stop();
  });

  it('a hub restored twice from the same old copy takes a new log identity when its child says so', async () => {
    const hubDir = join(dir.path, 'restored-hub');
    const copyDir = join(dir.path, 'hub-copy');
    mkdirSync(copyDir);
    const copy = (from: string, to: string) => {
      for (const f of STORE_FILES) {
        rmSync(join(to, f), { force: true });
        if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
      }
    };
    let hub: Hub = testHub(hubDir);
    await hub.start();
    // The child finds the hub where it listens now.
    const child = await pairedChildOf(hub, join(dir.path, 'restored-child'), {
      hubAddresses: () => [{ host: '127.0.0.1', port: hub.port }],
    });
    await hub.stop();
    copy(hubDir, copyDir);
    const restart = async () => {
      hub = testHub(hubDir);
      await hub.start();
    };
    await restart();
    await child.start();
    const reaches = async (what: string) => {
      const w = await hub.replica.put('notes', what, { what });
      await eventually(
        async () => (await child.replica.get('notes', what))?.rev === w.rev,
        10_000,
        `${what} reaches the child`,
      );
    };
    await reaches('first timeline');
    // First restore: the child's cursor shows the hub that its log was rolled back.
    await hub.stop();
    copy(copyDir, hubDir);
    await restart();
    await reaches('second timeline');
    // Second restore of the same copy: the hub brings back a log the child saw replaced.
    await hub.stop();
    copy(copyDir, hubDir);
    await restart();
    const restored = (await hub.replica.changeLog()).id;
    await eventually(
      async () => (await hub.replica.changeLog()).id !== restored,
      10_000,
      'the hub takes a new log identity',
    );
    await reaches('third timeline');
    await child.stop();
    await hub.stop();
  });
});
