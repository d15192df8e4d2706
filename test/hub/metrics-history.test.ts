/** The hub's metrics history on a fake clock: rates per step, the two windows, their sizes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Throughput } from '../../src/hub/child-sessions.js';
import { MetricsHistory } from '../../src/hub/metrics-history.js';
import { FakeClock } from '../helpers.js';

function harness() {
  const clock = new FakeClock();
  const totals: Throughput = { changesIn: 0, changesOut: 0, bytesIn: 0, bytesOut: 0 };
  let connected = 0;
  const history = new MetricsHistory({
    totals: () => ({ ...totals }),
    connected: () => connected,
    clock,
  });
  return {
    clock,
    totals,
    history,
    setConnected: (n: number) => {
      connected = n;
    },
  };
}

describe('MetricsHistory', () => {
  it('samples every 10 s for the hour and every minute for the day, as rates per second', async () => {
    const { clock, totals, history, setConnected } = harness();
    await history.start();
    assert.deepEqual(history.series('1h'), { window: '1h', stepMs: 10_000, samples: [] });
    totals.changesIn += 50;
    totals.bytesOut += 10_000;
    setConnected(2);
    clock.advance(10_000);
    const [first] = history.series('1h').samples;
    assert.deepEqual(first, {
      at: clock.now(),
      changesIn: 5,
      changesOut: 0,
      bytesIn: 0,
      bytesOut: 1000,
      connected: 2,
    });
    assert.equal(history.series('24h').samples.length, 0, 'no minute has passed yet');

    for (let i = 0; i < 5; i++) {
      totals.changesOut += 60;
      clock.advance(10_000);
    }
    const hour = history.series('1h').samples;
    assert.equal(hour.length, 6);
    assert.equal(hour.at(-1)?.changesOut, 6);
    const day = history.series('24h');
    assert.equal(day.stepMs, 60_000);
    assert.equal(day.samples.length, 1);
    assert.equal(day.samples[0]?.changesIn, 50 / 60, 'over the whole minute');
    assert.equal(day.samples[0]?.changesOut, 300 / 60);
    await history.stop();
  });

  it('keeps one hour and one day; a total that goes back is no negative rate; stop ends the sampling', async () => {
    const { clock, totals, history } = harness();
    await history.start();
    await history.start();
    clock.advance(25 * 3600_000);
    assert.equal(history.series('1h').samples.length, 360);
    assert.equal(history.series('24h').samples.length, 1440);
    const oldest = history.series('1h').samples[0]?.at as number;
    assert.equal(clock.now() - oldest, 3590_000, 'the last hour only');

    totals.bytesIn = -100;
    clock.advance(10_000);
    assert.equal(history.series('1h').samples.at(-1)?.bytesIn, 0);

    await history.stop();
    await history.stop();
    assert.equal(history.isStarted(), false);
    const at = history.series('1h').samples.at(-1)?.at;
    clock.advance(60_000);
    assert.equal(history.series('1h').samples.at(-1)?.at, at, 'no sample after stop');
  });
});

describe('MetricsHistory kept between runs', () => {
  it('a restart keeps the samples of each window that are still inside it, and leaves a gap', async () => {
    const clock = new FakeClock();
    let saved: string | undefined;
    const saves: string[] = [];
    const persist = {
      load: async () => saved,
      save: async (text: string) => {
        saved = text;
        saves.push(text);
      },
    };
    const totals: Throughput = { changesIn: 0, changesOut: 0, bytesIn: 0, bytesOut: 0 };
    const make = () =>
      new MetricsHistory({ totals: () => ({ ...totals }), connected: () => 1, clock, persist });
    const first = make();
    await first.start();
    for (let i = 0; i < 12; i++) {
      totals.changesIn += 10;
      clock.advance(10_000);
    }
    assert.equal(saves.length, 2, 'saved once per day step (every minute)');
    await first.stop();
    assert.equal(saves.length, 3, 'and at stop');

    // Down for 59 minutes: the hour keeps the samples of its last minute, the day all of them.
    clock.advance(59 * 60_000);
    const second = make();
    await second.start();
    const hour = second.series('1h').samples;
    const day = second.series('24h').samples;
    assert.equal(hour.length, 6, 'the hour keeps what is younger than an hour');
    assert.ok(hour.every((x) => x.at > clock.now() - 3600_000));
    assert.equal(day.length, 2);
    assert.equal(day[0]?.changesIn, 60 / 60);
    // The first step after the restart measures from the restart, not across the gap.
    totals.changesIn += 100;
    clock.advance(10_000);
    assert.equal(second.series('1h').samples.at(-1)?.changesIn, 10);
    await second.stop();

    // A day later nothing is left; an unreadable save is ignored.
    clock.advance(25 * 3600_000);
    const third = make();
    await third.start();
    assert.equal(third.series('24h').samples.length, 0);
    await third.stop();
    saved = '{not json';
    const fourth = make();
    await fourth.start();
    assert.equal(fourth.series('1h').samples.length, 0);
    await fourth.stop();
  });
});
