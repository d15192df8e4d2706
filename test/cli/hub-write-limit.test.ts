/**
 * `trosyn-sync hub --write-limit` / `--write-burst` and config.json's `writeLimit` /
 * `writeBurst`: the per-device write limit reaches the running hub, which holds a
 * paired child's batches over it (logged with the limit it applies) and still takes
 * every write; values that are not a limit are refused before the hub starts.
 */
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadNodeConfig } from '../../src/config.js';
import { eventually, tempDir } from '../helpers.js';
import { freePort, hubArgs, runCli, runText, startAgent, startChildAgent } from '../e2e/helpers.js';

const dir = tempDir('trosyn-cli-write-limit-');
after(() => dir.remove());

describe('trosyn-sync hub --write-limit', () => {
  it('refuses a limit or a burst that is not a number of revisions', async () => {
    for (const [flag, bad, message] of [
      ['--write-limit', 'abc', /invalid write limit abc/],
      ['--write-limit', '-1', /invalid write limit -1/],
      ['--write-burst', '1.5', /invalid number of revisions 1\.5/],
    ] as const) {
      const r = await runText([...hubArgs(join(dir.path, 'bad'), await freePort()), flag, bad]);
      assert.equal(r.code, 2, `${flag} ${bad}`);
      assert.match(r.stderr, message);
    }
  });

  it("config.json's writeLimit is a number or off, its writeBurst a whole number", () => {
    const at = join(dir.path, 'config');
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, 'config.json'), JSON.stringify({ writeLimit: 'off', writeBurst: 0 }));
    assert.deepEqual(loadNodeConfig(at), { writeLimit: 'off', writeBurst: 0 });
    writeFileSync(join(at, 'config.json'), JSON.stringify({ writeLimit: 'fast' }));
    assert.throws(() => loadNodeConfig(at), { code: 'INVALID_CONFIG' });
    writeFileSync(join(at, 'config.json'), JSON.stringify({ writeBurst: -5 }));
    assert.throws(() => loadNodeConfig(at), { code: 'INVALID_CONFIG' });
  });

  it('the running hub holds a child over the limit it was given, and takes its writes', async () => {
    const port = await freePort();
    const hubDir = join(dir.path, 'hub');
    const childDir = join(dir.path, 'child');
    // config.json says off; the flag wins over it.
    mkdirSync(hubDir, { recursive: true });
    writeFileSync(join(hubDir, 'config.json'), JSON.stringify({ writeLimit: 'off', writeBurst: 7 }));
    const hub = startAgent([
      ...hubArgs(hubDir, port),
      '--no-admin-api',
      '--log-format',
      'json',
      '--write-limit',
      '50',
    ]);
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub start');
      await runCli(['pair', String(started.pairingCode), '--hub', `127.0.0.1:${port}`, '--data', childDir]);
      const { agent: child } = await startChildAgent(childDir, port, 'desk');
      try {
        await child.waitFor((l) => l.event === 'connected', 15_000, 'child connects');
        // One revision in a batch costs 21, beyond the burst of 7 from config.json: held.
        await runCli(['put', 'notes', 'n1', '{"text":"held, not refused"}', '--data', childDir]);
        await eventually(
          () => hub.stderr().includes('device writes throttled'),
          15_000,
          'the hold in the hub log',
        );
        const line = hub
          .stderr()
          .split('\n')
          .filter((l) => l.includes('device writes throttled'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
        assert.equal(line?.perSecond, 50);
        assert.equal(line?.burst, 7);
        // The name the hub knows the device by (the pairing's: this machine's name).
        assert.ok(typeof line?.name === 'string' && line.name !== '', JSON.stringify(line));
        assert.match(String(line?.device), /^[0-9A-Z]{7}$/);
        await eventually(
          async () =>
            (await runCli(['get', 'notes', 'n1', '--data', hubDir]).catch(() => undefined)) !== undefined,
          15_000,
          'the write on the hub',
        );
      } finally {
        await child.kill('SIGKILL');
      }
    } finally {
      await hub.kill('SIGKILL');
    }
  });
});
