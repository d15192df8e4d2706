/**
 * Fixture processes for the multi-process benchmarks: each runs one script of
 * bench/fixtures/ under `node --import tsx`, takes JSON-line commands on stdin
 * and answers (and reports events) in JSON lines on stdout. Every process started
 * here is killed when the benchmark exits, however it exits; the fixtures also
 * exit by themselves when their stdin closes, so even a benchmark killed with
 * SIGKILL leaves nothing running.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { launcher } from './launcher.js';

export { launcher };

const live = new Set<ChildProcess>();

function killAll(): void {
  const pids = [...live].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  live.clear();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  // This runs in an 'exit' handler, where nothing can be awaited: wait (briefly,
  // synchronously) until the processes are dead, so that the scratch directory
  // removed after this is not written to any more.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && pids.some(running))
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
}

/** True while `pid` exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

type Line = Record<string, unknown>;

export interface FixtureOptions {
  /** Extra Node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** How long to wait for the fixture's `ready` event. Default 120 s (preloading stores takes a while). */
  readyTimeoutMs?: number;
}

/**
 * One running fixture. `request` sends a command and resolves with its answer;
 * `waitFor` resolves with the next event of a name (or one already received and
 * not yet taken).
 */
export class Fixture {
  readonly name: string;
  readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: Line): void; reject(e: Error): void }>();
  private readonly events: Line[] = [];
  private readonly waiters: Array<{ event: string; test: (l: Line) => boolean; resolve(l: Line): void }> = [];
  private readonly stderrTail: string[] = [];
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(name: string, script: string, args: string[], options: FixtureOptions) {
    this.name = name;
    const flags = [...PRODUCT.flags, ...(options.nodeFlags ?? []), ...profileFlags(name), ...extraFlags()];
    this.proc = spawn(process.execPath, [...flags, '--import', 'tsx', script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...PRODUCT.env, ...options.env },
    });
    live.add(this.proc);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        live.delete(this.proc);
        this.exitInfo = `exited with ${signal ?? code}`;
        const err = new Error(`${this.name} ${this.exitInfo}; stderr:\n${this.stderrTail.join('\n')}`);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      });
    });
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (text) =>
      this.onLine(text),
    );
    createInterface({ input: this.proc.stderr as NodeJS.ReadableStream }).on('line', (text) => {
      this.stderrTail.push(text);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
      if (process.env.BENCH_VERBOSE) console.error(`[${this.name}] ${text}`);
    });
  }

  /** Starts `bench/fixtures/<script>.ts` and waits for its `ready` event. */
  static async start(
    name: string,
    script: string,
    args: string[],
    options: FixtureOptions = {},
  ): Promise<{ fixture: Fixture; ready: Line }> {
    const fixture = new Fixture(name, join('bench', 'fixtures', `${script}.ts`), args, options);
    const ready = await fixture.waitFor('ready', () => true, options.readyTimeoutMs ?? 120_000);
    return { fixture, ready };
  }

  /** Resolves when the process has exited. */
  whenExited(): Promise<void> {
    return this.exited;
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  /** Sends a command; resolves with the fixture's answer, rejects on its error or exit. */
  request<T extends Line = Line>(cmd: string, args: Line = {}, timeoutMs = 600_000): Promise<T> {
    if (this.exitInfo) return Promise.reject(new Error(`${this.name} ${this.exitInfo}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin?.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  /** The next event named `event` that passes `test` (taking it from those already received first). */
  waitFor(event: string, test: (l: Line) => boolean = () => true, timeoutMs = 600_000): Promise<Line> {
    const index = this.events.findIndex((e) => e.event === event && test(e));
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0] as Line);
    if (this.exitInfo) return Promise.reject(new Error(`${this.name} ${this.exitInfo}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.name}: no ${event} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        event,
        test,
        resolve: (l: Line) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} ${this.exitInfo}; stderr:\n${this.stderrTail.join('\n')}`));
      });
    });
  }

  /** Asks the fixture to stop cleanly; kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.exitInfo) return;
    this.request('stop', {}, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exitInfo && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  private onLine(text: string): void {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      this.stderrTail.push(`(stdout) ${text}`);
      return;
    }
    if (typeof line.re === 'number') {
      const p = this.pending.get(line.re);
      if (!p) return;
      this.pending.delete(line.re);
      if (typeof line.error === 'string') p.reject(new Error(`${this.name}: ${line.error}`));
      else p.resolve(line);
      return;
    }
    if (typeof line.event !== 'string') return;
    const index = this.waiters.findIndex((w) => w.event === line.event && w.test(line));
    if (index >= 0) (this.waiters.splice(index, 1)[0] as (typeof this.waiters)[number]).resolve(line);
    else this.events.push(line);
  }
}

/**
 * The Node flags the product's command runs with (its launcher line, e.g. V8's
 * young generation held small): a fixture's agents run as users run them.
 */
const PRODUCT = launcher(join('src', 'cli', 'main.ts'));

/**
 * BENCH_PROFILE=<dir> writes V8 CPU profiles of every fixture process to
 * <dir>/<fixture name>/ (one file per thread: tsx's loader has its own).
 */
function profileFlags(name: string): string[] {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return [];
  mkdirSync(join(dir, name), { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${join(dir, name)}`];
}

