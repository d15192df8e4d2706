/**
 * The event stream hears of every settings change once, whoever made it: the admin
 * API (the hub's own operation) or another process writing the hub's registry (the
 * CLI), which the running hub finds within a second.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHub } from '../../src/hub/factory.js';
import type { Hub, HubEvent } from '../../src/hub/hub.js';
import { registryAt } from '../fixtures/registry.js';
import { FakeClock, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-settings-events-');

describe('settings-changed events', () => {
  const clock = new FakeClock();
  const data = join(dir.path, 'hub');
  let hub: Hub;
  const events: HubEvent[] = [];
  const changes = () => events.filter((e) => e.type === 'settings-changed');

  before(async () => {
    hub = createHub(
      { discovery: false, dataDir: data, host: '127.0.0.1', port: 0, synchronous: 'off' },
      { clock },
    );
    await hub.start();
    hub.on('event', (e) => events.push(e));
  });
  after(async () => {
    await hub.stop();
    dir.remove();
  });

  it('the approval mode changed by another process: one event within a second, none again', async () => {
    const cli = registryAt(join(data, 'hub.db'));
    await cli.start();
    try {
      await cli.setRequireApproval(true);
    } finally {
      await cli.stop();
    }
    await clock.tick(1000);
    assert.deepEqual(
      changes().map((e) => e.type === 'settings-changed' && e.version),
      [hub.replica.getPolicy().version],
    );
    await clock.tick(3000);
    assert.equal(changes().length, 1, 'said once');
  });

  it('changed through the hub: one event at once, and the watch does not say it again', async () => {
    events.length = 0;
    await hub.updateSettings({ requireApproval: false });
    assert.equal(changes().length, 1);
    await clock.tick(3000);
    assert.equal(changes().length, 1, 'not twice');

    const version = hub.replica.getPolicy().version;
    await hub.updateSettings({ collections: { notes: { conflict: 'manual' } }, requireApproval: true });
    await clock.tick(3000);
    assert.deepEqual(
      changes().map((e) => e.type === 'settings-changed' && e.version),
      [version, version + 1],
      'a policy change with the approval mode: one event, with the new version',
    );
  });
});
