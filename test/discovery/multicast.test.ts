/**
 * Multicast discovery in this process, over IPv4 on the loopback interface only (a
 * fresh port per test): nothing leaves the machine. What every browser does (expiry,
 * goodbyes, the entry cap) is in the browser suite; this is what only multicast does.
 * Intervals and time limits run on a FakeClock; only datagrams take real time.
 */
import { PROTOCOL_VERSIONS } from '../../src/protocol/constants.js';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import {
  findHub,
  HubAnnouncer,
  type HubAnnouncerOptions,
  HubBrowser,
} from '../../src/discovery/multicast.js';
import { encodeDiscoveryMessage } from '../../src/discovery/wire.js';
import { eventually, FakeClock } from '../helpers.js';
import {
  deviceId,
  freeUdpPort,
  loopbackOnly,
  nextFound,
  runClockUntil,
  sendUdp,
  stopAfterTests,
  timeout,
} from './helpers.js';

const track = stopAfterTests();

/** A hub announcing on loopback on `port`; its clock stands still unless the test gives one. */
function loopbackHub(port: number, over: Partial<HubAnnouncerOptions> = {}): HubAnnouncer {
  return new HubAnnouncer({
    ...loopbackOnly(port),
    deviceId: deviceId(),
    name: 'Hub',
    clock: new FakeClock(),
    ...over,
  });
}

