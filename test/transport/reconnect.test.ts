/**
 * The client's retries run on its clock: after a failure it waits exactly its
 * backoff delay (exponential, capped, jittered by an injected random source), a
 * healthy session resets the backoff, `retryNow()` skips the wait, and a fatal code
 * stops retrying with no timer left. The hub is a real TLS server on 127.0.0.1; the
 * clock is fake, so each wait is exact and no test sleeps.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { AuthDecision } from '../../src/transport/authenticator.js';
import { type HubAddress, TransportClient } from '../../src/transport/client.js';
import { createIdentity } from '../../src/transport/identity.js';
import { FakeClock } from '../helpers.js';
import { childPeer, startServer } from './helpers.js';

/** Lets promise callbacks and ready I/O run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A hub whose verdict on the child the test sets, and a client on a fake clock. */
async function setup(options: { healthyAfterMs?: number; fatalCodes?: string[] } = {}) {
  const clock = new FakeClock();
  const child = await createIdentity('retrying-child');
  let verdict: AuthDecision = { deny: 'DEVICE_NOT_ALLOWED', reason: 'not yet' };
  // The hub's timers on a clock of their own: the client's clock holds only the client's.
  const hub = await startServer([], {
    clock: new FakeClock(),
    authenticator: { authenticate: () => verdict },
  });
  const address: HubAddress = { host: '127.0.0.1', port: hub.server.port };
  const client = new TransportClient({
    identity: child,
    local: childPeer,
    hubId: hub.identity.deviceId,
    addresses: () => [address],
    onConnected: () => undefined,
    // Half of each bound: 500, 1000, 2000, 4000, then 4000 at the 8000 cap.
    backoff: { initialMs: 1000, maxMs: 8000, random: () => 0.5 },
    clock,
    ...options,
  });
  const failures: string[] = [];
  client.on('attempt-failed', (_address, err) => failures.push((err as { code?: string }).code ?? '?'));
  return {
    clock,
    hub,
    client,
    failures,
    setVerdict: (v: AuthDecision) => {
      verdict = v;
    },
    /** How long the client now waits before its next attempt, once it has settled into waiting. */
    waiting: async () => {
      await settle();
      const status = client.status();
      assert.equal(status.state, 'waiting');
      return (status.nextAttemptAt as number) - clock.now();
    },
    stop: async () => {
      await client.stop();
      await hub.server.stop();
    },
  };
}

describe('reconnecting with backoff on the clock', () => {
  it('waits exactly its backoff between attempts, growing to the cap', { timeout: 30_000 }, async () => {
    const t = await setup();
    const failed = () => once(t.client, 'attempt-failed');
    let next = failed();
    await t.client.start();
    await next;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const delay = await t.waiting();
      delays.push(delay);
      const attempts = t.failures.length;
      t.clock.advance(delay - 1);
      await settle();
      assert.equal(t.failures.length, attempts, 'no attempt before the delay is over');
      assert.equal(t.client.status().state, 'waiting');
      next = failed();
      t.clock.advance(1);
      await next;
    }
    await t.stop();
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 4000]);
    assert.deepEqual(new Set(t.failures), new Set(['DEVICE_NOT_ALLOWED']));
  });

  it('retryNow() tries again at once, without the clock moving', { timeout: 30_000 }, async () => {
    const t = await setup();
    let next = once(t.client, 'attempt-failed');
    await t.client.start();
    await next;
    assert.equal(await t.waiting(), 500);
    const at = t.clock.now();
    next = once(t.client, 'attempt-failed');
    t.client.retryNow();
    await next;
    assert.equal(t.clock.now(), at);
    assert.equal(t.failures.length, 2);
    await t.stop();
  });

  it(
    'a session that lasted healthyAfterMs resets the backoff; a short one does not',
    { timeout: 30_000 },
    async () => {
      const t = await setup({ healthyAfterMs: 10_000 });
      let next = once(t.client, 'attempt-failed');
      await t.client.start();
      await next;
      // Two failures: the next bound is 4000.
      next = once(t.client, 'attempt-failed');
      t.clock.advance(await t.waiting());
      await next;
      t.setVerdict({ allow: 'sync' });

      const session = async (lasting: number) => {
        const connected = t.hub.untilConnections(t.hub.connections.length + 1);
        const up = once(t.client, 'connected');
        t.clock.advance(await t.waiting());
        await Promise.all([connected, up]);
        const down = once(t.client, 'disconnected');
        t.clock.advance(lasting);
        t.hub.connections.at(-1)?.conn.close();
        await down;
        return t.waiting();
      };
      const afterShort = await session(9_999);
      const afterHealthy = await session(10_000);
      await t.stop();
      assert.deepEqual({ afterShort, afterHealthy }, { afterShort: 2000, afterHealthy: 500 });
    },
  );

  it('a fatal code stops retrying and leaves no timer', { timeout: 30_000 }, async () => {
    const t = await setup({ fatalCodes: ['DEVICE_REVOKED'] });
    t.setVerdict({ deny: 'DEVICE_REVOKED', reason: 'revoked by the test' });
    const next = once(t.client, 'attempt-failed');
    await t.client.start();
    await next;
    await settle();
    const status = t.client.status();
    assert.equal(status.state, 'failed');
    assert.equal(status.lastError?.code, 'DEVICE_REVOKED');
    assert.equal(t.clock.pending(), 0, 'no wait, no retry');
    t.clock.advance(3_600_000);
    await settle();
    assert.deepEqual(t.failures, ['DEVICE_REVOKED']);
    await t.stop();
  });
});
