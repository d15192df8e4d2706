/**
 * The product across real hosts: hub, children and a hostile machine, each in its
 * own network namespace on one private link, running the trosyn-sync command.
 * A child finds the hub by discovery (no address given), pairs with a code and
 * syncs; DNS-SD lists the hub to standard tools; where multicast is dropped a
 * static address works; a spoofed announcement never gets data. Needs root
 * (skips loudly otherwise).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DiscoveredHub } from '../../src/discovery/types.js';
import { eventually, tempDir } from '../helpers.js';
import { type LabProcess, loudSkip, NetnsLab, netnsSkipReason, requireNetns } from '../netns/harness.js';
import { CLI, openNode } from './helpers.js';

const skipReason = await netnsSkipReason();
const SYNC_PORT = 17700;

describe(
  'hub and children on separate hosts',
  { skip: skipReason ? loudSkip('hub and children on separate hosts', skipReason) : false },
  () => {
    let lab: NetnsLab;
    const dir = tempDir('trosyn-lan-');
    const hubData = join(dir.path, 'hub');
    let hub: LabProcess;
    let hubId = '';

    /** Runs the CLI inside a host to completion; resolves with its parsed --json output. */
    async function cli(host: string, args: string[]): Promise<Record<string, unknown>> {
      const r = await lab.host(host).exec(process.execPath, [CLI, ...args, '--json'], { timeoutMs: 20_000 });
      if (r.code !== 0)
        throw Object.assign(new Error(`${args[0]} failed in ${host}: ${r.stderr.trim()}`), {
          stderr: r.stderr,
          code: r.code,
        });
      return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
    }

    async function newCode(): Promise<string> {
      return (await cli('hub', ['pairing-code', '--data', hubData])).code as string;
    }

    before(async () => {
      lab = await NetnsLab.create({ hosts: ['hub', 'child', 'child6', 'walled', 'impostor'] });
      hub = lab
        .host('hub')
        .spawn(process.execPath, [
          CLI,
          'hub',
          '--data',
          hubData,
          '--json',
          '--http-port',
          '0',
          '--name',
          'office-hub',
        ]);
      const started = await hub.waitForJson<{ event: string; deviceId: string }>(
        (v) => v.event === 'started',
        { timeoutMs: 30_000 },
      );
      hubId = started.deviceId;
    });

    after(async () => {
      await lab?.destroy();
      dir.remove();
    });

    it('a child with no address finds the hub over IPv4 and IPv6, pairs with a code, and syncs both ways', async (t) => {
      if (!(await requireNetns(t))) return;
      const seen = (await cli('child', ['discover', '--timeout', '2000'])).hubs as DiscoveredHub[];
      const ours = seen.filter((h) => h.deviceId === hubId);
      assert.ok(
        ours.some((h) => h.family === 4 && h.address === lab.host('hub').ipv4),
        'found over IPv4',
      );
      assert.ok(
        ours.some((h) => h.family === 6),
        'found over IPv6',
      );

      const childData = join(dir.path, 'child');
      const paired = await cli('child', ['pair', await newCode(), '--data', childData, '--name', 'desk-1']);
      assert.equal(paired.hubId, hubId);
      const child = lab
        .host('child')
        .spawn(process.execPath, [
          CLI,
          'child',
          '--data',
          childData,
          '--json',
          '--api-port',
          '0',
          '--retry-max',
          '500',
        ]);
      await child.waitForJson<{ event: string }>((v) => v.event === 'connected', { timeoutMs: 20_000 });

      const childStore = await openNode(childData);
      const hubStore = await openNode(hubData);
      const up = await childStore.put('notes', 'from-child', { text: 'across the LAN' });
      const down = await hubStore.put('notes', 'from-hub', { text: 'to the desk' });
      await eventually(
        async () => (await hubStore.get('notes', 'from-child'))?.rev === up.rev,
        15_000,
        'child -> hub',
      );
      await eventually(
        async () => (await childStore.get('notes', 'from-hub'))?.rev === down.rev,
        15_000,
        'hub -> child',
      );
      await childStore.stop();
      await hubStore.stop();
      await child.stop();
    });

    it('a child pairs and syncs with the hub at its IPv6 address', async (t) => {
      if (!(await requireNetns(t))) return;
      const data = join(dir.path, 'child6');
      const address = `[${lab.host('hub').ipv6}]:${SYNC_PORT}`;
      await cli('child6', ['pair', await newCode(), '--hub', address, '--data', data, '--name', 'desk-6']);
      const child = lab
        .host('child6')
        .spawn(process.execPath, [
          CLI,
          'child',
          '--data',
          data,
          '--hub',
          address,
          '--no-discovery',
          '--no-api',
          '--json',
        ]);
      await child.waitForJson<{ event: string }>((v) => v.event === 'connected', { timeoutMs: 20_000 });
      const store = await openNode(data);
      const w = await store.put('notes', 'over-ipv6', { ok: true });
      const hubStore = await openNode(hubData);
      await eventually(
        async () => (await hubStore.get('notes', 'over-ipv6'))?.rev === w.rev,
        15_000,
        'synced over IPv6',
      );
      await store.stop();
      await hubStore.stop();
      await child.stop();
    });

    it('standard DNS-SD tools list the hub', async (t) => {
      if (!(await requireNetns(t, ['dig']))) return;
      const r = await lab
        .host('child')
        .exec('dig', [
          '+short',
          '+time=2',
          '+tries=2',
          '-p',
          '5353',
          `@${lab.host('hub').ipv4}`,
          '_trosyn-sync._tcp.local',
          'PTR',
        ]);
      assert.match(r.stdout, /_trosyn-sync\._tcp\.local\.?/);
    });

    it('where multicast is dropped, discovery explains why it found nothing and a static address works', async (t) => {
      if (!(await requireNetns(t, ['nft']))) return;
      const walled = lab.host('walled');
      await walled.dropMulticast();
      const data = join(dir.path, 'walled');
      const code = await newCode();
      await assert.rejects(
        cli('walled', ['pair', code, '--data', data, '--timeout', '1500']),
        /HUB_NOT_FOUND/,
      );
      const report = await walled.exec(process.execPath, [CLI, 'discover', '--timeout', '1500']);
      assert.match(report.stdout, /firewall|multicast/i, 'the report names the usual causes');
      assert.match(report.stdout, new RegExp(walled.ifname), 'and the interfaces it tried');
      const address = `${lab.host('hub').ipv4}:${SYNC_PORT}`;
      await cli('walled', ['pair', code, '--hub', address, '--data', data, '--name', 'walled-desk']);
      const child = walled.spawn(process.execPath, [CLI, 'child', '--data', data, '--json', '--no-api']);
      await child.waitForJson<{ event: string }>((v) => v.event === 'connected', { timeoutMs: 20_000 });
      await child.stop();
    });

    it('a spoofed announcement with the hub’s device ID never gets data from a paired child', async (t) => {
      if (!(await requireNetns(t))) return;
      const impostor = lab.host('impostor').node('test/e2e/fixtures/impostor.ts', [hubId, String(SYNC_PORT)]);
      await impostor.waitForJson<{ event: string }>((v) => v.event === 'ready', { timeoutMs: 20_000 });
      const data = join(dir.path, 'child');
      // The paired child restarts with discovery: it sees both the real hub and the impostor claiming its ID.
      const seen = (await cli('child', ['discover', '--timeout', '2500'])).hubs as DiscoveredHub[];
      assert.ok(
        seen.some((h) => h.deviceId === hubId && h.address === lab.host('impostor').ipv4),
        'the spoofed announcement is seen',
      );
      const { rmSync } = await import('node:fs');
      rmSync(join(data, 'last-hub-address.json'), { force: true });
      // Pointed at the impostor alone, the pinned child refuses it before sending anything.
      const misled = lab
        .host('child')
        .spawn(process.execPath, [
          CLI,
          'child',
          '--data',
          data,
          '--json',
          '--no-api',
          '--no-discovery',
          '--hub',
          `${lab.host('impostor').ipv4}:${SYNC_PORT}`,
          '--retry-max',
          '300',
        ]);
      await eventually(
        () => impostor.lines.some((l) => l.includes('"connection"')),
        15_000,
        'the child tried the impostor',
      );
      await eventually(
        async () =>
          await misled.waitForLine(/HUB_IDENTITY_MISMATCH|disconnected|started/, { timeoutMs: 100 }).then(
            () => true,
            () => false,
          ),
        5000,
      );
      await misled.stop();
      rmSync(join(data, 'last-hub-address.json'), { force: true });
      const child = lab
        .host('child')
        .spawn(process.execPath, [CLI, 'child', '--data', data, '--json', '--no-api', '--retry-max', '300']);
      await child.waitForJson<{ event: string }>((v) => v.event === 'connected', { timeoutMs: 30_000 });
      const store = await openNode(data);
      const w = await store.put('secrets', 's1', { v: 'for the real hub only' });
      const hubStore = await openNode(hubData);
      await eventually(
        async () => (await hubStore.get('secrets', 's1'))?.rev === w.rev,
        15_000,
        'synced with the real hub',
      );
      await child.stop();
      await impostor.stop();
      const sessions = impostor.lines
        .map((l) => JSON.parse(l) as { event: string; bytes?: number })
        .filter((e) => e.event === 'session');
      assert.ok(
        impostor.lines.some((l) => l.includes('"connection"')),
        'the impostor was tried',
      );
      for (const s of sessions) assert.equal(s.bytes, 0, 'the impostor received no application data');
      await store.stop();
      await hubStore.stop();
    });
  },
);
