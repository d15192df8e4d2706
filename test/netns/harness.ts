/**
 * A small lab of network namespaces for tests: N hosts on one private link, each a
 * namespace with an `eth0` plugged into a bridge that lives in a namespace of its own,
 * so the machine's own interfaces are never touched. Hosts get 10.77.0.<n>/24 and
 * fd77::<n>/64 (plus their link-local address), `lo` up, a multicast route, and no
 * IPv6 duplicate address detection, so every address works at once.
 *
 * Programs run inside a host as real child processes (`ip netns exec`), with their
 * output lines available to the test. `destroy()` (also run on exit and on SIGINT /
 * SIGTERM) kills every process started and deletes every namespace.
 *
 *   const lab = await NetnsLab.create({ hosts: ['hub', 'child'] });
 *   after(() => lab.destroy());
 *   const hub = lab.host('hub').node('test/fixtures/hub.ts', ['--port', '17700']);
 *   await hub.waitForLine(/listening/);
 *   const r = await lab.host('child').exec('dig', ['+short', lab.host('hub').ipv4]);
 *
 * Needs root, Linux and iproute2; tests gate themselves with `requireNetns(t)` or
 * `netnsSkipReason()`, which skip loudly when that is missing.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';

/** Result of a command run to completion. */
export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link NetnsLab.create}. */
export interface NetnsLabOptions {
  /** Host labels (e.g. `['hub', 'child']`), or a count for `h1`..`hN`. At most 200. */
  hosts: number | readonly string[];
  /** Namespace name prefix; the pid and a counter follow, so parallel test files never collide. Default `trosyn-`. */
  prefix?: string;
  /** Give hosts IPv6 addresses (ULA and link-local). Default true when the kernel has IPv6. */
  ipv6?: boolean;
}

const DEFAULT_PREFIX = 'trosyn-';
const IP_TIMEOUT_MS = 10_000;
const IFNAME = 'eth0';
const DROP_TABLE = 'trosyn_drop_multicast';

let counter = 0;
const liveLabs = new Set<NetnsLab>();
let exitHooked = false;

function run(
  cmd: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? IP_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : null
          : 0;
        const signal = (err as { signal?: NodeJS.Signals } | null)?.signal ?? null;
        resolve({
          code,
          signal,
          stdout: String(stdout),
          stderr: err && code === null && !signal ? String(err.message) : String(stderr),
        });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function must(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input === undefined ? {} : { input });
  if (r.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  return r.stdout;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `name` is found on PATH. */
export function commandExists(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(`${dir}/${name}`));
}

let cachedReason: Promise<string | undefined> | undefined;

/**
 * Why network-namespace tests cannot run here, or undefined when they can: needs
 * Linux, root and a working `ip netns` (checked once by creating and deleting one).
 */
export function netnsSkipReason(): Promise<string | undefined> {
  cachedReason ??= (async () => {
    if (process.platform !== 'linux') return 'needs Linux network namespaces (ip netns)';
    if (process.getuid?.() !== 0) return 'needs root and ip netns: run as root';
    if (!commandExists('ip')) return 'needs the ip command (iproute2): apt-get install iproute2';
    const probe = `${DEFAULT_PREFIX}${process.pid}-probe`;
    const r = await run('ip', ['netns', 'add', probe]);
    if (r.code !== 0) return `needs root and ip netns: "ip netns add" failed: ${r.stderr.trim()}`;
    await run('ip', ['netns', 'del', probe]);
    return undefined;
  })();
  return cachedReason;
}

/** Prints a skip reason where nobody can miss it, and returns the message for t.skip / { skip }. */
export function loudSkip(what: string, reason: string): string {
  const message = `${what} SKIPPED: ${reason}`;
  console.warn(`\n${'!'.repeat(78)}\n!! ${message}\n${'!'.repeat(78)}\n`);
  return message;
}

/**
 * Skips the test, loudly, when namespaces are unavailable. Use at the top of a test:
 * `if (!(await requireNetns(t))) return;`
 */
export async function requireNetns(t: TestContext, also: readonly string[] = []): Promise<boolean> {
  const reason = await netnsSkipReason();
  const missing = also.find((c) => !commandExists(c));
  const why =
    reason ?? (missing ? `needs the ${missing} command (apt-get install it; CI installs it)` : undefined);
  if (why === undefined) return true;
  t.skip(loudSkip(t.name, why));
  return false;
}

/** The same gate under the name tests elsewhere may look for. */
export const requireRoot = requireNetns;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const lab of liveLabs) lab.destroySync();
      // Re-raise with the default action, so the process ends the way it was asked to.
      process.kill(process.pid, signal);
    });
  }
}

