#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072 node --max-semi-space-size=4
// V8's young generation grows to 16 MB per semi-space under the allocation rate of
// a file transfer: held at 4 MB, an agent's peak memory is 20-40 MB lower for the
// same CPU (measured with bench/files.ts). Every launcher passes the flag: this
// line, `npm start`, and the service files.
// glibc's malloc raises its mmap threshold each time a large buffer is freed, and
// then keeps a transfer's chunk buffers (64-256 KiB) in a heap it rarely returns:
// held at 128 KiB, a child's peak during a 2 GiB fetch is about 30 MB lower for the
// same throughput (bench/files.ts). Other C libraries ignore the two variables.
import { Command, CommanderError } from 'commander';
import { isTrosynError } from '../errors.js';
import { APP_VERSION } from '../version.js';
import { registerCommands } from './command-modules.js';
import { UsageError } from './context.js';

const program = new Command()
  .name('trosyn-sync')
  .description('LAN sync for Trosyn AI: an Admin Hub and the child agents that sync with it.')
  .version(APP_VERSION)
  .showHelpAfterError('(run with --help for usage)')
  // Options after a subcommand belong to it (`conflicts resolve ... --data X`), not to its parent.
  .enablePositionalOptions()
  .exitOverride()
  .addHelpText(
    'after',
    `
Getting started:
  trosyn-sync hub                       run the hub (prints a pairing code)
  trosyn-sync pair CODE                 on a device: pair with the hub
  trosyn-sync child                     on that device: keep it in sync
  trosyn-sync dashboard-link            sign a browser in to the hub's dashboard

Every command takes --data DIR (default $TROSYN_DATA, or ./data/hub or ./data/child)
and --json; "trosyn-sync <command> --help" shows its options. Errors print one line
"trosyn-sync: CODE: cause" and exit with status 1 (2 for usage errors); codes are
explained in docs/ERRORS.md.`,
  );

try {
  await registerCommands(program, process.argv);
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are not failures; commander has printed its message already.
    process.exit(
      err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0
        ? 0
        : 2,
    );
  }
  const code = isTrosynError(err) ? err.code : 'INTERNAL_ERROR';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`trosyn-sync: ${code}: ${message}\n`);
  if (!isTrosynError(err) && process.env.TROSYN_DEBUG)
    process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
