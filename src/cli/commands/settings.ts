import type { Command } from 'commander';
import type { HubSettings, SettingsChange } from '../../hub/settings.js';
import type { CollectionPolicy } from '../../sync/policy.js';
import { type CommonOptions, common, dataDir, print, table, UsageError, when } from '../context.js';
import { withRegistry, withReplica } from '../stores.js';

const STRATEGIES = ['lww', 'hub-wins', 'merge', 'manual'] as const;

function settingsLines(s: HubSettings): string[] {
  const { policy } = s;
  const r = policy.retention;
  const retention = [
    r.maxRevisions !== undefined && `${r.maxRevisions} revisions per record`,
    r.maxAgeDays !== undefined && `${r.maxAgeDays} days`,
  ].filter(Boolean);
  const rows = Object.entries(policy.collections).map(([name, c]) => [
    name,
    c.conflict ?? 'lww',
    c.localOnly ? 'local-only' : 'synced',
  ]);
  return [
    `approval:   ${s.requireApproval ? 'new devices wait for an admin' : 'new devices sync at once'}`,
    `retention:  ${retention.length > 0 ? retention.join(', ') : 'keep all history'}`,
    `hub-only:   ${policy.hubOnly.join(', ') || '(none)'}`,
    `policy:     version ${policy.version}${policy.updatedAt ? `, changed ${when(policy.updatedAt)}` : ''}`,
    '',
    ...(rows.length > 0
      ? table([['COLLECTION', 'CONFLICTS', 'SYNC'], ...rows])
      : ['every collection: lww, synced (none configured)']),
  ];
}

/** Opens the hub's store and registry together and applies a change (or none). */
async function withSettings(
  opts: CommonOptions,
  change: (current: HubSettings) => SettingsChange | undefined,
): Promise<HubSettings & { resettled?: number }> {
  const dir = dataDir(opts, 'hub');
  const { changeSettings, readSettings } = await import('../../hub/settings.js');
  return withRegistry(dir, (registry) =>
    withReplica(dir, async (replica) => {
      const current = await readSettings(replica, registry);
      const wanted = change(current);
      return wanted ? changeSettings(replica, registry, wanted, Date.now()) : current;
    }),
  );
}

function onOff(value: string, option: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new UsageError(`${option} is on or off`);
}

function limit(value: string, option: string, integer: boolean): number | undefined {
  if (value === 'off') return undefined;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n)))
    throw new UsageError(`${option} is a positive ${integer ? 'whole ' : ''}number, or off`);
  return n;
}

/**
 * The hub's settings: approval mode and the collection policy. Changes made here
 * reach a running hub within a second, and from it every connected child.
 */
export function registerSettings(program: Command): void {
  const settings = common(
    program
      .command('settings')
      .enablePositionalOptions()
      .description(
        "show the hub's settings: approval mode, retention, hub-only collections and each collection's conflict strategy and local-only flag (the policy every child applies)",
      ),
    'hub',
  ).action(async (opts: CommonOptions) => {
    const s = await withSettings(opts, () => undefined);
    print(opts, s, () => settingsLines(s));
  });

  common(
    settings
      .command('set')
      .description('change the approval mode, the history retention or the hub-only collections')
      .option('--require-approval <on|off>', 'newly paired devices wait for an admin')
      .option('--retention-revisions <n|off>', 'history bodies kept per record (heads always)')
      .option('--retention-days <days|off>', 'history bodies older than this are dropped (heads never)')
      .option('--hub-only <list>', 'collections kept on the hub, comma-separated patterns ("" for none)'),
    'hub',
  ).action(
    async (
      opts: CommonOptions & {
        requireApproval?: string;
        retentionRevisions?: string;
        retentionDays?: string;
        hubOnly?: string;
      },
    ) => {
      if (
        [opts.requireApproval, opts.retentionRevisions, opts.retentionDays, opts.hubOnly].every(
          (o) => o === undefined,
        )
      )
        throw new UsageError(
          'nothing to change: give --require-approval, --retention-revisions, --retention-days or --hub-only',
        );
      const s = await withSettings(opts, (current) => {
        const retention = { ...current.policy.retention };
        if (opts.retentionRevisions !== undefined) {
          const n = limit(opts.retentionRevisions, '--retention-revisions', true);
          if (n === undefined) delete retention.maxRevisions;
          else retention.maxRevisions = n;
        }
        if (opts.retentionDays !== undefined) {
          const n = limit(opts.retentionDays, '--retention-days', false);
          if (n === undefined) delete retention.maxAgeDays;
          else retention.maxAgeDays = n;
        }
        return {
          ...(opts.requireApproval !== undefined && {
            requireApproval: onOff(opts.requireApproval, '--require-approval'),
          }),
          ...((opts.retentionRevisions !== undefined || opts.retentionDays !== undefined) && { retention }),
          ...(opts.hubOnly !== undefined && {
            hubOnly: opts.hubOnly
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean),
          }),
        };
      });
      print(opts, s, () => settingsLines(s));
    },
  );

  common(
    settings
      .command('collection')
      .argument('<name>', 'the collection')
      .description(
        "set a collection's conflict strategy and local-only flag; a changed strategy settles its open conflicts again on every node",
      )
      .option('--conflict <strategy>', `how concurrent writes settle: ${STRATEGIES.join(', ')}`)
      .option('--local-only', 'never synced: writes stay on the device that made them')
      .option('--no-local-only', 'synced (the default)')
      .option('--reset', 'back to the defaults (lww, synced)'),
    'hub',
  ).action(
    async (
      name: string,
      opts: CommonOptions & { conflict?: string; localOnly?: boolean; reset?: boolean },
    ) => {
      if (opts.conflict !== undefined && !(STRATEGIES as readonly string[]).includes(opts.conflict))
        throw new UsageError(`--conflict is one of ${STRATEGIES.join(', ')}`);
      if (opts.conflict === undefined && opts.localOnly === undefined && !opts.reset)
        throw new UsageError('nothing to change: give --conflict, --local-only, --no-local-only or --reset');
      const s = await withSettings(opts, (current) => {
        const collections = { ...current.policy.collections };
        const was: CollectionPolicy = opts.reset ? {} : { ...collections[name] };
        collections[name] = {
          ...was,
          ...(opts.conflict !== undefined && { conflict: opts.conflict as CollectionPolicy['conflict'] }),
          ...(opts.localOnly !== undefined && { localOnly: opts.localOnly }),
        };
        return { collections };
      });
      print(opts, s, () => [
        ...settingsLines(s),
        ...(s.resettled
          ? ['', `${s.resettled} conflicted record(s) settled again under the new strategy`]
          : []),
      ]);
    },
  );
}