describe('multicast discovery on loopback', () => {
  it('a browser finds a running hub through the answer to its start-up query', { timeout }, async () => {
    const port = await freeUdpPort();
    const id = deviceId();
    // The announcer's clock stands still: it announces once, at its start, before the
    // browser listens, so only an answer to the query can tell the browser about it.
    const announcer = track(loopbackHub(port, { deviceId: id, name: 'Office hub', syncPort: 17800 }));
    await announcer.start();
    const browser = track(new HubBrowser(loopbackOnly(port)));
    const found = nextFound(browser);
    await browser.start();
    const hub = await found;
    assert.deepEqual(
      { ...hub, lastSeen: 0 },
      {
        deviceId: id,
        name: 'Office hub',
        port: 17800,
        versions: [...PROTOCOL_VERSIONS],
        address: '127.0.0.1',
        family: 4,
        via: 'multicast',
        interface: 'lo',
        lastSeen: 0,
      },
    );
    assert.equal(browser.list().length, 1);
    const [diag] = announcer.diagnostics();
    assert.equal(diag?.counters.queries, 1, 'the announcer answered the query');
    assert.deepEqual(
      diag.families[0]?.interfaces.map((i) => [i.name, i.joined]),
      [['lo', ['239.255.77.2']]],
    );
    await browser.stop();
    await announcer.stop();
  });

  it(
    'announces at start, then once every announceIntervalMs (give or take 10%) as its clock moves',
    { timeout },
    async () => {
      const port = await freeUdpPort();
      const clock = new FakeClock();
      const browser = track(new HubBrowser({ ...loopbackOnly(port), queryOnStart: false }));
      await browser.start();
      const heard = (): number => browser.diagnostics()[0]?.counters.received ?? 0;
      const announcer = track(loopbackHub(port, { announceIntervalMs: 30_000, clock }));
      await announcer.start();
      await eventually(() => heard() === 1, 5_000, 'the announcement at start');
      assert.equal(clock.pending(), 1, 'the next announcement is scheduled on the clock');
      for (let round = 2; round <= 4; round++) {
        clock.advance(26_999);
        assert.equal(clock.pending(), 1, 'not before 90% of the interval');
        clock.advance(6_002);
        assert.equal(clock.pending(), 0, 'due by 110% of the interval');
        await eventually(() => heard() === round, 5_000, `announcement ${round}`);
        // The next one is scheduled once this one has left.
        await eventually(() => clock.pending() === 1, 5_000, `announcement ${round + 1} scheduled`);
      }
      await announcer.stop();
      assert.equal(clock.pending(), 0, 'stop leaves no timer');
      await browser.stop();
    },
  );

  it(
    'ignores and counts malformed, oversized and foreign datagrams, and keeps working',
    { timeout },
    async () => {
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
    },
  );

  it('the announcer says goodbye on stop', { timeout }, async () => {
    const port = await freeUdpPort();
    const announcer = track(loopbackHub(port));
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

  it('stop releases the port, and the browser starts again on it', { timeout }, async () => {
    const port = await freeUdpPort();
    const browser = new HubBrowser(loopbackOnly(port));
    await browser.start();
    await browser.stop();
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

  it('two browsers share the port (SO_REUSEADDR) and both find the hub', { timeout }, async () => {
    const port = await freeUdpPort();
    const announcer = track(loopbackHub(port));
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
      const announcer = loopbackHub(port);
      await assert.rejects(announcer.start(), { code: 'DISCOVERY_BIND_FAILED' });
      assert.equal(announcer.isStarted(), false);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it('answers at most maxAnswersPerSecond queries in any second of its clock', { timeout }, async () => {
    const port = await freeUdpPort();
    const clock = new FakeClock();
    const announcer = track(loopbackHub(port, { maxAnswersPerSecond: 2, clock }));
    await announcer.start();
    const counters = () => announcer.diagnostics()[0]?.counters;
    const askers = [createSocket('udp4'), createSocket('udp4')] as const;
    const answers = [0, 0];
    askers.forEach((s, i) => s.on('message', () => answers[i]!++));
    await Promise.all(askers.map((s) => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))));
    const ask = (s: Socket) =>
      new Promise<void>((resolve) =>
        s.send(encodeDiscoveryMessage({ type: 'query' }), port, '127.0.0.1', () => resolve()),
      );
    try {
      // Five queries while the clock stands still: all in one second.
      for (let i = 0; i < 5; i++) await ask(askers[0]);
      await eventually(() => counters()?.queries === 5, 5_000, 'five queries read');
      assert.equal(counters()?.answersSuppressed, 3);
      // The next second has a fresh budget. Its answer leaves the same socket after the
      // first two, so once it has arrived, any answer to the first asker has too.
      clock.advance(1_000);
      await ask(askers[1]);
      await eventually(() => answers[1] === 1, 5_000, 'the answer in the next second');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(answers, [2, 1]);
      assert.equal(counters()?.answersSuppressed, 3);
    } finally {
      for (const s of askers) s.close();
    }
    await announcer.stop();
  });

  it('rejects invalid options with INVALID_OPTION', () => {
    assert.throws(() => new HubAnnouncer({ deviceId: 'nope' as never, name: 'x' }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new HubAnnouncer({ deviceId: deviceId(), name: '' }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubAnnouncer({ deviceId: deviceId(), name: 'x', announceIntervalMs: 99 }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new HubBrowser({ families: [] }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ discoveryPort: 0 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ expiryMs: -1 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ ttl: 256 }), { code: 'INVALID_OPTION' });
    assert.throws(() => new HubBrowser({ interfaces: 'eth0' as never }), { code: 'INVALID_OPTION' });
  });

  it(
    'findHub returns the hub with the wanted device ID, or undefined when none answers in time',
    { timeout },
    async () => {
      const port = await freeUdpPort();
      const id = deviceId();
      const clock = new FakeClock();
      const announcer = track(loopbackHub(port, { deviceId: id, clock }));
      await announcer.start();
      // The clock stands still, so the time limit cannot end the look before the answer arrives.
      const hub = await findHub({ ...loopbackOnly(port), deviceId: id, timeoutMs: 3_000, clock });
      assert.equal(hub?.deviceId, id);

      const counters = () => announcer.diagnostics()[0]?.counters;
      const before = { ...counters() };
      const other = findHub({
        ...loopbackOnly(port),
        deviceId: deviceId(),
        timeoutMs: 300,
        requeryIntervalMs: 100,
        clock,
      });
      await eventually(() => (counters()?.ignored ?? 0) > (before.ignored ?? 0), 5_000, 'the query read');
      assert.equal(counters()?.queries, before.queries, 'a query for another hub is not answered');
      assert.equal(await runClockUntil(clock, other, 100), undefined);

      await announcer.stop();
      const none = findHub({ ...loopbackOnly(port), timeoutMs: 300, clock });
      assert.equal(await runClockUntil(clock, none, 100), undefined);
    },
  );
});
