import type { Command } from 'commander';
import { RecordNotFoundError } from '../../sync/errors.js';
import type { JsonObject } from '../../store/types.js';
import { shortDeviceId } from '../../transport/device-id.js';
import {
  type CommonOptions,
  common,
  dataDir,
  parseJsonArg,
  print,
  table,
  UsageError,
  when,
} from '../context.js';
import { withReplica } from '../stores.js';

export function registerRecords(program: Command): void {
  common(
    program
      .command('put')
      .argument('<collection>')
      .argument('<id>')
      .argument('<json>', 'the record body, a JSON object')
      .description('create or replace a record (synced by the running agent within a second)'),
    'any',
  ).action(async (collection: string, id: string, json: string, opts: CommonOptions) => {
    const body = parseJsonArg(json, 'the body');
    const result = await withReplica(dataDir(opts, 'any'), (r) => r.put(collection, id, body as JsonObject));
    print(opts, result, () => `${collection}/${id} written, revision ${result.rev.slice(0, 12)}`);
  });

  common(
    program.command('get').argument('<collection>').argument('<id>').description('print a record'),
    'any',
  ).action(async (collection: string, id: string, opts: CommonOptions) => {
    const record = await withReplica(dataDir(opts, 'any'), (r) => r.get(collection, id));
    if (!record) throw new RecordNotFoundError(collection, id);
    print(opts, record, () => [
      JSON.stringify(record.body, null, 2),
      `(revision ${record.rev.slice(0, 12)}${record.conflict !== 'none' ? `, conflict: ${record.conflict}` : ''})`,
    ]);
  });

  common(
    program
      .command('rm')
      .argument('<collection>')
      .argument('<id>')
      .description('delete a record (a tombstone that syncs)'),
    'any',
  ).action(async (collection: string, id: string, opts: CommonOptions) => {
    const result = await withReplica(dataDir(opts, 'any'), async (r) => {
      if (!(await r.get(collection, id))) throw new RecordNotFoundError(collection, id);
      return r.delete(collection, id);
    });
    print(opts, result, () => `${collection}/${id} deleted, revision ${result.rev.slice(0, 12)}`);
  });

  common(
    program
      .command('ls')
      .argument('[collection]', 'a collection (default: list the collections)')
      .description('list the records of a collection, or the collections')
      .option('--after <id>', 'start after this id (paging)')
      .option('--limit <n>', 'most records', (v) => Number(v), 100)
      .option('--deleted', 'include deleted records'),
    'any',
  ).action(
    async (
      collection: string | undefined,
      opts: CommonOptions & { after?: string; limit: number; deleted?: boolean },
    ) => {
      await withReplica(dataDir(opts, 'any'), async (r) => {
        if (!collection) {
          const names = await r.collections();
          print(opts, names, () => (names.length ? names : ['(no collections yet)']));
          return;
        }
        const rows = await r.list(collection, {
          limit: opts.limit,
          ...(opts.after && { after: opts.after }),
          ...(opts.deleted && { includeDeleted: true }),
        });
        const next = rows.length === opts.limit ? rows[rows.length - 1]?.id : undefined;
        print(opts, { records: rows, ...(next && { next }) }, () => [
          ...rows.map(
            (x) =>
              `${x.id}  ${x.deleted ? '(deleted)' : JSON.stringify(x.body)}${x.conflict !== 'none' ? `  [conflict: ${x.conflict}]` : ''}`,
          ),
          ...(next ? [`(more: --after ${next})`] : []),
        ]);
      });
    },
  );

  common(
    program
      .command('history')
      .argument('<collection>')
      .argument('<id>')
      .description("list a record's revisions, oldest first"),
    'any',
  ).action(async (collection: string, id: string, opts: CommonOptions) => {
    const history = await withReplica(dataDir(opts, 'any'), (r) => r.history(collection, id));
    if (history.length === 0) throw new RecordNotFoundError(collection, id);
    print(opts, history, () =>
      table([
        ['REVISION', 'TIME', 'AUTHOR', 'STATE', 'BODY'],
        ...history.map((h) => [
          h.rev.slice(0, 12),
          when(h.time),
          shortDeviceId(h.author),
          [
            h.current ? 'current' : '',
            h.head && !h.current ? 'conflict' : '',
            h.deleted ? 'deleted' : '',
            h.pruned ? 'pruned' : '',
          ]
            .filter(Boolean)
            .join(',') || '-',
          h.deleted ? '-' : h.pruned ? '(body dropped by retention)' : JSON.stringify(h.body),
        ]),
      ]),
    );
  });

  common(
    program
      .command('revert')
      .argument('<collection>')
      .argument('<id>')
      .argument('<rev>', 'the revision to restore (at least 4 characters of its hash)')
      .description("write an old revision's content as a new revision"),
    'any',
  ).action(async (collection: string, id: string, rev: string, opts: CommonOptions) => {
    const result = await withReplica(dataDir(opts, 'any'), (r) => r.revert(collection, id, rev));
    print(
      opts,
      result,
      () => `${collection}/${id} reverted to ${rev}; new revision ${result.rev.slice(0, 12)}`,
    );
  });

  const conflicts = common(
    program
      .command('conflicts')
      .enablePositionalOptions()
      .description('list conflicts (open ones wait for a person; auto ones were settled by the strategy)')
      .option('--status <status>', 'open, auto or resolved (default: open and auto)')
      .option('--collection <name>', 'only this collection'),
    'any',
  ).action(async (opts: CommonOptions & { status?: string; collection?: string }) => {
    if (opts.status && !['open', 'auto', 'resolved'].includes(opts.status))
      throw new UsageError('--status is open, auto or resolved');
    const list = await withReplica(dataDir(opts, 'any'), (r) =>
      r.conflicts({
        ...(opts.status && { status: opts.status as 'open' }),
        ...(opts.collection && { collection: opts.collection }),
      }),
    );
    const shown = opts.status ? list : list.filter((c) => c.status !== 'resolved');
    print(opts, shown, () =>
      shown.length === 0
        ? ['no conflicts']
        : table([
            ['RECORD', 'STATUS', 'STRATEGY', 'SIDES', 'WINNER', 'SINCE'],
            ...shown.map((c) => [
              `${c.collection}/${c.id}`,
              c.status,
              c.strategy,
              String(c.heads.length),
              c.winner.slice(0, 12),
              when(c.openedAt),
            ]),
          ]),
    );
  });

  common(
    conflicts
      .command('resolve')
      .argument('<collection>')
      .argument('<id>')
      .description('settle a conflict with a write that supersedes every side')
      .option('--rev <rev>', "keep this side's content (see `history`)")
      .option('--body <json>', 'write this body instead')
      .option('--delete', 'resolve by deleting the record'),
    'any',
  ).action(
    async (
      collection: string,
      id: string,
      opts: CommonOptions & { rev?: string; body?: string; delete?: boolean },
    ) => {
      const choices = [opts.rev, opts.body, opts.delete].filter((x) => x !== undefined).length;
      if (choices !== 1) throw new UsageError('give exactly one of --rev REV, --body JSON or --delete');
      const choice = opts.rev
        ? { rev: opts.rev }
        : opts.delete
          ? { body: null }
          : { body: parseJsonArg(opts.body as string, '--body') as JsonObject };
      const result = await withReplica(dataDir(opts, 'any'), (r) => r.resolve(collection, id, choice));
      print(
        opts,
        result,
        () => `${collection}/${id} resolved; new revision ${result.rev.slice(0, 12)} supersedes every side`,
      );
    },
  );
}
