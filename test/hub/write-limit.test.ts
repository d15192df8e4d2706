/**
 * The hub's per-device write limit, with a real hub and real children over TLS on
 * loopback. The hub's clock is fake, so its buckets refill only when a test moves
 * it: a child writing faster than its limit has its batches held (none refused, none
 * lost) and gets through at the limit in fake time, while other children's writes
 * go through the hub at once; the hold is logged, counted in the metrics and shown in
 * the device's sync details. With the limit off nothing is held.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Child } from '../../src/child/child.js';
import { writeLimitOf } from '../../src/hub/assembly.js';
import { WRITE_BATCH_COST } from '../../src/hub/child-sessions.js';
import type { Hub } from '../../src/hub/hub.js';
import type { WriteOp } from '../../src/sync/replica.js';
import { shortDeviceId } from '../../src/transport/device-id.js';
import { pairedChildOf, startTestHub } from '../fixtures/nodes.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

/** Revisions the fast child writes: 10 transactions of 100. */
const N = 1000;
const CHUNK = 100;

type LogLine = Record<string, unknown> & { msg: string };

async function cluster(name: string, writeLimit: { perSecond: number; burst: number } | false) {
  // At the real time: the hub refuses revisions stamped far from its clock (CLOCK_SKEW).
  const clock = new FakeClock(Date.now());
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) });
  // No heartbeats while the fake clock jumps a minute: only the limit is under test.
  const hub = await startTestHub(
    join(dir.path, name, 'hub'),
    { heartbeatMs: 600_000, writeLimit },
    { clock, logger },
  );
  const children: Child[] = [];
  for (const n of ['fast', 'b', 'c'])
    children.push(await pairedChildOf(hub, join(dir.path, name, n), { name: n }));
  await Promise.all(children.map((c) => c.start()));
  await eventually(() => hub.connectedChildren().length === 3, 10_000, 'three children connected');
  const [fast, b, c] = children as [Child, Child, Child];
  return { clock, lines, hub, fast, b, c, stop: () => stopAll(hub, children) };
}

async function stopAll(hub: Hub, children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
  await hub.stop();
}

/** One transaction of CHUNK revisions, from `from` on. */
async function writeChunk(child: Child, from: number): Promise<void> {
  const ops: WriteOp[] = [];
  for (let j = from; j < from + CHUNK; j++)
    ops.push({ op: 'put', collection: 'bulk', id: `r${j}`, body: { j } });
  await child.replica.writeMany(ops);
}

/** The fast child's N revisions, as N / CHUNK transactions. */
async function writeAll(child: Child): Promise<void> {
  for (let i = 0; i < N; i += CHUNK) await writeChunk(child, i);
}

