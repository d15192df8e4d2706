/**
 * DNS-SD in this process, over IPv4 on the loopback interface only, on a fresh port
 * per test instead of 5353. What every browser does is in the browser suite; this is
 * what only DNS-SD does. Announcement and query intervals run on a FakeClock; only
 * datagrams take real time.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import makeMdns from 'multicast-dns';
import { DnsSdBrowser, DnsSdPublisher } from '../../src/discovery/dns-sd.js';
import { DNS_SD_SERVICE, MDNS_GROUP_V4 } from '../../src/discovery/mdns.js';
import type { DiscoveredHub } from '../../src/discovery/types.js';
import { eventually, FakeClock } from '../helpers.js';
import { deviceId, freeUdpPort, nextFound, stopAfterTests, timeout } from './helpers.js';

const track = stopAfterTests();

/** An mDNS responder or listener of its own, on the test's port, on loopback only. */
async function loopbackMdns(port: number): Promise<makeMdns.MulticastDNS> {
  const mdns = makeMdns({ port, ip: MDNS_GROUP_V4, interface: '127.0.0.1', bind: '0.0.0.0' });
  await once(mdns, 'ready');
  return mdns;
}

/** A DNS query for `name` PTR, as a legacy resolver (dig) sends it. */
function legacyQuery(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 12, 0, 1])]);
}

describe('DNS-SD on loopback', () => {
  it('asks for SRV and TXT when a responder sends only the PTR', { timeout }, async () => {
    const mdnsPort = await freeUdpPort();
    const id = deviceId();
    const instance = 'Other hub._trosyn-sync._tcp.local';
    // A terse responder that answers the browse with the PTR alone.
    const responder = await loopbackMdns(mdnsPort);
    const asked: string[] = [];
    responder.on('query', (query) => {
      for (const q of query.questions) {
        asked.push(`${q.name} ${q.type}`);
        if (q.name === DNS_SD_SERVICE)
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
    const browser = track(
      new DnsSdBrowser({ mdnsPort, families: [4], interfaces: ['lo'], clock: new FakeClock() }),
    );
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

  it(
    'the browser finds a published hub; a legacy unicast query gets a unicast answer with its ID',
    { timeout },
    async () => {
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
        const [reply] = (await answer) as [Buffer];
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
    },
  );

  it(
    'the publisher announces twice at start, one second apart on its clock, and withdraws with TTL 0',
    { timeout },
    async () => {
      const mdnsPort = await freeUdpPort();
      const clock = new FakeClock();
      const listener = await loopbackMdns(mdnsPort);
      // The TTL of our service's PTR in each unsolicited response heard on the group.
      const ttls: number[] = [];
      listener.on('response', (packet) => {
        const ptr = packet.answers.find((a) => a.type === 'PTR' && a.name === DNS_SD_SERVICE);
        if (ptr) ttls.push((ptr as { ttl?: number }).ttl ?? -1);
      });
      const publisher = track(
        new DnsSdPublisher({
          mdnsPort,
          families: [4],
          interfaces: ['lo'],
          deviceId: deviceId(),
          name: 'Hub',
          clock,
        }),
      );
      try {
        await publisher.start();
        await eventually(() => ttls.length === 1, 5_000, 'the first announcement');
        clock.advance(999);
        assert.equal(clock.pending(), 1, 'not before a second has passed');
        clock.advance(1);
        assert.equal(clock.pending(), 0);
        await eventually(() => ttls.length === 2, 5_000, 'the second announcement');
        assert.equal(clock.pending(), 0, 'no third announcement is scheduled');
        await publisher.stop();
        await eventually(() => ttls.length === 3, 5_000, 'the goodbye');
        assert.deepEqual(ttls, [120, 120, 0]);
      } finally {
        listener.destroy();
      }
    },
  );

  it(
    'the browser asks again every queryIntervalMs, keeps a hub that answers and drops one gone quiet',
    { timeout },
    async () => {
      const mdnsPort = await freeUdpPort();
      const clock = new FakeClock();
      const id = deviceId();
      const instance = `Quiet hub.${DNS_SD_SERVICE}`;
      const responder = await loopbackMdns(mdnsPort);
      let answering = true;
      responder.on('query', (query) => {
        if (!answering || !query.questions.some((q) => q.name === DNS_SD_SERVICE)) return;
        responder.respond({
          answers: [
            { name: DNS_SD_SERVICE, type: 'PTR', ttl: 120, data: instance },
            { name: instance, type: 'SRV', ttl: 120, data: { port: 17700, target: 'quiet.local' } },
            {
              name: instance,
              type: 'TXT',
              ttl: 120,
              data: [`deviceId=${id}`, 'versions=1', 'name=Quiet hub'],
            },
          ],
        });
      });
      const browser = track(
        new DnsSdBrowser({
          mdnsPort,
          families: [4],
          interfaces: ['lo'],
          clock,
          queryIntervalMs: 30_000,
          expiryMs: 90_000,
        }),
      );
      const lost: DiscoveredHub[] = [];
      browser.on('lost', (hub) => lost.push(hub));
      try {
        const found = nextFound(browser);
        await browser.start();
        await found;
        const queries = () => browser.diagnostics()[0]?.counters.queries ?? 0;
        assert.equal(queries(), 1, 'one query at start');
        // Four intervals: 120 s on the clock, longer than the expiry, answered each time.
        for (let round = 2; round <= 5; round++) {
          clock.advance(29_999);
          assert.equal(queries(), round - 1, 'not before the interval');
          clock.advance(1);
          assert.equal(queries(), round);
          const askedAt = clock.now();
          await eventually(
            () => browser.list()[0]?.lastSeen === askedAt,
            5_000,
            `the answer to query ${round}`,
          );
        }
        assert.equal(lost.length, 0, 'a hub that answers is kept');
        answering = false;
        clock.advance(90_000);
        assert.equal(lost.length, 0, 'kept until the expiry time has passed');
        clock.advance(5_000);
        assert.deepEqual(
          lost.map((h) => h.deviceId),
          [id],
        );
        assert.deepEqual(browser.list(), []);
      } finally {
        await browser.stop();
        responder.destroy();
      }
    },
  );

  it('rejects invalid options with INVALID_OPTION', () => {
    assert.throws(() => new DnsSdPublisher({ deviceId: 'nope' as never, name: 'x' }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new DnsSdPublisher({ deviceId: deviceId(), name: 'x', hostName: 'a.b' }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new DnsSdPublisher({ deviceId: deviceId(), name: 'x', recordTtlSeconds: 0 }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new DnsSdBrowser({ mdnsPort: 70_000 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new DnsSdBrowser({ queryIntervalMs: 0 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new DnsSdBrowser({ families: [5 as 4] }), { code: 'INVALID_OPTION' });
  });
});
