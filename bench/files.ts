/**
 * Documents end to end (`npm run bench -- files`), each figure beside rsync and
 * Syncthing measured in the same run on this machine, everything on 127.0.0.1:
 *
 * 1. A FILE_BYTES (1 GiB) random file, seeded, from the hub to a child: the hub and
 *    child agents as processes of the trosyn-sync command (src/ compiled by tsc into
 *    a scratch directory and run with plain node, as users run it), the file recorded
 *    with `trosyn-sync files put` on the hub's data directory while the agents run.
 *    Against rsync in daemon mode (rsync://127.0.0.1:<port>), without and with
 *    --fsync (Trosyn makes every chunk durable), and two Syncthing instances (no
 *    discovery, relays or watcher, driven through their REST API).
 * 2. Then 1 MiB inserted at 37% of the file, and after it 1,000,000 bytes inserted at
 *    90% of the result: the bytes on the wire and the time until the new version is
 *    complete at the receiver, which holds the previous version.
 * 3. Chunking plus SHA-256 of every chunk, per core, against SHA-256 alone.
 * 4. Peak RSS of the hub and child agents during the 1 GiB transfer, and during a
 *    4 GiB one (BIG_BYTES; not in --quick).
 *
 * Bytes on the wire are counted by the kernel the same way for all three: an
 * nftables counter on the loopback interface for the tool's sync port(s), both
 * directions, of a table this benchmark adds and removes. Times start when the new
 * content is on the sender's disk and end when the receiver has all of it: Trosyn
 * from starting `files put` to the child's event stream reporting the version here;
 * rsync the client command; Syncthing from replacing the file in the sender's folder
 * and asking for a scan to the receiver's database holding the new version.
 *
 * Rounds (BENCH_ROUNDS) rotate the order of the tools; medians are compared. Every
 * process started here is killed when the benchmark exits, however it exits, and the
 * scratch directory (on the filesystem with the most free space, or BENCH_FILES_DIR)
 * is removed. Needs root (nftables, and resetting VmHWM) and Debian's rsync and
 * syncthing. MB = 10^6 bytes, MiB = 2^20 bytes.
 *
 * Other knobs: BENCH_FILES_REF=<commit> measures that commit's src/ rather than the
 * working tree's; BENCH_FILE_BYTES and BENCH_BIG_BYTES set the sizes (0 skips the
 * big file; use them with --quick, so the full run's results stay); BENCH_FILES_TOOLS=trosyn,rsync,rsyncFsync,syncthing picks tools;
 * BENCH_PROFILE=<dir> writes V8 CPU profiles of the hub, the child and each CLI
 * command; BENCH_FILES_WRAP=eatmydata runs the Trosyn processes under that command
 * (a diagnosis of what fsync costs, not a figure to report).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Chunker, chunkBuffer, DEFAULT_CHUNKER_OPTIONS } from '../src/files/chunker.js';
import { median, round, sourceVersion } from './common.js';
import { cpuMs, launcher, machineCpuMs, memoryOf, resetPeakRss, tcpBytes, timed, wallMs } from './proc.js';

const QUICK = process.argv.includes('--quick');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const FILE_BYTES = Number(process.env.BENCH_FILE_BYTES ?? (QUICK ? 128 * MiB : GiB));
const BIG_BYTES = Number(process.env.BENCH_BIG_BYTES ?? (QUICK ? 0 : 4 * GiB));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const CHUNKER_BYTES = (QUICK ? 16 : 64) * MiB;
const CHUNKER_ROUNDS = QUICK ? 3 : 5;
const NAME = 'big.bin';
const EDITS = [
  { key: 'insert1MiBAt37', label: '1 MiB inserted at 37%', at: 0.37, bytes: MiB },
  { key: 'insert1e6At90', label: '1,000,000 B inserted at 90%', at: 0.9, bytes: 1_000_000 },
] as const;
const GOALS = { ratioVsRsync: 1, editWireBytes: 2 * MiB, peakRssMB: 150, chunkRatio: 0.5 };
/** Completion is polled every 50 ms for the first 5 s, then every 250 ms (the polls cost the receiver CPU). */
const POLL_MS = 50;
const pollDelay = (since: number) => (wallMs() - since < 5000 ? POLL_MS : 250);
/** Any one transfer: far above what the slowest tool needs for 4 GiB here. */
const TRANSFER_TIMEOUT_MS = 40 * 60_000;
/** IPv4 + TCP header with timestamps, the size of every segment's headers on loopback. */
const HEADER_BYTES = 52;
const MB = 1e6;

type Json = Record<string, unknown>;
type Tool = 'trosyn' | 'rsync' | 'rsyncFsync' | 'syncthing';
const ALL_TOOLS: Tool[] = ['trosyn', 'rsync', 'rsyncFsync', 'syncthing'];
/** BENCH_FILES_TOOLS=trosyn,rsync runs only those (to profile or diagnose one of them). */
const TOOLS = process.env.BENCH_FILES_TOOLS
  ? ALL_TOOLS.filter((t) => (process.env.BENCH_FILES_TOOLS as string).split(',').includes(t))
  : ALL_TOOLS;
/**
 * BENCH_FILES_WRAP="eatmydata" runs the Trosyn processes under that command: a
 * diagnosis (what the transfer costs without fsync), never a figure to report.
 */
const WRAP = process.env.BENCH_FILES_WRAP?.split(' ').filter(Boolean) ?? [];
const TOOL_LABEL: Record<Tool, string> = {
  trosyn: 'Trosyn (files put + sync)',
  rsync: 'rsync daemon',
  rsyncFsync: 'rsync daemon --fsync',
  syncthing: 'Syncthing (scan + sync)',
};

// --- processes: all killed at exit -------------------------------------------------------

const started = new Set<ChildProcess>();
let nftTable: string | undefined;
const HAVE_SETPRIV = existsSync('/usr/bin/setpriv');

/**
 * Kills every process started here (each leads a process group of its own, so an
 * rsync daemon's forked children go too) and removes the nftables table. Runs in an
 * 'exit' handler, registered before the scratch directory's removal, so the
 * processes are gone before their files are deleted.
 */
function cleanUp(): void {
  const pids = [...started].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  started.clear();
  for (const pid of pids) killGroup(pid, 'SIGKILL');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && pids.some(alive))
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  if (nftTable) {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', nftTable], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
    nftTable = undefined;
  }
}
process.once('exit', cleanUp);

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Starts a process in a process group of its own; with setpriv it also dies if this
 * benchmark is killed outright (SIGKILL leaves no 'exit' handler to run).
 */
function spawnTracked(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const [file, argv] = HAVE_SETPRIV
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]]
    : [cmd, args];
  const proc = spawn(file, argv, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  return proc;
}

