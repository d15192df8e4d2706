/**
 * `trosyn-sync hub --heartbeat`: the interval every child is asked to use. A hub
 * frozen with SIGSTOP keeps its sockets open and answers nothing (no RST, as behind
 * a partition): its child gives it up for HEARTBEAT_TIMEOUT, well before the 45 s
 * that three default heartbeats take, and connects again once the hub runs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { freePort, hubArgs, runCli, runText, startAgent, startChildAgent } from '../e2e/helpers.js';

const dir = tempDir('trosyn-cli-heartbeat-');
after(() => dir.remove());

describe('trosyn-sync hub --heartbeat', () => {
  it('refuses an interval out of range', async () => {
    for (const bad of ['0', '0.1', 'abc', '601']) {
      const r = await runText([...hubArgs(join(dir.path, 'bad'), await freePort()), '--heartbeat', bad]);
      assert.equal(r.code, 2, bad);
      assert.match(
        r.stderr,
        new RegExp(`invalid number of seconds ${bad} \\(at least 0\\.5, at most 600\\)`),
      );
    }
  });

  it('a child gives up a frozen hub after three of its heartbeats, and comes back when it runs again', async () => {
    const port = await freePort();
    const hubDir = join(dir.path, 'hub');
    const childDir = join(dir.path, 'child');
    const hub = startAgent([...hubArgs(hubDir, port), '--no-admin-api', '--heartbeat', '0.5']);
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub start');
      await runCli(['pair', String(started.pairingCode), '--hub', `127.0.0.1:${port}`, '--data', childDir]);
      const { agent: child } = await startChildAgent(childDir, port, 'desk');
      try {
        await child.waitFor((l) => l.event === 'connected', 15_000, 'child connects');
        hub.proc.kill('SIGSTOP');
        // Three default heartbeats would take 45 s: a drop within 15 s is the hub's 0.5 s at work.
        const dropped = await child.waitFor(
          (l) => l.event === 'disconnected',
          15_000,
          'child gives up the hub',
        );
        assert.equal(dropped.code, 'HEARTBEAT_TIMEOUT');
        hub.proc.kill('SIGCONT');
        const seen = child.lines.length;
        await child.waitFor(
          (l) => l.event === 'connected' && child.lines.indexOf(l) >= seen,
          20_000,
          'child reconnects',
        );
      } finally {
        await child.kill('SIGKILL');
      }
    } finally {
      hub.proc.kill('SIGCONT');
      await hub.kill('SIGKILL');
    }
  });
});