function appliedFrom(hub: Hub, child: Child): number {
  return hub.connectedChildren().find((s) => s.deviceId === child.deviceId)?.stats.applied ?? 0;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

describe('per-device write limit', () => {
  it('holds a child writing faster than its limit to the limit, loses nothing, and leaves the others unheld', async () => {
    const limit = { perSecond: 200, burst: 200 };
    const { clock, lines, hub, fast, b, c, stop } = await cluster('limited', limit);
    try {
      const t0 = clock.now();
      const heldNow = async () => ((await hub.deviceSync(fast.deviceId)).throttled?.until ?? 0) > clock.now();
      let written = 0;
      let probed = false;
      for (let step = 0; ; step++) {
        assert.ok(step < 100, 'the fast child got through in fewer than 100 steps');
        // The fast child writes a transaction of CHUNK whenever the hub's clock moves, so
        // it always has more to send than the limit lets through.
        if (written < N) {
          await writeChunk(fast, written);
          written += CHUNK;
        }
        // Settled: everything written is in, or a batch of the fast child is held now.
        await eventually(
          async () => appliedFrom(hub, fast) === written || (await heldNow()),
          10_000,
          'a batch held or all written applied',
        );
        const applied = appliedFrom(hub, fast);
        const elapsed = (clock.now() - t0) / 1000;
        // Never faster than the limit: every batch let through was paid for.
        assert.ok(
          applied <= limit.burst + limit.perSecond * elapsed,
          `${applied} revisions applied by ${elapsed} s (limit ${JSON.stringify(limit)})`,
        );
        if (applied === N) break;
        if (!(await heldNow())) continue;
        if (!probed) {
          // While the fast child's batch is held (the fake clock stands still), another
          // child's write goes through the hub to a third.
          probed = true;
          const at = clock.now();
          const w = await b.replica.put('notes', 'during-hold', { from: 'b' });
          await eventually(
            async () => (await c.replica.get('notes', 'during-hold'))?.rev === w.rev,
            10_000,
            "b's write at c while the fast child is held",
          );
          assert.equal(clock.now(), at, 'no fake time passed');
          assert.ok(await heldNow(), 'still held');
          assert.ok(appliedFrom(hub, fast) < N);
          assert.equal((await hub.deviceSync(b.deviceId)).throttled, null, 'b was never held');
        }
        const until = (await hub.deviceSync(fast.deviceId)).throttled?.until as number;
        await clock.tick(until - clock.now());
      }
      assert.ok(probed, 'the fast child was held at least once');
      // At about the limit: each batch costs its revisions and WRITE_BATCH_COST, and the
      // child sent at most one batch per transaction (plus a cursor move or two).
      const elapsed = (clock.now() - t0) / 1000;
      const least = (N - limit.burst) / limit.perSecond;
      const most = (N + WRITE_BATCH_COST * (N / CHUNK + 3) - limit.burst) / limit.perSecond;
      assert.ok(
        elapsed >= least && elapsed <= most,
        `took ${elapsed} s of hub time; ${least}..${most} expected`,
      );

      // Nothing lost: every revision on the hub and at the third child.
      assert.equal((await hub.replica.list('bulk', { limit: 2 * N })).length, N);
      await eventually(
        async () => (await c.replica.list('bulk', { limit: 2 * N })).length === N,
        10_000,
        'every revision of the fast child at c',
      );

      // The device's sync details, the log and the metrics say so.
      const held = (await hub.deviceSync(fast.deviceId)).throttled;
      assert.ok(held && held.batches > 1 && held.revisions > 0 && held.revisions <= N, JSON.stringify(held));
      const logged = lines.filter((l) => l.msg === 'device writes throttled');
      assert.equal(logged.length, 1, 'one line at once; the rest wait for the minute');
      assert.deepEqual(
        {
          device: logged[0]?.device,
          name: logged[0]?.name,
          perSecond: logged[0]?.perSecond,
          burst: logged[0]?.burst,
          batches: logged[0]?.batches,
        },
        { device: shortDeviceId(fast.deviceId), name: 'fast', perSecond: 200, burst: 200, batches: 1 },
      );
      const text = await hub.metricsText();
      assert.equal(metric(text, 'trosyn_device_writes_throttled_total'), held.revisions);
      assert.equal(
        Math.round(metric(text, 'trosyn_device_write_throttle_seconds_total') * 1000),
        held.heldMs,
      );
      // A minute on: one line counts the holds since the first.
      await clock.tick(60_000);
      const again = lines.filter((l) => l.msg === 'device writes throttled');
      assert.equal(again.length, 2);
      assert.equal(again[1]?.batches, held.batches - 1);
      assert.equal((again[1]?.revisions as number) + (logged[0]?.revisions as number), held.revisions);
      // A quiet minute: forgotten, nothing more logged.
      await clock.tick(120_000);
      assert.equal(lines.filter((l) => l.msg === 'device writes throttled').length, 2);
    } finally {
      await stop();
    }
  });

  it('with the limit off, nothing is held', async () => {
    const { clock, lines, hub, fast, c, stop } = await cluster('off', false);
    try {
      const at = clock.now();
      await writeAll(fast);
      // All of it through the hub and on to another child without the hub's clock moving.
      await eventually(() => appliedFrom(hub, fast) === N, 10_000, 'every revision applied on the hub');
      await eventually(
        async () => (await c.replica.list('bulk', { limit: 2 * N })).length === N,
        10_000,
        'every revision of the fast child at c',
      );
      assert.equal(clock.now(), at);
      assert.equal((await hub.deviceSync(fast.deviceId)).throttled, null);
      assert.equal(lines.filter((l) => l.msg === 'device writes throttled').length, 0);
      assert.equal(metric(await hub.metricsText(), 'trosyn_device_writes_throttled_total'), 0);
    } finally {
      await stop();
    }
  });

  it('a batch that only moves a cursor is not a write: children that only receive are never held', async () => {
    // A limit any charged batch would exceed at once.
    const { lines, hub, b, c, stop } = await cluster('receivers', { perSecond: 1, burst: 1 });
    try {
      for (let i = 0; i < 5; i++)
        await hub.replica.writeMany([{ op: 'put', collection: 'news', id: `n${i}`, body: { i } }]);
      for (const child of [b, c])
        await eventually(
          async () => (await child.replica.list('news')).length === 5,
          10_000,
          'the hub’s writes at each child',
        );
      // Each child acknowledges them in batches that carry no revisions of its own.
      await eventually(
        async () => (await hub.replica.cursorFor(b.deviceId)).seq > 0,
        10_000,
        'b’s acknowledgements reached the hub',
      );
      assert.equal((await hub.deviceSync(b.deviceId)).throttled, null);
      assert.equal((await hub.deviceSync(c.deviceId)).throttled, null);
      assert.equal(lines.filter((l) => l.msg === 'device writes throttled').length, 0);
    } finally {
      await stop();
    }
  });

  it('the settings: a default, 0 or false for off, and a burst of 10 seconds when only the rate is given', () => {
    assert.deepEqual(writeLimitOf({}), { perSecond: 1000, burst: 10_000 });
    assert.equal(writeLimitOf({ writeLimit: false }), undefined);
    assert.equal(writeLimitOf({ writeLimit: { perSecond: 0 } }), undefined);
    assert.deepEqual(writeLimitOf({ writeLimit: { perSecond: 50 } }), { perSecond: 50, burst: 500 });
    assert.deepEqual(writeLimitOf({ writeLimit: { burst: 3 } }), { perSecond: 1000, burst: 3 });
    assert.throws(() => writeLimitOf({ writeLimit: { perSecond: -1 } }), RangeError);
  });
});
