import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { SqliteWakeups, WAKE_GAP_MS } from '../../src/store/sqlite-wakeups.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());

/** A started store on `name` in the test folder. */
async function startedStore(name: string): Promise<{ path: string; store: SqliteStore }> {
  const path = join(dir.path, name);
  const store = new SqliteStore({ path });
  await store.start();
  return { path, store };
}

/** A second process's connection to the file, as the CLI's is. */
function otherWriter(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS t (v INTEGER)');
  return db;
}

describe('SQLite wake-ups', () => {
  it("a store wakes its subscribers on another connection's commit, a burst of commits as one wake-up, and none once unsubscribed", async () => {
    const { path, store } = await startedStore('burst.db');
    let wakes = 0;
    const off = store.onCommit(() => wakes++);
    assert.ok(off, 'a store on a file gives wake-ups');
    const other = otherWriter(path);
    await eventually(() => wakes > 0, 10_000, 'woken by the table created');
    // Two hundred commits while this thread is busy: their changes arrive together.
    await sleep(50);
    wakes = 0;
    const insert = other.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < 200; i++) insert.run(i);
    await eventually(() => wakes > 0, 10_000, 'woken by the burst');
    await sleep(100);
    assert.ok(wakes <= 2, `200 commits made ${wakes} wake-ups`);
    off?.();
    wakes = 0;
    insert.run(1);
    await sleep(100);
    assert.equal(wakes, 0, 'not woken once unsubscribed');
    other.close();
    await store.stop();
  });

  it('a stream of commits wakes the subscribers at most once every WAKE_GAP_MS, and once more for the last of them', async () => {
    const { path, store } = await startedStore('stream.db');
    const other = otherWriter(path);
    const insert = other.prepare('INSERT INTO t (v) VALUES (?)');
    await sleep(50);
    const wakes: number[] = [];
    store.onCommit(() => wakes.push(performance.now()));
    // A commit every few milliseconds for a second, as a busy agent's own.
    const start = performance.now();
    let commits = 0;
    while (performance.now() - start < 1000) {
      insert.run(commits++);
      await sleep(2);
    }
    const last = performance.now();
    await eventually(() => (wakes.at(-1) ?? 0) > last, 10_000, 'woken after the last commit');
    const gaps = wakes.slice(1).map((t, i) => t - (wakes[i] as number));
    assert.ok(commits > wakes.length * 3, `${commits} commits, ${wakes.length} wake-ups`);
    assert.ok(
      gaps.every((g) => g >= WAKE_GAP_MS - 1),
      `wake-ups ${WAKE_GAP_MS} ms apart at least: ${gaps.map(Math.round).join(' ')}`,
    );
    other.close();
    await store.stop();
  });

  it('a stopped store watches nothing; started again it wakes the subscribers it had', async () => {
    const { path, store } = await startedStore('restart.db');
    let wakes = 0;
    store.onCommit(() => wakes++);
    await store.stop();
    const other = otherWriter(path);
    other.prepare('INSERT INTO t (v) VALUES (1)').run();
    await sleep(100);
    assert.equal(wakes, 0, 'no watch while stopped');
    await store.start();
    wakes = 0;
    other.prepare('INSERT INTO t (v) VALUES (2)').run();
    await eventually(() => wakes > 0, 10_000, 'woken again after the restart');
    other.close();
    await store.stop();
  });

  it('an in-memory store gives no wake-ups: its replica looks on the clock', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    await store.start();
    assert.equal(
      store.onCommit(() => undefined),
      undefined,
    );
    await store.stop();
  });

  it('a folder that cannot be watched is said once in the log and tried again; once watched, the subscribers are woken for what was missed', async () => {
    const folder = join(dir.path, 'later');
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const wakeups = new SqliteWakeups(logger, 20);
    let wakes = 0;
    wakeups.subscribe(() => wakes++);
    // The folder does not exist yet: the watch fails, and is tried every 20 ms.
    wakeups.open(join(folder, 'store.db'));
    await sleep(100);
    assert.equal(wakes, 0);
    const warnings = logged.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, 'said once, not at every try');
    assert.match(warnings[0]?.msg ?? '', /cannot watch the store/);
    mkdirSync(folder);
    await eventually(() => wakes > 0, 10_000, 'woken once the watch is back');
    assert.ok(logged.some((l) => /watching the store .* again/.test(l.msg)));
    wakes = 0;
    const other = otherWriter(join(folder, 'store.db'));
    await eventually(() => wakes > 0, 10_000, 'and by commits from then on');
    other.close();
    wakeups.close();
  });
});
