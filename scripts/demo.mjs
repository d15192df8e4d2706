#!/usr/bin/env node
// npm run demo: a hub and two children as separate processes on this machine
// (loopback only), paired with codes, writing on both sides and watching the
// records arrive on the other. Data stays in ./data/demo to explore afterwards.
import { spawn, execFileSync } from 'node:child_process';
import { rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const CLI = resolve('dist/cli/main.js');
const ROOT = resolve('data/demo');
const procs = [];
const say = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cli(...args) {
  return JSON.parse(execFileSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8' }) || '{}');
}

function start(name, args) {
  const proc = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(proc);
  const lines = [];
  let buffer = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => {
    buffer += d;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, nl)));
      buffer = buffer.slice(nl + 1);
    }
  });
  const waitFor = async (event, timeoutMs = 20_000) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const hit = lines.find((l) => l.event === event);
      if (hit) return hit;
      if (proc.exitCode !== null) throw new Error(`${name} exited`);
      await sleep(50);
    }
    throw new Error(`${name}: no ${event} within ${timeoutMs} ms`);
  };
  return { proc, waitFor };
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function until(check, what, timeoutMs = 10_000) {
  const began = Date.now();
  while (Date.now() - began < timeoutMs) {
    const value = check();
    if (value) return Date.now() - began;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function stopAll() {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
}
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

try {
  rmSync(ROOT, { recursive: true, force: true });
  mkdirSync(ROOT, { recursive: true });
  const port = await freePort();
  const hubDir = join(ROOT, 'hub');
  say('Trosyn Sync demo: one hub, two children, each a separate process on this machine.');
  say();
  say(`1. Starting the hub (${hubDir}) ...`);
  const hub = start('hub', [
    'hub',
    '--data',
    hubDir,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--no-discovery',
    '--no-admin-api',
    '--name',
    'demo-hub',
  ]);
  const started = await hub.waitFor('started');
  say(`   hub device ${started.deviceId.slice(0, 16)}... listening on 127.0.0.1:${port}`);

  const children = [];
  for (const name of ['alice', 'bob']) {
    const dir = join(ROOT, name);
    const { code } = cli('pairing-code', '--data', hubDir);
    say(`2. Pairing ${name} with code ${code} ...`);
    const paired = cli('pair', code, '--hub', `127.0.0.1:${port}`, '--data', dir, '--name', name);
    say(`   ${name} pinned hub ${paired.hubId.slice(0, 16)}... (${paired.state})`);
    const agent = start(name, [
      'child',
      '--data',
      dir,
      '--hub',
      `127.0.0.1:${port}`,
      '--no-discovery',
      '--no-api',
      '--name',
      name,
    ]);
    await agent.waitFor('connected');
    children.push({ name, dir, agent });
  }
  say();
  say('3. Writing on both children at once ...');
  const [alice, bob] = children;
  cli(
    'put',
    'requests',
    'laptop-001',
    '{"item":"laptop","by":"alice","status":"requested"}',
    '--data',
    alice.dir,
  );
  cli('put', 'policies', 'leave', '{"days":25,"note":"written on bob"}', '--data', bob.dir);
  const seen = (dir, collection, id) => {
    try {
      return cli('get', collection, id, '--data', dir);
    } catch {
      return undefined;
    }
  };
  const t1 = await until(() => seen(bob.dir, 'requests', 'laptop-001'), "alice's record on bob");
  say(
    `   alice's requests/laptop-001 arrived on bob after ${t1} ms: ${JSON.stringify(seen(bob.dir, 'requests', 'laptop-001').body)}`,
  );
  const t2 = await until(() => seen(alice.dir, 'policies', 'leave'), "bob's record on alice");
  say(
    `   bob's policies/leave arrived on alice after ${t2} ms: ${JSON.stringify(seen(alice.dir, 'policies', 'leave').body)}`,
  );
  say();
  say('4. Both go offline and edit the same request ...');
  for (const c of children) {
    c.agent.proc.kill('SIGTERM');
    await new Promise((r) => c.agent.proc.once('exit', r));
  }
  cli(
    'put',
    'requests',
    'laptop-001',
    '{"item":"laptop","by":"alice","status":"approved"}',
    '--data',
    alice.dir,
  );
  cli(
    'put',
    'requests',
    'laptop-001',
    '{"item":"laptop","by":"alice","status":"on hold"}',
    '--data',
    bob.dir,
  );
  say('   alice set "approved", bob set "on hold"; both come back online ...');
  for (const c of children) {
    c.agent = start(c.name, [
      'child',
      '--data',
      c.dir,
      '--hub',
      `127.0.0.1:${port}`,
      '--no-discovery',
      '--no-api',
      '--name',
      c.name,
    ]);
    await c.agent.waitFor('connected');
  }
  await until(() => {
    const a = seen(alice.dir, 'requests', 'laptop-001');
    const b = seen(bob.dir, 'requests', 'laptop-001');
    return a && b && a.rev === b.rev && a.conflict !== 'none' && b.conflict !== 'none';
  }, 'both sides to agree');
  const final = seen(alice.dir, 'requests', 'laptop-001');
  say(
    `   both now show status "${final.body.status}" (the collection's strategy, last writer wins, chose it on each side alike);`,
  );
  say('   the conflict is recorded and the other version stays in history:');
  for (const h of cli('history', 'requests', 'laptop-001', '--data', bob.dir)) {
    say(
      `     ${h.rev.slice(0, 12)}  ${h.current ? 'winner  ' : h.head ? 'loser   ' : 'earlier '}  ${JSON.stringify(h.body)}`,
    );
  }
  say();
  say('Done. The data is in ./data/demo; explore it, for example:');
  say('  npx trosyn-sync ls requests --data ./data/demo/bob');
  say('  npx trosyn-sync conflicts --data ./data/demo/alice');
  say('  npx trosyn-sync devices --data ./data/demo/hub');
} catch (err) {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exitCode = 1;
} finally {
  stopAll();
}
