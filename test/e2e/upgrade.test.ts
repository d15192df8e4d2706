/**
 * Upgrades one node at a time, with the previous release built from git: a hub and
 * a child paired by release 0.1.0 (the commit this development started from), then
 * the hub upgraded to this build while the child stays old, and, the other way
 * round, the child upgraded while the hub stays old. Records sync both ways before
 * and after each upgrade, and the upgraded store keeps everything it had.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import { childArgs, CLI, freePort } from './helpers.js';

/** Release 0.1.0: the last commit before the work on documents, the dashboard and operations. */
const PREVIOUS_RELEASE = 'a3d98a2';

const dir = tempDir('trosyn-upgrade-');
const running = new Set<ChildProcess>();
after(() => {
  for (const p of running) p.kill('SIGKILL');
  dir.remove();
});

let oldCli = '';

/** Compiles the previous release's sources from git (types not checked), beside this build's dependencies. */
function buildPrevious(): string {
  const build = join(dir.path, 'previous');
  mkdirSync(join(build, 'tree'), { recursive: true });
  const archive = execFileSync(
    'git',
    ['archive', PREVIOUS_RELEASE, 'src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'],
    {
      maxBuffer: 1 << 28,
    },
  );
  execFileSync('tar', ['-x', '-C', join(build, 'tree')], { input: archive });
  execFileSync('cp', [join(build, 'tree', 'package.json'), build]);
  symlinkSync(resolve('node_modules'), join(build, 'node_modules'));
  execFileSync(
    process.execPath,
    [
      resolve('node_modules/typescript/bin/tsc'),
      '-p',
      join(build, 'tree', 'tsconfig.build.json'),
      '--outDir',
      join(build, 'dist'),
      '--declaration',
      'false',
      '--sourceMap',
      'false',
      '--noCheck',
    ],
    { stdio: 'inherit' },
  );
  return join(build, 'dist', 'cli', 'main.js');
}

/** Runs a CLI to completion with --json; its parsed output, or undefined when it fails. */
function run(cli: string, args: string[]): Record<string, unknown> | undefined {
  try {
    const out = execFileSync(process.execPath, [cli, ...args, '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {};
  } catch {
    return undefined;
  }
}

interface Agent {
  proc: ChildProcess;
  out: () => string;
  stop(): Promise<void>;
}

function agent(cli: string, args: string[]): Agent {
  const proc = spawn(process.execPath, [cli, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr?.resume();
  return {
    proc,
    out: () => out,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
      running.delete(proc);
    },
  };
}

async function hub(cli: string, data: string, port: number): Promise<Agent> {
  const a = agent(cli, [
    'hub',
    '--data',
    data,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--no-discovery',
    '--no-admin-api',
  ]);
  await eventually(() => a.out().includes('"event":"started"'), 30_000, `hub (${cli}) starts`);
  return a;
}

async function child(cli: string, data: string, port: number): Promise<Agent> {
  const a = agent(cli, childArgs(data, port, '--retry-max', '300', '--api-port', '0'));
  await eventually(() => a.out().includes('"event":"connected"'), 30_000, `child (${cli}) connects`);
  return a;
}

/** Pairs a child with a hub, both of the previous release. */
async function pairPrevious(hubData: string, childData: string, port: number): Promise<void> {
  const code = run(oldCli, ['pairing-code', '--data', hubData])?.code as string;
  assert.ok(code, 'the previous release issues a code');
  assert.ok(run(oldCli, ['pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'desk']));
}

const has = (cli: string, data: string, id: string) => async () =>
  run(cli, ['get', 'notes', id, '--data', data]) !== undefined;

describe('upgrading one node at a time, against the previous release', () => {
  before(() => {
    oldCli = buildPrevious();
    assert.ok(existsSync(oldCli));
  });

  it('the hub upgraded first: the old child keeps syncing with it, both ways', async () => {
    const hubData = join(dir.path, 'a-hub');
    const childData = join(dir.path, 'a-child');
    const port = await freePort();
    let h = await hub(oldCli, hubData, port);
    await pairPrevious(hubData, childData, port);
    const c = await child(oldCli, childData, port);
    assert.ok(run(oldCli, ['put', 'notes', 'old-child-1', '{"v":1}', '--data', childData]));
    assert.ok(run(oldCli, ['put', 'notes', 'old-hub-1', '{"v":1}', '--data', hubData]));
    await eventually(has(oldCli, hubData, 'old-child-1'), 15_000, 'the old hub has the child’s write');
    await eventually(has(oldCli, childData, 'old-hub-1'), 15_000, 'the old child has the hub’s write');

    await h.stop();
    h = await hub(CLI, hubData, port);
    assert.ok(await has(CLI, hubData, 'old-child-1')(), 'the upgraded hub kept what it had');
    assert.ok(run(oldCli, ['put', 'notes', 'old-child-2', '{"v":2}', '--data', childData]));
    assert.ok(run(CLI, ['put', 'notes', 'new-hub-2', '{"v":2}', '--data', hubData]));
    await eventually(has(CLI, hubData, 'old-child-2'), 20_000, 'the new hub gets the old child’s write');
    await eventually(has(oldCli, childData, 'new-hub-2'), 20_000, 'the old child gets the new hub’s write');
    await c.stop();
    await h.stop();
  });

  it('the child upgraded first: it keeps syncing with the old hub, both ways', async () => {
    const hubData = join(dir.path, 'b-hub');
    const childData = join(dir.path, 'b-child');
    const port = await freePort();
    const h = await hub(oldCli, hubData, port);
    await pairPrevious(hubData, childData, port);
    let c = await child(oldCli, childData, port);
    assert.ok(run(oldCli, ['put', 'notes', 'before', '{"v":1}', '--data', childData]));
    await eventually(has(oldCli, hubData, 'before'), 15_000, 'the old hub has it');
    await c.stop();

    c = await child(CLI, childData, port);
    assert.ok(await has(CLI, childData, 'before')(), 'the upgraded child kept what it had');
    assert.ok(run(CLI, ['put', 'notes', 'new-child', '{"v":2}', '--data', childData]));
    assert.ok(run(oldCli, ['put', 'notes', 'old-hub', '{"v":2}', '--data', hubData]));
    await eventually(has(oldCli, hubData, 'new-child'), 20_000, 'the old hub gets the new child’s write');
    await eventually(has(CLI, childData, 'old-hub'), 20_000, 'the new child gets the old hub’s write');
    await c.stop();
    await h.stop();
  });
});
