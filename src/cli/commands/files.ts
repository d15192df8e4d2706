import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { DEFAULT_FILES_COLLECTION } from '../../files/node-files.js';
import { shortDeviceId } from '../../transport/device-id.js';
import { fileCollections, loadNodeConfig } from '../../config.js';
import { referencedChunks } from '../../files/file-gc.js';
import {
  type CommonOptions,
  common,
  dataDir,
  print,
  table,
  UsageError,
  when,
  withFiles,
} from '../context.js';

type FileOptions = CommonOptions & { collection: string };

/** A size for people: 1.2 MB, 512 B. */
export function sizeText(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let unit = -1;
  while (v >= 1000 && unit < units.length - 1) {
    v /= 1000;
    unit++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[unit]}`;
}

function withCollection(cmd: Command): Command {
  return common(
    cmd.option(
      '--collection <name>',
      'the files collection (one of the node’s fileCollections)',
      DEFAULT_FILES_COLLECTION,
    ),
    'any',
  );
}

export function registerFiles(program: Command): void {
  const files = program
    .command('files')
    .enablePositionalOptions()
    .description('documents: put, get, list, history, revert, remove (their content syncs as chunks)');

  withCollection(
    files
      .command('put')
      .argument('<path>', 'the file to record')
      .option('--name <name>', 'the name it syncs under (default: the file name)')
      .option('--type <mime>', 'its media type (default: from the extension)')
      .description('record a file (a new version if the name exists); the running agent syncs it'),
  ).action(async (path: string, opts: FileOptions & { name?: string; type?: string }) => {
    const v = await withFiles(dataDir(opts, 'any'), (f) =>
      f.putPath(path, {
        collection: opts.collection,
        ...(opts.name && { name: opts.name }),
        ...(opts.type && { type: opts.type }),
      }),
    );
    print(opts, v, () => `${v.name} recorded (${sizeText(v.size)}), version ${v.rev.slice(0, 12)}`);
  });

  withCollection(
    files
      .command('get')
      .argument('<name>')
      .option('--rev <rev>', 'this version (at least 4 characters of its revision; default: current)')
      .option('-o, --output <path>', 'write here (default: the file name, in the current directory)')
      .description("write a file's content, checked against its SHA-256"),
  ).action(async (name: string, opts: FileOptions & { rev?: string; output?: string }) => {
    const out = opts.output ?? name;
    const v = await withFiles(dataDir(opts, 'any'), async (f) => {
      const version = await f.version(name, {
        collection: opts.collection,
        ...(opts.rev && { rev: opts.rev }),
      });
      if (out === '-') {
        await pipeline(f.read(version), process.stdout);
        return version;
      }
      // Written beside the target and renamed: a failed or corrupt read leaves nothing half-written.
      const partial = `${out}.trosyn-partial`;
      try {
        await pipeline(f.read(version), createWriteStream(partial, { flags: 'w' }));
        await rename(partial, out);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
      return version;
    });
    if (out !== '-')
      print(
        opts,
        { ...v, path: out },
        () => `${out} written (${sizeText(v.size)}), version ${v.rev.slice(0, 12)}`,
      );
  });

  withCollection(files.command('ls').description('list the files and their current versions')).action(
    async (opts: FileOptions) => {
      const list = await withFiles(dataDir(opts, 'any'), async (f) => {
        const all = await f.list(opts.collection);
        return Promise.all(all.map(async (v) => ({ ...v, here: await f.store.isComplete(v) })));
      });
      print(opts, list, () =>
        list.length === 0
          ? ['(no files)']
          : table([
              ['NAME', 'SIZE', 'MODIFIED', 'VERSION', 'CONTENT'],
              ...list.map((v) => [
                v.name,
                sizeText(v.size),
                when(v.modifiedAt),
                v.rev.slice(0, 12),
                v.here ? 'here' : 'arriving',
              ]),
            ]),
      );
    },
  );

  withCollection(
    files.command('history').argument('<name>').description("list a file's versions, oldest first"),
  ).action(async (name: string, opts: FileOptions) => {
    const history = await withFiles(dataDir(opts, 'any'), (f) => f.history(name, opts.collection));
    print(opts, history, () =>
      table([
        ['VERSION', 'TIME', 'AUTHOR', 'SIZE', 'STATE'],
        ...history.map((h) => [
          h.rev.slice(0, 12),
          when(h.time),
          shortDeviceId(h.author),
          h.file ? sizeText(h.file.size) : '-',
          [
            h.current ? 'current' : '',
            h.head && !h.current ? 'conflict' : '',
            h.deleted ? 'deleted' : '',
            h.pruned ? 'pruned' : '',
          ]
            .filter(Boolean)
            .join(',') || '-',
        ]),
      ]),
    );
  });

  withCollection(
    files
      .command('revert')
      .argument('<name>')
      .argument('<rev>', 'the version to restore (at least 4 characters of its revision)')
      .description('make an old version current again (a new version; no content is copied)'),
  ).action(async (name: string, rev: string, opts: FileOptions) => {
    const v = await withFiles(dataDir(opts, 'any'), (f) => f.revert(name, rev, opts.collection));
    print(opts, v, () => `${name} reverted to ${rev}; new version ${v.rev.slice(0, 12)}`);
  });

  withCollection(
    files
      .command('rm')
      .argument('<name>')
      .description('delete a file (it syncs; its versions stay in history)'),
  ).action(async (name: string, opts: FileOptions) => {
    await withFiles(dataDir(opts, 'any'), (f) => f.remove(name, opts.collection));
    print(opts, { name, deleted: true }, () => `${name} deleted`);
  });

  common(
    files
      .command('gc')
      .option(
        '--grace <minutes>',
        'keep content written this recently whatever references it (a write may be under way)',
        (v) => Number(v),
        60,
      )
      .description('remove file content no kept version references (the agents do this hourly)'),
    'any',
  ).action(async (opts: CommonOptions & { grace: number }) => {
    if (!Number.isFinite(opts.grace) || opts.grace < 0)
      throw new UsageError('--grace is a number of minutes, 0 or more');
    const dir = dataDir(opts, 'any');
    const collections = Object.keys(fileCollections(loadNodeConfig(dir)));
    const report = await withFiles(dir, async (f) => {
      const referenced = await referencedChunks(f.replica, f.store, collections);
      return f.store.chunks.gc((hash) => referenced.has(hash), { graceMs: opts.grace * 60_000 });
    });
    print(
      opts,
      report,
      () => `removed ${report.removed} chunks (${sizeText(report.bytes)}); kept ${report.kept}`,
    );
  });
}
