/**
 * The CLI loads only the module of the command it runs: the table that says which
 * module registers which command must match what the modules register, or a
 * command would be "unknown" when run on its own. The files commands load the store,
 * the engine and the schemas (zod alone takes 60 ms) only when they open a store.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMAND_MODULES, registerCommands } from '../../src/cli/command-modules.js';
import { tempDir } from '../helpers.js';
import { CLI } from '../e2e/helpers.js';

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

  it('--version and the files commands’ help load no store, engine or schema; a put does', () => {
    const tmp = tempDir('trosyn-cli-modules-');
    try {
      // A resolve hook (loader hooks run on a thread of their own) writes down every module loaded.
      const log = join(tmp.path, 'loaded.txt');
      const hooks = join(tmp.path, 'hooks.mjs');
      writeFileSync(
        hooks,
        `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const found = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, found.url + '\\n');
  return found;
}`,
      );
      const register = join(tmp.path, 'register.mjs');
      writeFileSync(
        register,
        `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
      );
      const loaded = (args: string[]): string[] => {
        writeFileSync(log, '');
        try {
          execFileSync(process.execPath, ['--import', register, CLI, ...args], { stdio: 'pipe' });
        } catch (err) {
          // A command that fails (as a put of no file does) has still loaded what it loads.
          if ((err as { status?: number }).status === undefined) throw err;
        }
        return readFileSync(log, 'utf8').split('\n').filter(Boolean);
      };
      const heavy = /\/node_modules\/(zod|better-sqlite3|pino)\/|\/dist\/(store|sync)\//;
      for (const args of [['--version'], ['files', '--help'], ['files', 'put', '--help']]) {
        const urls = loaded(args);
        assert.ok(
          urls.some((u) => u.endsWith('/dist/cli/program.js')),
          `${args.join(' ')}: the hook saw the program load`,
        );
        assert.deepEqual(
          urls.filter((u) => heavy.test(u)),
          [],
          args.join(' '),
        );
      }
      // The hook sees what a put loads: the stores and the engine.
      const put = loaded(['files', 'put', join(tmp.path, 'nothing-here'), '--data', join(tmp.path, 'data')]);
      assert.ok(
        put.some((u) => heavy.test(u)),
        'a put loads the stores',
      );
    } finally {
      tmp.remove();
    }
  });
});
