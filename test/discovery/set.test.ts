/** Several discovery methods run as one, over loopback. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { DnsSdBrowser, DnsSdPublisher } from '../../src/discovery/dns-sd.js';
import { HubAnnouncer, HubBrowser } from '../../src/discovery/multicast.js';
import { DiscoverySet } from '../../src/discovery/set.js';
import { eventually, FakeClock } from '../helpers.js';
import { deviceId, freeUdpPort, loopbackOnly, stopAfterTests, timeout } from './helpers.js';

const track = stopAfterTests();

describe('DiscoverySet', () => {
  it(
    'runs several sources as one: events pass through, lists and diagnostics add up',
    { timeout },
    async () => {
      const port = await freeUdpPort();
      const mdnsPort = await freeUdpPort();
      const id = deviceId();
      // One clock that never moves: the hubs are found by the answers to the start-up queries.
      const clock = new FakeClock();
      const announcer = track(new HubAnnouncer({ ...loopbackOnly(port), deviceId: id, name: 'Hub', clock }));
      const publisher = track(
        new DnsSdPublisher({ mdnsPort, families: [4], interfaces: ['lo'], deviceId: id, name: 'Hub', clock }),
      );
      await announcer.start();
      await publisher.start();
      const set = track(
        new DiscoverySet([
          new HubBrowser({ ...loopbackOnly(port), clock }),
          new DnsSdBrowser({ mdnsPort, families: [4], interfaces: ['lo'], clock }),
        ]),
      );
      const vias = new Set<string>();
      set.on('found', (hub) => vias.add(hub.via));
      await set.stop();
      await set.start();
      await set.start();
      await eventually(() => vias.size === 2, 5_000, 'found by both sources');
      assert.deepEqual(
        set
          .list()
          .map((h) => h.via)
          .sort(),
        ['dns-sd', 'multicast'],
      );
      assert.deepEqual(
        set.diagnostics().map((d) => d.via),
        ['multicast', 'dns-sd'],
      );
      await set.stop();
      assert.equal(set.isStarted(), false);
      assert.deepEqual(set.list(), []);
      await Promise.all([announcer.stop(), publisher.stop()]);
    },
  );

  it('a source that cannot start leaves none started and no listener behind', async () => {
    const held = await freeUdpPort();
    const holder = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve) => holder.bind(held, resolve));
    try {
      const first = new HubBrowser({ ...loopbackOnly(await freeUdpPort()), clock: new FakeClock() });
      const broken = new HubBrowser({ ...loopbackOnly(held), clock: new FakeClock() });
      const set = new DiscoverySet([first, broken]);
      set.on('found', () => undefined);
      await assert.rejects(set.start(), { code: 'DISCOVERY_BIND_FAILED' });
      assert.equal(set.isStarted(), false);
      assert.equal(first.isStarted(), false, 'the source started first is stopped again');
      assert.equal(first.listenerCount('found') + first.listenerCount('lost'), 0);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
