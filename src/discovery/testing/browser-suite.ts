/**
 * The acceptance suite every discovery browser must pass (`HubBrowser`,
 * `DnsSdBrowser`). A method's test file is only its harness: how to make a browser on
 * a given clock, and how to make it hear a hub arrive and leave.
 *
 *   runDiscoveryBrowserSuite('multicast', { via, clock, create, cleanup });
 *
 * Datagrams are real (loopback); time is the harness's stepped clock, so expiry is
 * exact and no test waits for it. A datagram still takes real time to arrive: the
 * suite waits for the event it causes, and each test has the runner's time limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Clock } from '../../lifecycle.js';
import type { DeviceId } from '../../store/types.js';
import type { BrowserOptions } from '../browser.js';
import type { DiscoveredHub, Discovery, DiscoveryEvents, DiscoveryVia } from '../types.js';

/** A clock that moves only when told to, firing the timers that fall due (test/helpers.ts's FakeClock). */
export interface SteppedClock extends Clock {
  advance(ms: number): void;
  /** Timers waiting to fire. */
  pending(): number;
}

/** What a hub says about itself. */
export interface HubClaim {
  deviceId: DeviceId;
  name: string;
  port: number;
  versions: number[];
}

/** A browser of the method under test, and a hub of that method it can hear. */
export interface BrowserUnderTest {
  browser: Discovery;
  /**
   * Sends what a hub of this method sends about itself (an announcement, an answer)
   * to the browser, from `from` (default 127.0.0.1). Datagrams from one address leave
   * one socket in order, so they arrive in the order they were sent.
   */
  hear(hub: HubClaim, from?: string): Promise<void>;
  /** Sends the hub's goodbye, from `from` (default 127.0.0.1). */
  hearGoodbye(hub: HubClaim, from?: string): Promise<void>;
}

export interface BrowserHarness {
  /** The method the browser reports (`via`). */
  via: DiscoveryVia;
  /** A new stepped clock. */
  clock(): SteppedClock;
  /** A browser, not started, on `options.clock`, on loopback only and a port of its own. */
  create(options: BrowserOptions & { clock: Clock }): Promise<BrowserUnderTest>;
  /** Releases what the harness made for its hubs; the suite stops the browsers. */
  cleanup(): Promise<void>;
}

/** Time limit of each test (ms): every datagram arrives over loopback within it. */
const TEST_TIMEOUT_MS = 10_000;

let nextClaim = 0;

function claim(over: Partial<HubClaim> = {}): HubClaim {
  nextClaim++;
  return {
    deviceId: randomBytes(32).toString('hex') as DeviceId,
    name: `Hub ${nextClaim}`,
    port: 17_000 + nextClaim,
    versions: [1],
    ...over,
  };
}

/** The events a browser emitted, and a way to wait for the next one that matches. */
interface Recorder {
  found: DiscoveredHub[];
  lost: DiscoveredHub[];
  next(event: keyof DiscoveryEvents, match: (hub: DiscoveredHub) => boolean): Promise<DiscoveredHub>;
}

function record(browser: Discovery): Recorder {
  const rec: Recorder = {
    found: [],
    lost: [],
    next: (event, match) =>
      new Promise((resolve) => {
        const listener = (hub: DiscoveredHub): void => {
          if (!match(hub)) return;
          browser.off(event, listener);
          resolve(hub);
        };
        browser.on(event, listener);
      }),
  };
  browser.on('found', (hub) => rec.found.push(hub));
  browser.on('lost', (hub) => rec.lost.push(hub));
  return rec;
}

const is =
  (hub: HubClaim, address = '127.0.0.1') =>
  (h: DiscoveredHub) =>
    h.deviceId === hub.deviceId && h.address === address;

