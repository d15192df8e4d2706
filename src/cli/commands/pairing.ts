import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import qrcode from 'qrcode-terminal';
import { savePairedHub } from '../../child/paired-hub.js';
import { pairWithHub } from '../../child/pairing.js';
import { findHub } from '../../discovery/multicast.js';
import { LastAddressMemory, parseStaticAddress } from '../../discovery/static.js';
import { TrosynError } from '../../errors.js';
import { DEFAULT_SYNC_PORT } from '../../protocol/constants.js';
import { nodeReplica } from '../../sync/node-replica.js';
import type { DeviceId } from '../../store/types.js';
import { formatDeviceId, parseDeviceId } from '../../transport/device-id.js';
import { loadOrCreateIdentity } from '../../transport/identity.js';
import { readAgentFile } from '../../observability/agent-file.js';
import { type CommonOptions, common, dataDir, print, UsageError } from '../context.js';
import { isHubDir, nodeDeviceId, withRegistry } from '../stores.js';

/** A code typed by hand, or the text of the hub's QR code (`trosyn-sync://pair?code=...&hub=...&port=...`). */
function parseCodeArg(text: string): { code: string; hubId?: DeviceId; port?: number } {
  if (!text.startsWith('trosyn-sync://')) return { code: text };
  const url = new URL(text);
  const code = url.searchParams.get('code');
  if (!code) throw new UsageError('the pairing link has no code');
  const hub = url.searchParams.get('hub');
  const port = url.searchParams.get('port');
  return { code, ...(hub && { hubId: parseDeviceId(hub) }), ...(port && { port: Number(port) }) };
}

export function registerPairing(program: Command): void {
  common(
    program
      .command('pairing-code')
      .description('issue a one-time pairing code on the hub (works whether or not the hub is running)')
      .option('--ttl <minutes>', 'minutes the code stays valid', (v) => Number(v), 10)
      .option('--group <name>', 'device group the paired device joins', 'default')
      .option('--no-qr', 'do not print the QR code'),
    'hub',
  ).action(async (opts: CommonOptions & { ttl: number; group: string; qr: boolean }) => {
    const dir = dataDir(opts, 'hub');
    if (!(opts.ttl > 0 && opts.ttl <= 24 * 60)) throw new UsageError('--ttl is minutes between 1 and 1440');
    const hubId = nodeDeviceId(dir);
    const issued = await withRegistry(dir, (registry) =>
      registry.issueCode({ ttlMs: opts.ttl * 60_000, group: opts.group }),
    );
    const port = readAgentFile(dir)?.syncPort ?? DEFAULT_SYNC_PORT;
    const link = `trosyn-sync://pair?code=${issued.code}&hub=${hubId}&port=${port}`;
    print(opts, { ...issued, hubId, link }, () => [
      `Pairing code: ${issued.code}`,
      `  single use, valid until ${new Date(issued.expiresAt).toLocaleString()}, joins group "${issued.group}"`,
      `  on the child: trosyn-sync pair ${issued.code}`,
    ]);
    if (!opts.json && opts.qr)
      qrcode.generate(link, { small: true }, (qr) => process.stdout.write(`${qr}\n`));
  });

  common(
    program
      .command('pair')
      .argument('<code>', 'the code shown by the hub (e.g. 7K2M-QX4P-9TZB), or the text of its QR code')
      .description(
        "pair this device with a hub: proves the code to each other and pins the hub's certificate",
      )
      .option('--hub <host:port>', "the hub's address (default: find it on the LAN)")
      .option('--name <name>', 'name the hub shows for this device', hostname())
      .option('--timeout <ms>', 'how long to look for the hub on the LAN', (v) => Number(v), 3000),
    'child',
  ).action(async (codeArg: string, opts: CommonOptions & { hub?: string; name: string; timeout: number }) => {
    const dir = dataDir(opts, 'child');
    if (isHubDir(dir))
      throw new UsageError(`${dir} is a hub's data directory; give the child its own --data`);
    const { code, hubId: expectedHubId, port } = parseCodeArg(codeArg);
    let address: { host: string; port: number };
    if (opts.hub) {
      address = parseStaticAddress(opts.hub, port ?? DEFAULT_SYNC_PORT);
    } else {
      const found = await findHub({
        timeoutMs: opts.timeout,
        ...(expectedHubId && { deviceId: expectedHubId }),
      });
      if (!found) {
        throw new TrosynError(
          'HUB_NOT_FOUND',
          'no hub answered on the LAN; give its address with --hub HOST:PORT (see `trosyn-sync discover` for why)',
        );
      }
      address = { host: found.address, port: found.port };
    }
    const isNew = !existsSync(join(dir, 'identity', 'cert.pem'));
    const identity = await loadOrCreateIdentity(join(dir, 'identity'), { commonName: opts.name });
    // A node's store is made with its identity, so that later a missing store means a lost one.
    if (isNew) {
      const replica = nodeReplica({ dataDir: dir, deviceId: identity.deviceId, role: 'child' });
      await replica.start();
      await replica.stop();
    }
    const result = await pairWithHub({
      identity,
      code,
      address,
      name: opts.name,
      ...(expectedHubId && { expectedHubId }),
    });
    savePairedHub(dir, {
      hubId: result.hubId,
      hubName: result.hubName,
      addresses: opts.hub ? [address] : [],
      pairedAt: Date.now(),
      group: result.group,
    });
    await new LastAddressMemory({ dataDir: dir }).remember({ ...address, deviceId: result.hubId });
    print(opts, { ...result, deviceId: identity.deviceId, address }, () => [
      `Paired with hub "${result.hubName}" (${formatDeviceId(result.hubId)}) at ${address.host}:${address.port}.`,
      `  this device   ${formatDeviceId(identity.deviceId)}`,
      result.state === 'pending'
        ? '  status        waiting for the admin to approve this device'
        : '  status        approved',
      `Start syncing:  trosyn-sync child --data ${dir}`,
    ]);
  });
}