/** A long-running process whose stdout JSON lines can be waited for. */
class Proc {
  readonly proc: ChildProcess;
  readonly lines: Json[] = [];
  private readonly tail: string[] = [];
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
  ) {
    this.proc = spawnTracked(cmd, args, env);
    this.exited = new Promise((done) => this.proc.once('exit', () => done()));
    let buffer = '';
    this.proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buffer += d;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(text) as Json);
        } catch {
          this.keep(text);
        }
      }
      for (const w of this.waiters) w();
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      for (const text of d.split('\n')) if (text) this.keep(text);
    });
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  private keep(text: string): void {
    this.tail.push(text);
    if (this.tail.length > 30) this.tail.shift();
    if (process.env.BENCH_VERBOSE) console.error(`[${this.name}] ${text}`);
  }

  /** The first stdout JSON line (since `from`) that passes `test`. */
  waitLine(test: (l: Json) => boolean, timeoutMs: number, what: string, from = 0): Promise<Json> {
    return new Promise((resolve, reject) => {
      let seen = from;
      const check = () => {
        for (; seen < this.lines.length; seen++) {
          const line = this.lines[seen] as Json;
          if (test(line)) {
            finish();
            resolve(line);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; ${this.stderr()}`));
      }, timeoutMs);
      const onExit = () => {
        finish();
        reject(new Error(`${this.name} exited waiting for ${what}; ${this.stderr()}`));
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.proc.off('exit', onExit);
      };
      this.waiters.add(check);
      this.proc.once('exit', onExit);
      check();
    });
  }

  stderr(): string {
    return `output:\n${this.tail.join('\n')}`;
  }

  /** SIGTERM (the agents stop cleanly and write their CPU profiles), SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    killGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Runs a command to its end; rejects on a non-zero exit. */
function runToEnd(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; onStart?: (pid: number) => void } = {},
): Promise<{ stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = wallMs();
    const proc = spawnTracked(cmd, args, options.env);
    let stdout = '';
    let stderr = '';
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(
      () => killGroup(proc.pid as number, 'SIGKILL'),
      options.timeoutMs ?? TRANSFER_TIMEOUT_MS,
    );
    if (proc.pid !== undefined) options.onStart?.(proc.pid);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = wallMs() - t0;
      if (code === 0) resolve({ stdout, stderr, ms });
      else reject(new Error(`${cmd} ${args.join(' ')} ended with ${signal ?? code}: ${stderr.slice(-2000)}`));
    });
  });
}

/** A free TCP port on 127.0.0.1 (it may be taken again in between, rarely). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function http<T = Json>(
  url: string,
  init: { method?: string; token?: string; apiKey?: string; body?: unknown } = {},
): Promise<T> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.token && { authorization: `Bearer ${init.token}` }),
      ...(init.apiKey && { 'x-api-key': init.apiKey }),
      ...(init.body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (!res.ok)
    throw Object.assign(new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${text.slice(0, 300)}`), {
      status: res.status,
    });
  return (text ? JSON.parse(text) : {}) as T;
}

// --- measuring ---------------------------------------------------------------------------

/**
 * Bytes on the loopback interface between a sender and a receiver, counted by the
 * kernel: rules on the output hook (every loopback packet passes it once) match the
 * sender's listening port as source or the receiver's as destination (sender to
 * receiver), or the other way round, and feed one nftables counter per direction.
 * Each rule that counts a packet also ends this table's look at it (`accept` here
 * decides nothing for other tables), so a packet between two listening ports (a
 * Syncthing instance dials from its own listening port) is counted once. A counter
 * holds whole IP packets; the TCP payload is that less 52 bytes of headers a packet
 * (IPv4 20, TCP with timestamps 32), within a few bytes per connection (SYNs).
 */
class WireCounter {
  private readonly table = `trosyn_bench_files_${process.pid}`;

  constructor() {
    nftTable = this.table;
    this.nft(`add table inet ${this.table}
add chain inet ${this.table} out { type filter hook output priority 0 ; policy accept ; }`);
  }

  /**
   * Counts from now on, as `name`, the TCP traffic of a sender listening on
   * `senderPort` (the hub, the rsync daemon, Syncthing A) with its receiver, which
   * dials it or listens on `receiverPort`.
   */
  watch(name: string, senderPort: number, receiverPort?: number): void {
    const t = this.table;
    const rule = (match: string, counter: string) =>
      `add rule inet ${t} out oif lo ${match} counter name ${counter} accept`;
    this.nft(
      [
        `add counter inet ${t} ${name}_sr`,
        `add counter inet ${t} ${name}_rs`,
        rule(`tcp sport ${senderPort}`, `${name}_sr`),
        rule(`tcp dport ${senderPort}`, `${name}_rs`),
        ...(receiverPort === undefined
          ? []
          : [
              rule(`tcp dport ${receiverPort}`, `${name}_sr`),
              rule(`tcp sport ${receiverPort}`, `${name}_rs`),
            ]),
      ].join('\n'),
    );
  }

  read(name: string): Counted {
    const counter = (which: string) => {
      const out = execFileSync('nft', ['-j', 'list', 'counter', 'inet', this.table, `${name}_${which}`], {
        encoding: 'utf8',
      });
      const found = (
        JSON.parse(out) as { nftables: Array<{ counter?: { bytes: number; packets: number } }> }
      ).nftables.find((e) => e.counter)?.counter;
      if (!found) throw new Error(`no nftables counter ${name}_${which}`);
      return found;
    };
    const sr = counter('sr');
    const rs = counter('rs');
    return {
      ipBytes: sr.bytes + rs.bytes,
      packets: sr.packets + rs.packets,
      senderToReceiverIpBytes: sr.bytes,
      receiverToSenderIpBytes: rs.bytes,
    };
  }

  close(): void {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', this.table], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
    nftTable = undefined;
  }

  private nft(script: string): void {
    execFileSync('nft', ['-f', '-'], { input: `${script}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  }
}

interface Counted {
  ipBytes: number;
  packets: number;
  senderToReceiverIpBytes: number;
  receiverToSenderIpBytes: number;
}

interface Wire extends Counted {
  /** TCP payload both ways (whole IP packets less 52 bytes each). */
  tcpPayloadBytes: number;
}

function wireDelta(a: Counted, b: Counted): Wire {
  const ipBytes = b.ipBytes - a.ipBytes;
  const packets = b.packets - a.packets;
  return {
    tcpPayloadBytes: Math.max(0, ipBytes - packets * HEADER_BYTES),
    ipBytes,
    packets,
    senderToReceiverIpBytes: b.senderToReceiverIpBytes - a.senderToReceiverIpBytes,
    receiverToSenderIpBytes: b.receiverToSenderIpBytes - a.receiverToSenderIpBytes,
  };
}

/**
 * Samples VmRSS, VmHWM and CPU time of some processes every 100 ms; processes can be
 * added as they start (a process gone is kept at its last sample).
 */
class Watch {
  private readonly peaks = new Map<number, number>();
  private readonly cpu0 = new Map<number, number>();
  private readonly cpuLast = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly machine0 = machineCpuMs();

  constructor(pids: number[]) {
    for (const pid of pids) this.add(pid);
    this.timer = setInterval(() => this.sample(), 100);
  }

  add(pid: number): void {
    this.cpu0.set(pid, cpuMs(pid));
    this.peaks.set(pid, 0);
    this.sample();
  }

  private sample(): void {
    for (const pid of this.peaks.keys()) {
      const m = memoryOf(pid);
      if (!m) continue;
      this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, m.rssMB, m.hwmMB));
      const c = cpuMs(pid);
      if (c > 0) this.cpuLast.set(pid, c);
    }
  }

  /** Peak RSS (MiB) and CPU ms of each process, and the CPU the rest of the machine used meanwhile. */
  stop(): { peakMB: Map<number, number>; cpuMs: Map<number, number>; otherCpuMs: number } {
    this.sample();
    clearInterval(this.timer);
    const cpu = new Map([...this.cpu0].map(([pid, c0]) => [pid, (this.cpuLast.get(pid) ?? c0) - c0]));
    const machine = machineCpuMs();
    const ours = [...cpu.values()].reduce((a, b) => a + b, 0);
    return {
      peakMB: new Map([...this.peaks].map(([pid, p]) => [pid, Math.round(p)])),
      cpuMs: cpu,
      otherCpuMs: Math.max(0, machine.busy - this.machine0.busy - ours),
    };
  }
}

// --- files -------------------------------------------------------------------------------

function keystream(seed: string) {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Writes `bytes` pseudo-random bytes fixed by `seed` (AES-128-CTR keystream); returns their SHA-256. */
function writeSeeded(path: string, bytes: number, seed: string): string {
  const cipher = keystream(seed);
  const zeros = Buffer.alloc(8 * MiB);
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const piece = cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done)));
      hash.update(piece);
      writeAll(fd, piece);
      done += piece.length;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Writes `from` with `inserted` put in at byte `at`; returns the SHA-256 of the result. */
function writeWithInsert(from: string, to: string, at: number, inserted: Buffer): string {
  const hash = createHash('sha256');
  const src = openSync(from, 'r');
  const dst = openSync(to, 'w');
  const buffer = Buffer.alloc(8 * MiB);
  try {
    let pos = 0;
    const copy = (until: number) => {
      while (pos < until) {
        const n = readSync(src, buffer, 0, Math.min(buffer.length, until - pos), pos);
        if (n <= 0) break;
        const piece = buffer.subarray(0, n);
        hash.update(piece);
        writeAll(dst, piece);
        pos += n;
      }
    };
    copy(at);
    hash.update(inserted);
    writeAll(dst, inserted);
    copy(Number.MAX_SAFE_INTEGER);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  return hash.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 8 * MiB })) hash.update(piece as Buffer);
  return hash.digest('hex');
}

interface Version {
  path: string;
  bytes: number;
  sha256: string;
}

/** Puts `path` under `dir/NAME` atomically (a hard link renamed over the old one). */
function placeAs(path: string, dir: string): void {
  const stage = join(dir, '..', `.stage-${process.pid}`);
  rmSync(stage, { force: true });
  linkSync(path, stage);
  renameSync(stage, join(dir, NAME));
}

/** The directory for the scratch space: BENCH_FILES_DIR, else whichever candidate has the most room. */
function workspace(needBytes: number): { dir: string; freeBytes: number } {
  const candidates = process.env.BENCH_FILES_DIR
    ? [process.env.BENCH_FILES_DIR]
    : [tmpdir(), '/var/tmp', process.cwd()];
  const free = (d: string) => {
    try {
      const s = statfsSync(d);
      return s.bavail * s.bsize;
    } catch {
      return -1;
    }
  };
  const best = candidates.sort((a, b) => free(b) - free(a))[0] as string;
  const freeBytes = free(best);
  if (freeBytes < needBytes)
    throw new Error(
      `${best} has ${(freeBytes / GiB).toFixed(1)} GiB free; this benchmark needs ${(needBytes / GiB).toFixed(1)} GiB (BENCH_FILES_DIR chooses another place)`,
    );
  const dir = mkdtempSync(join(best, 'trosyn-bench-files-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }));
  return { dir, freeBytes };
}

// --- Trosyn ------------------------------------------------------------------------------

/**
 * The trosyn-sync command: BENCH_FILES_CLI, or src/ compiled now into the scratch
 * directory: the working tree's, or with BENCH_FILES_REF=<commit> that commit's (so
 * that work in progress in the tree is not what gets measured).
 */
export function buildCli(root: string): { cli: string; built: string; commit?: string } {
  if (process.env.BENCH_FILES_CLI)
    return { cli: resolve(process.env.BENCH_FILES_CLI), built: 'BENCH_FILES_CLI' };
  const build = join(root, 'build');
  mkdirSync(build);
  symlinkSync(resolve('node_modules'), join(build, 'node_modules'));
  const ref = process.env.BENCH_FILES_REF;
  let project = '.';
  let commit: string | undefined;
  if (ref) {
    commit = execFileSync('git', ['rev-parse', '--short', ref], { encoding: 'utf8' }).trim();
    project = join(build, 'tree');
    mkdirSync(project);
    const archive = execFileSync(
      'git',
      ['archive', ref, 'src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'],
      {
        maxBuffer: 1 << 30,
      },
    );
    execFileSync('tar', ['-x', '-C', project], { input: archive });
  }
  copyFileSync(join(project, 'package.json'), join(build, 'package.json'));
  execFileSync(
    process.execPath,
    [
      resolve('node_modules/typescript/bin/tsc'),
      '-p',
      join(project, 'tsconfig.build.json'),
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
  return {
    cli: join(build, 'dist', 'cli', 'main.js'),
    built: ref
      ? `src/ of commit ${commit} compiled by tsc (--noCheck) at the start of the run`
      : "the working tree's src/ compiled by tsc (--noCheck) at the start of the run",
    ...(commit && { commit }),
  };
}

function profileFlags(name: string): string[] {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return [];
  mkdirSync(join(dir, name), { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${resolve(dir, name)}`];
}

/**
 * Node with `args`, under BENCH_FILES_WRAP if set (the wrapper execs node: the pid
 * stays). A script whose first line runs node with flags (the CLI's launcher line)
 * gets those flags, as when a user runs the command.
 */
function node(args: string[]): [string, string[]] {
  const script = args.find((a) => a.endsWith('.js'));
  const { env, flags } = script && existsSync(script) ? launcher(script) : { env: {}, flags: [] };
  // As the launcher line does: env sets the variables and execs node (the pid stays).
  const setEnv =
    Object.keys(env).length > 0 ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] : [];
  const [cmd, ...rest] = [...WRAP, ...setEnv, process.execPath, ...flags, ...args];
  return [cmd as string, rest];
}

interface Trosyn {
  hub: Proc;
  child: Proc;
  hubData: string;
  childData: string;
  port: number;
  adminPort: number;
  adminToken: string;
  apiPort: number;
  apiToken: string;
}

async function cli(cliPath: string, args: string[], onStart?: (pid: number) => void): Promise<Json> {
  const [cmd, argv] = node([...profileFlags('put'), cliPath, ...args, '--json']);
  const { stdout } = await runToEnd(cmd, argv, onStart ? { onStart } : {});
  return JSON.parse(stdout) as Json;
}

/** A hub and a paired child, both running and caught up. */
export async function startTrosyn(
  cliPath: string,
  dir: string,
  o: { caughtUpMs?: number } = {},
): Promise<Trosyn> {
  const hubData = join(dir, 'hub');
  const childData = join(dir, 'child');
  mkdirSync(hubData, { recursive: true });
  mkdirSync(childData, { recursive: true });
  const port = await freePort();
  const hub = new Proc(
    'hub',
    ...node([
      ...profileFlags('hub'),
      cliPath,
      'hub',
      '--data',
      hubData,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--no-discovery',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      '0',
      '--json',
    ]),
  );
  const up = await hub.waitLine((l) => l.event === 'started', 60_000, 'hub start');
  await cli(cliPath, [
    'pair',
    String(up.pairingCode),
    '--hub',
    `127.0.0.1:${port}`,
    '--data',
    childData,
    '--name',
    'bench-child',
  ]);
  const child = new Proc(
    'child',
    ...node([
      ...profileFlags('child'),
      cliPath,
      'child',
      '--data',
      childData,
      '--hub',
      `127.0.0.1:${port}`,
      '--no-discovery',
      '--retry-max',
      '300',
      '--api-port',
      '0',
      '--name',
      'bench-child',
      '--json',
    ]),
  );
  const childUp = await child.waitLine((l) => l.event === 'started', 60_000, 'child start');
  await child.waitLine((l) => l.event === 'caught-up', o.caughtUpMs ?? 60_000, 'child caught up');
  return {
    hub,
    child,
    hubData,
    childData,
    port,
    adminPort: up.adminPort as number,
    adminToken: up.adminToken as string,
    apiPort: childUp.apiPort as number,
    apiToken: readFileSync(join(childData, 'api-token'), 'utf8').trim(),
  };
}

export async function stopTrosyn(t: Trosyn): Promise<void> {
  await t.child.stop();
  await t.hub.stop();
}

interface FilesStatus {
  files: { pending: number; busy: boolean; bytesHere: number; bytesTotal: number };
}

/**
 * Polls the child's local API until `rev` is its current version of NAME and all its
 * content is here: status says no version is pending and no fetch is under way, then
 * the file list (which checks every chunk) confirms. Returns when that status was seen.
 */
/**
 * The child's event stream (GET /api/changes, Server-Sent Events), opened before a
 * put: each record change and each files-progress event, with the time it arrived.
 * The child sends files-progress as soon as a look at pending content ends, so the
 * version is here at the time of the first such event after its change that says
 * nothing is pending (checked against GET /api/files): no polling interval is
 * counted in the time to complete.
 */
class ChildEvents {
  private readonly events: { at: number; event: string; data: Json }[] = [];
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;
  private failed: Error | undefined;

  constructor(private readonly t: Trosyn) {}

  /** Resolves once the stream is open. */
  async open(): Promise<void> {
    const res = await fetch(`http://127.0.0.1:${this.t.apiPort}/api/changes`, {
      headers: { authorization: `Bearer ${this.t.apiToken}` },
      signal: this.stop.signal,
    });
    if (!res.ok || !res.body) throw new Error(`GET /api/changes: ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += value;
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) this.events.push({ at: wallMs(), event, data: JSON.parse(data) as Json });
          this.wake?.();
        }
      }
    })().catch((err: unknown) => {
      if (!this.stop.signal.aborted) this.failed = err as Error;
      this.wake?.();
    });
  }

  close(): void {
    this.stop.abort();
  }

  /** When the child had all of `rev` (see the class), and when its record arrived. */
  async complete(rev: string): Promise<{ doneAt: number; firstPendingAt?: number }> {
    const deadline = Date.now() + TRANSFER_TIMEOUT_MS;
    let next = 0;
    let recordAt: number | undefined;
    while (Date.now() < deadline) {
      if (this.failed) throw this.failed;
      for (; next < this.events.length; next++) {
        const e = this.events[next] as (typeof this.events)[number];
        if (e.event === 'change' && e.data.rev === rev) recordAt ??= e.at;
        const progress = e.data as unknown as FilesStatus['files'];
        if (recordAt === undefined || e.event !== 'files-progress' || progress.pending > 0 || progress.busy)
          continue;
        const list = (await http(`http://127.0.0.1:${this.t.apiPort}/api/files`, {
          token: this.t.apiToken,
        })) as { files: Array<{ name: string; rev: string; here: boolean }> };
        const file = list.files.find((f) => f.name === NAME);
        if (file?.rev === rev && file.here) return { doneAt: e.at, firstPendingAt: recordAt };
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
    throw new Error(`the child did not have ${NAME}@${rev.slice(0, 8)} within ${TRANSFER_TIMEOUT_MS} ms`);
  }
}

interface TrosynRun {
  bytes: number;
  ms: number;
  putMs: number;
  /** From the put's end to the content complete on the child. */
  syncMs: number;
  /** From the put's end to the child's status first showing the version pending (when a poll saw it). */
  recordMs?: number;
  mbPerSec: number;
  putMbPerSec: number;
  syncMbPerSec: number;
  wire: Wire;
  /** The same connection's bytes from the hub side, from ss (bytes_sent + bytes_received). */
  ssBytes: number;
  /** Chunk bytes the hub served to the child, from its admin API (/api/files/transfers). */
  chunkBytesServed: number;
  chunkCount: number;
  hubPeakRssMB: number;
  childPeakRssMB: number;
  putPeakRssMB: number;
  /** RSS of the agents just before the put (what they hold at rest). */
  hubStartRssMB: number;
  childStartRssMB: number;
  hubCpuMs: number;
  childCpuMs: number;
  putCpuMs: number;
  otherCpuMs: number;
}

async function hubChunkBytesOut(t: Trosyn): Promise<number> {
  const r = await http<{ devices: Array<{ bytesOut: number }> }>(
    `http://127.0.0.1:${t.adminPort}/api/files/transfers`,
    { token: t.adminToken },
  );
  return r.devices.reduce((n, d) => n + d.bytesOut, 0);
}

/** Records `v` on the hub with `files put` and waits until the child has all of it. */
async function trosynSend(cliPath: string, t: Trosyn, v: Version, wire: WireCounter): Promise<TrosynRun> {
  execFileSync('sync');
  const rest = [t.hub.pid, t.child.pid].map((pid) => Math.round(memoryOf(pid)?.rssMB ?? 0));
  for (const pid of [t.hub.pid, t.child.pid]) resetPeakRss(pid);
  const watch = new Watch([t.hub.pid, t.child.pid]);
  let putPid = 0;
  const w0 = wire.read(`p${t.port}`);
  const ss0 = tcpBytes(t.port);
  const served0 = await hubChunkBytesOut(t);
  const events = new ChildEvents(t);
  await events.open();
  let put: Json;
  let t0: number;
  let tPut: number;
  let done: { doneAt: number; firstPendingAt?: number };
  try {
    t0 = wallMs();
    put = await cli(cliPath, ['files', 'put', v.path, '--name', NAME, '--data', t.hubData], (pid) => {
      putPid = pid;
      watch.add(pid);
    });
    tPut = wallMs();
    if (put.sha256 !== v.sha256 || put.size !== v.bytes)
      throw new Error(`files put recorded ${JSON.stringify(put)}`);
    done = await events.complete(put.rev as string);
  } finally {
    events.close();
  }
  const { doneAt, firstPendingAt } = done;
  const w1 = wire.read(`p${t.port}`);
  const ss1 = tcpBytes(t.port);
  const served1 = await hubChunkBytesOut(t);
  const seen = watch.stop();
  const ms = doneAt - t0;
  const putMs = tPut - t0;
  return {
    bytes: v.bytes,
    ms: Math.round(ms),
    putMs: Math.round(putMs),
    syncMs: Math.round(doneAt - tPut),
    ...(firstPendingAt !== undefined && { recordMs: Math.round(firstPendingAt - tPut) }),
    mbPerSec: round(v.bytes / MB / (ms / 1000), 1),
    putMbPerSec: round(v.bytes / MB / (putMs / 1000), 1),
    syncMbPerSec: round(v.bytes / MB / ((doneAt - tPut) / 1000), 1),
    wire: wireDelta(w0, w1),
    ssBytes: ss1.sent + ss1.received - (ss0.sent + ss0.received),
    chunkBytesServed: served1 - served0,
    chunkCount: put.chunkCount as number,
    hubPeakRssMB: seen.peakMB.get(t.hub.pid) ?? 0,
    childPeakRssMB: seen.peakMB.get(t.child.pid) ?? 0,
    putPeakRssMB: seen.peakMB.get(putPid) ?? 0,
    hubStartRssMB: rest[0] as number,
    childStartRssMB: rest[1] as number,
    hubCpuMs: seen.cpuMs.get(t.hub.pid) ?? 0,
    childCpuMs: seen.cpuMs.get(t.child.pid) ?? 0,
    putCpuMs: seen.cpuMs.get(putPid) ?? 0,
    otherCpuMs: seen.otherCpuMs,
  };
}

/** Writes the child's current version out with `files get` and checks it; the milliseconds that took. */
async function trosynCheck(cliPath: string, t: Trosyn, v: Version, dir: string): Promise<number> {
  const out = join(dir, 'check.bin');
  const t0 = wallMs();
  await cli(cliPath, ['files', 'get', NAME, '-o', out, '--data', t.childData]);
  const ms = wallMs() - t0;
  const sha = await sha256File(out);
  rmSync(out, { force: true });
  if (sha !== v.sha256) throw new Error(`the child's ${NAME} does not match the version sent`);
  return Math.round(ms);
}

// --- rsync -------------------------------------------------------------------------------

interface Rsyncd {
  proc: Proc;
  port: number;
  /** The module's directory: NAME in it is what is served. */
  dir: string;
}

async function startRsyncd(root: string): Promise<Rsyncd> {
  const dir = join(root, 'rsync-src');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(root, 'rsyncd.conf');
  writeFileSync(
    conf,
    [
      `pid file = ${join(root, 'rsyncd.pid')}`,
      `log file = ${join(root, 'rsyncd.log')}`,
      '[d]',
      `path = ${dir}`,
      'use chroot = no',
      'read only = yes',
      `uid = ${process.getuid?.() ?? 0}`,
      `gid = ${process.getgid?.() ?? 0}`,
      '',
    ].join('\n'),
  );
  const proc = new Proc('rsyncd', 'rsync', [
    '--daemon',
    '--no-detach',
    '--address=127.0.0.1',
    `--port=${port}`,
    `--config=${conf}`,
  ]);
  await waitForPort(port, 20_000);
  return { proc, port, dir };
}

interface RsyncRun {
  bytes: number;
  ms: number;
  mbPerSec: number;
  wire: Wire;
  /** From --stats. */
  literalBytes: number;
  matchedBytes: number;
  statsSentBytes: number;
  statsReceivedBytes: number;
}

async function rsyncSend(
  d: Rsyncd,
  v: Version,
  dest: string,
  fsync: boolean,
  wire: WireCounter,
): Promise<RsyncRun> {
  placeAs(v.path, d.dir);
  execFileSync('sync');
  const w0 = wire.read(`p${d.port}`);
  const { stdout, ms } = await runToEnd('rsync', [
    '-a',
    '--no-whole-file',
    '--stats',
    ...(fsync ? ['--fsync'] : []),
    `rsync://127.0.0.1:${d.port}/d/${NAME}`,
    join(dest, NAME),
  ]);
  const w1 = wire.read(`p${d.port}`);
  const num = (label: string) => {
    const m = new RegExp(`${label}: ([\\d,]+)`).exec(stdout);
    return m ? Number((m[1] as string).replaceAll(',', '')) : Number.NaN;
  };
  if ((await sha256File(join(dest, NAME))) !== v.sha256) throw new Error('rsync: the copy does not match');
  return {
    bytes: v.bytes,
    ms: Math.round(ms),
    mbPerSec: round(v.bytes / MB / (ms / 1000), 1),
    wire: wireDelta(w0, w1),
    literalBytes: num('Literal data'),
    matchedBytes: num('Matched data'),
    statsSentBytes: num('Total bytes sent'),
    statsReceivedBytes: num('Total bytes received'),
  };
}

// --- Syncthing ---------------------------------------------------------------------------

class SyncthingNode {
  private constructor(
    readonly proc: Proc,
    readonly id: string,
    readonly folder: string,
    readonly guiPort: number,
    readonly listenPort: number,
    private readonly apiKey: string,
  ) {}

  /** Generates a home, sets it up for loopback only (see ../shared/peers/syncthing.md), starts it. */
  static async start(root: string, name: string): Promise<SyncthingNode> {
    const home = join(root, `st-${name}`);
    const folder = join(root, `st-${name}-folder`);
    mkdirSync(join(folder, '.stfolder'), { recursive: true });
    await runToEnd(
      'syncthing',
      ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'],
      {
        env: { HOME: home },
        timeoutMs: 60_000,
      },
    );
    const [guiPort, listenPort] = [await freePort(), await freePort()];
    const apiKey = createHash('sha256')
      .update(`${process.pid} ${name} ${Date.now()}`)
      .digest('hex')
      .slice(0, 32);
    const path = join(home, 'config.xml');
    let xml = readFileSync(path, 'utf8');
    const set = (pattern: RegExp, value: string) => {
      if (!pattern.test(xml)) throw new Error(`syncthing config: no ${String(pattern)}`);
      xml = xml.replace(pattern, `$1${value}$2`);
    };
    set(/(<gui[^>]*>\s*<address>)[^<]*(<\/address>)/, `127.0.0.1:${guiPort}`);
    set(/(<apikey>)[^<]*(<\/apikey>)/, apiKey);
    set(/(<listenAddress>)[^<]*(<\/listenAddress>)/, `tcp://127.0.0.1:${listenPort}`);
    for (const tag of [
      'globalAnnounceEnabled',
      'localAnnounceEnabled',
      'relaysEnabled',
      'natEnabled',
      'startBrowser',
      'crashReportingEnabled',
      'setLowPriority',
    ])
      set(new RegExp(`(<${tag}>)[^<]*(</${tag}>)`), 'false');
    set(/(<urAccepted>)[^<]*(<\/urAccepted>)/, '-1');
    set(/(<autoUpgradeIntervalH>)[^<]*(<\/autoUpgradeIntervalH>)/, '0');
    writeFileSync(path, xml);
    const id = /<device id="([A-Z0-9-]+)"/.exec(xml)?.[1];
    if (!id) throw new Error('syncthing config: no device id');
    const proc = new Proc(
      `syncthing-${name}`,
      'syncthing',
      ['serve', `--home=${home}`, '--no-browser', '--no-restart', '--no-upgrade'],
      { HOME: home, STMONITORED: 'yes', STNOUPGRADE: '1', STNORESTART: '1' },
    );
    const node = new SyncthingNode(proc, id, folder, guiPort, listenPort, apiKey);
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await node.rest('GET', '/rest/system/status');
        return node;
      } catch (err) {
        if (Date.now() > deadline || proc.proc.exitCode !== null)
          throw new Error(`syncthing ${name} did not start: ${(err as Error).message}; ${proc.stderr()}`);
        await sleep(100);
      }
    }
  }

  rest<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    return http<T>(`http://127.0.0.1:${this.guiPort}${path}`, { method, apiKey: this.apiKey, body });
  }
}

