/**
 * `trosyn-sync doctor` with real processes: healthy nodes say so, then each thing it
 * checks is broken in turn (the agent stopped, a port taken, permissions opened,
 * the key not the certificate's, a damaged database, the hub gone or another hub
 * at its address, a full disk) and the diagnosis names it.
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
import { createIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';
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

interface Report {
  role: string;
  healthy: boolean;
  checks: { id: string; status: string; detail: string; fix?: string }[];
}

async function doctor(data: string, ...extra: string[]): Promise<Report & { code: number }> {
  const r = await runText(['doctor', '--data', data, '--json', ...extra]);
  try {
    return { ...(JSON.parse(r.stdout) as Report), code: r.code };
  } catch {
    throw new Error(`doctor gave no report (exit ${r.code}): ${r.stderr}`);
  }
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
