import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { isErrorCode } from '../../error-codes.js';
import { TrosynError } from '../../errors.js';
import { DEFAULT_FILES_COLLECTION } from '../../files/defaults.js';
import type { FileVersion, NodeFiles } from '../../files/node-files.js';
import { readAgentFile } from '../../observability/agent-file.js';
import { ProgressBar, progressWanted } from '../progress.js';
import { sizeText } from '../format.js';
import { type CommonOptions, common, dataDir, print, table, UsageError, when } from '../context.js';

// The stores, the files code and the configuration's schemas load when a command
// uses them, so that `files --help` and a put's hashing threads need not wait for
// them (see context.ts).

/** Opens the node's files directly (see stores.ts). */
async function withFiles<T>(dir: string, fn: (files: NodeFiles) => Promise<T>): Promise<T> {
  return (await import('../stores.js')).withFiles(dir, fn);
}

/** The data directory's files collections and their transfer policies (config.json). */
async function collectionsOf(dir: string): Promise<Record<string, 'eager' | 'on-demand'>> {
  const { fileCollections, loadNodeConfig } = await import('../../config.js');
  return fileCollections(loadNodeConfig(dir));
}

/** The child's local API token (its file in the data directory). */
async function apiToken(dir: string): Promise<string> {
  const { API_TOKEN_FILE } = await import('../../child/local-api/token.js');
  return readFileSync(join(dir, API_TOKEN_FILE), 'utf8').trim();
}

type FileOptions = CommonOptions & { collection: string };
type GetOptions = FileOptions & {
  rev?: string;
  out?: string;
  output?: string;
  wait?: boolean;
  timeout?: number;
  progress?: boolean;
};

/** Content that only a running agent can bring: an on-demand collection, or --wait. */
class AgentNeededError extends TrosynError {
  constructor(name: string) {
    super(
      'FILE_CONTENT_UNAVAILABLE',
      `the content of ${JSON.stringify(name)} is not here, and no agent runs for this data directory to fetch it: start it (trosyn-sync child), then try again`,
      { name },
    );
  }
}

/** How often a wait looks at what has arrived. */
const ARRIVAL_POLL_MS = 500;

/** What a running child agent says of its file content sync: its last error, if any. */
async function agentFilesError(
  dir: string,
  apiPort: number,
): Promise<{ code: string; message: string } | undefined> {
  try {
    const token = await apiToken(dir);
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    });
    const status = (await res.json()) as { files?: { error?: { code: string; message: string } } };
    return status.files?.error;
  } catch {
    return undefined; // the agent is busy or going away: the next look tells
  }
}

/**
 * Waits until all of `version`'s content is here (the agent fetches it), showing how
 * much is. Ends with an error when the agent stops, or after `timeoutSec` when given,
 * naming what the agent said of its fetching (e.g. that the hub does not have it).
 */
async function waitForContent(
  f: NodeFiles,
  dir: string,
  version: FileVersion,
  o: { show: boolean; timeoutSec?: number },
): Promise<void> {
  const bar = o.show ? new ProgressBar(`${version.name} (arriving)`, version.size) : undefined;
  const deadline = o.timeoutSec === undefined ? Infinity : Date.now() + o.timeoutSec * 1000;
  for (;;) {
    const m = await f.store.missing(version);
    bar?.update(m.bytesHere);
    if (m.manifest.length === 0 && m.chunks.length === 0) break;
    const agent = readAgentFile(dir);
    if (!agent) {
      bar?.finish(m.bytesHere);
      throw new TrosynError(
        'FILE_CONTENT_UNAVAILABLE',
        `the agent for this data directory stopped before all of ${JSON.stringify(version.name)} arrived (${sizeText(m.bytesHere)} of ${sizeText(m.bytesTotal)}): start it again (trosyn-sync child), then try again`,
        { name: version.name, bytesHere: m.bytesHere, bytesTotal: m.bytesTotal },
      );
    }
    if (Date.now() >= deadline) {
      bar?.finish(m.bytesHere);
      const said = agent.apiPort === undefined ? undefined : await agentFilesError(dir, agent.apiPort);
      throw new TrosynError(
        'FILE_CONTENT_MISSING',
        `the content of ${JSON.stringify(version.name)} is still not all here after ${o.timeoutSec} s (${sizeText(m.bytesHere)} of ${sizeText(m.bytesTotal)})${said ? `; the agent says ${said.code}: ${said.message}` : ''}`,
        {
          name: version.name,
          bytesHere: m.bytesHere,
          bytesTotal: m.bytesTotal,
          ...(said && { agentError: said.code }),
        },
      );
    }
    await new Promise((r) => setTimeout(r, ARRIVAL_POLL_MS));
  }
  bar?.finish(version.size);
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 31 * 24 * 3600)
    throw new UsageError(`invalid --timeout ${value}: give seconds, more than 0`);
  return n;
}

