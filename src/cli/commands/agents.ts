import { networkInterfaces } from 'node:os';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import cliProgress from 'cli-progress';
import qrcode from 'qrcode-terminal';
import { Child } from '../../child/child.js';
import { collectionOptions, loadNodeConfig } from '../../config.js';
import { Hub } from '../../hub/hub.js';
import { writeAgentFile, removeAgentFile } from '../../observability/agent-file.js';
import { createLogger } from '../../observability/logger.js';
import { DEFAULT_SYNC_PORT } from '../../protocol/constants.js';
import { formatDeviceId } from '../../transport/device-id.js';
import { APP_VERSION } from '../../version.js';
import { type CommonOptions, common, dataDir, UsageError } from '../context.js';

const logLevel = () =>
  new Option('--log-level <level>', 'log detail (JSON lines on stderr)')
    .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
    .default('warn');

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`invalid port ${value}`);
  return n;
}

/** This machine's LAN addresses, for the hints printed to the admin (nothing is sent to them). */
function lanAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && a.family === 'IPv4')
    .map((a) => a?.address as string);
}

function waitForSignal(): Promise<string> {
  return new Promise((done) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

interface HubOpts extends CommonOptions {
  port: number;
  host?: string;
  name: string;
  discovery: boolean;
  requireApproval?: boolean;
  logLevel: string;
}

export function registerAgents(program: Command): void {
  common(
    program
      .command('hub')
      .description('run the Admin Hub on this machine until interrupted (Ctrl-C)')
      .option('--port <n>', 'TCP port of the sync service (TLS)', port, DEFAULT_SYNC_PORT)
      .option('--host <addr>', 'address to listen on (default: all, IPv4 and IPv6)')
      .option('--name <name>', 'name shown to children and in the dashboard', 'trosyn-hub')
      .option('--no-discovery', 'do not announce the hub on the LAN (children then need --hub HOST:PORT)')
      .option('--require-approval', 'newly paired devices wait for an admin to approve them')
      .addOption(logLevel()),
    'hub',
  ).action(async (opts: HubOpts) => {
    const dir = dataDir(opts, 'hub');
    const config = loadNodeConfig(dir);
    const collections = collectionOptions(config);
    const logger = createLogger({ level: opts.logLevel, name: 'trosyn', destination: process.stderr });
    const hub = new Hub({
      dataDir: dir,
      name: opts.name,
      port: opts.port,
      ...(opts.host && { host: opts.host }),
      discovery: opts.discovery,
      ...(collections && { collections }),
      ...(config.hubOnly && { hubOnly: config.hubOnly }),
      ...((opts.requireApproval ?? config.requireApproval) !== undefined && {
        requireApproval: opts.requireApproval ?? config.requireApproval,
      }),
      logger,
    });
    await hub.start();
    writeAgentFile(dir, {
      pid: process.pid,
      role: 'hub',
      deviceId: hub.deviceId,
      name: hub.name,
      version: APP_VERSION,
      startedAt: Date.now(),
      syncPort: hub.port,
    });
    const { code, expiresAt } = hub.registry.issueCode();
    const addresses = lanAddresses();
    const hubArg = `${addresses[0] ?? '<this-machine>'}:${hub.port}`;
    const here = relative(process.cwd(), dir) || '.';
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ event: 'started', deviceId: hub.deviceId, syncPort: hub.port, dataDir: dir, pairingCode: code, pairingCodeExpiresAt: expiresAt, addresses })}\n`,
      );
    } else {
      const lines = [
        `Trosyn Sync hub "${hub.name}" is running (version ${APP_VERSION}).`,
        `  device ID     ${formatDeviceId(hub.deviceId)}`,
        `  sync service  port ${hub.port} (TLS 1.3, mutual authentication)${addresses.length ? ` on ${addresses.join(', ')}` : ''}`,
        `  LAN discovery ${opts.discovery ? 'on (multicast and DNS-SD)' : 'off'}`,
        `  data          ${dir}`,
        '',
        `Pairing code (single use, valid until ${new Date(expiresAt).toLocaleTimeString()}):  ${code}`,
        '',
        'To add a child device, run on that machine:',
        `  npx trosyn-sync pair ${code} --data ./data/child${opts.discovery ? '' : ` --hub ${hubArg}`}`,
        `  npx trosyn-sync child --data ./data/child${opts.discovery ? '' : ` --hub ${hubArg}`}`,
        opts.discovery ? `(add --hub ${hubArg} where the network blocks multicast)` : '',
        '',
        `More codes: trosyn-sync pairing-code --data ${here}    Stop: Ctrl-C`,
      ];
      process.stdout.write(`${lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n')}\n`);
      qrcode.generate(
        `trosyn-sync://pair?code=${code}&hub=${hub.deviceId}&port=${hub.port}`,
        { small: true },
        (qr) => process.stdout.write(`${qr}\n`),
      );
    }
    await waitForSignal();
    removeAgentFile(dir);
    await hub.stop();
  });

  common(
    program
      .command('child')
      .description('run the child agent: keep this device in sync with its hub until interrupted')
      .option(
        '--hub <host:port>',
        "the hub's address, where multicast discovery cannot find it (repeatable)",
        (v: string, prev: string[]) => [...prev, v],
        [],
      )
      .option('--name <name>', 'name shown on the hub', 'trosyn-child')
      .option('--no-discovery', 'do not look for the hub on the LAN')
      .option(
        '--retry-max <ms>',
        'longest wait between reconnect attempts (waits grow from 0.5 s, with jitter)',
        (v) => Number(v),
        30_000,
      )
      .addOption(logLevel()),
    'child',
  ).action(
    async (
      opts: CommonOptions & {
        hub: string[];
        name: string;
        discovery: boolean;
        retryMax: number;
        logLevel: string;
      },
    ) => {
      const dir = dataDir(opts, 'child');
      const config = loadNodeConfig(dir);
      const collections = collectionOptions(config);
      const logger = createLogger({ level: opts.logLevel, name: 'trosyn', destination: process.stderr });
      const child = new Child({
        dataDir: dir,
        name: opts.name,
        staticAddresses: opts.hub,
        discovery: opts.discovery,
        backoff: { maxMs: Math.max(100, opts.retryMax) },
        ...(collections && { collections }),
        logger,
      });
      await child.start();
      writeAgentFile(dir, {
        pid: process.pid,
        role: 'child',
        deviceId: child.deviceId,
        name: opts.name,
        version: APP_VERSION,
        startedAt: Date.now(),
      });
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ event: 'started', deviceId: child.deviceId, dataDir: dir })}\n`,
        );
        child.on('connected', () => process.stdout.write(`${JSON.stringify({ event: 'connected' })}\n`));
        child.on('caught-up', () => process.stdout.write(`${JSON.stringify({ event: 'caught-up' })}\n`));
        child.on('disconnected', (e) =>
          process.stdout.write(`${JSON.stringify({ event: 'disconnected', ...e })}\n`),
        );
      } else {
        process.stdout.write(
          `Trosyn Sync child agent is running.\n  device ID  ${formatDeviceId(child.deviceId)}\n  data       ${dir}\nPress Ctrl-C to stop.\n`,
        );
        child.on('connected', () => process.stdout.write('connected to the hub\n'));
        child.on('disconnected', (e) =>
          process.stdout.write(`disconnected from the hub${e.code ? ` (${e.code})` : ''}\n`),
        );
      }
      const bar = progressBar(child, !opts.json && process.stdout.isTTY === true);
      await waitForSignal();
      bar.stop();
      removeAgentFile(dir);
      await child.stop();
    },
  );
}

/** A progress bar while a long catch-up runs, in a terminal only. */
function progressBar(child: Child, enabled: boolean): { stop(): void } {
  if (!enabled) return { stop: () => undefined };
  let bar: cliProgress.SingleBar | undefined;
  const timer = setInterval(() => {
    void child.status().then((s) => {
      const stats = s.session;
      const behind = stats ? stats.peerLatest - stats.appliedUpTo : 0;
      if (!bar && stats && s.state === 'syncing' && behind > 1000) {
        bar = new cliProgress.SingleBar(
          { format: 'receiving {bar} {percentage}% | {value}/{total} changes', hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(stats.peerLatest, stats.appliedUpTo);
      } else if (bar && stats) {
        bar.update(Math.min(stats.appliedUpTo, stats.peerLatest));
        if (s.state === 'synced') {
          bar.stop();
          bar = undefined;
          process.stdout.write('in sync\n');
        }
      }
    });
  }, 250);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      bar?.stop();
    },
  };
}