/** Waits for an output line. */
export interface WaitOptions {
  /** Default 10 000 ms. */
  timeoutMs?: number;
  /** Index of the first line to look at (default 0: lines already printed count too). */
  from?: number;
}

/** A program running inside a host, with its output lines. */
export class LabProcess {
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** Resolves when the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderrText = '';
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private ended = false;

  constructor(
    readonly description: string,
    child: ChildProcess,
  ) {
    this.child = child;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      // Keeps the last 64 KiB: enough to explain a failure.
      this.stderrText = (this.stderrText + chunk).slice(-65_536);
    });
    if (child.stdout) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        this.lines.push(line);
        for (const w of [...this.waiters]) w();
      });
    }
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.ended = true;
        for (const w of [...this.waiters]) w();
        resolve({ code, signal });
      });
      child.once('error', (err) => {
        this.stderrText += `\nspawn failed: ${err.message}`;
        this.ended = true;
        for (const w of [...this.waiters]) w();
        resolve({ code: null, signal: null });
      });
    });
  }

  /** The process id (of the program itself: `ip netns exec` replaces itself with it). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Everything the process wrote to stderr (the last 64 KiB). */
  get stderr(): string {
    return this.stderrText;
  }

  /** True once the process has ended. */
  get hasExited(): boolean {
    return this.ended;
  }

  /** Writes one line to the process's standard input. */
  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /**
   * The first line (from `options.from`) that matches; rejects after the timeout or
   * when the process ends first, with its stderr in the message.
   */
  waitForLine(match: RegExp | ((line: string) => boolean), options: WaitOptions = {}): Promise<string> {
    const test = typeof match === 'function' ? match : (line: string) => match.test(line);
    const timeoutMs = options.timeoutMs ?? 10_000;
    let index = options.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (; index < this.lines.length; index++) {
          const line = this.lines[index] as string;
          if (test(line)) {
            cleanup();
            resolve(line);
            return;
          }
        }
        if (this.ended) {
          cleanup();
          reject(
            new Error(
              `${this.description} ended before printing ${String(match)}; stderr:\n${this.stderrText}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${String(match)} from ${this.description}; ` +
              `last lines:\n${this.lines.slice(-10).join('\n')}\nstderr:\n${this.stderrText.slice(-4000)}`,
          ),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Like waitForLine, for lines that are JSON objects: the first one `match` accepts, parsed. */
  async waitForJson<T = Record<string, unknown>>(
    match: (value: T) => boolean,
    options: WaitOptions = {},
  ): Promise<T> {
    const parse = (line: string): T | undefined => {
      if (!line.startsWith('{')) return undefined;
      try {
        return JSON.parse(line) as T;
      } catch {
        return undefined;
      }
    };
    const line = await this.waitForLine((l) => {
      const v = parse(l);
      return v !== undefined && match(v);
    }, options);
    return parse(line) as T;
  }

  /** Every stdout line that is a JSON object, parsed. */
  json<T = Record<string, unknown>>(): T[] {
    const out: T[] = [];
    for (const line of this.lines) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        // Not JSON after all.
      }
    }
    return out;
  }

  /** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process has ended. */
  async stop(graceMs = 2_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.ended) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }

  /** Kills at once (from the exit hook). */
  killNow(): void {
    if (!this.ended) this.child.kill('SIGKILL');
  }
}

/** One host of the lab: a namespace with `eth0` on the lab's link. */
export class NetnsHost {
  /** Link-local IPv6 address of eth0 with its scope (`fe80::...%eth0`), if IPv6 is on. */
  linkLocal = '';
  private multicastDropped = false;

  constructor(
    private readonly lab: NetnsLab,
    /** Label given at creation, e.g. `hub`. */
    readonly label: string,
    /** Namespace name. */
    readonly ns: string,
    /** IPv4 address on eth0. */
    readonly ipv4: string,
    /** IPv6 ULA address on eth0 ('' when IPv6 is off). */
    readonly ipv6: string,
  ) {}

