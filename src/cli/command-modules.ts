import type { Command } from 'commander';

/**
 * The CLI's command modules and the top-level commands each registers, in the order
 * `--help` lists them. A command loads its own module only: `files put` need not
 * load the hub's web server, its TLS certificate code or its discovery (about half
 * a second of a short command's start).
 */
export const COMMAND_MODULES: readonly {
  commands: readonly string[];
  load: () => Promise<(program: Command) => void>;
}[] = [
  {
    commands: ['hub', 'child', 'admin-token'],
    load: async () => (await import('./commands/agents.js')).registerAgents,
  },
  {
    commands: ['pairing-code', 'pair'],
    load: async () => (await import('./commands/pairing.js')).registerPairing,
  },
  {
    commands: ['put', 'get', 'rm', 'ls', 'history', 'revert', 'conflicts'],
    load: async () => (await import('./commands/records.js')).registerRecords,
  },
  { commands: ['files'], load: async () => (await import('./commands/files.js')).registerFiles },
  {
    commands: ['dashboard-link', 'devices', 'groups'],
    load: async () => (await import('./commands/admin.js')).registerAdmin,
  },
  { commands: ['settings'], load: async () => (await import('./commands/settings.js')).registerSettings },
  {
    commands: ['backup', 'verify-backup', 'restore'],
    load: async () => (await import('./commands/backup.js')).registerBackup,
  },
  {
    commands: ['migrate-store'],
    load: async () => (await import('./commands/migrate-store.js')).registerMigrateStore,
  },
  { commands: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctor },
  {
    commands: ['status', 'discover'],
    load: async () => (await import('./commands/status.js')).registerStatus,
  },
];

/**
 * Registers the module of the command named in `argv` (the first argument that is
 * not an option), or every module when none is named or the name is unknown (help,
 * and commander's "unknown command" with its suggestions, need them all); none for
 * `--version`.
 */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const args = argv.slice(2);
  const named = args.find((a) => !a.startsWith('-'));
  if (named === undefined && (args.includes('--version') || args.includes('-V'))) return;
  const owner = COMMAND_MODULES.find((m) => named !== undefined && m.commands.includes(named));
  for (const register of await Promise.all((owner ? [owner] : COMMAND_MODULES).map((m) => m.load())))
    register(program);
}
