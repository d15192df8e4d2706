/**
 * Secrets stay where they belong. A full scenario at debug log level (a hub with its
 * admin API, a child paired with a code, records and a file synced, the admin API
 * used with the token, a wrong token and a sign-in link, the child's local API with
 * its token in a header and in a query string), then every log line, every output
 * after the hub's first banner, and every byte of every file in both data
 * directories but the key and token files are searched for the admin token, the
 * child's API token, the pairing code once used, the sign-in link's secret and the
 * private keys.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, it } from 'node:test';
import { eventually, seededBytes, tempDir } from '../helpers.js';
import { childArgs, CLI, freePort, hubArgs, runText } from './helpers.js';

const dir = tempDir('trosyn-secrets-');
const running: ChildProcess[] = [];
after(() => {
  for (const p of running) p.kill('SIGKILL');
  dir.remove();
});

interface Run {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
}

function start(args: string[]): Run {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(proc);
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr?.setEncoding('utf8').on('data', (t: string) => (err += t));
  return { proc, out: () => out, err: () => err };
}

async function stop(run: Run): Promise<void> {
  const exited = new Promise((r) => run.proc.once('exit', r));
  run.proc.kill('SIGTERM');
  await exited;
}

/** Every file under `root` but `skip` (relative paths), as bytes. */
function files(root: string, skip: readonly string[]): { path: string; bytes: Buffer }[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .filter((p) => !skip.includes(relative(root, p)) && statSync(p).size < 64 * 1024 * 1024)
    .map((path) => ({ path, bytes: readFileSync(path) }));
}

