/** The command line: its commands, help, and how a failure is printed. */
import { Command, CommanderError } from 'commander';
import { isTrosynError } from '../errors.js';
import { APP_VERSION } from '../version.js';
import { registerCommands } from './command-modules.js';
import { tooFewDescriptors } from './descriptors.js';
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

/** Runs the command line `argv` asks for; exits the process on failure. */
export async function run(argv: string[]): Promise<void> {
  try {
    await registerCommands(program, argv);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not failures; commander has printed its message already.
      process.exit(
        err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0
          ? 0
          : 2,
      );
    }
    const few = tooFewDescriptors(err);
    const code = few ? 'DESCRIPTORS_TOO_FEW' : isTrosynError(err) ? err.code : 'INTERNAL_ERROR';
    const message = few ?? (err instanceof Error ? err.message : String(err));
    process.stderr.write(`trosyn-sync: ${code}: ${message}\n`);
    if (!isTrosynError(err) && process.env.TROSYN_DEBUG)
      process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