  /** Interface name inside the host. */
  get ifname(): string {
    return IFNAME;
  }

  /** Runs a command inside the host to completion (bounded by `timeoutMs`, default 10 s). */
  exec(
    cmd: string,
    args: readonly string[] = [],
    options: { timeoutMs?: number; input?: string } = {},
  ): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], options);
  }

  /** Starts a long-running command inside the host. */
  spawn(
    cmd: string,
    args: readonly string[] = [],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): LabProcess {
    return this.lab.track(this, cmd, args, options);
  }

  /** Starts a TypeScript (or JavaScript) file with Node inside the host: `node --import tsx script ...args`. */
  node(
    script: string,
    args: readonly string[] = [],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): LabProcess {
    return this.spawn(process.execPath, ['--import', 'tsx', script, ...args], options);
  }

  /**
   * Drops all UDP multicast in and out of this host (IPv4 224.0.0.0/4 and IPv6
   * ff00::/8; neighbour discovery is ICMPv6 and keeps working), like a network that
   * blocks multicast. Needs nftables.
   */
  async dropMulticast(): Promise<void> {
    if (this.multicastDropped) return;
    if (!commandExists('nft')) throw new Error('dropMulticast needs nftables: apt-get install nftables');
    const chain = (hook: string): string =>
      `  chain ${hook} {\n    type filter hook ${hook} priority -10; policy accept;\n` +
      '    ip daddr 224.0.0.0/4 meta l4proto udp drop\n    ip6 daddr ff00::/8 meta l4proto udp drop\n  }\n';
    await must(
      'ip',
      ['netns', 'exec', this.ns, 'nft', '-f', '-'],
      `table inet ${DROP_TABLE} {\n${chain('input')}${chain('output')}}\n`,
    );
    this.multicastDropped = true;
  }

  /** Undoes {@link dropMulticast}. */
  async allowMulticast(): Promise<void> {
    if (!this.multicastDropped) return;
    await must('ip', ['netns', 'exec', this.ns, 'nft', 'delete', 'table', 'inet', DROP_TABLE]);
    this.multicastDropped = false;
  }
}

/** A set of namespaces joined by one bridge. See the file comment. */
export class NetnsLab {
  /** The hosts, in creation order. */
  readonly hosts: NetnsHost[] = [];
  /** Whether hosts have IPv6 addresses. */
  readonly ipv6: boolean;
  /** Namespace holding the bridge. */
  readonly bridgeNs: string;
  private readonly processes = new Set<LabProcess>();
  private readonly namespaces: string[] = [];
  private destroyed = false;

  private constructor(
    private readonly base: string,
    ipv6: boolean,
  ) {
    this.bridgeNs = `${base}-br`;
    this.ipv6 = ipv6;
  }

