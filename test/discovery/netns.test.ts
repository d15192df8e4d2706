/**
 * Discovery between real hosts: each host a network namespace on one private link,
 * the hub and children as separate processes. Needs root (skips loudly otherwise).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DiscoveredHub } from '../../src/discovery/types.js';
import { shortDeviceId } from '../../src/transport/device-id.js';
import { type LabProcess, loudSkip, NetnsLab, netnsSkipReason, requireNetns } from '../netns/harness.js';
import { deviceId } from './helpers.js';

const AGENT = 'test/discovery/fixtures/agent.ts';
const START_TIMEOUT_MS = 20_000;

interface AgentEvent {
  event: string;
  source?: string;
  hub?: DiscoveredHub;
  hubs?: DiscoveredHub[];
  sinceStartMs?: number;
  report?: string[];
  reached?: { host: string; port: number; source: string } | null;
  message?: string;
}

const skipReason = await netnsSkipReason();

describe(
  'discovery between network namespaces',
  { skip: skipReason ? loudSkip('discovery between network namespaces', skipReason) : false },
  () => {
    let lab: NetnsLab | undefined;
    const hubId = deviceId();
    const hubName = 'Office hub';

    function agent(host: string, config: Record<string, unknown>): LabProcess {
      if (!lab) throw new Error('no lab');
      return lab.host(host).node(AGENT, [JSON.stringify(config)]);
    }

    async function started(p: LabProcess): Promise<void> {
      const e = await p.waitForJson<AgentEvent>((v) => v.event === 'started' || v.event === 'error', {
        timeoutMs: START_TIMEOUT_MS,
      });
      assert.equal(e.event, 'started', `${p.description}: ${e.message ?? ''}`);
    }

    before(async () => {
      lab = await NetnsLab.create({ hosts: ['hub', 'child', 'spoof', 'walled'] });
      const hub = agent('hub', {
        announcer: { deviceId: hubId, name: hubName, announceIntervalMs: 60_000 },
        publisher: { deviceId: hubId, name: hubName },
        tcpPort: 17700,
      });
      await started(hub);
    });

    after(async () => {
      await lab?.destroy();
    });

    it('a child finds the hub over IPv4 through the answer to its start-up query', async () => {
      const child = agent('child', { browser: { families: [4] } });
      await started(child);
      // The hub announces only every 60 s, and announced before this child listened:
      // a find within the wait is the answer to the query.
      const found = await child.waitForJson<AgentEvent>((e) => e.event === 'found', { timeoutMs: 5_000 });
      console.log(`IPv4: hub found ${found.sinceStartMs} ms after the browser started`);
      assert.equal(found.hub?.deviceId, hubId);
      assert.equal(found.hub?.address, '10.77.0.1');
      assert.equal(found.hub?.port, 17700);
      assert.equal(found.hub?.family, 4);
      assert.equal(found.hub?.interface, 'eth0');
      await child.stop();
    });

    it('a child finds the hub over IPv6 alone, by link-local and site-scope groups', async (t) => {
      if (!lab?.ipv6) return t.skip(loudSkip(t.name, 'the kernel has no IPv6'));
      const child = agent('child', { browser: { families: [6] } });
      await started(child);
      const first = await child.waitForJson<AgentEvent>((e) => e.event === 'found', { timeoutMs: 5_000 });
      console.log(`IPv6: hub found ${first.sinceStartMs} ms after the browser started`);
      const hubHost = lab.host('hub');
      // The ULA answer comes from the site-scope group, the link-local one from ff02::7702.
      await child.waitForJson<AgentEvent>((e) => e.event === 'found' && e.hub?.address === hubHost.ipv6, {
        timeoutMs: 5_000,
      });
      await child.waitForJson<AgentEvent>(
        (e) => e.event === 'found' && e.hub?.address === hubHost.linkLocal,
        {
          timeoutMs: 5_000,
        },
      );
      assert.ok(child.json<AgentEvent>().every((e) => e.event !== 'found' || e.hub?.family === 6));
      await child.stop();
    });

    it('DNS-SD: dig lists the service from another namespace, and the DNS-SD browser finds the hub', async (t) => {
      if (!(await requireNetns(t, ['dig']))) return;
      if (!lab) throw new Error('no lab');
      const instance = `Office\\032hub-${shortDeviceId(hubId)}._trosyn-sync._tcp.local.`;
      // dig connects its UDP socket, so it cannot take an answer to a query sent to
      // 224.0.0.251 (the answer comes from the hub's own address); it asks the hub's
      // mDNS port directly, which RFC 6762 5.5 allows and the hub answers the same way.
      for (const server of [lab.host('hub').ipv4, ...(lab.ipv6 ? [lab.host('hub').ipv6] : [])]) {
        const dig = await lab
          .host('child')
          .exec('dig', ['-p', '5353', `@${server}`, '_trosyn-sync._tcp.local', 'PTR', '+time=2', '+tries=2']);
        assert.equal(dig.code, 0, dig.stderr);
        assert.ok(
          dig.stdout.includes(`PTR\t${instance}`),
          `dig @${server} lists the instance:\n${dig.stdout}`,
        );
        assert.match(dig.stdout, new RegExp(`TXT\\s.*"deviceId=${hubId}"`));
        assert.match(dig.stdout, /SRV\s+0 0 17700 trosyn-[0-9a-f]{12}\.local\./);
      }
      const child = agent('child', { dnsSdBrowser: { families: [4] } });
      await started(child);
      const found = await child.waitForJson<AgentEvent>((e) => e.event === 'found', { timeoutMs: 5_000 });
      console.log(`DNS-SD: hub found ${found.sinceStartMs} ms after the browser started`);
      assert.equal(found.hub?.via, 'dns-sd');
      assert.equal(found.hub?.deviceId, hubId);
      assert.equal(found.hub?.address, '10.77.0.1');
      assert.equal(found.hub?.port, 17700);
      await child.stop();
    });

    it('with multicast dropped nothing is found, the report says what was tried, and a static address still reaches the hub', async (t) => {
      if (!(await requireNetns(t, ['nft']))) return;
      if (!lab) throw new Error('no lab');
      await lab.host('walled').dropMulticast();
      const child = agent('walled', { browser: {}, dnsSdBrowser: {} });
      await started(child);
      child.send('attempt 1500');
      const attempt = await child.waitForJson<AgentEvent>((e) => e.event === 'attempt', {
        timeoutMs: 10_000,
      });
      assert.deepEqual(attempt.hubs, []);
      const report = (attempt.report ?? []).join('\n');
      console.log(report);
      assert.match(report, /^No hub found after/);
      assert.match(report, /IPv4 239\.255\.77\.2: eth0 \(10\.77\.0\.4\)/);
      assert.match(report, /IPv6 ff02::7702, ff05::7702: eth0/);
      assert.match(report, /224\.0\.0\.251/);
      assert.match(report, /send 239\.255\.77\.2 failed: EPERM/, 'the local firewall refused the sends');
      assert.match(report, /Usual causes:/);
      assert.match(report, /Wi-Fi client isolation/);

      child.send('reach 10.77.0.2:17700,10.77.0.1:17700');
      const reach = await child.waitForJson<AgentEvent>((e) => e.event === 'reach', { timeoutMs: 10_000 });
      assert.deepEqual(reach.reached, { host: '10.77.0.1', port: 17700, source: 'static' });
      await child.stop();
      await lab.host('walled').allowMulticast();
    });

    it('an announcement claiming the hub ID from another address is listed apart, not merged', async () => {
      const spoof = agent('spoof', {
        announcer: { deviceId: hubId, name: hubName, families: [4], announceIntervalMs: 60_000 },
      });
      await started(spoof);
      const child = agent('child', { browser: { families: [4] } });
      await started(child);
      for (const address of ['10.77.0.1', '10.77.0.3'])
        await child.waitForJson<AgentEvent>((e) => e.event === 'found' && e.hub?.address === address, {
          timeoutMs: 5_000,
        });
      child.send('attempt 200');
      const attempt = await child.waitForJson<AgentEvent>((e) => e.event === 'attempt', {
        timeoutMs: 10_000,
      });
      const entries = (attempt.hubs ?? []).map((h) => [h.deviceId, h.address]).sort();
      assert.deepEqual(entries, [
        [hubId, '10.77.0.1'],
        [hubId, '10.77.0.3'],
      ]);
      assert.match((attempt.report ?? []).join('\n'), /announced from 2 addresses/);
      await Promise.all([child.stop(), spoof.stop()]);
    });
  },
);
