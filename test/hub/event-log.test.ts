/**
 * The hub's event log over a real registry database (hub.db), with a fake clock:
 * batched writes, live-only events, retention, and what survives a restart.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EventLog, type LoggedEvent } from '../../src/hub/event-log.js';
import type { HubEvent } from '../../src/hub/events.js';
import { SqliteRegistryBackend } from '../../src/hub/sqlite-registry.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { DeviceId } from '../../src/store/types.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-event-log-');
after(() => dir.remove());
let n = 0;

const DAY = 86_400_000;
const device = 'a'.repeat(64) as DeviceId;

async function openLog(
  path = join(dir.path, `hub-${++n}.db`),
  clock = new FakeClock(),
  retentionDays?: number,
) {
  const store = new SqliteRegistryBackend({ path });
  await store.start();
  const log = new EventLog({
    store,
    ...(retentionDays !== undefined && { retentionDays }),
    logger: silentLogger,
    clock,
  });
  await log.start();
  return { store, log, clock, path };
}

const failed = (at: number, code = 'SYNC_FAILED'): HubEvent => ({
  type: 'sync-failed',
  deviceId: device,
  code,
  message: 'boom',
  at,
});

describe('EventLog', () => {
  it('writes a batch once its window has passed, then sends it in order; progress events get no id and are not kept', async () => {
    const { store, log, clock } = await openLog();
    const seen: LoggedEvent[] = [];
    log.subscribe((l) => seen.push(l));
    log.append(failed(clock.now(), 'A'));
    log.append({
      type: 'files-progress',
      progress: { pending: 1, bytesHere: 0, bytesTotal: 10, busy: true, files: [] },
      at: clock.now(),
    });
    log.append(failed(clock.now(), 'B'));
    await new Promise((r) => setImmediate(r));
    assert.equal((await store.eventBounds()).latest, 0, 'nothing written before the batch window ends');
    assert.equal(seen.length, 0, 'nor sent: a sent id must be one the log can resume from');

    await clock.tick(100);
    await log.flush();
    assert.deepEqual(
      seen.map((l) => [l.event.type, l.id === undefined]),
      [
        ['sync-failed', false],
        ['files-progress', true],
        ['sync-failed', false],
      ],
      'in the order they happened; the progress event without an id',
    );
    const [a, , b] = seen;
    assert.ok((b?.id as number) > (a?.id as number));
    const kept = await log.list({ limit: 10 });
    assert.deepEqual(
      kept.map((l) => [l.id, (l.event as { code: string }).code]),
      [
        [b?.id, 'B'],
        [a?.id, 'A'],
      ],
      'only the two kept, newest first, each as it was sent',
    );
    assert.deepEqual(
      (await log.after(a?.id as number, 10)).map((l) => l.id),
      [b?.id],
    );
    await log.stop();
    await store.stop();
  });

  it('stop writes what is queued; the events and their ids survive a restart, and new ids follow them', async () => {
    const first = await openLog();
    first.log.append(failed(first.clock.now(), 'before-restart'));
    await first.log.stop();
    await first.store.stop();

    const again = await openLog(first.path, first.clock);
    const kept = await again.log.list({ limit: 10 });
    assert.equal(kept.length, 1, 'written at stop, without waiting for the window');
    assert.equal((kept[0]?.event as { code: string }).code, 'before-restart');
    const seen: LoggedEvent[] = [];
    again.log.subscribe((l) => seen.push(l));
    again.log.append(failed(again.clock.now(), 'after-restart'));
    await again.log.flush();
    assert.ok((seen[0]?.id as number) > (kept[0]?.id as number), 'ids go on increasing');
    await again.log.stop();
    await again.store.stop();
  });

  it('drops events past the retention at start and then every hour, on the injected clock', async () => {
    const clock = new FakeClock();
    const { store, log, path } = await openLog(undefined, clock, 2);
    log.append(failed(clock.now(), 'old'));
    await clock.tick(DAY);
    log.append(failed(clock.now(), 'newer'));
    await log.flush();
    assert.equal((await log.list({ limit: 10 })).length, 2);

    // Two days after the first: the hourly prune takes it, not the newer one.
    await clock.tick(DAY - 1);
    assert.equal((await log.list({ limit: 10 })).length, 2, 'both kept until the hour after two days');
    await clock.tick(3600_001);
    await eventually(
      async () => (await log.list({ limit: 10 })).length === 1,
      5000,
      'the hourly prune drops the event older than two days',
    );
    assert.equal(((await log.list({ limit: 10 }))[0]?.event as { code: string }).code, 'newer');
    await log.stop();
    await store.stop();

    // A hub started after a long pause prunes at once.
    clock.advance(3 * DAY);
    const again = await openLog(path, clock, 2);
    assert.deepEqual(await again.log.list({ limit: 10 }), [], 'pruned at start');
    assert.ok((await again.log.bounds()).latest >= 2, 'the ids given are remembered');
    await again.log.stop();
    await again.store.stop();
  });

  it('refuses a retention that is not a number of days above 0', () => {
    for (const days of [0, -1, Number.NaN, 5000])
      assert.throws(
        () =>
          new EventLog({
            store: undefined as never,
            retentionDays: days,
            logger: silentLogger,
            clock: new FakeClock(),
          }),
        { code: 'INVALID_OPTION' },
        String(days),
      );
  });

  it('a listener that throws does not stop the others', async () => {
    const { store, log, clock } = await openLog();
    const seen: number[] = [];
    log.subscribe(() => {
      throw new Error('broken subscriber');
    });
    log.subscribe((l) => seen.push(l.id as number));
    log.append(failed(clock.now()));
    await log.flush();
    assert.equal(seen.length, 1);
    await log.stop();
    await store.stop();
  });
});