interface SyncthingPair {
  a: SyncthingNode;
  b: SyncthingNode;
  version: string;
}

/** A sends the folder "bench" to B (send-only, receive-only), connected and idle. */
async function startSyncthing(root: string): Promise<SyncthingPair> {
  const a = await SyncthingNode.start(root, 'A');
  const b = await SyncthingNode.start(root, 'B');
  const folder = (node: SyncthingNode, type: string) => ({
    id: 'bench',
    label: 'bench',
    path: node.folder,
    type,
    fsWatcherEnabled: false,
    rescanIntervalS: 0,
    devices: [{ deviceID: a.id }, { deviceID: b.id }],
  });
  await a.rest('POST', '/rest/config/devices', {
    deviceID: b.id,
    name: 'B',
    addresses: [`tcp://127.0.0.1:${b.listenPort}`],
  });
  await b.rest('POST', '/rest/config/devices', {
    deviceID: a.id,
    name: 'A',
    addresses: [`tcp://127.0.0.1:${a.listenPort}`],
  });
  await a.rest('POST', '/rest/config/folders', folder(a, 'sendonly'));
  await b.rest('POST', '/rest/config/folders', folder(b, 'receiveonly'));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const conns = await a.rest<{ connections: Record<string, { connected: boolean }> }>(
      'GET',
      '/rest/system/connections',
    );
    const states = await Promise.all(
      [a, b].map((n) =>
        n.rest<{ state: string }>('GET', '/rest/db/status?folder=bench').catch(() => ({ state: '?' })),
      ),
    );
    if (conns.connections[b.id]?.connected && states.every((s) => s.state === 'idle')) break;
    if (Date.now() > deadline)
      throw new Error(`syncthing A and B did not connect; ${a.proc.stderr()}\n${b.proc.stderr()}`);
    await sleep(200);
  }
  const version = (await a.rest<{ version: string }>('GET', '/rest/system/version')).version;
  return { a, b, version };
}

