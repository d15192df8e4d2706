#!/usr/bin/env node
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { Hub } from '../hub/hub.js';
import { createLogger } from '../observability/logger.js';
import { formatDeviceId } from '../transport/device-id.js';

const program = new Command()
  .name('trosyn-sync')
  .description('LAN sync for Trosyn AI: an Admin Hub and the child agents that sync with it.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

program
  .command('hub')
  .description('run the Admin Hub on this machine until interrupted (Ctrl-C)')
  .addOption(new Option('--data <dir>', "the hub's data directory").default('./data/hub').env('TROSYN_DATA'))
  .option('--name <name>', 'name shown to children and in the dashboard', 'trosyn-hub')
  .addOption(
    new Option('--log-level <level>', 'log detail')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
      .default('info'),
  )
  .action(async (opts: { data: string; name: string; logLevel: string }) => {
    const logger = createLogger({ level: opts.logLevel, name: 'trosyn' });
    const hub = new Hub({ dataDir: resolve(opts.data), name: opts.name, logger });
    await hub.start();
    process.stderr.write(
      `Trosyn Sync hub "${opts.name}" is running.\n  device ID  ${formatDeviceId(hub.deviceId)}\n  data       ${resolve(opts.data)}\nPress Ctrl-C to stop.\n`,
    );
    await waitForSignal();
    await hub.stop();
  });

function waitForSignal(): Promise<void> {
  return new Promise((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`trosyn-sync: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(1);
});