export function runDiscoveryBrowserSuite(name: string, harness: BrowserHarness): void {
  describe(`Discovery browser acceptance: ${name}`, () => {
    const withBrowser = (
      title: string,
      options: BrowserOptions,
      fn: (t: BrowserUnderTest & { clock: SteppedClock; events: Recorder }) => Promise<void>,
    ): void =>
      void it(title, { timeout: TEST_TIMEOUT_MS }, async () => {
        const clock = harness.clock();
        const under = await harness.create({ ...options, clock });
        const events = record(under.browser);
        try {
          await fn({ ...under, clock, events });
        } finally {
          await under.browser.stop();
          await harness.cleanup();
        }
      });

    /** Hears `hub`, and resolves with the 'found' it causes. */
    const arrive = async (t: BrowserUnderTest & { events: Recorder }, hub: HubClaim, from?: string) => {
      const found = t.events.next('found', is(hub, from));
      await t.hear(hub, from);
      return found;
    };

    /** Starts the browser and has it find a first hub, `a`. */
    const startWithHub = async (t: BrowserUnderTest & { events: Recorder }) => {
      await t.browser.start();
      const a = claim();
      return { a, found: await arrive(t, a) };
    };

    withBrowser(
      'lists a hub it hears once per device ID and address, with method, address and interface',
      {},
      async (t) => {
        const { a, found: hub } = await startWithHub(t);
        assert.deepEqual(hub, {
          ...a,
          address: '127.0.0.1',
          family: 4,
          via: harness.via,
          interface: 'lo',
          lastSeen: t.clock.now(),
        });
        // A repeat is no news: only the next hub's arrival is.
        await t.hear(a);
        const b = claim();
        await arrive(t, b);
        assert.deepEqual(
          t.events.found.map((h) => h.deviceId),
          [a.deviceId, b.deviceId],
        );
        // The same claim from another address is another hint, never merged: anyone may claim any ID.
        await arrive(t, a, '127.0.0.2');
        assert.deepEqual(
          t.browser
            .list()
            .map((h) => `${h.deviceId === a.deviceId ? 'a' : 'b'} ${h.address}`)
            .sort(),
          ['a 127.0.0.1', 'a 127.0.0.2', 'b 127.0.0.1'],
        );
      },
    );

    withBrowser(
      'a repeat refreshes lastSeen; a changed port, name or versions is found again',
      {},
      async (t) => {
        const { a, found: first } = await startWithHub(t);
        t.clock.advance(500);
        await t.hear(a);
        await arrive(t, claim()); // a marker: the repeat before it has been read
        const seen = t.browser.list().find(is(a));
        assert.equal(seen?.lastSeen, first.lastSeen + 500);
        assert.equal(t.events.found.filter(is(a)).length, 1, 'a repeat is not found again');
        for (const change of [{ port: a.port + 1 }, { name: 'Renamed hub' }, { versions: [1, 2] }]) {
          const again = await arrive(t, { ...a, ...change });
          assert.deepEqual({ ...again, ...change }, again, `found again with ${JSON.stringify(change)}`);
        }
        assert.equal(t.events.found.filter(is(a)).length, 4);
        assert.equal(t.browser.list().filter(is(a)).length, 1, 'still one entry');
      },
    );

    withBrowser(
      'drops a hub not heard from within expiryMs, with lost, and not a moment before',
      { expiryMs: 1_000, sweepIntervalMs: 100 },
      async (t) => {
        const { a } = await startWithHub(t);
        t.clock.advance(1_000);
        assert.equal(t.events.lost.length, 0, 'heard exactly expiryMs ago: kept');
        assert.equal(t.browser.list().length, 1);
        t.clock.advance(100);
        assert.deepEqual(
          t.events.lost.map((h) => h.deviceId),
          [a.deviceId],
        );
        assert.deepEqual(t.browser.list(), []);
      },
    );

    withBrowser(
      'keeps a hub that goes on being heard',
      { expiryMs: 1_000, sweepIntervalMs: 100 },
      async (t) => {
        const { a } = await startWithHub(t);
        t.clock.advance(800);
        await t.hear(a);
        await arrive(t, claim());
        t.clock.advance(800);
        assert.equal(t.browser.list().filter(is(a)).length, 1, 'heard 800 ms ago, first 1 600 ms ago');
        assert.equal(t.events.lost.length, 0);
        t.clock.advance(300);
        assert.equal(t.events.lost.filter(is(a)).length, 1, '1 100 ms since last heard');
      },
    );

    withBrowser(
      'a goodbye drops the hub at once with lost; a goodbye for a hub not listed changes nothing',
      {},
      async (t) => {
        const { a } = await startWithHub(t);
        const lost = t.events.next('lost', is(a));
        await t.hearGoodbye(claim());
        await t.hearGoodbye(a);
        await lost;
        assert.deepEqual(
          t.events.lost.map((h) => h.deviceId),
          [a.deviceId],
        );
        assert.deepEqual(t.browser.list(), []);
      },
    );

    withBrowser('keeps at most maxEntries hubs and counts those it drops', { maxEntries: 2 }, async (t) => {
      await t.browser.start();
      const [h0, h1, h2] = [claim(), claim(), claim()] as const;
      await arrive(t, h0);
      await arrive(t, h1);
      await t.hear(h2);
      // The goodbye leaves after h2 from the same socket: once it is read, so was h2.
      const lost = t.events.next('lost', is(h0));
      await t.hearGoodbye(h0);
      await lost;
      assert.deepEqual(
        t.browser.list().map((h) => h.deviceId),
        [h1.deviceId],
      );
      assert.equal(t.browser.diagnostics()[0]?.counters.entriesDropped, 1);
    });

    withBrowser('a listener that throws does not stop the browser', {}, async (t) => {
      await t.browser.start();
      const a = claim();
      t.browser.on('found', (hub) => {
        if (hub.deviceId === a.deviceId) throw new Error('a listener bug');
      });
      await t.hear(a);
      await arrive(t, claim());
      assert.equal(t.browser.list().length, 2);
    });

    withBrowser(
      'start and stop are idempotent; stop forgets every hub without lost and leaves no timer',
      {},
      async (t) => {
        await t.browser.stop();
        await Promise.all([t.browser.start(), t.browser.start()]);
        assert.equal(t.browser.isStarted(), true);
        assert.ok(t.clock.pending() > 0, 'the expiry sweep runs on the clock');
        const [diag] = t.browser.diagnostics();
        assert.equal(diag?.via, harness.via);
        assert.equal(diag?.role, 'browser');
        assert.equal(diag?.started, true);
        assert.deepEqual(
          diag?.families.map((f) => [f.family, f.bound, f.interfaces.map((i) => i.name)]),
          [[4, true, ['lo']]],
        );
        const a = claim();
        await arrive(t, a);
        await Promise.all([t.browser.stop(), t.browser.stop()]);
        assert.equal(t.browser.isStarted(), false);
        assert.deepEqual(t.browser.list(), []);
        assert.equal(t.events.lost.length, 0, 'stopping is not the hub leaving');
        assert.equal(t.clock.pending(), 0, 'no timer left behind');
        const queries = t.browser.diagnostics()[0]?.counters.queries;
        t.browser.query();
        assert.equal(t.browser.diagnostics()[0]?.counters.queries, queries, 'no query while stopped');
        await t.browser.start();
        await arrive(t, a);
        const before = t.browser.diagnostics()[0]?.counters.queries ?? 0;
        t.browser.query();
        assert.ok((t.browser.diagnostics()[0]?.counters.queries ?? 0) > before, 'a query once started again');
      },
    );
  });
}