interface SyncthingRun {
  bytes: number;
  ms: number;
  scanMs: number;
  mbPerSec: number;
  wire: Wire;
  /** A's outBytesTotal to B, from its REST API. */
  reportedOutBytes: number;
  aPeakRssMB: number;
  bPeakRssMB: number;
  aCpuMs: number;
  bCpuMs: number;
}

async function syncthingSend(s: SyncthingPair, v: Version, wire: WireCounter): Promise<SyncthingRun> {
  const { a, b } = s;
  const name = `st${a.listenPort}`;
  execFileSync('sync');
  for (const pid of [a.proc.pid, b.proc.pid]) resetPeakRss(pid);
  const watch = new Watch([a.proc.pid, b.proc.pid]);
  const out = async () =>
    (
      await a.rest<{ connections: Record<string, { outBytesTotal: number }> }>(
        'GET',
        '/rest/system/connections',
      )
    ).connections[b.id]?.outBytesTotal ?? 0;
  const out0 = await out();
  const w0 = wire.read(name);
  const t0 = wallMs();
  placeAs(v.path, a.folder);
  await a.rest('POST', '/rest/db/scan?folder=bench');
  const tScan = wallMs();
  const deadline = Date.now() + TRANSFER_TIMEOUT_MS;
  let doneAt = 0;
  while (!doneAt) {
    const at = wallMs();
    const f = await b
      .rest<{
        global?: { size: number; version: string[] };
        local?: { size: number; version: string[]; invalid?: boolean };
      }>('GET', `/rest/db/file?folder=bench&file=${NAME}`)
      .catch(() => undefined);
    if (
      f?.local &&
      f.global &&
      f.local.size === v.bytes &&
      f.global.size === v.bytes &&
      !f.local.invalid &&
      JSON.stringify(f.local.version) === JSON.stringify(f.global.version)
    )
      doneAt = at;
    else if (Date.now() > deadline) throw new Error('syncthing: B did not get the new version in time');
    else await sleep(pollDelay(tScan));
  }
  const w1 = wire.read(name);
  const out1 = await out();
  const seen = watch.stop();
  if ((await sha256File(join(b.folder, NAME))) !== v.sha256)
    throw new Error('syncthing: the copy does not match');
  const ms = doneAt - t0;
  return {
    bytes: v.bytes,
    ms: Math.round(ms),
    scanMs: Math.round(tScan - t0),
    mbPerSec: round(v.bytes / MB / (ms / 1000), 1),
    wire: wireDelta(w0, w1),
    reportedOutBytes: out1 - out0,
    aPeakRssMB: seen.peakMB.get(a.proc.pid) ?? 0,
    bPeakRssMB: seen.peakMB.get(b.proc.pid) ?? 0,
    aCpuMs: seen.cpuMs.get(a.proc.pid) ?? 0,
    bCpuMs: seen.cpuMs.get(b.proc.pid) ?? 0,
  };
}