  /** Builds the lab. On any failure, whatever was built is removed and the error raised. */
  static async create(options: NetnsLabOptions): Promise<NetnsLab> {
    const labels =
      typeof options.hosts === 'number'
        ? Array.from({ length: options.hosts }, (_, i) => `h${i + 1}`)
        : [...options.hosts];
    if (labels.length === 0 || labels.length > 200) throw new Error('a lab has 1-200 hosts');
    if (new Set(labels).size !== labels.length || labels.some((l) => !/^[a-z0-9]{1,12}$/.test(l)))
      throw new Error('host labels must be unique, 1-12 characters of a-z 0-9');
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    await NetnsLab.removeStale(prefix);
    const kernelIpv6 = existsSync('/proc/sys/net/ipv6');
    const lab = new NetnsLab(`${prefix}${process.pid}-${++counter}`, (options.ipv6 ?? true) && kernelIpv6);
    liveLabs.add(lab);
    hookExit();
    try {
      await lab.build(labels);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /**
   * Deletes namespaces left by an earlier run that was killed before it could clean
   * up (the pid in their name no longer runs). Their processes, if any, are not touched.
   */
  static async removeStale(prefix = DEFAULT_PREFIX): Promise<void> {
    const list = await run('ip', ['netns', 'list']);
    if (list.code !== 0) return;
    const re = new RegExp(`^(${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-\\S+)`);
    for (const line of list.stdout.split('\n')) {
      const m = re.exec(line.trim());
      if (!m) continue;
      const pid = Number(m[2]);
      if (pid === process.pid || pidAlive(pid)) continue;
      await run('ip', ['netns', 'del', m[1] as string]);
    }
  }

  private async addNamespace(name: string): Promise<void> {
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private async build(labels: readonly string[]): Promise<void> {
    const br = this.bridgeNs;
    await this.addNamespace(br);
    // Snooping off: the bridge floods multicast instead of waiting for IGMP/MLD
    // reports to learn members, which makes the first datagram after a join reliable.
    await must('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    await must('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    for (const [i, label] of labels.entries()) {
      const ns = `${this.base}-${label}`;
      const n = i + 1;
      const host = new NetnsHost(this, label, ns, `10.77.0.${n}`, this.ipv6 ? `fd77::${n.toString(16)}` : '');
      await this.addNamespace(ns);
      if (this.ipv6) {
        // Without DAD, link-local and ULA addresses are usable the moment the link is up.
        await must('ip', [
          'netns',
          'exec',
          ns,
          'sh',
          '-c',
          'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad',
        ]);
      }
      await must('ip', [
        '-n',
        br,
        'link',
        'add',
        `v${n}`,
        'type',
        'veth',
        'peer',
        'name',
        IFNAME,
        'netns',
        ns,
      ]);
      await must('ip', ['-n', br, 'link', 'set', `v${n}`, 'master', 'br0']);
      await must('ip', ['-n', br, 'link', 'set', `v${n}`, 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${host.ipv4}/24`, 'dev', IFNAME]);
      if (this.ipv6) await must('ip', ['-n', ns, 'addr', 'add', `${host.ipv6}/64`, 'dev', IFNAME, 'nodad']);
      await must('ip', ['-n', ns, 'link', 'set', IFNAME, 'up']);
      await must('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', IFNAME]);
      this.hosts.push(host);
    }
    if (this.ipv6) for (const host of this.hosts) host.linkLocal = await this.waitLinkLocal(host.ns);
  }

  private async waitLinkLocal(ns: string): Promise<string> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const out = await must('ip', ['-n', ns, '-6', '-o', 'addr', 'show', 'dev', IFNAME, 'scope', 'link']);
      const m = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(out);
      if (m && !/tentative/.test(out)) return `${m[1]}%${IFNAME}`;
      if (Date.now() > deadline)
        throw new Error(`no usable link-local address in ${ns} after 5 s: ${out.trim()}`);
      await sleep(20);
    }
  }

  /** The host with that label. */
  host(label: string): NetnsHost {
    const h = this.hosts.find((x) => x.label === label);
    if (!h) throw new Error(`no host ${label} in this lab (${this.hosts.map((x) => x.label).join(', ')})`);
    return h;
  }

  /** @internal Starts and tracks a process inside a host. */
  track(
    host: NetnsHost,
    cmd: string,
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string },
  ): LabProcess {
    if (this.destroyed) throw new Error('lab destroyed');
    const env = { ...process.env, ...options.env };
    // A child that inherits the runner's context would report into this test's stream.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const p = new LabProcess(
      `${cmd.split('/').pop() ?? cmd} ${args.slice(-3).join(' ')} in ${host.label}`,
      child,
    );
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  private async pidsIn(ns: string): Promise<number[]> {
    const r = await run('ip', ['netns', 'pids', ns]);
    return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
  }

  /**
   * Stops every process the lab started (SIGTERM, then SIGKILL), kills anything
   * still running inside its namespaces, and deletes the namespaces (which takes the
   * veths and the bridge with them). Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.processes].map((p) => p.stop(1_000)));
    for (const ns of [...this.namespaces].reverse()) {
      // Anything left was started inside the lab's own namespaces by the test.
      for (const pid of await this.pidsIn(ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await run('ip', ['netns', 'del', ns]);
    }
    this.namespaces.length = 0;
    liveLabs.delete(this);
  }

  /** @internal The synchronous variant, for process exit. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) p.killNow();
    for (const ns of [...this.namespaces].reverse()) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
      for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      spawnSync('ip', ['netns', 'del', ns], { timeout: IP_TIMEOUT_MS });
    }
    this.namespaces.length = 0;
    liveLabs.delete(this);
  }
}