/**
 * An on-demand version's bytes from the running child agent's local API, which
 * fetches them from the hub first. While it does, `watch` (when given) shows the
 * chunks arriving in the store.
 */
async function* fromAgent(
  dir: string,
  apiPort: number,
  version: FileVersion,
  watch: NodeFiles | undefined,
): AsyncGenerator<Buffer> {
  const token = await apiToken(dir);
  const url = `http://127.0.0.1:${apiPort}/api/files/${encodeURIComponent(version.name)}/content?collection=${encodeURIComponent(version.collection)}&rev=${version.rev}`;
  const answer = fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (watch) {
    const bar = new ProgressBar(`${version.name} (fetching)`, version.size);
    let waiting = true;
    void answer.finally(() => (waiting = false)).catch(() => undefined);
    while (waiting) {
      bar.update((await watch.store.missing(version)).bytesHere);
      await Promise.race([answer.catch(() => undefined), new Promise((r) => setTimeout(r, ARRIVAL_POLL_MS))]);
    }
    bar.finish((await watch.store.missing(version)).bytesHere);
  }
  let res: Response;
  try {
    res = await answer;
  } catch (err) {
    throw new TrosynError(
      'FILE_CONTENT_UNAVAILABLE',
      `the agent's local API (127.0.0.1:${apiPort}) did not answer: ${(err as Error).message}`,
    );
  }
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    throw new TrosynError(
      isErrorCode(body.code) ? body.code : 'INTERNAL_ERROR',
      body.message ?? `the agent answered ${res.status}`,
    );
  }
  for await (const piece of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream)) {
    yield piece as Buffer;
  }
}

/**
 * Bytes a file being written out may have waiting for the disk: with the stream's
 * default (16 KiB) every chunk waited for the write before it, so reading and
 * writing took turns.
 */
const WRITE_AHEAD_BYTES = 4 * 1024 * 1024;

/**
 * Writes `bytes` to `out` (beside it, then renamed: a failed or short read leaves
 * nothing half-written), checking the size and SHA-256 against the version; the
 * hash is left to a source that checks it itself (`checked`: the local store's
 * read of a version in full fails at its end when the content does not match).
 */
