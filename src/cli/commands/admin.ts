import type { Command } from 'commander';
import { issueSignInLink, signInUrl } from '../../hub/admin-api/sign-in.js';
import { DEVICE_HEALTH_SETTING, type DeviceTrouble } from '../../hub/device-health.js';
import type { DeviceRecord } from '../../hub/registry.js';
import { readAgentFile } from '../../observability/agent-file.js';
import { DEFAULT_ADMIN_PORT } from '../../protocol/constants.js';
import { type ClockOffset, describeOffset } from '../../transport/clock-offset.js';
import { formatDeviceId, parseDeviceId, shortDeviceId } from '../../transport/device-id.js';
import { type CommonOptions, common, dataDir, print, table, UsageError, when } from '../context.js';
import { withRegistry } from '../stores.js';

type ListedDevice = DeviceRecord & { clock: ClockOffset | null };

function deviceRows(devices: ListedDevice[]): string[] {
  if (devices.length === 0) return ['no devices paired yet: issue a code with `trosyn-sync pairing-code`'];
  return table([
    ['DEVICE', 'NAME', 'GROUP', 'STATE', 'LAST SEEN', 'ADDRESS', 'VERSION', 'CLOCK'],
    ...devices.map((d) => [
      shortDeviceId(d.deviceId),
      d.name,
      d.group,
      d.state,
      when(d.lastSeen),
      d.lastAddress ?? '-',
      d.appVersion ?? '-',
      d.clock ? describeOffset(d.clock, "the hub's") : '-',
    ]),
  ]);
}

/** Each device's clock as the hub last measured it (kept with the devices' sync details). */
function clocksOf(saved: string | undefined): Map<string, ClockOffset> {
  const clocks = new Map<string, ClockOffset>();
  try {
    for (const [id, entry] of Object.entries(
      JSON.parse(saved ?? '{}') as Record<string, Partial<DeviceTrouble>>,
    ))
      if (entry?.clock) clocks.set(id, entry.clock);
  } catch {
    // Unreadable details: the hub starts them afresh too; no clock is known.
  }
  return clocks;
}

