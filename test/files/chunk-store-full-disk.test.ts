/**
 * A full disk, for real: a small filesystem (an ext4 image on a loop device, or a
 * size- or inode-limited tmpfs) mounted in a private mount namespace, so nothing on
 * the machine sees it and it disappears with the process that uses it. The fixture
 * fills it with chunks until a put is refused, checks what is left, frees space and
 * puts the refused chunk again.
 *
 * Needs Linux, root, unshare and mount (util-linux), and for ext4 mkfs.ext4
 * (e2fsprogs) and a loop device. Where that is missing the test says so loudly; with
 * CI set it fails instead, so a CI machine cannot pass it silently.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { tempDir } from '../helpers.js';
import { commandExists, loudSkip } from '../netns/harness.js';

type Kind = 'ext4' | 'tmpfs';
type Store = 'pack' | 'disk';

interface Variant {
  title: string;
  kind: Kind;
  /** The stores it applies to: a pack store needs a handful of inodes, never more. */
  stores: Store[];
  /** ext4: the image size in MiB; tmpfs: its mount options. */
  fs: string;
  /** Chunk size in KiB (plus up to 50 KB more). */
  chunkKiB: number;
}

const VARIANTS: Variant[] = [
  {
    title: 'an 8 MiB ext4 filesystem on a loop device',
    kind: 'ext4',
    stores: ['pack', 'disk'],
    fs: '8',
    chunkKiB: 192,
  },
  { title: 'a 3 MiB tmpfs', kind: 'tmpfs', stores: ['pack', 'disk'], fs: 'size=3m', chunkKiB: 192 },
  {
    title: 'a tmpfs out of inodes',
    kind: 'tmpfs',
    stores: ['disk'],
    fs: 'size=64m,nr_inodes=40',
    chunkKiB: 1,
  },
];

const RUN_TIMEOUT_MS = 120_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // The fixture's loops are bounded; this only stops a hang from holding the run.
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** An empty ext4 image file of `mib` MiB (no reserved blocks: root would use them too). */
function makeExt4Image(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, mib * 1024 * 1024);
  closeSync(fd);
  const mkfs = spawnSync('mkfs.ext4', ['-q', '-F', '-m', '0', path], { encoding: 'utf8' });
  if (mkfs.status !== 0) throw new Error(`mkfs.ext4 failed: ${mkfs.stderr || mkfs.error?.message}`);
}

/**
 * Runs `program` with the filesystem mounted at `mount`, in a mount namespace of its
 * own: when the program ends, however it ends, the mount (and the loop device, which
 * `mount -o loop` sets to clear itself) goes with it.
 */
function inSmallFs(kind: Kind, fs: string, image: string, mount: string, program: readonly string[]) {
  const mountCmd = kind === 'ext4' ? 'mount -o loop "$1" "$2"' : 'mount -t tmpfs -o "$1" tmpfs "$2"';
  return run('unshare', [
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    `${mountCmd} && shift 2 && exec "$@"`,
    'sh',
    kind === 'ext4' ? image : fs,
    mount,
    ...program,
  ]);
}

const reasons = new Map<Kind, Promise<string | undefined>>();

/** Why a filesystem of this kind cannot be mounted for the test here, or undefined. */
function cannotMount(kind: Kind): Promise<string | undefined> {
  let reason = reasons.get(kind);
  if (!reason) {
    reason = (async () => {
      if (process.platform !== 'linux') return 'needs Linux mount namespaces';
      if (process.getuid?.() !== 0)
        return 'needs root, to mount a small filesystem in a private mount namespace';
      if (!commandExists('unshare') || !commandExists('mount')) return 'needs unshare and mount (util-linux)';
      if (kind === 'ext4' && !commandExists('mkfs.ext4')) return 'needs mkfs.ext4 (e2fsprogs)';
      const probe = tempDir('trosyn-mount-probe-');
      try {
        const mount = join(probe.path, 'mnt');
        mkdirSync(mount);
        const image = join(probe.path, 'probe.img');
        if (kind === 'ext4') makeExt4Image(image, 4);
        const r = await inSmallFs(kind, 'size=64k', image, mount, ['true']);
        if (r.code !== 0)
          return `mounting ${kind === 'ext4' ? 'an ext4 image on a loop device' : 'a tmpfs'} in a private mount namespace failed: ${r.stderr.trim() || r.signal}`;
        return undefined;
      } catch (err) {
        return (err as Error).message;
      } finally {
        probe.remove();
      }
    })();
    reasons.set(kind, reason);
  }
  return reason;
}

