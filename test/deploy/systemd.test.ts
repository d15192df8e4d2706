/**
 * The systemd units in deploy/systemd: hardened as the house asks (systemd's own
 * offline security analysis scores them), and their ExecStart lines are commands
 * that really run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { CLI, freePort } from '../e2e/helpers.js';

const UNITS = ['trosyn-hub.service', 'trosyn-child@.service'];
const dir = tempDir('trosyn-systemd-');
after(() => dir.remove());

/** A unit's directives, `Key=value` lines outside comments, in order. */
function directives(unit: string): [string, string][] {
  return readFileSync(resolve('deploy/systemd', unit), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

describe('systemd units', () => {
  for (const unit of UNITS) {
    it(`${unit}: systemd-analyze security --offline scores it at most 3.5, with the hardening asked for`, () => {
      const out = execFileSync(
        'systemd-analyze',
        ['security', '--offline=true', resolve('deploy/systemd', unit)],
        {
          encoding: 'utf8',
        },
      );
      const score = /Overall exposure level for .*: (\d+(\.\d+)?)/.exec(out);
      assert.ok(score, out.slice(-500));
      assert.ok(Number(score[1]) <= 3.5, `exposure ${score[1]}`);
      const d = new Map(directives(unit));
      for (const [key, value] of [
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ReadWritePaths', '/var/lib/trosyn'],
        ['PrivateTmp', 'yes'],
        ['ProtectHome', 'yes'],
        ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX AF_NETLINK'],
        ['CapabilityBoundingSet', ''],
        ['User', 'trosyn'],
      ])
        assert.equal(d.get(key as string), value, `${unit}: ${key}`);
      assert.equal(d.has('MemoryDenyWriteExecute'), false, 'V8 needs to write code it runs');
    });
  }

  it("the hub unit's ExecStart runs a hub, which stops cleanly on the unit's KillSignal", async () => {
    const d = new Map(directives('trosyn-hub.service'));
    assert.equal(d.get('KillSignal'), 'SIGINT');
    const [bin, ...args] = (d.get('ExecStart') ?? '').split(' ');
    assert.equal(bin, '/usr/local/bin/trosyn-sync');
    const data = join(dir.path, 'var-lib-trosyn');
    const proc = spawn(
      process.execPath,
      [
        CLI,
        ...args.map((a) => a.replace('/var/lib/trosyn', data)),
        '--no-discovery',
        '--port',
        String(await freePort()),
        '--http-port',
        String(await freePort()),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    proc.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    const exited = new Promise<number | string | null>((r) =>
      proc.once('exit', (code, signal) => r(code ?? signal)),
    );
    await eventually(() => /admin token/i.test(out), 20_000, `the hub starts; stderr: ${err}`);
    // Logs are JSON lines for the journal.
    const first = err.split('\n').find((l) => l.trim());
    assert.doesNotThrow(() => JSON.parse(first ?? ''), `a JSON log line: ${first}`);
    proc.kill('SIGINT');
    assert.equal(await exited, 0, 'a clean stop');
  });

  it("the child unit's ExecStart is a child command (it asks to be paired first)", () => {
    const d = new Map(directives('trosyn-child@.service'));
    const [, ...args] = (d.get('ExecStart') ?? '').replaceAll('%i', 'desk').split(' ');
    const data = join(dir.path, 'var-lib-trosyn-child');
    let failure: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [CLI, ...args.map((a) => a.replace('/var/lib/trosyn', data))], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      failure = e as { status: number; stderr: string };
    }
    assert.equal(failure?.status, 1);
    assert.match(failure?.stderr ?? '', /NOT_PAIRED/);
  });
});
