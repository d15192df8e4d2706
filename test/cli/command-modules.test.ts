/**
 * The CLI loads only the module of the command it runs: the table that says which
 * module registers which command must match what the modules register, or a
 * command would be "unknown" when run on its own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMAND_MODULES, registerCommands } from '../../src/cli/command-modules.js';

const names = (program: Command) => program.commands.map((c) => c.name());

describe('CLI command modules', () => {
  it('each module registers exactly the commands the table gives it', async () => {
    for (const m of COMMAND_MODULES) {
      const program = new Command();
      (await m.load())(program);
      assert.deepEqual(names(program), [...m.commands]);
    }
  });

  it('a named command registers its module alone; no name, or an unknown one, registers all', async () => {
    const all = COMMAND_MODULES.flatMap((m) => m.commands);
    for (const m of COMMAND_MODULES)
      for (const command of m.commands) {
        const program = new Command();
        await registerCommands(program, ['node', 'trosyn-sync', command, '--json']);
        assert.deepEqual(names(program), [...m.commands], command);
      }
    for (const argv of [[], ['--help'], ['fles', 'put']]) {
      const program = new Command();
      await registerCommands(program, ['node', 'trosyn-sync', ...argv]);
      assert.deepEqual(names(program), all, argv.join(' '));
    }
    const version = new Command();
    await registerCommands(version, ['node', 'trosyn-sync', '--version']);
    assert.deepEqual(names(version), []);
  });
});
