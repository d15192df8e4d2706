import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadPairedHub } from '../../child/paired-hub.js';
import { collectHubs } from '../../discovery/attempt.js';
import { DnsSdBrowser } from '../../discovery/dns-sd.js';
import { HubBrowser } from '../../discovery/multicast.js';
import { describeAttempt } from '../../discovery/report.js';
import { parseStaticAddresses } from '../../discovery/static.js';
import { readAgentFile } from '../../observability/agent-file.js';
import { newestBackup } from '../../ops/backup-schedule.js';
import { runningChildStatus } from '../../ops/agent-status.js';
import { clockSkewWarning, describeOffset } from '../../transport/clock-offset.js';
import { formatDeviceId } from '../../transport/device-id.js';
import { sizeText } from '../format.js';
import { type CommonOptions, common, dataDir, print, table, when } from '../context.js';
import { isHubDir, nodeDeviceId, withRegistry, withReplica } from '../stores.js';

export function registerStatus(program: Command): void {
  common(
    program.command('status').description("this node's identity, data, agent and sync state"),
    'any',
  ).action(async (opts: CommonOptions) => {
    const dir = dataDir(opts, 'any');
    const deviceId = nodeDeviceId(dir);
    const agent = readAgentFile(dir);
    const hub = isHubDir(dir);
    const store = await withReplica(dir, async (r) => ({
      stats: await r.stats(),
      conflicts: (await r.conflicts({ status: 'open' })).length,
    }));
    const devices = hub ? await withRegistry(dir, (r) => r.list()) : undefined;
    const paired = hub ? undefined : loadPairedHub(dir);
    // The hub's clock is measured by the running agent: ask it.
    const live = !hub && agent ? await runningChildStatus(dir) : undefined;
    const hubClock = live?.ok ? live.status.hubClock : undefined;
    const clockWarning = hubClock && clockSkewWarning(hubClock);
    const result = {
      role: hub ? 'hub' : 'child',
      deviceId,
      dataDir: dir,
      running: agent ? { pid: agent.pid, since: agent.startedAt, syncPort: agent.syncPort } : false,
      store: store.stats,
      openConflicts: store.conflicts,
      ...(devices && {
        devices: {
          approved: devices.filter((d) => d.state === 'approved').length,
          pending: devices.filter((d) => d.state === 'pending').length,
          revoked: devices.filter((d) => d.state === 'revoked').length,
        },
      }),
      ...(!hub && {
        hub: paired ? { deviceId: paired.hubId, name: paired.hubName, pairedAt: paired.pairedAt } : null,
        ...(hubClock && { hubClock }),
        ...(clockWarning && { clockWarning }),
      }),
      ...(agent?.backups && { backups: { ...agent.backups, last: newestBackup(agent.backups.dir) } }),
    };
    print(opts, result, () => [
      `${hub ? 'Hub' : 'Child'} ${formatDeviceId(deviceId)}`,
      `  data        ${dir}`,
      `  agent       ${agent ? `running (pid ${agent.pid}, since ${when(agent.startedAt)})` : 'not running'}`,
      `  records     ${store.stats.records} (${store.stats.revisions} revisions, change log at ${store.stats.latestSeq})`,
      `  conflicts   ${store.conflicts} open`,
      ...(devices
        ? [
            `  devices     ${result.devices?.approved} approved, ${result.devices?.pending} pending, ${result.devices?.revoked} revoked`,
          ]
        : []),
      ...(!hub
        ? [
            `  hub         ${paired ? `${paired.hubName} ${formatDeviceId(paired.hubId)}` : 'not paired yet (trosyn-sync pair CODE)'}`,
            ...(hubClock ? [`  hub clock   ${describeOffset(hubClock, "this device's")}`] : []),
            ...(clockWarning ? [`  WARNING     ${clockWarning}`] : []),
          ]
        : []),
      ...(result.backups
        ? [
            `  backups     ${result.backups.last ? `last ${when(result.backups.last.at)}, ${sizeText(result.backups.last.bytes)}` : 'none yet'}; every ${result.backups.everyHours} h into ${result.backups.dir}, ${result.backups.keep} kept`,
          ]
        : hub && agent
          ? ['  backups     not scheduled (start the hub with --backup-dir DIR)']
          : []),
    ]);
  });

  common(
    program
      .command('discover')
      .description('list the hubs this machine can see on the LAN, and why not when it sees none')
      .option('--timeout <ms>', 'how long to listen', (v) => Number(v), 3000)
      .option(
        '--hub <host:port>',
        'also list a static address (repeatable)',
        (v: string, prev: string[]) => [...prev, v],
        [],
      ),
    'any',
  ).action(async (opts: CommonOptions & { timeout: number; hub: string[] }) => {
    const statics = parseStaticAddresses(opts.hub);
    const attempt = await collectHubs([new HubBrowser(), new DnsSdBrowser()], { timeoutMs: opts.timeout });
    const dir = dataDir(opts, 'any');
    const pinned = !isHubDir(dir) && existsSync(dir) ? loadPairedHub(dir)?.hubId : undefined;
    print(opts, { hubs: attempt.hubs, statics, diagnostics: attempt.diagnostics }, () => {
      if (attempt.hubs.length === 0) return describeAttempt(attempt, { statics });
      return [
        ...table([
          ['HUB', 'NAME', 'ADDRESS', 'VIA', 'VERSIONS'],
          ...attempt.hubs.map((h) => [
            `${formatDeviceId(h.deviceId).slice(0, 15)}${pinned === h.deviceId ? ' (paired)' : ''}`,
            h.name,
            `${h.family === 6 ? `[${h.address}]` : h.address}:${h.port}`,
            h.via,
            h.versions.join(','),
          ]),
        ]),
        'An announcement is only a hint: a device trusts a hub only by the certificate it pinned when pairing.',
      ];
    });
  });
}
