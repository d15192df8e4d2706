/** Scheduled backups on a fake clock over a real node directory: when, how many kept, after a restart, after a failure. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { openReplica } from '../../src/index.js';
import { BackupSchedule, type BackupRun } from '../../src/ops/backup-schedule.js';
import { createIdentity } from '../../src/transport/identity.js';
import { AdminApiServer } from '../../src/hub/admin-api/server.js';
import { startTestHub } from '../fixtures/nodes.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-backup-schedule-');
after(() => dir.remove());

const HOUR = 3600_000;

it('backs up after the first delay, then every interval, keeps the newest, resumes its rhythm after a restart, and retries a failure', async () => {
  const data = join(dir.path, 'node');
  const out = join(dir.path, 'backups');
  const identity = await createIdentity('scheduled');
  mkdirSync(join(data, 'identity'), { recursive: true });
  writeFileSync(join(data, 'identity', 'cert.pem'), identity.certPem);
  writeFileSync(join(data, 'identity', 'key.pem'), identity.keyPem);
  const replica = await openReplica({ path: join(data, 'trosyn.db'), deviceId: identity.deviceId });
  await replica.put('notes', 'n1', { v: 1 });

  const clock = new FakeClock(Date.UTC(2026, 10, 30, 8, 0, 0));
  const runs: BackupRun[] = [];
  const make = () =>
    new BackupSchedule({
      dataDir: data,
      dir: out,
      everyMs: 6 * HOUR,
      keep: 2,
      clock,
      onRun: (r) => runs.push(r),
    });
  const schedule = make();
  await schedule.start();
  assert.equal(schedule.status().last, null);
  assert.equal(schedule.status().nextAt, clock.now() + 60_000, 'the first backup waits a minute after start');
  clock.advance(60_000);
  await eventually(async () => runs.length === 1, 10_000, 'the first backup');
  const first = runs[0];
  assert.ok(first?.ok);
  assert.equal(schedule.status().last?.dir, first.dir);
  assert.equal(schedule.status().nextAt, clock.now() + 6 * HOUR);

  for (let i = 0; i < 3; i++) {
    await replica.put('notes', `n${i + 2}`, { v: i });
    clock.advance(6 * HOUR);
    await eventually(async () => runs.length === i + 2, 10_000, `backup ${i + 2}`);
  }
  const kept = readdirSync(out).sort();
  assert.equal(kept.length, 2, 'the newest two are kept');
  assert.deepEqual(
    kept.map((name) => join(out, name)),
    runs.slice(-2).map((r) => (r.ok ? r.dir : '')),
  );
  await schedule.stop();

  // A restart two hours later: the next backup is due six hours after the newest.
  clock.advance(2 * HOUR);
  const again = make();
  await again.start();
  const newest = runs.at(-1);
  assert.ok(newest?.ok);
  assert.equal(again.status().last?.dir, newest.dir);
  assert.equal(again.status().nextAt, newest.at + 6 * HOUR);

  // The store vanishes: the run fails with its code, leaves nothing behind, and is tried again in an hour.
  await replica.stop();
  renameSync(join(data, 'trosyn.db'), join(data, 'trosyn.db.away'));
  const failed = await again.runNow();
  assert.equal(failed.ok, false);
  assert.equal(!failed.ok && failed.code, 'NO_NODE');
  assert.equal(again.status().lastError?.code, 'NO_NODE');
  assert.equal(again.status().nextAt, clock.now() + HOUR);
  assert.equal(readdirSync(out).length, 2, 'no partial backup left');
  renameSync(join(data, 'trosyn.db.away'), join(data, 'trosyn.db'));
  clock.advance(HOUR);
  await eventually(async () => again.status().lastError === null, 10_000, 'the retry succeeds');
  assert.ok(existsSync(join(again.status().last?.dir ?? '', 'manifest.json')));
  await again.stop();
});

it('a hub with backups configured makes them on its clock, shows them in its status and tells its event stream', async () => {
  const clock = new FakeClock(Date.UTC(2026, 10, 30, 9, 0, 0));
  const backups = join(dir.path, 'hub-backups');
  const hub = await startTestHub(
    join(dir.path, 'hub'),
    { backups: { dir: backups, everyHours: 12, keep: 3 } },
    { clock },
  );
  try {
    const events: string[] = [];
    hub.on('event', (e) => events.push(e.type));
    await hub.replica.put('notes', 'n1', { v: 1 });
    const before = (await hub.status()).backups;
    assert.equal(before?.last, null);
    assert.equal(before?.nextAt, clock.now() + 60_000);
    assert.equal(before?.everyHours, 12);
    clock.advance(60_000);
    await eventually(async () => (await hub.status()).backups?.last != null, 10_000, 'the first backup');
    const after = (await hub.status()).backups;
    assert.ok(existsSync(join(after?.last?.dir ?? '', 'manifest.json')));
    assert.equal(after?.nextAt, clock.now() + 12 * HOUR);
    assert.ok(events.includes('backup-completed'));
  } finally {
    await hub.stop();
  }
});

it('POST /api/backups makes a backup now on a hub with a schedule, and is BACKUPS_NOT_SCHEDULED on one without', async () => {
  const backups = join(dir.path, 'api-backups');
  const hub = await startTestHub(join(dir.path, 'api-hub'), {
    backups: { dir: backups, everyHours: 24, keep: 2 },
  });
  const plain = await startTestHub(join(dir.path, 'api-plain'));
  const admins = [
    new AdminApiServer(hub, { host: '127.0.0.1', port: 0 }),
    new AdminApiServer(plain, { host: '127.0.0.1', port: 0 }),
  ];
  try {
    const post = async (admin: AdminApiServer) => {
      await admin.start();
      const token = admin.takeCreatedToken() as string;
      return fetch(`http://127.0.0.1:${admin.port}/api/backups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    };
    await hub.replica.put('notes', 'n1', { v: 1 });
    const res = await post(admins[0] as AdminApiServer);
    assert.equal(res.status, 201, await res.clone().text());
    const made = (await res.json()) as { dir: string; bytes: number; at: number };
    assert.ok(made.dir.startsWith(backups));
    assert.ok(existsSync(join(made.dir, 'manifest.json')));
    assert.ok(made.bytes > 0);
    const last = (await hub.status()).backups?.last;
    assert.deepEqual([last?.dir, last?.bytes], [made.dir, made.bytes], 'the status shows it');

    const refused = await post(admins[1] as AdminApiServer);
    assert.equal(refused.status, 409);
    assert.equal(((await refused.json()) as { code: string }).code, 'BACKUPS_NOT_SCHEDULED');
  } finally {
    for (const a of admins) await a.stop();
    await hub.stop();
    await plain.stop();
  }
});