// --- chunker -----------------------------------------------------------------------------

/**
 * Chunking + SHA-256 of every chunk against SHA-256 of the same bytes in one piece,
 * per core (the thread's CPU time), the variants alternating; also pushed in 1 MiB
 * pieces, as `files put` reads a file. The same measure as `npm run bench -- chunker`.
 */
function measureChunker() {
  const bytes = keystream('files bench chunker').update(Buffer.alloc(CHUNKER_BYTES));
  const runs = {
    sha256: () => createHash('sha256').update(bytes).digest('hex'),
    chunkAndHash: () => chunkBuffer(bytes),
    pieces1MiB: () => {
      const chunker = new Chunker();
      for (let at = 0; at < bytes.length; at += MiB) chunker.push(bytes.subarray(at, at + MiB));
      chunker.end();
    },
  };
  const ms: Record<keyof typeof runs, number[]> = { sha256: [], chunkAndHash: [], pieces1MiB: [] };
  for (const work of Object.values(runs)) work();
  for (let r = 0; r < CHUNKER_ROUNDS; r++)
    for (const [name, work] of Object.entries(runs)) ms[name as keyof typeof runs].push(timed(work));
  const mbps = (name: keyof typeof runs) => round(CHUNKER_BYTES / 1e3 / median(ms[name]), 0);
  return {
    bytes: CHUNKER_BYTES,
    rounds: CHUNKER_ROUNDS,
    sha256MBps: mbps('sha256'),
    chunkAndHashMBps: mbps('chunkAndHash'),
    ratio: round(median(ms.sha256) / median(ms.chunkAndHash)),
    pieces1MiBMBps: mbps('pieces1MiB'),
    pieces1MiBRatio: round(median(ms.sha256) / median(ms.pieces1MiB)),
    target: GOALS.chunkRatio,
  };
}

