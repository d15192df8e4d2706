/**
 * Clock skew between hub and child, measured over real TLS connections in one
 * process: the hello and welcome carry each side's time, pongs the responder's, and
 * each side keeps the other's offset, within half the round trip. One side gets a
 * clock 10 minutes off (its own Clock; timers stay real).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Clock } from '../../src/lifecycle.js';
import { systemClock } from '../../src/lifecycle.js';
import { parseMessage } from '../../src/protocol/messages.js';
import { connectToHub } from '../../src/transport/client.js';
import { describeOffset, formatDuration, measureOffset } from '../../src/transport/clock-offset.js';
import { createIdentity } from '../../src/transport/identity.js';
import { eventually, tempDir } from '../helpers.js';
import { pairedChildOf, startTestHub } from '../fixtures/nodes.js';
import { childPeer, startServer } from './helpers.js';

const TEN_MINUTES = 10 * 60_000;
const dir = tempDir('trosyn-clock-');
after(() => dir.remove());

/** The system clock read `offsetMs` off; its timers are the real ones. */
function skewed(offsetMs: number): Clock {
  return { ...systemClock, now: () => Date.now() + offsetMs };
}

/** The measured offset is within half the round trip (and a rounding ms) of the true one. */
function assertNear(reading: { offsetMs: number; rttMs: number } | undefined | null, truth: number): void {
  assert.ok(reading, 'an offset was measured');
  assert.ok(
    Math.abs(reading.offsetMs - truth) <= reading.rttMs / 2 + 1,
    `measured ${reading.offsetMs} ms (round trip ${reading.rttMs} ms), true ${truth} ms`,
  );
}

describe('clock offset', () => {
  it('is the peer time minus the midpoint of the round trip', () => {
    assert.deepEqual(measureOffset(1000, 5000, 1100), { offsetMs: 3950, rttMs: 100, at: 1100 });
    assert.deepEqual(measureOffset(1000, 400, 1010), { offsetMs: -605, rttMs: 10, at: 1010 });
    // A local clock stepped back mid-way gives no negative round trip.
    assert.equal(measureOffset(1000, 1000, 900).rttMs, 0);
    assert.equal(formatDuration(599_600), '10 min 0 s');
    assert.equal(formatDuration(9_960), '10 s');
    assert.equal(formatDuration(4_250), '4.3 s');
    assert.equal(formatDuration(26 * 3_600_000 + 59 * 60_000 + 31_000), '26 h 59 min');
    assert.equal(
      describeOffset({ offsetMs: 600_000, rttMs: 4 }, "the hub's"),
      "10 min 0 s ahead of the hub's (±2 ms)",
    );
    assert.equal(
      describeOffset({ offsetMs: -1, rttMs: 4 }, "the hub's"),
      "in step with the hub's (within ±2 ms)",
    );
  });

  it('the hello, the welcome and the pong carry a time; a peer that sends none is still understood', () => {
    const hello = {
      type: 'hello',
      protocol: 'trosyn-sync',
      versions: [2],
      name: 'x',
      role: 'child',
      appVersion: '1',
      compression: [],
      features: [],
    };
    assert.equal(
      (parseMessage({ ...hello, time: 1_750_000_000_000 }) as { time?: number }).time,
      1_750_000_000_000,
    );
    assert.equal((parseMessage(hello) as { time?: number }).time, undefined);
    assert.deepEqual(parseMessage({ type: 'pong', t: 5, time: 7 }), { type: 'pong', t: 5, time: 7 });
    assert.throws(() => parseMessage({ ...hello, time: -1 }), /time/);
    assert.throws(() => parseMessage({ type: 'pong', t: 5, time: 'noon' }), /time/);
  });

  it('a child whose clock is 10 minutes behind sees the hub 10 minutes ahead, and the hub sees the child 10 minutes behind', async () => {
    let hub = await startTestHub(join(dir.path, 'hub'));
    const child = await pairedChildOf(
      hub,
      join(dir.path, 'child'),
      { name: 'desk' },
      { clock: skewed(-TEN_MINUTES) },
    );
    try {
      await child.start();
      const childId = child.deviceId;
      await eventually(
        async () => (await child.status()).connection.state === 'connected',
        10_000,
        'connected',
      );
      // The child measured over its hello and the hub's welcome.
      assertNear((await child.status()).hubClock, TEN_MINUTES);
      // The hub measured over the ping it sent after the welcome.
      await eventually(() => hub.deviceClock(childId) !== null, 5_000, 'the hub measures');
      assertNear(hub.deviceClock(childId), -TEN_MINUTES);
      assertNear((await hub.deviceSync(childId)).clock, -TEN_MINUTES);

      // The child keeps the last offset while the hub is away; the hub keeps its across a restart.
      await hub.stop();
      await eventually(
        async () => (await child.status()).connection.state !== 'connected',
        10_000,
        'offline',
      );
      assertNear((await child.status()).hubClock, TEN_MINUTES);
      await child.stop();
      hub = await startTestHub(join(dir.path, 'hub'));
      assertNear(hub.deviceClock(childId), -TEN_MINUTES);
    } finally {
      await child.stop();
      await hub.stop();
    }
  });

  it('the client measures the server 3 s ahead from the welcome alone', async () => {
    const childId = await createIdentity('c');
    const s = await startServer([childId.deviceId], { clock: skewed(3_000) });
    try {
      const hub = await connectToHub(s.address, {
        identity: childId,
        local: childPeer,
        hubId: s.identity.deviceId,
      });
      assertNear(hub.handshake.peerClock, 3_000);
      assertNear(hub.conn.peerClock(), 3_000);
      hub.conn.close();
    } finally {
      await s.server.stop();
    }
  });
});
