/**
 * `trosyn-sync doctor` with real processes: healthy nodes say so, then each thing it
 * checks is broken in turn (the agent stopped, a port taken, permissions opened,
 * the key not the certificate's, a damaged database, the hub gone or another hub
 * at its address, a hub whose clock is 10 minutes ahead, a full disk) and the
 * diagnosis names it. Discovery per interface between hosts is in doctor-netns.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Clock } from '../../src/lifecycle.js';
import { systemClock } from '../../src/lifecycle.js';
import { createIdentity } from '../../src/transport/identity.js';
import { startTestHub } from '../fixtures/nodes.js';
import { eventually, tempDir } from '../helpers.js';
import { commandExists, loudSkip } from '../netns/harness.js';
import {
  type Agent,
  CLI,
  freePort,
  hubArgs,
  runCli,
  runText,
  startAgent,
  startChildAgent,
} from '../e2e/helpers.js';

const dir = tempDir('trosyn-doctor-');
after(() => dir.remove());

interface Offset {
  offsetMs: number;
  rttMs: number;
  at: number;
}

interface Report {
  role: string;
  healthy: boolean;
  checks: {
    id: string;
    status: string;
    detail: string;
    fix?: string;
    clock?: {
      hub?: Offset & { source: string };
      devices?: (Offset & { deviceId: string; name: string })[];
    };
    interfaces?: { name: string; status: string }[];
  }[];
}

/** The doctor, listening on the LAN for 0.5 s only: these nodes do not announce themselves. */
async function doctor(data: string, ...extra: string[]): Promise<Report & { code: number }> {
  const r = await runText(['doctor', '--data', data, '--json', '--timeout', '500', ...extra]);
  try {
    return { ...(JSON.parse(r.stdout) as Report), code: r.code };
  } catch {
    throw new Error(`doctor gave no report (exit ${r.code}): ${r.stderr}`);
  }
}

const TEN_MINUTES = 10 * 60_000;

/** The measured offset is within half the round trip (and a rounding ms) of the true one. */
function assertNear(reading: Offset | undefined, truth: number): void {
  assert.ok(reading, 'an offset was measured');
  assert.ok(
    Math.abs(reading.offsetMs - truth) <= reading.rttMs / 2 + 1,
    `measured ${reading.offsetMs} ms (round trip ${reading.rttMs} ms), true ${truth} ms`,
  );
}

const check = (r: Report, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `a ${id} check`);
  return c;
};

