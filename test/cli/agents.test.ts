/**
 * The trosyn-sync command as a user meets it, with real processes: one agent per
 * data directory, errors that name their cause, a banner a person can read, and no
 * pile of pairing codes from restarts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
  closeSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { registryAt } from '../fixtures/registry.js';
import { eventually, tempDir } from '../helpers.js';
import { CLI, freePort, hubArgs, runCli, runText as run, startAgent } from '../e2e/helpers.js';

const dir = tempDir('trosyn-cli-');
after(() => dir.remove());

/** Starts a long-running CLI process and gives back its output so far, then stops it. */
async function runFor(
  args: string[],
  until: (out: string) => boolean,
): Promise<{ stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    await eventually(() => until(stdout), 20_000, `output of ${args[0]}; stderr: ${stderr}`);
  } finally {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  return { stdout, stderr };
}

describe('the trosyn-sync command', () => {
  it('runs one agent per data directory: a second start names the running one and harms nothing', async () => {
    const data = join(dir.path, 'locked');
    const port = await freePort();
    const first = startAgent([...hubArgs(data, port), '--no-admin-api']);
    try {
      await first.waitFor((l) => l.event === 'started', 20_000, 'first hub');
      const agentFile = readFileSync(join(data, 'agent.json'), 'utf8');
      const second = await run([...hubArgs(data, await freePort()), '--no-admin-api']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`DATA_DIR_LOCKED: .*process ${first.proc.pid}`));
      assert.equal(
        readFileSync(join(data, 'agent.json'), 'utf8'),
        agentFile,
        'the running hub’s note is untouched',
      );
      const status = await runCli(['status', '--data', data]);
      assert.equal(
        (status.running as { pid: number }).pid,
        first.proc.pid,
        'status still sees the running hub',
      );
      // One-shot commands still work beside the running agent.
      await runCli(['put', 'notes', 'n1', '{"v":1}', '--data', data]);
      assert.deepEqual((await runCli(['get', 'notes', 'n1', '--data', data])).body, { v: 1 });
      // A killed agent leaves no stale lock behind.
      await first.kill('SIGKILL');
      const again = startAgent([...hubArgs(data, port), '--no-admin-api']);
      await again.waitFor((l) => l.event === 'started', 20_000, 'hub after a kill');
      await again.kill();
    } finally {
      await first.kill('SIGKILL');
    }
  });

  it('names the cause when --data is a file, the directory cannot be written, or the port is taken', async () => {
    const file = join(dir.path, 'a-file');
    writeFileSync(file, 'not a directory');
    for (const args of [
      ['hub', '--no-discovery'],
      ['child', '--no-discovery'],
      ['put', 'notes', 'x', '{}'],
      ['status'],
    ]) {
      const r = await run([...args, '--data', file]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /^trosyn-sync: DATA_DIR_NOT_A_DIRECTORY: /m, `${args[0]}: ${r.stderr}`);
    }
    // sysfs refuses new directories, even to root.
    const unwritable = await run(['hub', '--data', `/sys/trosyn-test-${process.pid}`, '--no-discovery']);
    assert.match(unwritable.stderr, /^trosyn-sync: DATA_DIR_NOT_WRITABLE: /m);

    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const r = await run([
        'hub',
        '--data',
        join(dir.path, 'port'),
        '--host',
        '127.0.0.1',
        '--port',
        String(taken),
        '--no-discovery',
        '--no-admin-api',
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^trosyn-sync: PORT_IN_USE: the sync port ${taken} is in use`));
      const api = await run([
        'hub',
        '--data',
        join(dir.path, 'port'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--http-port',
        String(taken),
        '--no-discovery',
      ]);
      assert.match(api.stderr, /^trosyn-sync: PORT_IN_USE: .*--http-port/m);
      assert.doesNotMatch(api.stderr, /admin token was created/, 'a failed start uses up no admin token');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('--identity-key-file on a hub in SQLite files is a usage error that names --store', async () => {
    const data = join(dir.path, 'sqlite-hub-with-key');
    const r = await run([...hubArgs(data, await freePort()), '--identity-key-file', join(dir.path, 'key')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--identity-key-file .*give --store postgres/);
    assert.ok(!existsSync(join(data, 'identity')), 'nothing made');
  });

  it('a store damaged in the middle of the file gives STORE_CORRUPT, not an internal error', async () => {
    const data = join(dir.path, 'corrupt');
    const port = await freePort();
    const hub = startAgent([...hubArgs(data, port), '--no-admin-api']);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub');
    await hub.kill();
    // A few large bodies (that do not compress) spread the store over many pages.
    for (let i = 0; i < 3; i++) {
      const pad = randomBytes(15_000).toString('hex');
      await runCli(['put', 'notes', `n${i}`, JSON.stringify({ i, pad }), '--data', data]);
    }
    const db = join(data, 'trosyn.db');
    const size = statSync(db).size;
    assert.ok(size > 64 * 1024, `the store spans many pages (${size} bytes)`);
    // Garbage over pages in the middle; the header stays intact, so the file still opens.
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(16 * 1024, 0x5a), 0, 16 * 1024, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    const r = await run(['ls', 'notes', '--data', data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^trosyn-sync: STORE_CORRUPT: the store .*trosyn\.db is damaged/);
  });

  it('a restarted hub issues no new pairing code while one is active', async () => {
    const data = join(dir.path, 'codes');
    const args = [...hubArgs(data, await freePort()), '--no-admin-api'];
    const first = startAgent(args);
    const one = await first.waitFor((l) => l.event === 'started', 20_000, 'first start');
    await first.kill();
    assert.match(String(one.pairingCode), /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    for (let i = 0; i < 3; i++) {
      const again = startAgent(args);
      const started = await again.waitFor((l) => l.event === 'started', 20_000, 'restart');
      await again.kill();
      assert.equal(started.pairingCode, undefined, 'no new code at a restart');
      assert.equal(started.activePairingCodes, 1);
    }
    const registry = registryAt(join(data, 'hub.db'));
    await registry.start();
    try {
      assert.equal((await registry.activePairingCodes()).length, 1, 'four starts, one active code');
    } finally {
      await registry.stop();
    }
  });

  it('shows a person readable text: the banner on stdout, log lines as text on stderr; JSON only when asked', async () => {
    const data = join(dir.path, 'banner');
    mkdirSync(data, { recursive: true });
    const args = [
      ...hubArgs(data, await freePort()),
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(await freePort()),
      '--log-level',
      'info',
    ];
    const text = await runFor(args, (out) => out.includes('Stop: Ctrl-C'));
    const firstLine = text.stdout.split('\n')[0] ?? '';
    assert.match(firstLine, /^Trosyn Sync hub "trosyn-hub" is running/);
    for (const line of [...text.stdout.split('\n'), ...text.stderr.split('\n')])
      assert.doesNotMatch(line, /^\{"/, 'no JSON line in the human view');
    assert.match(text.stderr, /INFO trosyn:hub: hub started/);
    assert.match(
      text.stdout,
      /sync service {2}port \d+ .* on 127\.0\.0\.1/,
      'the bound address, not the LAN one',
    );
    const api = /dashboard +(http:\/\/127\.0\.0\.1:\d+)\/ /.exec(text.stdout);
    assert.ok(api, `the dashboard line names the loopback address it listens on: ${text.stdout}`);
    assert.doesNotMatch(text.stdout, /certificate SHA-256/, 'plain HTTP on loopback: no certificate');

    const json = await runFor([...args, '--log-format', 'json'], (out) => out.includes('Stop: Ctrl-C'));
    const logLines = json.stderr.split('\n').filter(Boolean);
    assert.ok(logLines.length > 0);
    for (const line of logLines) assert.equal(typeof (JSON.parse(line) as { msg: string }).msg, 'string');
  });

  it('--log-file logs into numbered files that roll over at a size, keeping the newest, written out at exit', async () => {
    const data = join(dir.path, 'log-file');
    const logs = join(dir.path, 'logs');
    const args = [
      ...hubArgs(data, await freePort()),
      '--http-port',
      String(await freePort()),
      '--log-level',
      'debug',
      '--log-format',
      'json',
      '--log-file',
      join(logs, 'hub.log'),
      '--log-file-size',
      '1k',
      '--log-file-keep',
      '2',
    ];
    let last = { stdout: '', stderr: '' };
    for (let run = 0; run < 6; run++) last = await runFor(args, (out) => out.includes('Stop: Ctrl-C'));
    assert.equal(last.stderr, '', 'nothing logged on stderr');
    const files = readdirSync(logs)
      .map((name) => /^hub\.(\d+)\.log$/.exec(name))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    assert.deepEqual(readdirSync(logs).length, files.length, 'only numbered log files');
    assert.ok(
      files.length >= 2 && files.length <= 3,
      `the current file and at most 2 older: ${files.join(', ')}`,
    );
    assert.ok((files.at(-1) as number) > 3, `it rolled over several times: ${files.join(', ')}`);
    const newest = readFileSync(join(logs, `hub.${files.at(-1)}.log`), 'utf8');
    const entries = newest
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string });
    assert.equal(entries.at(-1)?.msg, 'hub stopped', 'the last line, written at exit');
    for (const n of files.slice(0, -1))
      assert.ok(statSync(join(logs, `hub.${n}.log`)).size >= 1024, 'an older file is full');

    const bad = await run([
      ...hubArgs(data, await freePort()),
      '--log-file',
      join(logs, 'x.log'),
      '--log-file-size',
      'big',
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /invalid --log-file-size big/);
  });

  it('npm start starts from the built output when it is current, without building again', async () => {
    const r = await new Promise<{ code: number; stderr: string; stdout: string }>((resolve) => {
      const proc = spawn(process.execPath, ['scripts/start.mjs', '--help'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      proc.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: trosyn-sync hub/, 'it runs the hub command');
    assert.doesNotMatch(r.stderr, /building/, 'npm test has just built: nothing to build');
  });
});