// --- the run -----------------------------------------------------------------------------

type Runs = { [T in Tool]: Array<Json & { ms: number; wire: Wire; mbPerSec: number }> };
const emptyRuns = (): Runs => ({ trosyn: [], rsync: [], rsyncFsync: [], syncthing: [] });

export async function run(): Promise<Record<string, unknown>> {
  const began = performance.now();
  const log = (text: string) => console.log(`[${((performance.now() - began) / 1000).toFixed(0)}s] ${text}`);
  const sizes = (n: number) => (n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`);

  // Room: three versions, the hub's and child's chunks and a receiver's copy with its
  // temporary, then for the big file the file and two chunk stores.
  const need = Math.max(7 * FILE_BYTES, 3 * BIG_BYTES) + 2 * GiB;
  const { dir: root, freeBytes } = workspace(need);
  log(
    `scratch ${root} (${(freeBytes / GiB).toFixed(0)} GiB free); file ${sizes(FILE_BYTES)}, ${ROUNDS} rounds`,
  );

  // 3. chunking first, on a quiet machine (nothing of ours runs yet).
  const chunker = measureChunker();
  const opts = DEFAULT_CHUNKER_OPTIONS;
  log(
    `chunker ${opts.minSize / KiB}/${opts.avgSize / KiB}/${opts.maxSize / KiB} KiB (min/avg/max), normalization ${opts.normalization}`,
  );

  const { cli: cliPath, built, commit } = buildCli(root);
  const wire = new WireCounter();

  // The three versions: the file, then 1 MiB at 37%, then 1,000,000 B at 90% of that.
  const versions: Version[] = [];
  {
    const path = join(root, 'v0.bin');
    versions.push({
      path,
      bytes: FILE_BYTES,
      sha256: writeSeeded(path, FILE_BYTES, `files bench ${FILE_BYTES}`),
    });
    for (const [i, edit] of EDITS.entries()) {
      const prev = versions[i] as Version;
      const at = Math.floor(prev.bytes * edit.at);
      const inserted = keystream(`files bench ${edit.key}`).update(Buffer.alloc(edit.bytes));
      const to = join(root, `v${i + 1}.bin`);
      versions.push({
        path: to,
        bytes: prev.bytes + edit.bytes,
        sha256: writeWithInsert(prev.path, to, at, inserted),
      });
    }
  }
  log('files written');

  const initial = emptyRuns();
  const edits = EDITS.map(() => emptyRuns());
  let syncthingVersion = '';
  /** `files get` of the 1 GiB version on the child (round 1): writing the content out. */
  let trosynGetMs: number | undefined;
  const rsyncd = await startRsyncd(root);
  wire.watch(`p${rsyncd.port}`, rsyncd.port);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const order = TOOLS.map((_, i) => TOOLS[(i + r) % TOOLS.length] as Tool);
      for (const tool of order) {
        const dir = join(root, `${tool}-${r}`);
        mkdirSync(dir);
        const sends: Array<Json & { ms: number; wire: Wire; mbPerSec: number }> = [];
        if (tool === 'trosyn') {
          const t = await startTrosyn(cliPath, dir);
          wire.watch(`p${t.port}`, t.port);
          try {
            // Every version read back on the child and checked in the first round, the first in every round.
            for (const [i, v] of versions.entries()) {
              sends.push({ ...(await trosynSend(cliPath, t, v, wire)) });
              if (r === 0 || i === 0) {
                const ms = await trosynCheck(cliPath, t, v, dir);
                if (r === 0 && i === 0) trosynGetMs = ms;
              }
            }
          } finally {
            await stopTrosyn(t);
          }
        } else if (tool === 'syncthing') {
          const s = await startSyncthing(dir);
          syncthingVersion = s.version;
          wire.watch(`st${s.a.listenPort}`, s.a.listenPort, s.b.listenPort);
          try {
            for (const v of versions) sends.push({ ...(await syncthingSend(s, v, wire)) });
          } finally {
            await s.a.proc.stop();
            await s.b.proc.stop();
          }
        } else {
          const dest = join(dir, 'dest');
          mkdirSync(dest);
          for (const v of versions)
            sends.push({ ...(await rsyncSend(rsyncd, v, dest, tool === 'rsyncFsync', wire)) });
        }
        rmSync(dir, { recursive: true, force: true });
        initial[tool].push(sends[0] as (typeof sends)[number]);
        for (const [i] of EDITS.entries()) edits[i]?.[tool].push(sends[i + 1] as (typeof sends)[number]);
        const [first, ...rest] = sends;
        log(
          `round ${r + 1} ${TOOL_LABEL[tool]}: ${first?.mbPerSec} MB/s; edits ${rest
            .map(
              (s) =>
                `${(s.wire.tcpPayloadBytes / MB).toFixed(2)} MB on the wire in ${(s.ms / 1000).toFixed(2)} s`,
            )
            .join(', ')}`,
        );
      }
    }
  } finally {
    await rsyncd.proc.stop();
  }

  // 4. the big file: Trosyn alone (and rsync beside it for the throughput), the 1 GiB files gone.
  let big: Json | undefined;
  if (BIG_BYTES > 0) {
    for (const v of versions) rmSync(v.path, { force: true });
    const path = join(root, 'big.bin');
    const v: Version = {
      path,
      bytes: BIG_BYTES,
      sha256: writeSeeded(path, BIG_BYTES, `files bench ${BIG_BYTES}`),
    };
    log(`${sizes(BIG_BYTES)} file written`);
    const dir = join(root, 'trosyn-big');
    mkdirSync(dir);
    const t = await startTrosyn(cliPath, dir);
    wire.watch(`p${t.port}`, t.port);
    let trosyn: TrosynRun;
    try {
      trosyn = await trosynSend(cliPath, t, v, wire);
    } finally {
      await stopTrosyn(t);
    }
    rmSync(dir, { recursive: true, force: true });
    log(
      `${sizes(BIG_BYTES)} Trosyn: ${trosyn.mbPerSec} MB/s, hub ${trosyn.hubPeakRssMB} MiB, child ${trosyn.childPeakRssMB} MiB`,
    );
    const d = await startRsyncd(join(root, 'rsync-big'));
    wire.watch(`p${d.port}`, d.port);
    let rsync: RsyncRun;
    try {
      const dest = join(root, 'rsync-big', 'dest');
      mkdirSync(dest);
      rsync = await rsyncSend(d, v, dest, false, wire);
    } finally {
      await d.proc.stop();
    }
    rmSync(join(root, 'rsync-big'), { recursive: true, force: true });
    rmSync(path, { force: true });
    log(`${sizes(BIG_BYTES)} rsync: ${rsync.mbPerSec} MB/s`);
    big = { bytes: BIG_BYTES, trosyn, rsync };
  }
  wire.close();

  const measured = commit ? { commit, srcDirty: false } : sourceVersion();
  return report({
    chunker,
    initial,
    edits,
    big,
    syncthingVersion,
    trosynGetMs,
    built,
    measured,
    versions,
    sizes,
  });
}

// --- the report --------------------------------------------------------------------------

const med = (values: number[]) => (values.length ? median(values) : Number.NaN);
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

function report(r: {
  chunker: ReturnType<typeof measureChunker>;
  initial: Runs;
  edits: Runs[];
  big: Json | undefined;
  syncthingVersion: string;
  trosynGetMs: number | undefined;
  built: string;
  measured: { commit: string; srcDirty: boolean };
  versions: Version[];
  sizes: (n: number) => string;
}): Record<string, unknown> {
  const { chunker, initial, edits, big, sizes } = r;
  const line = (label: string, value: string, versus: string) =>
    console.log(`  ${label.padEnd(34)} ${value.padStart(14)}   ${versus}`);

  // 1. throughput
  const mbps = Object.fromEntries(TOOLS.map((t) => [t, med(initial[t].map((x) => x.mbPerSec))])) as Record<
    Tool,
    number
  >;
  const trosynInitial = initial.trosyn as unknown as TrosynRun[];
  const putMbps = med(trosynInitial.map((x) => x.putMbPerSec));
  const syncMbps = med(trosynInitial.map((x) => x.syncMbPerSec));
  const ratioVsRsync = round(mbps.trosyn / mbps.rsync);
  console.log(`\n${sizes(FILE_BYTES)} random file, sender to receiver on loopback (median of ${ROUNDS})`);
  line(TOOL_LABEL.rsync, `${mbps.rsync} MB/s`, 'baseline 1.00');
  for (const t of ['rsyncFsync', 'syncthing'] as Tool[])
    line(TOOL_LABEL[t], `${mbps[t]} MB/s`, String(round(mbps[t] / mbps.rsync)));
  line(
    TOOL_LABEL.trosyn,
    `${mbps.trosyn} MB/s`,
    `${ratioVsRsync} (goal >= ${GOALS.ratioVsRsync}: ${met(ratioVsRsync >= GOALS.ratioVsRsync)})`,
  );
  line('  files put on the hub alone', `${putMbps} MB/s`, String(round(putMbps / mbps.rsync)));
  line('  hub -> child after the put', `${syncMbps} MB/s`, String(round(syncMbps / mbps.rsync)));
  if (r.trosynGetMs)
    line(
      '  files get on the child (write out)',
      `${round(FILE_BYTES / MB / (r.trosynGetMs / 1000), 1)} MB/s`,
      'not in the times above',
    );

  // 2. edits
  const editFigures = EDITS.map((edit, i) => {
    const runs = edits[i] as Runs;
    const bytes = Object.fromEntries(
      TOOLS.map((t) => [t, med(runs[t].map((x) => x.wire.tcpPayloadBytes))]),
    ) as Record<Tool, number>;
    const ms = Object.fromEntries(TOOLS.map((t) => [t, med(runs[t].map((x) => x.ms))])) as Record<
      Tool,
      number
    >;
    const wireOk = bytes.trosyn <= GOALS.editWireBytes;
    const fasterOk = ms.trosyn < Math.min(ms.rsync, ms.syncthing);
    console.log(`\n${edit.label}, the receiver holding the previous version (median of ${ROUNDS})`);
    console.log(`  ${''.padEnd(34)} ${'on the wire'.padStart(14)}   time to complete`);
    for (const t of ['rsync', 'rsyncFsync', 'syncthing'] as Tool[])
      line(TOOL_LABEL[t], `${(bytes[t] / MB).toFixed(3)} MB`, `${(ms[t] / 1000).toFixed(2)} s`);
    line(
      TOOL_LABEL.trosyn,
      `${(bytes.trosyn / MB).toFixed(3)} MB`,
      `${(ms.trosyn / 1000).toFixed(2)} s (goals: <= 2 MiB on the wire ${met(wireOk)}; faster than rsync and Syncthing ${met(fasterOk)})`,
    );
    const tr = runs.trosyn as unknown as TrosynRun[];
    line('  of which files put on the hub', '', `${(med(tr.map((x) => x.putMs)) / 1000).toFixed(2)} s`);
    line(
      '  chunk bytes the hub served',
      `${(med(tr.map((x) => x.chunkBytesServed)) / MB).toFixed(3)} MB`,
      '',
    );
    return {
      key: edit.key,
      insertedBytes: edit.bytes,
      atShare: edit.at,
      wireBytes: bytes,
      ms,
      goals: {
        wireBytes: { target: `<= ${GOALS.editWireBytes}`, met: wireOk },
        faster: { target: 'less time than rsync and Syncthing', met: fasterOk },
      },
      runs,
    };
  });

  // 3. chunker
  const c = chunker;
  const o = DEFAULT_CHUNKER_OPTIONS;
  console.log(
    `\nchunking, per core (on-CPU time), ${c.bytes / MiB} MiB; chunks ${o.minSize / KiB}/${o.avgSize / KiB}/${o.maxSize / KiB} KiB min/avg/max, normalization ${o.normalization}`,
  );
  line('SHA-256 of the whole input', `${c.sha256MBps} MB/s`, 'baseline 1.00');
  line(
    'chunk + SHA-256 each chunk',
    `${c.chunkAndHashMBps} MB/s`,
    `${c.ratio} (goal >= ${GOALS.chunkRatio}: ${met(c.ratio >= GOALS.chunkRatio)})`,
  );
  line('  the same, pushed in 1 MiB pieces', `${c.pieces1MiBMBps} MB/s`, String(c.pieces1MiBRatio));

  // 4. memory
  const hubPeak = Math.max(...trosynInitial.map((x) => x.hubPeakRssMB));
  const childPeak = Math.max(...trosynInitial.map((x) => x.childPeakRssMB));
  const putPeak = Math.max(...trosynInitial.map((x) => x.putPeakRssMB));
  const st = initial.syncthing as unknown as SyncthingRun[];
  const bigT = big?.trosyn as TrosynRun | undefined;
  const memOk = (mb: number) => mb <= GOALS.peakRssMB;
  console.log(`\npeak RSS (VmHWM, reset before each transfer), MiB; goal <= ${GOALS.peakRssMB} each`);
  line(
    `${sizes(FILE_BYTES)}: Trosyn hub / child`,
    `${hubPeak} / ${childPeak}`,
    `${met(memOk(hubPeak) && memOk(childPeak))}; files put ${putPeak}`,
  );
  if (st.length)
    line(
      `${sizes(FILE_BYTES)}: Syncthing A / B`,
      `${Math.max(...st.map((x) => x.aPeakRssMB))} / ${Math.max(...st.map((x) => x.bPeakRssMB))}`,
      '',
    );
  if (bigT) {
    line(
      `${sizes(BIG_BYTES)}: Trosyn hub / child`,
      `${bigT.hubPeakRssMB} / ${bigT.childPeakRssMB}`,
      `${met(memOk(bigT.hubPeakRssMB) && memOk(bigT.childPeakRssMB))}; files put ${bigT.putPeakRssMB}`,
    );
    const rs = big?.rsync as RsyncRun;
    line(
      `${sizes(BIG_BYTES)}: Trosyn / rsync`,
      `${bigT.mbPerSec} / ${rs.mbPerSec} MB/s`,
      String(round(bigT.mbPerSec / rs.mbPerSec)),
    );
  } else console.log(`  ${sizes(BIG_BYTES || 4 * GiB)} run skipped (--quick or BENCH_BIG_BYTES=0)`);

  return {
    ...r.measured,
    fileBytes: FILE_BYTES,
    rounds: ROUNDS,
    chunkerOptions: DEFAULT_CHUNKER_OPTIONS,
    throughput: {
      mbPerSec: mbps,
      ratioVsRsync,
      trosynPutMbPerSec: putMbps,
      trosynSyncMbPerSec: syncMbps,
      trosynGetMs: r.trosynGetMs ?? null,
      goal: { target: `>= ${GOALS.ratioVsRsync}`, met: ratioVsRsync >= GOALS.ratioVsRsync },
      runs: initial,
    },
    edits: editFigures,
    chunker,
    memory: {
      goalMB: GOALS.peakRssMB,
      file: { hubPeakRssMB: hubPeak, childPeakRssMB: childPeak, putPeakRssMB: putPeak },
      big: bigT
        ? {
            bytes: BIG_BYTES,
            hubPeakRssMB: bigT.hubPeakRssMB,
            childPeakRssMB: bigT.childPeakRssMB,
            putPeakRssMB: bigT.putPeakRssMB,
          }
        : null,
      met:
        memOk(hubPeak) &&
        memOk(childPeak) &&
        (!bigT || (memOk(bigT.hubPeakRssMB) && memOk(bigT.childPeakRssMB))),
    },
    big: big ?? null,
    versions: r.versions.map((v) => ({ bytes: v.bytes, sha256: v.sha256 })),
    setup: {
      trosyn: `trosyn-sync hub and child agents (${r.built}), TLS 1.3 on 127.0.0.1, product defaults (every chunk fdatasync'ed); files put on the hub's data directory while the agents run; done at the child's first files-progress event (its local API's event stream, GET /api/changes) after the version's record that shows no content pending, checked with GET /api/files (here)`,
      rsync: `${execFileSync('rsync', ['--version'], { encoding: 'utf8' }).split('\n')[0]}; daemon on 127.0.0.1, rsync -a --no-whole-file --stats [--fsync] rsync://127.0.0.1:<port>/d/${NAME} <dest>; a new destination per round`,
      syncthing: `Syncthing ${r.syncthingVersion}: two instances, send-only A and receive-only B, no discovery, relays, NAT or watcher, rescan off; POST /rest/db/scan on A after the file is replaced, done when B's /rest/db/file has the new version (polled as for Trosyn)`,
      versions:
        'v0 the seeded random file; v1 = v0 with 1 MiB inserted at 37%; v2 = v1 with 1,000,000 bytes inserted at 90%; each receiver holds the previous version',
      wire: "nftables counters on lo (output hook) for the sync port(s), each packet counted once, per direction; tcpPayloadBytes = IP bytes - 52 per packet; Trosyn's own counts beside: ssBytes (ss -ti on the hub's connection) and chunkBytesServed (the hub's admin API)",
      order:
        'the tools run one after another in each round, the order rotating from round to round; sync(1) before each transfer',
      rss: 'VmHWM reset (clear_refs 5) before each transfer, then VmRSS/VmHWM sampled every 100 ms',
    },
  };
}