async function writeOut(
  out: string,
  bytes: AsyncIterable<Buffer>,
  version: FileVersion,
  show: boolean,
  checked = false,
): Promise<void> {
  const bar = show ? new ProgressBar(version.name, version.size) : undefined;
  const hash = checked ? undefined : createHash('sha256');
  let written = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const piece of bytes) {
      hash?.update(piece);
      written += piece.length;
      bar?.update(written);
      yield piece;
    }
    if (written !== version.size || (hash && hash.digest('hex') !== version.sha256))
      throw new (await import('../../files/file-store.js')).ContentCorruptError(version.name);
  }
  if (out === '-') {
    await pipeline(counted(), process.stdout, { end: false });
    bar?.finish();
    return;
  }
  const partial = `${out}.trosyn-partial`;
  try {
    await pipeline(counted(), createWriteStream(partial, { flags: 'w', highWaterMark: WRITE_AHEAD_BYTES }));
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  bar?.finish();
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
      .option('--progress', 'show progress on stderr (default: on a terminal, without --json)')
      .option('--no-progress', 'never show progress')
      .description('record a file (a new version if the name exists); the running agent syncs it'),
  ).action(async (path: string, opts: FileOptions & { name?: string; type?: string; progress?: boolean }) => {
    let bar: ProgressBar | undefined;
    // A large file's hashing threads load while the stores open.
    const { warmForPut } = await import('../../files/file-store.js');
    try {
      warmForPut(statSync(path).size);
    } catch {
      // A path that cannot be read: the put itself says why.
    }
    const v = await withFiles(dataDir(opts, 'any'), async (f) => {
      const version = await f.putPath(path, {
        collection: opts.collection,
        ...(opts.name && { name: opts.name }),
        ...(opts.type && { type: opts.type }),
        ...(progressWanted(opts) && {
          onProgress: (read: number, size: number) => {
            bar ??= new ProgressBar(opts.name ?? basename(path), size);
            bar.update(read, size);
          },
        }),
      });
      bar?.finish(version.size);
      return version;
    });
    print(opts, v, () => `${v.name} recorded (${sizeText(v.size)}), version ${v.rev.slice(0, 12)}`);
  });

  withCollection(
    files
      .command('get')
      .argument('<name>')
      .option('--rev <rev>', 'this version (at least 4 characters of its revision; default: current)')
      .option('-o, --out <path>', 'write here; - for stdout (default: the last part of the name, here)')
      .addOption(new Option('--output <path>').hideHelp())
      .option(
        '--wait',
        'if the content is still arriving, wait for it (the agent must be running; ends if it stops)',
      )
      .option(
        '--timeout <seconds>',
        'with --wait: give up after this long (default: wait as long as it takes)',
        seconds,
      )
      .option('--progress', 'show progress on stderr (default: on a terminal, without --json)')
      .option('--no-progress', 'never show progress')
      .description(
        "write a file's content, checked against its SHA-256; content still arriving is FILE_CONTENT_MISSING unless --wait",
      ),
  ).action(async (name: string, opts: GetOptions) => {
    if (opts.timeout !== undefined && !opts.wait) throw new UsageError('--timeout goes with --wait');
    const dir = dataDir(opts, 'any');
    const out = opts.out ?? opts.output ?? basename(name);
    const v = await withFiles(dir, async (f) => {
      const version = await f.version(name, {
        collection: opts.collection,
        ...(opts.rev && { rev: opts.rev }),
      });
      const show = progressWanted(opts);
      const missing = await f.store.missing(version);
      if (missing.invalid) throw missing.invalid;
      if (missing.manifest.length > 0 || missing.chunks.length > 0) {
        const onDemand = (await collectionsOf(dir))[opts.collection] === 'on-demand';
        const agent = readAgentFile(dir);
        if (onDemand) {
          if (agent?.role !== 'child' || agent.apiPort === undefined)
            throw new AgentNeededError(version.name);
          await writeOut(out, fromAgent(dir, agent.apiPort, version, show ? f : undefined), version, show);
          return version;
        }
        if (!opts.wait) {
          throw new TrosynError(
            'FILE_CONTENT_MISSING',
            `the content of ${JSON.stringify(version.name)} is not all here yet (${sizeText(missing.bytesHere)} of ${sizeText(missing.bytesTotal)}); it arrives while the agent syncs: add --wait to wait for it`,
            { name: version.name, bytesHere: missing.bytesHere, bytesTotal: missing.bytesTotal },
          );
        }
        if (!agent) throw new AgentNeededError(version.name);
        await waitForContent(f, dir, version, {
          show,
          ...(opts.timeout !== undefined && { timeoutSec: opts.timeout }),
        });
      }
      // Written to a file, the bytes count only once the whole content matched (then
      // renamed into place): that one check covers every chunk. Written to stdout, no
      // byte may go out unchecked.
      await writeOut(out, f.read(version, undefined, { checkChunks: out === '-' }), version, show, true);
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
        return Promise.all(
          all.map(async (v) => {
            const missing = await f.store.missing(v);
            const here = missing.manifest.length === 0 && missing.chunks.length === 0 && !missing.invalid;
            return { ...v, here, ...(missing.invalid && { invalid: missing.invalid.code }) };
          }),
        );
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
                v.invalid ? `invalid (${v.invalid})` : v.here ? 'here' : 'arriving',
              ]),
            ]),
      );
    },
  );

  withCollection(
    files.command('history').argument('<name>').description("list a file's versions, oldest first"),
  ).action(async (name: string, opts: FileOptions) => {
    const history = await withFiles(dataDir(opts, 'any'), (f) => f.history(name, opts.collection));
    const { shortDeviceId } = await import('../../transport/device-id.js');
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
    const collections = Object.keys(await collectionsOf(dir));
    const { referencedChunks } = await import('../../files/file-gc.js');
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
