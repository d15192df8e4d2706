/**
 * Two hub processes on one PostgreSQL database, as real processes: the second takes
 * the hub's identity from the database with the identity key file; children spread
 * over them, each knowing both addresses. Writes cross between the processes; a
 * pairing code works through either and only once; a file put on a child of one
 * is fetched whole by a child of the other, a new version the other way, and both
 * processes count its content complete; a revoke made on one reaches a
 * device connected to the other; one process SIGKILLed, its child moves to the
 * other and nothing acknowledged is lost.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { noise, sha } from '../fixtures/bytes.js';
import { eventually, tempDir } from '../helpers.js';
import { passwordDatabase, useClusterForFile } from '../helpers-postgres.js';
import {
  type Agent,
  CLI,
  type CliCommand,
  freePort,
  hubArgs,
  pairWithHub,
  runCli,
  startAgent,
  startChildAgent,
} from './helpers.js';

const dir = tempDir('trosyn-e2e-two-hubs-');
after(() => dir.remove());
const cluster = useClusterForFile();

describe('two hub processes on one PostgreSQL database', () => {
  it('one identity, writes cross, codes single use, a revoke reaches the other, a SIGKILLed process loses nothing', async () => {
    const pg = await cluster();
    const { env, store } = await passwordDatabase(pg, 'trosyn_two', 'two-Hubs:pw', dir.path);
    const cli: CliCommand = { command: [process.execPath, CLI], env };
    const key = join(dir.path, 'identity.key');
    writeFileSync(key, 'Vq7m1x0C9pL2sR4tU6wY8zA1bD3fG5hJ7kM9nP0qS2U=\n', { mode: 0o600 });
    const [h1, h2] = [join(dir.path, 'hub-1'), join(dir.path, 'hub-2')];
    const [p1, p2] = [await freePort(), await freePort()];
    const [m1, m2] = [await freePort(), await freePort()];
    const agents: Agent[] = [];
    const hubProcess = (data: string, port: number, metrics: number) => {
      const agent = startAgent(
        [
          ...hubArgs(data, port),
          '--http-host',
          '127.0.0.1',
          '--http-port',
          '0',
          '--metrics-port',
          String(metrics),
          '--store',
          store,
          '--identity-key-file',
          key,
        ],
        { cli },
      );
      agents.push(agent);
      return agent;
    };
    try {
      const hub1 = hubProcess(h1, p1, m1);
      const first = await hub1.waitFor((l) => l.event === 'started', 30_000, 'the first hub process');
      const hub2 = hubProcess(h2, p2, m2);
      const second = await hub2.waitFor((l) => l.event === 'started', 30_000, 'the second hub process');
      assert.equal(second.deviceId, first.deviceId, 'one hub: the same identity in both processes');
      assert.equal(
        JSON.parse(readFileSync(join(h2, 'config.json'), 'utf8')).identityKeyFile,
        key,
        'remembered',
      );
      // A third process without the key, or with another, would present another hub: refused.
      const refused = async (extra: string[]) => {
        const err = await runCli(
          [
            ...hubArgs(join(dir.path, `refused-${extra.length}`), await freePort()),
            '--store',
            store,
            ...extra,
          ],
          cli,
        ).then(
          () => assert.fail('a third hub process started'),
          (e: { stderr: string }) => e.stderr,
        );
        return /trosyn-sync: ([A-Z_]+):/.exec(err)?.[1];
      };
      assert.equal(await refused([]), 'HUB_IDENTITY_NOT_SHARED');
      const wrong = join(dir.path, 'wrong.key');
      writeFileSync(wrong, 'another-secret-another-secret-another-secret\n', { mode: 0o600 });
      assert.equal(await refused(['--identity-key-file', wrong]), 'HUB_IDENTITY_KEY_WRONG');

      // A pairs through process 1 with its start code; B through process 2 with a new one.
      const codeA = first.pairingCode as string;
      await pairWithHub(codeA, join(dir.path, 'a'), p1, 'desk-a');
      // Used once through process 1: process 2 does not take it again.
      await assert.rejects(pairWithHub(codeA, join(dir.path, 'x'), p2, 'desk-x'), (err: Error) => {
        assert.match(err.message, /PAIRING_CODE_INVALID/);
        return true;
      });
      const codeB = String((await runCli(['pairing-code', '--data', h2], cli)).code);
      await pairWithHub(codeB, join(dir.path, 'b'), p2, 'desk-b');
      const codeC = String((await runCli(['pairing-code', '--data', h1], cli)).code);
      await pairWithHub(codeC, join(dir.path, 'c'), p2, 'desk-c');

      // Each child knows both addresses, its own process first.
      const a = await startChildAgent(join(dir.path, 'a'), p1, 'desk-a', '--hub', `127.0.0.1:${p2}`);
      agents.push(a.agent);
      const b = await startChildAgent(join(dir.path, 'b'), p2, 'desk-b', '--hub', `127.0.0.1:${p1}`);
      agents.push(b.agent);
      const c = await startChildAgent(join(dir.path, 'c'), p2, 'desk-c');
      agents.push(c.agent);
      for (const child of [a, b, c])
        await child.agent.waitFor((l) => l.event === 'caught-up', 30_000, 'a child in sync');
      /** The child agent's own status (its local API): which hub process it is connected to. */
      const status = async (child: { apiPort: number }, data: string) => {
        const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
        const res = await fetch(`http://127.0.0.1:${child.apiPort}/api/status`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return (await res.json()) as {
          pending: number;
          connection: { address?: { port: number }; lastError?: { code: string } };
        };
      };
      const portOf = async (child: { apiPort: number }, data: string) =>
        (await status(child, data)).connection.address?.port;
      assert.equal(await portOf(a, join(dir.path, 'a')), p1);
      assert.equal(await portOf(b, join(dir.path, 'b')), p2);

      const has = async (data: string, id: string, text: string, via: CliCommand | undefined = undefined) => {
        const got = await runCli(['get', 'notes', id, '--data', data], via).catch(() => undefined);
        return (got?.body as { text?: string } | undefined)?.text === text;
      };
      // Written through process 1, read on process 2's child, and the other way.
      await runCli(['put', 'notes', 'from-a', '{"text":"a"}', '--data', join(dir.path, 'a')]);
      await runCli(['put', 'notes', 'from-b', '{"text":"b"}', '--data', join(dir.path, 'b')]);
      await eventually(() => has(join(dir.path, 'b'), 'from-a', 'a'), 30_000, "A's write on B");
      await eventually(() => has(join(dir.path, 'a'), 'from-b', 'b'), 30_000, "B's write on A");

      // File content crosses too: the chunks process 1 fetched from A are in the database,
      // where process 2 serves them to B; and a new version put on B reaches A.
      // A child that asked before the content was anywhere waits out its retry delay
      // (as with one process); "sync now" (its local API) asks again at once.
      const holds = async (child: { apiPort: number }, data: string, name: string, bytes: Buffer) => {
        const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
        await fetch(`http://127.0.0.1:${child.apiPort}/api/sync/now`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        const out = join(dir.path, `copy-${name}`);
        rmSync(out, { force: true });
        await runCli(['files', 'get', name, '-o', out, '--data', data]).catch(() => undefined);
        return existsSync(out) && sha(readFileSync(out)) === sha(bytes);
      };
      const pendingOn = async (metricsPort: number) => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return Number(/^trosyn_files_pending (\d+)/m.exec(text)?.[1] ?? NaN);
      };
      const plan = noise(900 * 1024 + 11, 51);
      writeFileSync(join(dir.path, 'plan.bin'), plan);
      await runCli(['files', 'put', join(dir.path, 'plan.bin'), '--data', join(dir.path, 'a')]);
      await eventually(() => holds(b, join(dir.path, 'b'), 'plan.bin', plan), 30_000, "A's file on B");
      const plan2 = noise(600 * 1024 + 5, 52);
      writeFileSync(join(dir.path, 'plan-v2.bin'), plan2);
      await runCli([
        'files',
        'put',
        join(dir.path, 'plan-v2.bin'),
        '--name',
        'plan.bin',
        '--data',
        join(dir.path, 'b'),
      ]);
      await eventually(
        () => holds(a, join(dir.path, 'a'), 'plan.bin', plan2),
        30_000,
        "B's new version on A",
      );
      // Each process counts the content complete, the one that fetched it and the other.
      for (const m of [m1, m2])
        await eventually(async () => (await pendingOn(m)) === 0, 30_000, `no file pending on :${m}`);

      // Revoked through process 1's data directory; C is connected to process 2.
      const devices = (await runCli(['devices', '--data', h2], cli)) as unknown as {
        deviceId: string;
        name: string;
      }[];
      assert.deepEqual(
        devices.map((d) => d.name).sort(),
        ['desk-a', 'desk-b', 'desk-c'],
        'every device, either process',
      );
      // The admin API (and dashboard) of process 2 lists them too, with the token process 1 made.
      assert.equal(second.adminToken, undefined, 'one admin token for the hub, made by the first process');
      const listed = await fetch(`http://127.0.0.1:${second.adminPort as number}/api/devices`, {
        headers: { authorization: `Bearer ${first.adminToken as string}` },
      });
      assert.equal(listed.status, 200);
      const viaApi = ((await listed.json()) as { devices: { name: string }[] }).devices.map((d) => d.name);
      assert.deepEqual(viaApi.sort(), ['desk-a', 'desk-b', 'desk-c']);
      const cId = devices.find((d) => d.name === 'desk-c')?.deviceId as string;
      await runCli(['devices', 'revoke', cId, '--data', h1], cli);
      await eventually(
        async () => (await status(c, join(dir.path, 'c'))).connection.lastError?.code === 'DEVICE_REVOKED',
        30_000,
        'C disconnected by process 2 as revoked',
      );

      // A burst of writes on A, acknowledged by process 1, which then dies without a word.
      const burst = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
      for (const id of burst)
        await runCli(['put', 'notes', id, `{"text":"${id}"}`, '--data', join(dir.path, 'a')]);
      await eventually(
        async () => (await status(a, join(dir.path, 'a'))).pending === 0,
        30_000,
        'the burst acknowledged by process 1',
      );
      await hub1.kill('SIGKILL');
      await runCli(['put', 'notes', 'after-kill', '{"text":"a again"}', '--data', join(dir.path, 'a')]);
      await eventually(
        async () => (await portOf(a, join(dir.path, 'a'))) === p2,
        30_000,
        'A moved to process 2',
      );
      for (const id of burst) await eventually(() => has(join(dir.path, 'b'), id, id), 30_000, `${id} on B`);
      await eventually(
        () => has(join(dir.path, 'b'), 'after-kill', 'a again'),
        30_000,
        "A's later write on B",
      );
      await runCli(['put', 'notes', 'from-b-2', '{"text":"b again"}', '--data', join(dir.path, 'b')]);
      await eventually(() => has(join(dir.path, 'a'), 'from-b-2', 'b again'), 30_000, "B's later write on A");
      assert.ok(await has(h2, 'after-kill', 'a again', cli), 'in the database');
    } finally {
      for (const agent of agents.reverse()) await agent.kill().catch(() => undefined);
    }
  });
});
