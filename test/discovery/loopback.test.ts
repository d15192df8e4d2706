/**
 * The multicast and DNS-SD components in this process, over IPv4 on the loopback
 * interface only (a fresh port per test): nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import makeMdns from 'multicast-dns';
import { DnsSdBrowser, DnsSdPublisher } from '../../src/discovery/dns-sd.js';
import { MDNS_GROUP_V4 } from '../../src/discovery/mdns.js';
import { findHub, HubAnnouncer, HubBrowser } from '../../src/discovery/multicast.js';
import { DiscoverySet } from '../../src/discovery/set.js';
import type { DiscoveredHub } from '../../src/discovery/types.js';
import { encodeDiscoveryMessage } from '../../src/discovery/wire.js';
import type { Startable } from '../../src/lifecycle.js';
import { eventually, FakeClock } from '../helpers.js';
import { deviceId, freeUdpPort, loopbackOnly, sendUdp } from './helpers.js';

const running: Startable[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.stop()));
});

function track<T extends Startable>(component: T): T {
  running.push(component);
  return component;
}

function nextFound(browser: HubBrowser | DnsSdBrowser, timeoutMs = 5_000): Promise<DiscoveredHub> {
  return Promise.race([
    once(browser, 'found').then(([hub]) => hub as DiscoveredHub),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no 'found' within ${timeoutMs} ms`)), timeoutMs).unref(),
    ),
  ]);
}

describe('multicast discovery on loopback', () => {
  it('a browser finds a running hub through its start-up query, within a round trip', async () => {
    const port = await freeUdpPort();
    const id = deviceId();
    const announcer = track(
      new HubAnnouncer({
        ...loopbackOnly(port),
        deviceId: id,
        name: 'Office hub',
        syncPort: 17800,
        announceIntervalMs: 60_000,
      }),
    );
    await announcer.start();
    const browser = track(new HubBrowser(loopbackOnly(port)));
    const found = nextFound(browser);
    const began = performance.now();
    await browser.start();
    const hub = await found;
    console.log(`found over loopback in ${Math.round(performance.now() - began)} ms`);
    assert.deepEqual(
      { ...hub, lastSeen: 0 },
      {
        deviceId: id,
        name: 'Office hub',
        port: 17800,
        versions: [1],
        address: '127.0.0.1',
        family: 4,
        via: 'multicast',
        interface: 'lo',
        lastSeen: 0,
      },
    );
    assert.equal(browser.list().length, 1);
    const [diag] = announcer.diagnostics();
    assert.ok(diag && diag.counters.queries >= 1, 'the announcer counted the query');
    assert.deepEqual(
      diag.families[0]?.interfaces.map((i) => [i.name, i.joined]),
      [['lo', ['239.255.77.2']]],
    );
    await browser.stop();
    await announcer.stop();
  });

  it('ignores and counts malformed, oversized and foreign datagrams, and keeps working', async () => {
    const port = await freeUdpPort();
    const browser = track(new HubBrowser({ ...loopbackOnly(port), queryOnStart: false }));
    await browser.start();
    const id = deviceId();
    await sendUdp(
      port,
      'not json at all',
      '[1,2,3]',
      '{"proto":"trosyn-sync","v":1,"type":"announce","deviceId":"xyz","name":"x","port":1,"versions":[1]}',
      JSON.stringify({
        proto: 'trosyn-sync',
        v: 1,
        type: 'announce',
        deviceId: id,
        name: 'x',
        port: 70000,
        versions: [1],
      }),
      JSON.stringify({
        proto: 'trosyn-sync',
        v: 1,
        type: 'announce',
        deviceId: id,
        name: 'a\u001b[2Jb',
        port: 1,
        versions: [1],
      }),
      Buffer.alloc(2_000, 0x7b),
      '{"proto":"something-else","v":1,"type":"announce"}',
      '{"proto":"trosyn-sync","v":1,"type":"teleport"}',
    );
    const found = nextFound(browser);
    await sendUdp(
      port,
      encodeDiscoveryMessage({ type: 'announce', deviceId: id, name: 'Real', port: 17700, versions: [1] }),
    );
    assert.equal((await found).name, 'Real');
    const counters = browser.diagnostics()[0]?.counters;
    assert.ok(counters);
    assert.equal(counters.received, 9);
    assert.equal(counters.malformed, 5);
    assert.equal(counters.oversized, 1);
    assert.equal(counters.ignored, 2);
    assert.equal(browser.list().length, 1, 'only the valid announcement is listed');
    await browser.stop();
  });

  it("expires a hub not heard from and emits 'lost'; a goodbye removes it at once", async () => {
    const port = await freeUdpPort();
    const clock = new FakeClock();
    const browser = track(
      new HubBrowser({
        ...loopbackOnly(port),
        queryOnStart: false,
        clock,
        expiryMs: 1_000,
        sweepIntervalMs: 10,
      }),
    );
    await browser.start();
    const lost: DiscoveredHub[] = [];
    browser.on('lost', (hub) => lost.push(hub));
    const a = deviceId();
    const found = nextFound(browser);
    await sendUdp(
      port,
      encodeDiscoveryMessage({ type: 'announce', deviceId: a, name: 'A', port: 17700, versions: [1] }),
    );
    await found;
    clock.advance(900);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lost.length, 0, 'not expired before expiryMs');
    clock.advance(200);
    await eventually(() => lost.length === 1, 5_000, "'lost' after expiry");
    assert.equal(lost[0]?.deviceId, a);
    assert.deepEqual(browser.list(), []);

    const again = nextFound(browser);
    await sendUdp(
      port,
      encodeDiscoveryMessage({ type: 'announce', deviceId: a, name: 'A', port: 17700, versions: [1] }),
    );
    await again;
    await sendUdp(port, encodeDiscoveryMessage({ type: 'bye', deviceId: a, port: 17700 }));
    await eventually(() => lost.length === 2, 5_000, "'lost' after bye");
    await browser.stop();
  });

  it('the announcer says goodbye on stop', async () => {
    const port = await freeUdpPort();
    const announcer = track(new HubAnnouncer({ ...loopbackOnly(port), deviceId: deviceId(), name: 'Hub' }));
    const browser = track(new HubBrowser(loopbackOnly(port)));
    await announcer.start();
    const found = nextFound(browser);
    await browser.start();
    await found;
    const lost = once(browser, 'lost');
    await announcer.stop();
    await lost;
    assert.deepEqual(browser.list(), []);
    await browser.stop();
  });

  it('start and stop are idempotent, stop before start is fine, and stop releases the port', async () => {
    const port = await freeUdpPort();
    const browser = new HubBrowser(loopbackOnly(port));
    await browser.stop();
    await Promise.all([browser.start(), browser.start()]);
    assert.equal(browser.isStarted(), true);
    await browser.stop();
    await browser.stop();
    assert.equal(browser.isStarted(), false);
    browser.query(); // ignored while stopped
    // A socket without SO_REUSEADDR can bind only when nobody holds the port any more.
    const exclusive = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      exclusive.once('error', reject);
      exclusive.bind(port, resolve);
    });
    await new Promise<void>((resolve) => exclusive.close(() => resolve()));
    await browser.start();
    assert.equal(browser.diagnostics()[0]?.families[0]?.bound, true, 'starts again on the same port');
    await browser.stop();
  });

  it('two browsers share the port (SO_REUSEADDR) and both find the hub', async () => {
    const port = await freeUdpPort();
    const announcer = track(new HubAnnouncer({ ...loopbackOnly(port), deviceId: deviceId(), name: 'Hub' }));
    await announcer.start();
    const one = track(new HubBrowser(loopbackOnly(port)));
    const two = track(new HubBrowser(loopbackOnly(port)));
    const found = [nextFound(one), nextFound(two)];
    await one.start();
    await two.start();
    await Promise.all(found);
    await Promise.all([one.stop(), two.stop(), announcer.stop()]);
  });

  it('refuses to start with DISCOVERY_BIND_FAILED when the port is held exclusively', async () => {
    const port = await freeUdpPort();
    const holder: Socket = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve) => holder.bind(port, resolve));
    try {
      const browser = new HubBrowser(loopbackOnly(port));
      await assert.rejects(browser.start(), { code: 'DISCOVERY_BIND_FAILED' });
      assert.equal(browser.isStarted(), false);
      const [diag] = browser.diagnostics();
      assert.match(diag?.families[0]?.bindError ?? '', /EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it('answers at most maxAnswersPerSecond queries and bounds the list at maxEntries', async () => {
    const port = await freeUdpPort();
    const announcer = track(
      new HubAnnouncer({
        ...loopbackOnly(port),
        deviceId: deviceId(),
        name: 'Hub',
        maxAnswersPerSecond: 2,
        clock: new FakeClock(), // time stands still: all five queries fall in one second
      }),
    );
    await announcer.start();
    const asker = createSocket('udp4');
    let answers = 0;
    asker.on('message', () => answers++);
    await new Promise<void>((resolve) => asker.bind(0, '127.0.0.1', resolve));
    try {
      for (let i = 0; i < 5; i++)
        await new Promise<void>((resolve) =>
          asker.send(encodeDiscoveryMessage({ type: 'query' }), port, '127.0.0.1', () => resolve()),
        );
      await eventually(() => answers >= 2, 5_000, 'two answers');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(answers, 2);
      assert.equal(announcer.diagnostics()[0]?.counters.answersSuppressed, 3);
    } finally {
      asker.close();
    }
    await announcer.stop();

    const browser = track(new HubBrowser({ ...loopbackOnly(port), queryOnStart: false, maxEntries: 2 }));
    await browser.start();
    for (let i = 0; i < 3; i++)
      await sendUdp(
        port,
        encodeDiscoveryMessage({
          type: 'announce',
          deviceId: deviceId(),
          name: `H${i}`,
          port: 1,
          versions: [1],
        }),
      );
    await eventually(() => browser.diagnostics()[0]?.counters.received === 3, 5_000, 'three datagrams');
    assert.equal(browser.list().length, 2);
    assert.equal(browser.diagnostics()[0]?.counters.entriesDropped, 1);
    await browser.stop();
  });

  it('rejects invalid options with INVALID_OPTION', () => {
    assert.throws(() => new HubAnnouncer({ deviceId: 'nope' as never, name: 'x' }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new HubAnnouncer({ deviceId: deviceId(), name: '' }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ families: [] }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ discoveryPort: 0 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ expiryMs: -1 }), { code: 'INVALID_OPTION' });
  });

  it('findHub returns the hub with the wanted device ID, or undefined when none answers', async () => {
    const port = await freeUdpPort();
    const id = deviceId();
    const announcer = track(new HubAnnouncer({ ...loopbackOnly(port), deviceId: id, name: 'Hub' }));
    await announcer.start();
    const hub = await findHub({ ...loopbackOnly(port), deviceId: id, timeoutMs: 3_000 });
    assert.equal(hub?.deviceId, id);
    const other = await findHub({
      ...loopbackOnly(port),
      deviceId: deviceId(),
      timeoutMs: 300,
      requeryIntervalMs: 100,
    });
    assert.equal(other, undefined, 'a hub with another ID does not answer a query for a specific ID');
    await announcer.stop();
    const none = await findHub({ ...loopbackOnly(port), timeoutMs: 300 });
    assert.equal(none, undefined);
  });
});

describe('DiscoverySet', () => {
  it('runs several sources as one: events pass through, lists and diagnostics add up', async () => {
    const port = await freeUdpPort();
    const mdnsPort = await freeUdpPort();
    const id = deviceId();
    const announcer = track(new HubAnnouncer({ ...loopbackOnly(port), deviceId: id, name: 'Hub' }));
    const publisher = track(
      new DnsSdPublisher({ mdnsPort, families: [4], interfaces: ['lo'], deviceId: id, name: 'Hub' }),
    );
    await announcer.start();
    await publisher.start();
    const set = track(
      new DiscoverySet([
        new HubBrowser(loopbackOnly(port)),
        new DnsSdBrowser({ mdnsPort, families: [4], interfaces: ['lo'] }),
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
  });
});

/** A DNS query for `name` PTR, as a legacy resolver (dig) sends it. */
function legacyQuery(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 12, 0, 1])]);
}

