/**
 * The hub's metrics as `trosyn-sync hub` serves them, in a real process: the
 * metrics listener of --metrics-port without a token, the admin port's /metrics
 * with the admin token, both accepted by promtool.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, hubArgs, runText as run, startAgent } from '../e2e/helpers.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('trosyn-metrics-cli-');
after(() => dir.remove());

function promtoolCheck(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  return `${r.stdout}${r.stderr}`.trim();
}

describe('trosyn-sync hub --metrics-port', () => {
  it('serves /metrics on its own port without a token, and on the admin port with the token', async () => {
    const data = join(dir.path, 'hub');
    const adminPort = await freePort();
    const hub = startAgent([
      ...hubArgs(data, await freePort()),
      '--http-port',
      String(adminPort),
      '--metrics-port',
      '0',
    ]);
    try {
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub');
      const metricsPort = started.metricsPort as number;
      assert.ok(Number.isInteger(metricsPort) && metricsPort > 0, `metricsPort ${String(metricsPort)}`);
      const open = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(open.status, 200);
      const text = await open.text();
      assert.match(text, /^trosyn_build_info\{version="[^"]+",role="hub"\} 1$/m);
      assert.match(text, /^trosyn_devices\{state="approved"\} 0$/m);
      assert.equal(promtoolCheck(text), '');

      const url = `http://127.0.0.1:${adminPort}/metrics`;
      assert.equal((await fetch(url)).status, 401, 'the admin port wants the token');
      const authed = await fetch(url, { headers: { authorization: `Bearer ${String(started.adminToken)}` } });
      assert.equal(authed.status, 200);
      assert.equal(promtoolCheck(await authed.text()), '');
    } finally {
      await hub.kill();
    }
  });

  it('refuses --metrics-host without --metrics-port', async () => {
    const r = await run([
      ...hubArgs(join(dir.path, 'lonely'), await freePort()),
      '--metrics-host',
      '0.0.0.0',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--metrics-host needs --metrics-port/);
  });
});