/** BENCH_NODE_FLAGS: Node flags added to every fixture, after the product's (for experiments). */
function extraFlags(): string[] {
  return (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
}

/** VmRSS and VmHWM (peak) of a process in MiB, from /proc. */
export function memoryOf(pid: number): { rssMB: number; hwmMB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Samples the resident set of some processes every `intervalMs` (the kernel's own
 * peak, VmHWM, is read too: it catches a spike between two samples).
 */
export class RssSampler {
  private readonly peak = new Map<number, { rssMB: number; hwmMB: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: number[],
    intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const m = memoryOf(pid);
      if (!m) continue;
      const p = this.peak.get(pid) ?? { rssMB: 0, hwmMB: 0 };
      this.peak.set(pid, { rssMB: Math.max(p.rssMB, m.rssMB), hwmMB: Math.max(p.hwmMB, m.hwmMB) });
    }
  }

  /** Stops sampling; the peak (largest of sampled VmRSS and VmHWM) of each process in MiB. */
  stop(): Map<number, number> {
    this.sample();
    clearInterval(this.timer);
    return new Map([...this.peak].map(([pid, p]) => [pid, Math.round(Math.max(p.rssMB, p.hwmMB))]));
  }
}

/** Resets a process's VmHWM to its current RSS, so a later peak belongs to what runs after. */
export function resetPeakRss(pid: number): void {
  try {
    execFileSync('sh', ['-c', `echo 5 > /proc/${pid}/clear_refs`], { stdio: 'ignore' });
  } catch {
    // Not permitted here: the peak then covers the process's whole life.
  }
}

/**
 * Bytes the kernel sent and received on the established TCP connections from
 * local `port` (TLS records included), from `ss -ti`: a count independent of the
 * product's own statistics.
 */
export function tcpBytes(port: number): { sent: number; received: number; connections: number } {
  let out = '';
  try {
    out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  } catch {
    return { sent: 0, received: 0, connections: 0 };
  }
  let sent = 0;
  let received = 0;
  let connections = 0;
  for (const m of out.matchAll(/bytes_sent:(\d+)/g)) {
    sent += Number(m[1]);
    connections++;
  }
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) received += Number(m[1]);
  return { sent, received, connections };
}

/** CPU time (user + system, ms) a process has used so far, from /proc (10 ms resolution). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU time (ms) the whole machine has spent busy and waiting for I/O so far, from
 * /proc/stat: set against a benchmark's own processes, it shows how much else ran
 * on the machine meanwhile (the numbers are noisy when that is large).
 */
export function machineCpuMs(): { busy: number; iowait: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
    const [user, nice, system, , iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number) as number[];
    return {
      busy: ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10,
      iowait: (iowait ?? 0) * 10,
    };
  } catch {
    return { busy: 0, iowait: 0 };
  }
}

/**
 * Milliseconds this thread spent on a CPU doing `work`: on a shared machine, wall
 * time would count the time other processes held the core.
 */
export function timed(work: () => unknown): number {
  const start = threadCpuMs();
  work();
  return threadCpuMs() - start;
}

/** On-CPU time of the calling thread (Linux, nanosecond resolution), else of the process. */
export function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e3;
  }
}
