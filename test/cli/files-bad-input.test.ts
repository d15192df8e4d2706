/**
 * `trosyn-sync files put` given what is no readable file, a name that cannot be a
 * file's, and an empty file, as a user meets them: the built command, a real data
 * directory, real processes. Each refusal names its cause and records nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadOrCreateIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';
import { CLI } from '../e2e/helpers.js';

const dir = tempDir('trosyn-cli-files-');
after(() => dir.remove());

/** An unprivileged user to run as when the tests run as root (root reads any file). */
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

function cli(
  args: string[],
  options: { uid?: number; gid?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // A put that waits on a named pipe would never end: it must not hang the run.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`timed out: trosyn-sync ${args.join(' ')}`));
    }, 20_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A data directory holding a node (its identity is all `files` needs). */
async function dataDir(name: string): Promise<string> {
  const data = join(dir.path, name);
  await loadOrCreateIdentity(join(data, 'identity'));
  return data;
}

async function listed(data: string, options: { uid?: number; gid?: number } = {}): Promise<unknown[]> {
  const ls = await cli(['files', 'ls', '--data', data, '--json'], options);
  assert.equal(ls.code, 0, ls.stderr);
  return JSON.parse(ls.stdout) as unknown[];
}

describe('trosyn-sync files put, given bad input', () => {
  let data = '';
  before(async () => {
    data = await dataDir('node');
  });

  it('a folder, a missing path, a named pipe and a link loop: exit 1, FILE_UNREADABLE and the cause; nothing recorded', async () => {
    const folder = join(dir.path, 'a-folder');
    mkdirSync(folder);
    const pipe = join(dir.path, 'a-pipe');
    execFileSync('mkfifo', [pipe]);
    const loop = join(dir.path, 'a-loop');
    symlinkSync(loop, loop);
    for (const [path, cause] of [
      [folder, /it is a folder, not a file/],
      [join(dir.path, 'no-such-file.pdf'), /no such file \(ENOENT\)/],
      [pipe, /it is a named pipe \(FIFO\), not a file/],
      [loop, /too many symbolic links .*\(ELOOP\)/],
    ] as const) {
      const r = await cli(['files', 'put', path, '--data', data]);
      assert.equal(r.code, 1, path);
      assert.match(r.stderr, new RegExp(`FILE_UNREADABLE: cannot read ${path}: ${cause.source}`), r.stderr);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    }
    assert.deepEqual(await listed(data), []);
  });

  it('a file its user may not read (mode 000): FILE_UNREADABLE, permission denied', async () => {
    // Root reads any file whatever its mode, so as root the command runs as "nobody",
    // in a data directory of its own.
    const asUser = isRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const own = await dataDir('unprivileged');
    const locked = join(dir.path, 'locked.pdf');
    writeFileSync(locked, 'secret');
    chmodSync(locked, 0o000);
    if (isRoot) {
      chmodSync(dir.path, 0o755);
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, own]);
    }
    try {
      const r = await cli(['files', 'put', locked, '--data', own], asUser);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /FILE_UNREADABLE: cannot read .*locked\.pdf: permission denied \(EACCES\)/);
      assert.deepEqual(await listed(own, asUser), []);
    } finally {
      chmodSync(dir.path, 0o700);
    }
  });

  it('a name that cannot be a file’s: exit 1, INVALID_FILE_NAME; nothing recorded', async () => {
    const file = join(dir.path, 'fine.txt');
    writeFileSync(file, 'fine');
    for (const name of ['../escape.txt', '/etc/passwd', 'a//b', 'x'.repeat(256), 'bell\u0007.txt']) {
      const r = await cli(['files', 'put', file, '--name', name, '--data', data]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, /INVALID_FILE_NAME: invalid file name/, r.stderr);
    }
    assert.deepEqual(await listed(data), []);
    const chunks = join(data, 'chunks');
    const stored = (() => {
      try {
        return execFileSync('find', [chunks, '-type', 'f', '-name', '[0-9a-f]*']).toString().trim();
      } catch {
        return '';
      }
    })();
    assert.equal(stored, '', 'no chunk was stored');
  });

  it('an empty file: put, get back as zero bytes, history, revert', async () => {
    const own = await dataDir('empty');
    const empty = join(dir.path, 'empty.txt');
    writeFileSync(empty, '');
    const put = await cli(['files', 'put', empty, '--data', own, '--json']);
    assert.equal(put.code, 0, put.stderr);
    const v1 = JSON.parse(put.stdout) as { rev: string; size: number; chunkCount: number };
    assert.equal(v1.size, 0);
    assert.equal(v1.chunkCount, 0);

    const out = join(dir.path, 'empty-out.txt');
    writeFileSync(out, 'old content to be replaced');
    const get = await cli(['files', 'get', 'empty.txt', '-o', out, '--data', own]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(statSync(out).size, 0);

    writeFileSync(empty, 'some text');
    assert.equal((await cli(['files', 'put', empty, '--data', own])).code, 0);
    const history = await cli(['files', 'history', 'empty.txt', '--data', own, '--json']);
    assert.deepEqual(
      (JSON.parse(history.stdout) as Array<{ file: { size: number } }>).map((h) => h.file.size),
      [0, 9],
    );
    const revert = await cli(['files', 'revert', 'empty.txt', v1.rev.slice(0, 8), '--data', own]);
    assert.equal(revert.code, 0, revert.stderr);
    const again = await cli(['files', 'get', 'empty.txt', '-o', out, '--data', own]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(out).length, 0);
  });

  it('a version whose chunk list does not describe it is listed as invalid, not as arriving, and get says why', async () => {
    const source = join(dir.path, 'real.bin');
    writeFileSync(source, Buffer.alloc(300_000, 7));
    const put = await cli(['files', 'put', source, '--data', data, '--json']);
    assert.equal(put.code, 0, put.stderr);
    const real = JSON.parse(put.stdout) as Record<string, unknown> & { size: number };
    // A record from a writer with a bug: the same chunk list, one byte more.
    const { collection: _c, rev: _r, ...body } = real;
    const wrong = { ...body, name: 'wrong.bin', size: real.size + 1 };
    const written = await cli(['put', 'files', 'wrong.bin', JSON.stringify(wrong), '--data', data]);
    assert.equal(written.code, 0, written.stderr);

    const text = await cli(['files', 'ls', '--data', data]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /wrong\.bin .*invalid \(FILE_MANIFEST_INVALID\)/);
    assert.match(text.stdout, /real\.bin .* here/);
    const list = (await listed(data)) as Array<{ name: string; here: boolean; invalid?: string }>;
    assert.deepEqual(
      list.find((f) => f.name === 'wrong.bin'),
      { ...list.find((f) => f.name === 'wrong.bin'), here: false, invalid: 'FILE_MANIFEST_INVALID' },
    );
    const get = await cli([
      'files',
      'get',
      'wrong.bin',
      '--out',
      join(dir.path, 'wrong.out'),
      '--data',
      data,
    ]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /FILE_MANIFEST_INVALID/);
  });
  it('content damaged on disk: get fails with the cause and writes nothing; the damaged chunk goes, to be fetched again', async () => {
    const data = await dataDir('damaged');
    const damage = () => {
      // One byte flipped in the middle of every pack: inside some chunk's bytes.
      const packs = join(data, 'chunks', 'packs');
      for (const p of readdirSync(packs).filter((f) => f.endsWith('.pack'))) {
        const bytes = readFileSync(join(packs, p));
        const at = bytes.length >> 1;
        bytes[at] = (bytes[at] as number) ^ 0xff;
        writeFileSync(join(packs, p), bytes);
      }
    };
    const file = join(dir.path, 'damaged.bin');
    writeFileSync(file, randomBytes(2 * 1024 * 1024));
    const put = await cli(['files', 'put', file, '--data', data, '--json']);
    assert.equal(put.code, 0, put.stderr);
    damage();
    const out = join(dir.path, 'damaged.out');
    const get = await cli(['files', 'get', 'damaged.bin', '--out', out, '--data', data]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /FILE_CONTENT_CORRUPT/);
    assert.equal(existsSync(out), false, 'no file written');
    assert.deepEqual(
      readdirSync(dir.path).filter((f) => f.startsWith('damaged.out')),
      [],
      'nor a partial one',
    );
    const again = await cli(['files', 'get', 'damaged.bin', '--out', out, '--data', data]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /FILE_CONTENT_MISSING/, 'the damaged chunk was removed: it is missing now');

    // To stdout no byte of a damaged chunk goes out: each chunk is checked before it is written.
    const piping = await dataDir('damaged-piped');
    const content = randomBytes(2 * 1024 * 1024);
    writeFileSync(file, content);
    assert.equal((await cli(['files', 'put', file, '--data', piping])).code, 0);
    const packs = join(piping, 'chunks', 'packs');
    const [pack] = readdirSync(packs).filter((f) => f.endsWith('.pack'));
    assert.ok(pack);
    const stored = readFileSync(join(packs, pack));
    stored[stored.length >> 1] = (stored[stored.length >> 1] as number) ^ 0xff;
    writeFileSync(join(packs, pack), stored);
    const proc = spawn(process.execPath, [
      CLI,
      'files',
      'get',
      'damaged.bin',
      '--out',
      '-',
      '--data',
      piping,
    ]);
    const given: Buffer[] = [];
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => given.push(d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /CHUNK_CORRUPT/);
    const piped = Buffer.concat(given);
    assert.ok(piped.length < content.length, `stopped before the damaged chunk (${piped.length} bytes out)`);
    assert.ok(piped.equals(content.subarray(0, piped.length)), 'and every byte out is right');
  });
});
