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