describe('trosyn-sync doctor', () => {
  const hubData = join(dir.path, 'hub');
  const childData = join(dir.path, 'child');
  let hub: Agent | undefined;
  let child: Agent | undefined;
  let port = 0;
  after(async () => {
    await child?.kill();
    await hub?.kill();
  });

  it('healthy hub and child: every check passes, exit status 0', async () => {
    port = await freePort();
    hub = startAgent([...hubArgs(hubData, port), '--no-admin-api']);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    const code = String((await runCli(['pairing-code', '--data', hubData])).code);
    await runCli(['pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'desk']);
    child = (await startChildAgent(childData, port, 'desk')).agent;
    await child.waitFor((l) => l.event === 'connected', 20_000, 'child connects');
    for (const [data, role] of [
      [hubData, 'hub'],
      [childData, 'child'],
    ] as const) {
      const r = await doctor(data);
      assert.equal(r.role, role);
      assert.equal(r.code, 0, JSON.stringify(r.checks));
      assert.equal(r.healthy, true);
      for (const c of r.checks) assert.notEqual(c.status, 'fail', `${role}: ${c.id}: ${c.detail}`);
    }
    const c = await doctor(childData);
    assert.match(check(c, 'hub').detail, /identity matches/);
    assert.match(check(c, 'agent').detail, /child agent runs/);
    // Clocks of one machine: in step, as the running agent measured.
    assert.equal(check(c, 'clock').status, 'ok');
    assert.equal(check(c, 'clock').clock?.hub?.source, 'agent');
    assertNear(check(c, 'clock').clock?.hub, 0);
    assert.ok(Array.isArray(check(c, 'discovery').interfaces), 'the discovery check lists interfaces');
    const text = await runText(['doctor', '--data', childData]);
    assert.match(text.stdout, /✓ paired hub: /);
    assert.match(text.stdout, /^healthy$/m);
  });

  it('names each fault: the agent stopped, a port taken, open permissions, a foreign key, a damaged database', async () => {
    await child?.kill();
    child = undefined;
    let r = await doctor(childData);
    assert.equal(r.code, 1);
    assert.equal(check(r, 'agent').status, 'fail');
    assert.match(check(r, 'agent').fix ?? '', /trosyn-sync child --data/);

    const busy = await freePort();
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(busy, '127.0.0.1', resolve));
    try {
      r = await doctor(childData, '--api-port', String(busy));
      assert.equal(check(r, 'ports').status, 'fail');
      assert.match(check(r, 'ports').detail, new RegExp(`local API ${busy}`));
    } finally {
      server.close();
    }
    r = await doctor(childData, '--api-port', String(await freePort()));
    assert.equal(check(r, 'ports').status, 'ok');

    chmodSync(childData, 0o755);
    r = await doctor(childData);
    assert.equal(check(r, 'data-dir').status, 'warn');
    assert.match(check(r, 'data-dir').fix ?? '', /chmod 700/);
    chmodSync(childData, 0o700);

    const keyPath = join(childData, 'identity', 'key.pem');
    chmodSync(keyPath, 0o644);
    r = await doctor(childData);
    assert.equal(check(r, 'identity').status, 'fail');
    assert.match(check(r, 'identity').detail, /can be read by other users/);
    chmodSync(keyPath, 0o600);
    const own = readFileSync(keyPath);
    writeFileSync(keyPath, (await createIdentity('stranger')).keyPem, { mode: 0o600 });
    r = await doctor(childData);
    assert.equal(check(r, 'identity').status, 'fail');
    assert.match(check(r, 'identity').detail, /not the certificate’s/);
    writeFileSync(keyPath, own, { mode: 0o600 });

    const store = join(childData, 'trosyn.db');
    copyFileSync(store, `${store}.good`);
    const fd = openSync(store, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 4096);
    closeSync(fd);
    r = await doctor(childData);
    assert.equal(check(r, 'databases').status, 'fail');
    assert.match(check(r, 'databases').detail, /trosyn\.db/);
    copyFileSync(`${store}.good`, store);
    r = await doctor(childData);
    assert.equal(check(r, 'databases').status, 'ok');
  });

  it('names a hub that is gone, and another hub at its address', async () => {
    await hub?.kill();
    hub = undefined;
    let r = await doctor(childData);
    assert.equal(check(r, 'hub').status, 'fail');
    assert.match(check(r, 'hub').detail, /connection refused/);

    // Another hub answers at the paired address: its identity is not the pinned one.
    const other = startAgent([...hubArgs(join(dir.path, 'other-hub'), port), '--no-admin-api']);
    try {
      await other.waitFor((l) => l.event === 'started', 20_000, 'another hub starts');
      r = await doctor(childData);
      assert.equal(check(r, 'hub').status, 'fail');
      assert.match(check(r, 'hub').detail, /not the paired hub/);
    } finally {
      await other.kill();
    }
  });

  it('names a clock 10 minutes off: on the child by a probe, then from its agent; on the hub per device', async () => {
    // A hub in this process, its clock 10 minutes ahead (its timers real).
    const ahead: Clock = { ...systemClock, now: () => Date.now() + TEN_MINUTES };
    const skewedHubData = join(dir.path, 'skewed-hub');
    const skewedHub = await startTestHub(skewedHubData, {}, { clock: ahead });
    const data = join(dir.path, 'late-child');
    let agent: Agent | undefined;
    try {
      const { code } = await skewedHub.issuePairingCode();
      await runCli(['pair', code, '--hub', `127.0.0.1:${skewedHub.port}`, '--data', data, '--name', 'late']);

      // No agent runs: the doctor connects once, for a hello, and reads the welcome's time.
      let r = await doctor(data);
      let clock = check(r, 'clock');
      assert.equal(clock.status, 'warn', clock.detail);
      assert.equal(clock.clock?.hub?.source, 'probe');
      assertNear(clock.clock?.hub, TEN_MINUTES);
      assert.match(clock.detail, /(10 min 0|9 min 59) s ahead of this device's/);
      assert.match(clock.detail, /wins/);
      assert.match(clock.fix ?? '', /NTP/);

      // The agent runs: its own measurement, through its local API.
      agent = (await startChildAgent(data, skewedHub.port, 'late')).agent;
      await agent.waitFor((l) => l.event === 'connected', 20_000, 'the late child connects');
      r = await doctor(data);
      clock = check(r, 'clock');
      assert.equal(clock.status, 'warn', clock.detail);
      assert.equal(clock.clock?.hub?.source, 'agent');
      assertNear(clock.clock?.hub, TEN_MINUTES);
      const status = await runCli(['status', '--data', data]);
      assertNear(status.hubClock as Offset, TEN_MINUTES);

      // The hub names the device whose clock is off (the device is behind the hub).
      const childId = String((await runCli(['status', '--data', data])).deviceId);
      await eventually(
        async () => (await doctor(skewedHubData)).checks.some((c) => c.id === 'clock' && c.status === 'warn'),
        15_000,
        "the hub's doctor to see the device's clock",
      );
      r = await doctor(skewedHubData);
      clock = check(r, 'clock');
      assert.match(clock.detail, /late (10 min 0|9 min 59) s behind the hub's/);
      const late = clock.clock?.devices?.find((d) => d.deviceId === childId);
      assertNear(late, -TEN_MINUTES);
      const listed = (await runCli(['devices', '--data', skewedHubData])) as unknown as {
        deviceId: string;
        clock: Offset | null;
      }[];
      assertNear(listed.find((d) => d.deviceId === childId)?.clock ?? undefined, -TEN_MINUTES);
    } finally {
      await agent?.kill();
      await skewedHub.stop();
    }
  });

  it('names a full disk', async (t) => {
    if (process.getuid?.() !== 0 || !commandExists('unshare')) {
      const why = loudSkip('doctor: a full disk', 'needs root and unshare to mount a small tmpfs');
      if (process.env.CI) assert.fail(why);
      t.skip(why);
      return;
    }
    const mnt = join(dir.path, 'small');
    spawnSync('mkdir', ['-p', mnt]);
    const script =
      'mount -t tmpfs -o size=8m tmpfs "$1" && cp -a "$2" "$1/node" && (head -c 8300000 /dev/zero > "$1/fill" 2>/dev/null; true) && exec "$3" "$4" doctor --data "$1/node" --json';
    const r = spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', mnt, childData, process.execPath, CLI],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(check(report, 'disk').status, 'fail');
    assert.match(check(report, 'disk').detail, /free of/);
  });
});