describe('DNS-SD on loopback', () => {
  it('asks for SRV and TXT when a responder sends only the PTR', async () => {
    const mdnsPort = await freeUdpPort();
    const id = deviceId();
    const instance = 'Other hub._trosyn-sync._tcp.local';
    // A terse responder, on loopback only, that answers the browse with the PTR alone.
    const responder = makeMdns({
      port: mdnsPort,
      ip: MDNS_GROUP_V4,
      interface: '127.0.0.1',
      bind: '0.0.0.0',
    });
    const asked: string[] = [];
    responder.on('query', (query) => {
      for (const q of query.questions) {
        asked.push(`${q.name} ${q.type}`);
        if (q.name === '_trosyn-sync._tcp.local')
          responder.respond({ answers: [{ name: q.name, type: 'PTR', ttl: 120, data: instance }] });
        else if (q.name === instance && q.type === 'TXT')
          responder.respond({
            answers: [
              { name: instance, type: 'SRV', ttl: 120, data: { port: 17777, target: 'other.local' } },
              { name: instance, type: 'TXT', ttl: 120, data: [`deviceId=${id}`, 'versions=1', 'name=Other'] },
            ],
          });
      }
    });
    await once(responder, 'ready');
    const browser = track(new DnsSdBrowser({ mdnsPort, families: [4], interfaces: ['lo'] }));
    try {
      const found = nextFound(browser);
      await browser.start();
      const hub = await found;
      assert.deepEqual([hub.deviceId, hub.port, hub.name], [id, 17777, 'Other']);
      assert.ok(asked.includes(`${instance} SRV`) && asked.includes(`${instance} TXT`));
    } finally {
      await browser.stop();
      responder.destroy();
    }
  });

  it('the browser finds a published hub; a legacy unicast query gets a unicast answer with its ID', async () => {
    const mdnsPort = await freeUdpPort();
    const id = deviceId();
    const common = { mdnsPort, families: [4] as [4], interfaces: ['lo'] };
    const publisher = track(
      new DnsSdPublisher({ ...common, deviceId: id, name: 'Office hub', syncPort: 17900 }),
    );
    await publisher.start();
    const browser = track(new DnsSdBrowser(common));
    const found = nextFound(browser);
    await browser.start();
    const hub = await found;
    assert.equal(hub.deviceId, id);
    assert.equal(hub.port, 17900);
    assert.equal(hub.name, 'Office hub');
    assert.equal(hub.via, 'dns-sd');
    assert.equal(hub.address, '127.0.0.1');

    // What dig would do without a connected socket: ask the group from a random port.
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      socket.setMulticastInterface('127.0.0.1');
      const answer = once(socket, 'message');
      socket.send(legacyQuery(0x4242, '_trosyn-sync._tcp.local'), mdnsPort, MDNS_GROUP_V4);
      const [reply] = (await Promise.race([
        answer,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer')), 3_000).unref()),
      ])) as [Buffer];
      assert.equal(reply.readUInt16BE(0), 0x4242, 'the ID is echoed');
      assert.equal(reply.readUInt16BE(4), 1, 'the question is echoed');
      assert.ok(reply.readUInt16BE(6) >= 1, 'at least one answer');
      assert.ok(reply.includes(Buffer.from(`deviceId=${id}`)), 'the TXT record carries the device ID');
    } finally {
      socket.close();
    }
    const lost = once(browser, 'lost');
    await publisher.stop();
    await lost; // the TTL-0 goodbye
    await browser.stop();
  });
});
