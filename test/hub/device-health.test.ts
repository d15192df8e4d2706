/** A device's sync details survive a restart of the hub through their saved form. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DeviceHealth } from '../../src/hub/device-health.js';
import type { DeviceId, RejectedRevision } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';

const refusal = (n: number): RejectedRevision => ({
  rev: `r${n}`,
  collection: 'payroll',
  id: `p${n}`,
  code: 'SCOPE_WRITE_DENIED',
  message: 'devices in group desks may not write collection payroll',
});

it('what a restart gets back is what was there, and what happened since the start wins', () => {
  const a: DeviceId = randomDeviceId();
  const b: DeviceId = randomDeviceId();
  const health = new DeviceHealth();
  let changes = 0;
  health.onChange = () => changes++;
  health.failed(a, 10, 'HEARTBEAT_TIMEOUT', 'no answer for 45 s');
  health.refused(a, 'hub', 11, [refusal(1), refusal(2)]);
  health.ended(b, 12, { applied: 3 } as never);
  assert.equal(changes, 3, 'every change is announced for saving');

  const saved = JSON.parse(JSON.stringify(health)) as unknown;
  const again = new DeviceHealth();
  again.failed(b, 20, 'CONNECTION_RESET', 'reset by peer');
  again.restore(saved);
  assert.deepEqual(again.get(a), health.get(a));
  assert.equal(again.get(a).refusedByHub?.total, 2);
  assert.equal(again.get(b).lastError?.code, 'CONNECTION_RESET', 'newer than the saved entry: kept');
  again.restore('garbage');
  again.restore(null);
  assert.equal(again.get(a).lastError?.code, 'HEARTBEAT_TIMEOUT');
});

it('two hub processes saving into one setting: of each part of an entry, the newer stays', () => {
  const a: DeviceId = randomDeviceId();
  const b: DeviceId = randomDeviceId();
  const one = new DeviceHealth();
  const two = new DeviceHealth();
  one.failed(a, 10, 'HEARTBEAT_TIMEOUT', 'no answer for 45 s');
  one.ended(a, 30, { applied: 1 } as never);
  two.failed(a, 20, 'CONNECTION_RESET', 'reset by peer');
  two.ended(a, 15, { applied: 2 } as never);
  two.refused(b, 'hub', 5, [refusal(1)]);
  // One saves; the other reads it before saving its own (what ChildSessions does).
  two.restore(JSON.parse(JSON.stringify(one)));
  const merged = two.get(a);
  assert.equal(merged.lastError?.code, 'CONNECTION_RESET', 'its own, newer');
  assert.equal(merged.lastSession?.endedAt, 30, "the other's, newer");
  assert.equal(two.get(b).refusedByHub?.total, 1, 'a device only it saw stays');
  one.restore(JSON.parse(JSON.stringify(two)));
  assert.deepEqual(one.get(a), two.get(a), 'both end with the same');
});
