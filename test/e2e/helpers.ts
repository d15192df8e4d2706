import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { openReplica } from '../../src/index.js';
import type { Replica } from '../../src/sync/replica.js';
import { deviceIdOfPem } from '../../src/transport/identity.js';
import { readFileSync } from 'node:fs';

/** The built command line program, as users run it. */
export const CLI = join(process.cwd(), 'dist', 'cli', 'main.js');

/**
 * How a test runs trosyn-sync, when not as `node dist/cli/main.js` from this checkout:
 * the command before the arguments (e.g. `['trosyn-sync']`, found on `env.PATH`), and
 * the process's environment and working directory.
 */
export interface CliCommand {
  command: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const CHECKOUT_CLI: CliCommand = { command: [process.execPath, CLI] };

export { freePort } from '../helpers.js';

/** A running CLI process whose stdout JSON lines can be awaited. */
export interface Agent {
  proc: ChildProcess;
  lines: unknown[];
  waitFor(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What the process wrote to stderr so far (its last 64 KiB). */
  stderr(): string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/**
 * Starts `trosyn-sync <args>` with --json output. `prefix` runs it through another
 * command that ends by exec-ing it (e.g. `unshare ... sh -c '...; exec "$@"'`), so
 * the process is still the agent's.
 */
export function startAgent(args: string[], options: { prefix?: string[]; cli?: CliCommand } = {}): Agent {
  const cli = options.cli ?? CHECKOUT_CLI;
  const argv = [...(options.prefix ?? []), ...cli.command, ...args, '--json'];
  const proc = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cli.env && { env: cli.env }),
    ...(cli.cwd !== undefined && { cwd: cli.cwd }),
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const lines: unknown[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let stderr = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-65_536);
  });
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ text: line });
      }
      nl = buffer.indexOf('\n');
    }
    for (const w of waiters) w();
  });
  return {
    proc,
    lines,
    waitFor: (predicate, timeoutMs = 15_000, what = 'output') =>
      new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < lines.length; seen++) {
            const line = lines[seen] as Record<string, unknown>;
            if (predicate(line)) {
              cleanup();
              resolve(line);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${what}; stderr: ${stderr.slice(-2000)}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`process exited while waiting for ${what}; stderr: ${stderr.slice(-2000)}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          proc.off('exit', onExit);
        };
        waiters.add(check);
        proc.once('exit', onExit);
        check();
      }),
    stderr: () => stderr,
    kill: async (signal = 'SIGTERM') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
  };
}

/** Runs `trosyn-sync <args> --json` to completion; resolves with its parsed output, rejects with stderr on failure. */
export function runCli(args: string[], cli: CliCommand = CHECKOUT_CLI): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const [command, ...before] = cli.command;
    const proc = spawn(command as string, [...before, ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cli.env && { env: cli.env }),
      ...(cli.cwd !== undefined && { cwd: cli.cwd }),
    });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    proc.once('exit', (code) => {
      if (code === 0) resolve(out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {});
      else reject(Object.assign(new Error(err.trim()), { exitCode: code, stderr: err }));
    });
  });
}

/** Opens a node's store from the test, beside its running agent (as the CLI does). */
export async function openNode(dataDir: string): Promise<Replica> {
  const deviceId = deviceIdOfPem(readFileSync(join(dataDir, 'identity', 'cert.pem'), 'utf8'));
  const { existsSync } = await import('node:fs');
  return openReplica({
    path: join(dataDir, 'trosyn.db'),
    deviceId,
    role: existsSync(join(dataDir, 'hub.db')) ? 'hub' : 'child',
  });
}

/** Pairs the device of `data` with the hub at 127.0.0.1:`port`, by `code`, under `name`. */
export function pairWithHub(
  code: string,
  data: string,
  port: number,
  name: string,
  cli: CliCommand = CHECKOUT_CLI,
): Promise<Record<string, unknown>> {
  return runCli(['pair', code, '--data', data, '--hub', `127.0.0.1:${port}`, '--name', name], cli);
}

/** The arguments of a hub agent on 127.0.0.1:`port`, no LAN announcements. */
export function hubArgs(data: string, port: number, ...extra: string[]): string[] {
  return ['hub', '--data', data, '--host', '127.0.0.1', '--port', String(port), '--no-discovery', ...extra];
}

/** The arguments of a child agent that reaches its hub at 127.0.0.1:`port`, no LAN discovery. */
export function childArgs(data: string, port: number, ...extra: string[]): string[] {
  return ['child', '--data', data, '--hub', `127.0.0.1:${port}`, '--no-discovery', ...extra];
}

/** Starts a child agent that reaches its hub at 127.0.0.1:`port`; resolves once it runs. */
export async function startChildAgent(
  data: string,
  port: number,
  name: string,
  ...extra: string[]
): Promise<{ agent: Agent; apiPort: number }> {
  const agent = startAgent(
    childArgs(data, port, '--retry-max', '300', '--api-port', '0', '--name', name, ...extra),
  );
  const started = await agent.waitFor((l) => l.event === 'started', 20_000, `${name} starts`);
  return { agent, apiPort: started.apiPort as number };
}

/** Runs the CLI (without --json) to completion: its exit code and output. */
export function runText(
  args: string[],
  timeoutMs = 20_000,
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd !== undefined && { cwd }),
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`timed out: ${args.join(' ')}; stderr: ${stderr}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
