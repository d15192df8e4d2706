/**
 * `trosyn-sync doctor`'s discovery report between real hosts, each a network
 * namespace on one private link: a paired child sees its hub answer on eth0 and on
 * no other interface; on a host whose firewall drops multicast, each interface is
 * reported as failing, with the firewall named. Needs root and nftables (skips
 * loudly otherwise).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { type LabProcess, loudSkip, NetnsLab, netnsSkipReason, requireNetns } from '../netns/harness.js';
import { CLI } from '../e2e/helpers.js';

const skipReason = await netnsSkipReason();

interface FamilyReport {
  family: number;
  joined: string[];
  groups: string[];
  sent: number;
  problems: string[];
}

interface InterfaceReport {
  name: string;
  status: string;
  families: FamilyReport[];
  hubs: { deviceId: string; name: string; address: string; paired: boolean }[];
}

interface Report {
  checks: { id: string; status: string; detail: string; fix?: string; interfaces?: InterfaceReport[] }[];
}

describe(
  'doctor: LAN discovery per interface, between hosts',
  { skip: skipReason ? loudSkip('doctor between network namespaces', skipReason) : false },
  () => {
    let lab: NetnsLab;
    const dir = tempDir('trosyn-doctor-lan-');
    const hubData = join(dir.path, 'hub');
    let hub: LabProcess;
    let hubId = '';

    async function cli(host: string, args: string[]): Promise<Record<string, unknown>> {
      const r = await lab.host(host).exec(process.execPath, [CLI, ...args, '--json'], { timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`${args[0]} failed in ${host}: ${r.stderr.trim()}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    }

    /** The doctor's discovery check on a host (the doctor exits 1: no agent runs there). */
    async function discovery(host: string, data: string): Promise<Report['checks'][number]> {
      const r = await lab
        .host(host)
        .exec(process.execPath, [CLI, 'doctor', '--data', data, '--json', '--timeout', '2000'], {
          timeoutMs: 30_000,
        });
      const report = JSON.parse(r.stdout) as Report;
      const found = report.checks.find((c) => c.id === 'discovery');
      assert.ok(found, `a discovery check: ${r.stdout}${r.stderr}`);
      return found;
    }

    before(async () => {
      lab = await NetnsLab.create({ hosts: ['hub', 'child', 'walled'] });
      hub = lab
        .host('hub')
        .spawn(process.execPath, [
          CLI,
          'hub',
          '--data',
          hubData,
          '--json',
          '--no-admin-api',
          '--name',
          'office',
        ]);
      hubId = (
        await hub.waitForJson<{ event: string; deviceId: string }>((v) => v.event === 'started', {
          timeoutMs: 30_000,
        })
      ).deviceId;
    });

    after(async () => {
      await lab?.destroy();
      dir.remove();
    });

    it('a paired child sees its hub answer on eth0, and on no other interface', async (t) => {
      if (!(await requireNetns(t))) return;
      const child = lab.host('child');
      // A second interface, up and multicast-capable, on a link where no hub is (a veth
      // pair inside the host, its other end unaddressed).
      for (const args of [
        ['link', 'add', 'side0', 'type', 'veth', 'peer', 'name', 'side1'],
        ['addr', 'add', '10.99.0.2/24', 'dev', 'side0'],
        ['link', 'set', 'side1', 'up'],
        ['link', 'set', 'side0', 'up'],
      ]) {
        const r = await child.exec('ip', args);
        assert.equal(r.code, 0, r.stderr);
      }
      const data = join(dir.path, 'child');
      const code = String((await cli('hub', ['pairing-code', '--data', hubData])).code);
      await cli('child', ['pair', code, '--data', data, '--name', 'desk']);

      const d = await discovery('child', data);
      assert.equal(d.status, 'ok', d.detail);
      assert.match(d.detail, /the paired hub answers on eth0$/);
      const eth0 = d.interfaces?.find((i) => i.name === 'eth0');
      assert.equal(eth0?.status, 'ok');
      const v4 = eth0?.families.find((f) => f.family === 4);
      assert.deepEqual(v4?.joined, v4?.groups, 'every IPv4 group joined on eth0');
      assert.ok((v4?.sent ?? 0) > 0, 'queries sent on eth0');
      if (lab.ipv6) {
        const v6 = eth0?.families.find((f) => f.family === 6);
        assert.deepEqual(v6?.joined, ['ff02::7702', 'ff05::7702']);
      }
      const answered = eth0?.hubs.filter((h) => h.deviceId === hubId) ?? [];
      assert.ok(
        answered.some((h) => h.address === lab.host('hub').ipv4 && h.paired && h.name === 'office'),
        JSON.stringify(eth0?.hubs),
      );
      const side = d.interfaces?.find((i) => i.name === 'side0');
      assert.equal(side?.status, 'ok', 'discovery works on the second interface too');
      assert.deepEqual(side?.hubs, [], 'but no hub answers there');

      const text = await child.exec(process.execPath, [CLI, 'doctor', '--data', data, '--timeout', '2000'], {
        timeoutMs: 30_000,
      });
      assert.match(text.stdout, /^ {4}eth0: IPv4 joined, sent.*hubs: office \(paired\)/m);
      assert.match(text.stdout, /^ {4}side0: IPv4 joined, sent.*no hub answered$/m);
    });

    it('where the firewall drops multicast, each interface is reported failing, and the firewall named', async (t) => {
      if (!(await requireNetns(t, ['nft']))) return;
      const walled = lab.host('walled');
      await walled.dropMulticast();
      const data = join(dir.path, 'walled');
      const code = String((await cli('hub', ['pairing-code', '--data', hubData])).code);
      await cli('walled', ['pair', code, '--hub', `${lab.host('hub').ipv4}:17700`, '--data', data]);

      const d = await discovery('walled', data);
      assert.equal(d.status, 'warn', d.detail);
      assert.match(
        d.detail,
        /multicast fails on eth0: sending is refused by a firewall on this machine \(EPERM\)/,
      );
      assert.match(d.fix ?? '', /allow UDP 17702/);
      const eth0 = d.interfaces?.find((i) => i.name === 'eth0');
      assert.equal(eth0?.status, 'failed');
      assert.deepEqual(eth0?.hubs, []);
      const v4 = eth0?.families.find((f) => f.family === 4);
      assert.equal(v4?.sent, 0);
      assert.ok(v4?.problems.includes('send 239.255.77.2: EPERM'), JSON.stringify(v4));

      // With the firewall gone, the same host sees its hub.
      await walled.allowMulticast();
      const again = await discovery('walled', data);
      assert.equal(again.status, 'ok', again.detail);
      assert.ok(again.interfaces?.find((i) => i.name === 'eth0')?.hubs.some((h) => h.paired));
    });
  },
);