it('no secret appears in any log, later output or file outside the key and token files', async () => {
  const hubData = join(dir.path, 'hub');
  const childData = join(dir.path, 'child');
  const port = await freePort();
  const adminPort = await freePort();
  const hub = start([
    ...hubArgs(hubData, port),
    '--http-port',
    String(adminPort),
    '--log-level',
    'debug',
    '--log-format',
    'json',
    '--json',
  ]);
  await eventually(() => hub.out().includes('"event":"started"'), 20_000, `hub starts: ${hub.err()}`);
  // The first start's banner shows the token, the sign-in link and a code once: by design.
  const banner = JSON.parse(hub.out().split('\n')[0] as string) as {
    adminToken: string;
    signInUrl: string;
    pairingCode: string;
  };
  const bannerLength = hub.out().length;
  const adminToken = banner.adminToken;
  const linkSecret = banner.signInUrl.split('#signin=')[1] as string;
  const code = banner.pairingCode;
  assert.match(adminToken, /^tsa_/);
  assert.ok(linkSecret.length > 20);

  const outputs: string[] = [];
  const cli = async (...args: string[]) => {
    const r = await runText(args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  assert.equal(
    (await cli('pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'desk')).code,
    0,
  );
  const child = start([
    ...childArgs(childData, port),
    '--api-port',
    '0',
    '--log-level',
    'debug',
    '--log-format',
    'json',
    '--json',
  ]);
  await eventually(
    () => child.out().includes('"event":"connected"'),
    20_000,
    `child connects: ${child.err()}`,
  );
  const apiPort = Number(/"apiPort":(\d+)/.exec(child.out())?.[1]);
  const apiToken = readFileSync(join(childData, 'api-token'), 'utf8').trim();

  await cli('put', 'notes', 'n1', '{"text":"hello"}', '--data', childData);
  const file = join(dir.path, 'doc.bin');
  writeFileSync(file, seededBytes('secrets', 300_000));
  await cli('files', 'put', file, '--data', childData);
  await cli('status', '--data', childData, '--json');
  await cli('devices', '--data', hubData, '--json');

  const admin = `http://127.0.0.1:${adminPort}`;
  const bearer = { authorization: `Bearer ${adminToken}` };
  await eventually(
    async () => (await (await fetch(`${admin}/api/records/notes/n1`, { headers: bearer })).status) === 200,
    15_000,
    'the record reached the hub',
  );
  assert.equal((await fetch(`${admin}/api/status`, { headers: bearer })).status, 200);
  assert.equal((await fetch(`${admin}/api/devices`, { headers: bearer })).status, 200);
  assert.equal(
    (await fetch(`${admin}/api/status`, { headers: { authorization: 'Bearer tsa_wrong' } })).status,
    401,
  );
  const session = await fetch(`${admin}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: admin, 'x-trosyn-csrf': '1' },
    body: JSON.stringify({ link: linkSecret }),
  });
  assert.equal(session.status, 201);
  const local = `http://127.0.0.1:${apiPort}`;
  assert.equal(
    (await fetch(`${local}/api/status`, { headers: { authorization: `Bearer ${apiToken}` } })).status,
    200,
  );
  // A token in a query string (an EventSource client): served, never logged.
  const stream = await fetch(`${local}/api/changes?token=${apiToken}`);
  assert.equal(stream.status, 200);
  await stream.body?.cancel();
  await eventually(
    async () => (await fetch(`${admin}/api/files`, { headers: bearer })).status === 200,
    10_000,
    'files listed',
  );

  await stop(child);
  await stop(hub);

  // The secret of a key is its private scalar: looked for raw, in base64, base64url and
  // hex, and as the PEM shows it (the start of its second line is scalar bytes only).
  // The rest of a PKCS#8 PEM is a fixed header and the public key, which the
  // certificate holds too.
  const keyBodies = [hubData, childData].flatMap((d) => {
    const pem = readFileSync(join(d, 'identity', 'key.pem'), 'utf8');
    const scalar = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d as string, 'base64url');
    const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
    return [
      scalar,
      scalar.toString('base64'),
      scalar.toString('base64url'),
      scalar.toString('hex'),
      (lines[1] as string).slice(0, 24),
    ];
  });
  const secrets: [string, string | Buffer][] = [
    ['the admin token', adminToken],
    ['the admin token without its prefix', adminToken.slice(4)],
    ["the child's API token", apiToken],
    ['the pairing code', code],
    ["the pairing code's secret part", code.split('-').slice(1).join('-')],
    ["the sign-in link's secret", linkSecret],
    ...keyBodies.map((b): [string, string | Buffer] => ['a private key', b]),
  ];
  const places: [string, Buffer][] = [
    ['hub log', Buffer.from(hub.err())],
    ['child log', Buffer.from(child.err())],
    ["the hub's output after its first banner", Buffer.from(hub.out().slice(bannerLength))],
    ["the child's output", Buffer.from(child.out())],
    ...outputs.map((o, i): [string, Buffer] => [`CLI output ${i}`, Buffer.from(o)]),
    ...files(hubData, ['identity/key.pem']).map((f): [string, Buffer] => [f.path, f.bytes]),
    ...files(childData, ['identity/key.pem', 'api-token']).map((f): [string, Buffer] => [f.path, f.bytes]),
  ];
  assert.ok(hub.err().split('\n').length > 20, 'the hub logged at debug level');
  // A service's log lines of a sync connection name the device and the session, on both sides.
  for (const [who, log] of [
    ['hub', hub.err()],
    ['child', child.err()],
  ] as const) {
    const sync = log
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { component?: string; deviceId?: string; session?: string })
      .filter((l) => /:sync(:|$)/.test(l.component ?? ''));
    assert.ok(sync.length > 0, `the ${who} logged its sync connection`);
    for (const l of sync) {
      assert.match(l.deviceId ?? '', /^[0-9a-f]{64}$/, `${who}: ${JSON.stringify(l)}`);
      assert.match(l.session ?? '', /^[0-9a-f]{8}$/, `${who}: ${JSON.stringify(l)}`);
    }
  }
  // The search finds a secret where it is meant to be: the first banner, the token file.
  assert.ok(Buffer.from(hub.out()).includes(adminToken));
  assert.ok(readFileSync(join(childData, 'api-token')).includes(apiToken));
  const found: string[] = [];
  for (const [what, secret] of secrets)
    for (const [where, bytes] of places) if (bytes.includes(secret)) found.push(`${what} in ${where}`);
  assert.deepEqual(found, []);
});
