import type { Command } from 'commander';
import { type CommonOptions, common, dataDir, print, UsageError } from '../context.js';

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid port ${value}`);
  return n;
}

function duration(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 60_000)
    throw new UsageError(`invalid --timeout ${value}: give milliseconds, 100 to 60000`);
  return n;
}

/** `trosyn-sync doctor`: why a node does not sync, in plain words; exit status 1 when something fails. */
export function registerDoctor(program: Command): void {
  common(
    program
      .command('doctor')
      .description(
        "check a hub's or child's data directory and surroundings and explain what is wrong: permissions, identity, the agent, databases, disk space, ports, the paired hub, the clock against the hub's (or, on a hub, the devices' clocks), LAN discovery on each network interface (exit status 1 when a check fails)",
      )
      .option('--port <n>', 'the sync port a hub would use, checked when its agent does not run', port)
      .option('--http-port <n>', "the hub's admin port, checked when its agent does not run", port)
      .option('--api-port <n>', "the child's local API port, checked when its agent does not run", port)
      .option(
        '--timeout <ms>',
        'how long to listen for hubs answering on each network interface, and to wait for the hub (default 2000)',
        duration,
      ),
    'any',
  ).action(
    async (
      opts: CommonOptions & { port?: number; httpPort?: number; apiPort?: number; timeout?: number },
    ) => {
      const { runDoctor } = await import('../../ops/doctor.js');
      const report = await runDoctor(dataDir(opts, 'any'), {
        ...(opts.port !== undefined && { syncPort: opts.port }),
        ...(opts.httpPort !== undefined && { adminPort: opts.httpPort }),
        ...(opts.apiPort !== undefined && { apiPort: opts.apiPort }),
        ...(opts.timeout !== undefined && {
          discoveryMs: opts.timeout,
          timeoutMs: Math.max(opts.timeout, 1000),
        }),
      });
      print(opts, report, () => [
        `${report.role === 'unknown' ? 'node' : report.role} at ${report.dataDir}`,
        ...report.checks.flatMap((c) => [
          `${MARK[c.status]} ${c.title}: ${c.detail}`,
          ...(c.lines ?? []).map((l) => `    ${l}`),
          ...(c.fix && c.status !== 'ok' ? [`    → ${c.fix}`] : []),
        ]),
        report.healthy ? 'healthy' : 'NOT healthy: see ✗ above',
      ]);
      if (!report.healthy) process.exitCode = 1;
    },
  );
}