/** Changes made here reach a running hub within a second: it re-reads the registry and disconnects as needed. */
export function registerAdmin(program: Command): void {
  common(
    program
      .command('dashboard-link')
      .description(
        "print a one-time link that signs a browser in to the hub's dashboard (single use, valid 10 minutes)",
      ),
    'hub',
  ).action(async (opts: CommonOptions) => {
    const dir = dataDir(opts, 'hub');
    const { secret, expiresAt } = await withRegistry(dir, (r) => issueSignInLink(r, Date.now()));
    const agent = readAgentFile(dir);
    const running = agent?.role === 'hub';
    // The address the running hub printed; without one, where a hub listens by default.
    const base =
      running && agent.adminUrl
        ? agent.adminUrl
        : `http://127.0.0.1:${agent?.adminPort ?? DEFAULT_ADMIN_PORT}`;
    const url = signInUrl(base, secret);
    print(opts, { url, expiresAt, hubRunning: running }, () => [
      `Open this link within 10 minutes (it works once; whoever has it can sign in, so keep it private):`,
      `  ${url}`,
      ...(running
        ? []
        : [
            `The hub is not running: start it (\`trosyn-sync hub --data ${dir}\`) and open the link before it expires;`,
            'the address above is the default one.',
          ]),
    ]);
  });

  const devices = common(
    program
      .command('devices')
      .enablePositionalOptions()
      .description('list the devices paired with this hub')
      .option('--state <state>', 'pending, approved or revoked'),
    'hub',
  ).action(async (opts: CommonOptions & { state?: string }) => {
    if (opts.state && !['pending', 'approved', 'revoked'].includes(opts.state))
      throw new UsageError('--state is pending, approved or revoked');
    const list = await withRegistry(dataDir(opts, 'hub'), async (r): Promise<ListedDevice[]> => {
      const clocks = clocksOf(await r.getSetting(DEVICE_HEALTH_SETTING));
      const devices = await r.list(opts.state ? { state: opts.state as DeviceRecord['state'] } : {});
      return devices.map((d) => ({ ...d, clock: clocks.get(d.deviceId) ?? null }));
    });
    print(opts, list, () => deviceRows(list));
  });

  const change = (
    name: string,
    description: string,
    args: string[],
    run: (
      r: import('../../hub/registry.js').DeviceRegistry,
      id: ReturnType<typeof parseDeviceId>,
      ...rest: string[]
    ) => Promise<DeviceRecord>,
  ) => {
    let cmd = devices
      .command(name)
      .description(description)
      .argument('<device>', 'device ID (hex, the readable form, or its first group as listed)');
    for (const a of args) cmd = cmd.argument(`<${a}>`);
    common(cmd, 'hub').action(async (...params: unknown[]) => {
      const opts = params[args.length + 1] as CommonOptions;
      const idArg = params[0] as string;
      const rest = params.slice(1, args.length + 1) as string[];
      const device = await withRegistry(dataDir(opts, 'hub'), async (r) =>
        run(r, resolveDevice(await r.list(), idArg), ...rest),
      );
      print(
        opts,
        device,
        () => `${device.name} (${formatDeviceId(device.deviceId)}): ${device.state}, group ${device.group}`,
      );
    });
  };
  change('approve', 'let a paired device sync (approval mode)', [], (r, id) => r.approve(id));
  change('revoke', 'revoke a device for good: disconnected at once and refused from then on', [], (r, id) =>
    r.revoke(id),
  );
  change('rename', 'rename a device', ['name'], (r, id, name) => r.rename(id, name as string));
  change('group', 'move a device to another group (its scopes follow)', ['group'], (r, id, group) =>
    r.setGroup(id, group as string),
  );

  const groups = common(
    program
      .command('groups')
      .enablePositionalOptions()
      .description('list device groups and their read and write scopes'),
    'hub',
  ).action(async (opts: CommonOptions) => {
    const list = await withRegistry(dataDir(opts, 'hub'), (r) => r.listGroups());
    print(opts, list, () =>
      table([
        ['GROUP', 'READ', 'WRITE', 'DESCRIPTION'],
        ...list.map((g) => [g.name, g.read.join(',') || '-', g.write.join(',') || '-', g.description]),
      ]),
    );
  });
  common(
    groups
      .command('set')
      .argument('<name>')
      .description("create or change a group's scopes (collection names, `*` for all, `prefix.*`)")
      .requiredOption('--read <list>', 'collections its devices may read, comma-separated')
      .requiredOption('--write <list>', 'collections its devices may write, comma-separated ("" for none)')
      .option('--description <text>', 'what the group is', ''),
    'hub',
  ).action(
    async (name: string, opts: CommonOptions & { read: string; write: string; description: string }) => {
      const split = (s: string) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
      const group = await withRegistry(dataDir(opts, 'hub'), (r) =>
        r.putGroup({ name, description: opts.description, read: split(opts.read), write: split(opts.write) }),
      );
      print(
        opts,
        group,
        () =>
          `group ${group.name}: read ${group.read.join(',') || '(nothing)'}; write ${group.write.join(',') || '(nothing)'}`,
      );
    },
  );
}

/** A device by full ID, readable ID, or a unique prefix of either form. */
function resolveDevice(devices: DeviceRecord[], input: string): ReturnType<typeof parseDeviceId> {
  try {
    return parseDeviceId(input);
  } catch {
    const needle = input.toUpperCase().replace(/-/g, '');
    const matches = devices.filter(
      (d) =>
        d.deviceId.startsWith(input.toLowerCase()) ||
        formatDeviceId(d.deviceId).replace(/-/g, '').startsWith(needle),
    );
    if (matches.length === 1) return (matches[0] as DeviceRecord).deviceId;
    throw new UsageError(
      matches.length === 0
        ? `no device matches ${input}`
        : `${input} matches ${matches.length} devices; give more characters`,
    );
  }
}