/** True when the test can run; otherwise skips loudly, or fails in CI. */
async function requireMount(t: TestContext, kind: Kind): Promise<boolean> {
  const reason = await cannotMount(kind);
  if (reason === undefined) return true;
  if (process.env.CI)
    assert.fail(
      `${t.name}: cannot run on this CI machine: ${reason}. CI must run it as root with util-linux and e2fsprogs.`,
    );
  t.skip(loudSkip(t.name, reason));
  return false;
}

/** Loop devices still backed by `image` (none once the namespace is gone). */
function loopsOf(image: string): Promise<string> {
  return new Promise((resolve) =>
    execFile('losetup', ['-j', image], (_err, stdout) => resolve(String(stdout).trim())),
  );
}

interface FillReport {
  refusedCode: string;
  refusedMessage: string;
  storedBeforeFull: number;
  refusedPresent: boolean;
  filesWhenFull: string[];
  storedHashes: string[];
  statsWhenFull: { chunks: number; bytes: number };
  intactWhenFull: boolean;
  secondTryCode: string;
  flushWhenFull: string;
  retry: boolean;
  statsAfter: { chunks: number; bytes: number };
  intactAfter: boolean;
  filesAfter: string[];
}

describe('chunk store on a full disk', () => {
  for (const v of VARIANTS)
    for (const store of v.stores) {
      it(`${store} store, ${v.title}: CHUNK_STORE_FULL, nothing half-written left, stored once space returns`, async (t) => {
        if (!(await requireMount(t, v.kind))) return;
        const tmp = tempDir('trosyn-full-disk-');
        const image = join(tmp.path, 'fs.img');
        const mount = join(tmp.path, 'mnt');
        try {
          mkdirSync(mount);
          if (v.kind === 'ext4') makeExt4Image(image, Number(v.fs));
          const r = await inSmallFs(v.kind, v.fs, image, mount, [
            process.execPath,
            '--import',
            'tsx',
            'test/fixtures/chunk-store-fill.ts',
            mount,
            String(v.chunkKiB),
            store,
          ]);
          assert.equal(r.code, 0, `the fixture ran to its end: ${r.stderr}`);
          const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as FillReport;

          assert.equal(report.refusedCode, 'CHUNK_STORE_FULL', report.refusedMessage);
          assert.ok(
            report.storedBeforeFull >= 3,
            `chunks were stored before the disk filled (${report.storedBeforeFull})`,
          );
          assert.equal(report.refusedPresent, false, 'the refused chunk is absent');
          if (store === 'disk')
            assert.deepEqual(
              report.filesWhenFull.sort(),
              report.storedHashes.sort(),
              'nothing but whole chunks in the store: no temporary, no part of the refused chunk',
            );
          else
            assert.ok(
              report.filesWhenFull.every((f) => /^(index\.db(-wal|-shm)?|\d+-[0-9a-f]+\.pack)$/.test(f)),
              `nothing but the index and packs in the store: ${report.filesWhenFull.join(', ')}`,
            );
          assert.equal(report.statsWhenFull.chunks, report.storedBeforeFull);
          assert.equal(report.intactWhenFull, true, 'every chunk stored before is intact');
          assert.equal(
            report.secondTryCode,
            'CHUNK_STORE_FULL',
            'while full, a retry is refused the same way',
          );
          assert.ok(
            ['ok', 'CHUNK_STORE_FULL'].includes(report.flushWhenFull),
            `a flush while full succeeds or says the store is full: ${report.flushWhenFull}`,
          );
          if (store === 'disk') assert.equal(report.flushWhenFull, 'ok');
          assert.equal(report.retry, true, 'once space returns, the same put succeeds');
          assert.equal(report.statsAfter.chunks, report.storedBeforeFull + 1);
          if (store === 'disk') assert.equal(report.filesAfter.length, report.storedBeforeFull + 1);
          assert.equal(report.intactAfter, true, 'every chunk reads back after a restart');
          if (v.kind === 'ext4')
            assert.equal(await loopsOf(image), '', 'the loop device went with the namespace');
        } finally {
          tmp.remove();
        }
      });
    }
});
