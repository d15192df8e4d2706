/** The reasons the dashboard gives for a device not in sync: a clock far from the hub's is one. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Detail, whyNotInSync } from '../../dashboard/src/why-not-in-sync.js';

const inSync: Detail = {
  deviceId: 'd'.repeat(64),
  readableId: 'D',
  name: 'reception',
  group: 'default',
  state: 'approved',
  firstSeen: 1,
  lastSeen: 2,
  lastAddress: '127.0.0.1',
  appVersion: '0.1.0',
  pairedAt: 1,
  revokedAt: null,
  connected: true,
  clock: null,
  session: {
    deviceId: 'd'.repeat(64),
    address: '127.0.0.1',
    name: 'reception',
    appVersion: '0.1.0',
    connectedAt: 1,
    caughtUp: true,
    bytesIn: 0,
    bytesOut: 0,
  } as Detail['session'],
  sync: {
    hubLatestSeq: 4,
    caughtUp: true,
    toDevice: { ackedUpTo: 4, behind: 0 },
    fromDevice: { appliedUpTo: 2, deviceLatest: 2, behind: 0 },
    lastError: null,
    refusedByHub: null,
    refusedByDevice: null,
    lastSessionEndedAt: null,
  },
};

it('a connected device in step has no reason; a clock a minute or more off is one, with what to do', () => {
  assert.deepEqual(whyNotInSync(inSync), []);
  assert.deepEqual(
    whyNotInSync({ ...inSync, clock: { offsetMs: 4_000, rttMs: 2, at: 3 } }),
    [],
    'seconds: fine',
  );
  const ahead = whyNotInSync({ ...inSync, clock: { offsetMs: 125_000, rttMs: 4, at: 3 } });
  assert.equal(ahead.length, 1);
  assert.match(ahead[0] as string, /Its clock is 2 min 5 s ahead of the hub's \(±2 ms\)/);
  assert.match(ahead[0] as string, /NTP/);
  const behind = whyNotInSync({ ...inSync, clock: { offsetMs: -3 * 3600_000, rttMs: 0, at: 3 } });
  assert.match(behind[0] as string, /3 h 0 min behind the hub's/);
});

it('a device the write limit holds back now is a reason; a stretch that ended is not', () => {
  const now = 1_000_000;
  const held = (until: number): Detail => ({
    ...inSync,
    sync: {
      ...inSync.sync,
      throttled: { since: now - 5000, until, batches: 3, revisions: 240, heldMs: 4200 },
    },
  });
  const reasons = whyNotInSync(held(now + 800), now);
  assert.equal(reasons.length, 1);
  assert.match(
    reasons[0] as string,
    /holding back its writes: .*per-device write limit \(240 changes held since/,
  );
  assert.match(reasons[0] as string, /nothing is lost/);
  assert.deepEqual(whyNotInSync(held(now - 1), now), [], 'over: no reason');
});
