/**
 * The hub on PostgreSQL end to end, with real processes: a hub on a throwaway
 * cluster and a paired child, writes on both sides reaching the other; the hub
 * SIGKILLed and started again with `--data` alone (the store remembered), and
 * nothing lost on either side.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { passwordDatabase, useClusterForFile } from '../helpers-postgres.js';
import {
  CLI,
  type CliCommand,
  freePort,
  hubArgs,
  runCli,
  startAgent,
  startChildAgent,
  pairWithHub,
} from './helpers.js';

const dir = tempDir('trosyn-e2e-pg-');
after(() => dir.remove());
const cluster = useClusterForFile();

const PASSWORD = 'e2e-Secret:pw@hub';

describe('a hub on PostgreSQL and a child, as processes', () => {
  it('sync both ways, and a hub SIGKILLed and restarted with --data alone loses nothing', async () => {
    const pg = await cluster();
    const { database, env, store } = await passwordDatabase(pg, 'trosyn_e2e', PASSWORD, dir.path);
    const cli: CliCommand = { command: [process.execPath, CLI], env };
    const hubData = join(dir.path, 'hub');
    const childData = join(dir.path, 'child');
    const port = await freePort();

    let hub = startAgent([...hubArgs(hubData, port), '--no-admin-api', '--store', store], { cli });
    let child: Awaited<ReturnType<typeof startChildAgent>> | undefined;
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub on PostgreSQL');
      assert.equal(started.store, store);
      await pairWithHub(started.pairingCode as string, childData, port, 'desk-pg');
      child = await startChildAgent(childData, port, 'desk-pg');
      await child.agent.waitFor((l) => l.event === 'caught-up', 30_000, 'the child in sync');

      const has = async (data: string, id: string, text: string): Promise<boolean> => {
        const got = await runCli(['get', 'notes', id, '--data', data], cli).catch(() => undefined);
        return (got?.body as { text?: string } | undefined)?.text === text;
      };
      await runCli(['put', 'notes', 'from-hub', '{"text":"hub 1"}', '--data', hubData], cli);
      await runCli(['put', 'notes', 'from-child', '{"text":"child 1"}', '--data', childData]);
      await eventually(() => has(childData, 'from-hub', 'hub 1'), 30_000, "the hub's write on the child");
      await eventually(() => has(hubData, 'from-child', 'child 1'), 30_000, "the child's write on the hub");
      const rows = await pg.query('SELECT count(*)::int AS n FROM trosyn_store.revisions', [], database);
      assert.ok(rows.rows[0].n >= 2, 'the records are in PostgreSQL');

      // The hub dies without a word; the child writes on meanwhile.
      await hub.kill('SIGKILL');
      await runCli(['put', 'notes', 'while-down', '{"text":"child 2"}', '--data', childData]);
      hub = startAgent([...hubArgs(hubData, port), '--no-admin-api'], { cli });
      await hub.waitFor((l) => l.event === 'started', 30_000, 'the hub again, from --data alone');
      await runCli(['put', 'notes', 'after-restart', '{"text":"hub 2"}', '--data', hubData], cli);

      await eventually(
        () => has(hubData, 'while-down', 'child 2'),
        30_000,
        "the child's offline write on the hub",
      );
      await eventually(
        () => has(childData, 'after-restart', 'hub 2'),
        30_000,
        "the hub's new write on the child",
      );
      for (const [id, text] of [
        ['from-hub', 'hub 1'],
        ['from-child', 'child 1'],
      ] as const) {
        assert.ok(await has(hubData, id, text), `${id} still on the hub`);
        assert.ok(await has(childData, id, text), `${id} still on the child`);
      }
      const listed = (await runCli(['ls', 'notes', '--data', hubData], cli)).records as { id: string }[];
      assert.deepEqual(listed.map((r) => r.id).sort(), [
        'after-restart',
        'from-child',
        'from-hub',
        'while-down',
      ]);
      const devices = (await runCli(['devices', '--data', hubData], cli)) as unknown as {
        name: string;
        state: string;
      }[];
      assert.deepEqual(
        devices.map((d) => [d.name, d.state]),
        [['desk-pg', 'approved']],
        'the pairing survived the kill',
      );
    } finally {
      await child?.agent.kill();
      await hub.kill();
    }
  });
});
