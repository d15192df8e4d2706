/**
 * Running out of file descriptors is said in the log: with made-up figures and a
 * fake clock, when it starts, once a minute while it lasts, and when it ends; and
 * with a real hub process under a low `ulimit -n`, flooded with held-open
 * connections until the system refuses more, which then serves again once they
 * close. Under a limit too low to even load the program, the command says so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { type DescriptorUse, DescriptorWatch, descriptorUse } from '../../src/observability/descriptors.js';
import { eventually, FakeClock, tempDir } from '../helpers.js';
import { tooFewDescriptors } from '../../src/cli/descriptors.js';
import { CLI, freePort, hubArgs, startAgent } from '../e2e/helpers.js';

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('file descriptors running out', () => {
  it('is logged when it starts, once a minute while it lasts, and when it ends', async () => {
    const clock = new FakeClock();
    const { logger, lines } = capture();
    let use: DescriptorUse = { open: 100, limit: 1000 };
    const watch = new DescriptorWatch({ logger, clock, read: () => use });
    await watch.start();
    assert.equal(lines.length, 0, 'nothing to say at 10 %');
    use = { open: 950, limit: 1000 };
    clock.advance(5000);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.code, 'DESCRIPTORS_EXHAUSTED');
    assert.equal(lines[0]?.open, 950);
    assert.match(String(lines[0]?.msg), /950 of 1000 in use.*LimitNOFILE/);
    clock.advance(30_000);
    assert.equal(lines.length, 1, 'not again within the minute');
    clock.advance(30_000);
    assert.equal(lines.length, 2, 'again after a minute');
    use = { open: 850, limit: 1000 };
    clock.advance(60_000);
    assert.equal(
      lines.length,
      2,
      'between 80 and 90 %: still short, not said again until it ends or a minute passes',
    );
    use = { open: 500, limit: 1000 };
    clock.advance(5000);
    assert.equal(lines.length, 3);
    assert.match(String(lines[2]?.msg), /available again: 500 of 1000/);
    clock.advance(60_000);
    assert.equal(lines.length, 3, 'said once');
    await watch.stop();
  });

  it('reads this process: its open descriptors and its limit', () => {
    const use = descriptorUse();
    assert.ok(use, 'Linux has /proc/self');
    assert.ok(use.open > 2 && use.open < use.limit, JSON.stringify(use));
  });

  it('a hub flooded under a low ulimit -n says so, keeps running, and answers again once the flood ends', async () => {
    const dir = tempDir('trosyn-descriptors-');
    const port = await freePort();
    // The hub starts with 128 descriptors at most (Node, SQLite and the hub's own take about 30).
    const hub = startAgent([...hubArgs(join(dir.path, 'hub'), port), '--log-format', 'json'], {
      prefix: ['bash', '-c', 'ulimit -n 128 && exec "$@"', 'bash'],
    });
    const sockets: Socket[] = [];
    try {
      await hub.waitFor((l) => l.event === 'started', 30_000, 'hub starts');
      // Held open without TLS (each within the handshake's 10 s), 150 of them: more than it
      // can hold. Each from an address of its own: from one, the rate limit cuts them first.
      for (let i = 0; i < 150; i++) {
        const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.1.${i + 1}` });
        s.on('error', () => undefined);
        sockets.push(s);
      }
      await eventually(
        () => hub.stderr().includes('"code":"DESCRIPTORS_EXHAUSTED"'),
        20_000,
        'the hub logs that descriptors ran out',
      );
      for (const s of sockets) s.destroy();
      await eventually(
        () => hub.stderr().includes('file descriptors available again'),
        20_000,
        'and that they are available again',
      );
      assert.equal(hub.proc.exitCode, null, 'the hub kept running');
      // A new connection is accepted and answered (a TLS handshake starts: the server speaks).
      const answered = await new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write(Buffer.from('not tls\r\n\r\n')));
        s.once('data', () => resolve(true));
        s.once('close', () => resolve(true));
        s.once('error', () => resolve(false));
        setTimeout(() => resolve(false), 10_000).unref();
      });
      assert.equal(answered, true);
    } finally {
      for (const s of sockets) s.destroy();
      await hub.kill();
      dir.remove();
    }
  });

  it('a limit too low to load the program is a clear error naming the limit, not a module file', () => {
    const dir = tempDir('trosyn-descriptors-');
    try {
      const data = join(dir.path, 'hub');
      const run = spawnSync(
        'bash',
        [
          '-c',
          'ulimit -n 48 && exec "$@"',
          'bash',
          process.execPath,
          CLI,
          'hub',
          '--data',
          data,
          '--port',
          '0',
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(run.status, 1, run.stderr);
      assert.match(
        run.stderr,
        /^trosyn-sync: DESCRIPTORS_TOO_FEW: the process may open only 48 files at once/,
      );
      assert.match(run.stderr, /LimitNOFILE/);
      assert.doesNotMatch(run.stderr, /node_modules|\.js/, 'no module file named');
      assert.equal(existsSync(data), false, 'nothing was created before it stopped');
    } finally {
      dir.remove();
    }
  });

  it('knows EMFILE from other errors', () => {
    const emfile = Object.assign(new Error("EMFILE: too many open files, open 'x.js'"), { code: 'EMFILE' });
    assert.match(tooFewDescriptors(emfile) ?? '', /files at once \(ulimit -n\)/);
    assert.equal(tooFewDescriptors(Object.assign(new Error('ENOENT'), { code: 'ENOENT' })), undefined);
    assert.equal(tooFewDescriptors('EMFILE'), undefined);
  });
});
