import type { Command } from 'commander';
import { type CommonOptions, common, dataDir, print, UsageError } from '../context.js';

/** Moving a hub's records and registry from its SQLite files into PostgreSQL (see docs/DEPLOY.md). */
export function registerMigrateStore(program: Command): void {
  common(
    program
      .command('migrate-store')
      .description(
        "move a stopped hub's records and registry from its SQLite files into an empty PostgreSQL database, row for row: its children go on syncing without pairing again and get nothing twice; then the hub starts on PostgreSQL with --data alone",
      )
      .requiredOption(
        '--to <location>',
        "the PostgreSQL database (postgres://USER@HOST:PORT/DB, postgres://USER@/DB?host=/SOCKET/DIR, or 'host=/SOCKET/DIR dbname=DB user=USER'); its schemas trosyn_store and trosyn_hub must hold no tables yet. Remembered in config.json without any password",
      )
      .option('--from <dir>', "the hub's data directory, as --data gives it (either one)")
      .option(
        '--store-password-file <file>',
        "the PostgreSQL password, on the file's first line (also $TROSYN_STORE_PASSWORD_FILE or $PGPASSWORD); the path is remembered, the password never stored",
      ),
    'hub',
  ).action(async (opts: CommonOptions & { to: string; from?: string; storePasswordFile?: string }) => {
    const { hubStorage } = await import('../../ops/hub-store.js');
    const { PostgresLocationError, parsePostgresLocation } = await import('../../store/postgres-location.js');
    const { migrateStore } = await import('../../ops/migrate-store.js');
    if (opts.from !== undefined && opts.data !== undefined && opts.from !== opts.data)
      throw new UsageError("--from and --data name two directories: give the hub's data directory once");
    const dir = dataDir(opts.from !== undefined ? { ...opts, data: opts.from } : opts, 'hub');
    let storage;
    try {
      if (parsePostgresLocation(opts.to).password !== undefined && opts.storePasswordFile !== undefined)
        throw new UsageError(
          '--to holds a password and --store-password-file gives another: give the password one way',
        );
      // The directory's config.json names no database yet (migrateStore refuses one that does).
      storage = hubStorage(dir, {
        store: opts.to,
        ...(opts.storePasswordFile !== undefined && { storePasswordFile: opts.storePasswordFile }),
      });
    } catch (err) {
      if (err instanceof PostgresLocationError) throw new UsageError(`--to: ${err.message}`);
      throw err;
    }
    if (storage.kind !== 'postgres') throw new UsageError('--to: give a PostgreSQL database');
    const result = await migrateStore(dir, storage);
    print(opts, { dataDir: dir, ...result }, () => [
      result.finished
        ? `the hub in ${dir} was already copied into ${result.url} by a move cut short: finished it, nothing copied again.`
        : `moved the hub in ${dir} into ${result.url}:`,
      ...result.tables.map((t) => `  ${t.schema}.${t.table}: ${t.rows} rows`),
      `config.json now names the database: start the hub with --data ${dir} alone.`,
      `The SQLite files are kept as ${result.kept.join(', ')} (to undo: stop the hub, rename them back, and remove "store" from config.json).`,
    ]);
  });
}
