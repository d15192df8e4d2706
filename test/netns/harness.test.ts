import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { loudSkip, NetnsLab, netnsSkipReason, requireNetns } from './harness.js';

const skipReason = await netnsSkipReason();

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** True while the process runs; a zombie (killed, not yet reaped by init) counts as gone. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe(
  'network namespace lab',
  { skip: skipReason ? loudSkip('network namespace lab', skipReason) : false },
  () => {
    let lab: NetnsLab | undefined;
    before(async () => {
      lab = await NetnsLab.create({ hosts: ['a', 'b'] });
    });
    after(async () => {
      await lab?.destroy();
    });

    it('gives each host its addresses on one link, and leaves the machine alone', async () => {
      if (!lab) throw new Error('no lab');
      const [a, b] = lab.hosts;
      assert.ok(a && b);
      assert.deepEqual([a.ipv4, b.ipv4], ['10.77.0.1', '10.77.0.2']);
      const addr = await a.exec('ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
      assert.match(addr.stdout, /inet 10\.77\.0\.1\/24/);
      if (lab.ipv6) {
        assert.match(addr.stdout, /inet6 fd77::1\/64/);
        assert.match(a.linkLocal, /^fe80::[0-9a-f:]+%eth0$/);
        assert.doesNotMatch(addr.stdout, /tentative/);
      }
      const routes = await a.exec('ip', ['route', 'show', '224.0.0.0/4']);
      assert.match(routes.stdout, /224\.0\.0\.0\/4 dev eth0/);
      const links = await a.exec('ip', ['-o', 'link', 'show']);
      assert.deepEqual(
        [...links.stdout.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]),
        ['lo', 'eth0'],
        'a host sees only its own lo and eth0',
      );
    });

    it('runs programs inside hosts, which reach each other over IPv4 and IPv6', async () => {
      if (!lab) throw new Error('no lab');
      const [a, b] = lab.hosts;
      assert.ok(a && b);
      const server = a.spawn(process.execPath, [
        '-e',
        "require('net').createServer((s) => s.end('hello\\n')).listen(17999, '::', () => console.log('listening'))",
      ]);
      await server.waitForLine(/^listening$/, { timeoutMs: 10_000 });
      const targets = [a.ipv4, ...(lab.ipv6 ? [a.ipv6, a.linkLocal] : [])];
      for (const host of targets) {
        const r = await b.exec(process.execPath, [
          '-e',
          `require('net').connect({ host: ${JSON.stringify(host)}, port: 17999 }).on('data', (d) => process.stdout.write(d))`,
        ]);
        assert.equal(r.stdout, 'hello\n', `from b to ${host}: ${r.stderr}`);
      }
      const ended = await server.stop();
      assert.equal(ended.signal, 'SIGTERM');
    });

    it('drops and allows multicast in one host', async (t) => {
      if (!(await requireNetns(t, ['nft']))) return;
      if (!lab) throw new Error('no lab');
      const a = lab.host('a');
      await a.dropMulticast();
      assert.match(
        (await a.exec('nft', ['list', 'ruleset'])).stdout,
        /ip daddr 224\.0\.0\.0\/4 meta l4proto udp drop/,
      );
      await a.allowMulticast();
      assert.equal((await a.exec('nft', ['list', 'ruleset'])).stdout.trim(), '');
    });

    it('destroy() stops every process and deletes every namespace', async () => {
      const own = await NetnsLab.create({ hosts: 2 });
      const names = [own.bridgeNs, ...own.hosts.map((h) => h.ns)];
      const sleeper = own.host('h1').spawn('sleep', ['60']);
      await waitFor(() => sleeper.pid !== undefined, 5_000, 'sleep to start');
      assert.ok(names.every((n) => namespaces().includes(n)));
      await own.destroy();
      await own.destroy();
      assert.equal(sleeper.hasExited, true);
      assert.deepEqual(
        names.filter((n) => namespaces().includes(n)),
        [],
      );
    });

    for (const ending of ['throw', 'wait'] as const) {
      it(`a test process that ${ending === 'throw' ? 'crashes' : 'is interrupted'} leaves nothing behind`, async () => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'test/netns/fixtures/abandoned-lab.ts', ending],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, NODE_TEST_CONTEXT: undefined },
          },
        );
        const exited = new Promise((resolve) => child.once('close', resolve));
        const first = await Promise.race([
          new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error('fixture printed nothing')), 20_000).unref(),
          ),
        ]);
        const { namespaces: names, pid } = JSON.parse(first) as { namespaces: string[]; pid: number };
        if (ending === 'wait') {
          assert.ok(names.every((n) => namespaces().includes(n)));
          child.kill('SIGINT');
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
        assert.notEqual(child.exitCode ?? child.signalCode, null, 'the fixture ended');
        await waitFor(() => !alive(pid), 5_000, 'the process inside the lab to be killed');
        assert.deepEqual(
          names.filter((n) => namespaces().includes(n)),
          [],
        );
      });
    }
  },
);
