import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ProgressBar, progressWanted } from '../progress.js';
import { type CommonOptions, common, dataDir, print, UsageError, when } from '../context.js';
import { sizeText } from '../format.js';

/** Backup and restore of a node's data directory (see docs/OPERATIONS.md). */
export function registerBackup(program: Command): void {
  common(
    program
      .command('backup')
      .description(
        'copy this node (store, registry, file content, identity, config) into a new directory, while its agent runs; checked and described by a manifest',
      )
      .requiredOption('--out <dir>', 'the new directory to write the backup in (must not exist, or be empty)')
      .option('--progress', 'show progress on stderr (default: on a terminal, without --json)')
      .option('--no-progress', 'never show progress'),
    'any',
  ).action(async (opts: CommonOptions & { out: string; progress?: boolean }) => {
    const { backupBytes, backupNode } = await import('../../ops/backup.js');
    const bars = new Map<string, ProgressBar>();
    const show = progressWanted(opts);
    const manifest = await backupNode(dataDir(opts, 'any'), resolve(opts.out), (p) => {
      if (!show) return;
      let bar = bars.get(p.step);
      if (!bar) {
        for (const b of bars.values()) b.finish();
        bar = new ProgressBar(p.step, p.total);
        bars.set(p.step, bar);
      }
      bar.update(p.done, p.total);
    });
    for (const b of bars.values()) b.finish();
    const bytes = backupBytes(manifest);
    print(opts, { out: resolve(opts.out), ...manifest }, () => [
      `backed up the ${manifest.role} ${manifest.deviceId.slice(0, 12)} into ${resolve(opts.out)}`,
      `${manifest.files.length} files, ${sizeText(bytes)}; change log ${manifest.changeLog.id.slice(0, 8)} at ${manifest.changeLog.latestSeq}; every database passed its integrity check`,
    ]);
  });

  common(
    program
      .command('verify-backup')
      .argument('<backup>', 'a directory made by `trosyn-sync backup` or by scheduled backups')
      .description(
        'check a backup without restoring it: its manifest, and every file against the size and SHA-256 it was backed up with',
      ),
    'any',
  ).action(async (backup: string, opts: CommonOptions) => {
    const { backupBytes, checkBackup } = await import('../../ops/backup.js');
    const manifest = await checkBackup(resolve(backup));
    print(opts, { dir: resolve(backup), ok: true, ...manifest }, () => [
      `${resolve(backup)}: a complete backup of the ${manifest.role} ${manifest.deviceId.slice(0, 12)}, made ${when(manifest.createdAt)} by version ${manifest.appVersion}`,
      `${manifest.files.length} files, ${sizeText(backupBytes(manifest))}, each as it was backed up; change log ${manifest.changeLog.id.slice(0, 8)} at ${manifest.changeLog.latestSeq}`,
    ]);
  });

  common(
    program
      .command('restore')
      .argument('<backup>', 'a directory made by `trosyn-sync backup`')
      .description(
        "put a backup back into a data directory (empty, or with --force the same device's), after checking every file against its manifest; the agent must not run there",
      )
      .option(
        '--force',
        "replace the node in a data directory that is not empty (the backup's own device only)",
      ),
    'any',
  ).action(async (backup: string, opts: CommonOptions & { force?: boolean }) => {
    if (!opts.data && !process.env.TROSYN_DATA)
      throw new UsageError('give the data directory to restore into with --data');
    const { restoreNode } = await import('../../ops/backup.js');
    const dir = dataDir(opts, 'any');
    const manifest = await restoreNode(resolve(backup), dir, { force: opts.force === true });
    print(opts, { dataDir: dir, ...manifest }, () => [
      `restored the ${manifest.role} ${manifest.deviceId.slice(0, 12)} as it was at ${when(manifest.createdAt)} into ${dir}`,
      'Start its agent: it takes back from its peers what it lost since the backup.',
    ]);
  });
}
