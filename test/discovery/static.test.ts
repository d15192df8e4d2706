import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  firstReachable,
  hubCandidates,
  LastAddressMemory,
  parseStaticAddress,
  parseStaticAddresses,
} from '../../src/discovery/static.js';
import type { DiscoveredHub } from '../../src/discovery/types.js';
import { FakeClock, tempDir } from '../helpers.js';
import { deviceId } from './helpers.js';

describe('static hub addresses', () => {
  it('parses IPv4, bracketed IPv6 and host names, with or without a port', () => {
    assert.deepEqual(parseStaticAddress('192.168.1.10:17800'), {
      host: '192.168.1.10',
      port: 17800,
      kind: 'ipv4',
    });
    assert.deepEqual(parseStaticAddress(' 192.168.1.10 '), {
      host: '192.168.1.10',
      port: 17700,
      kind: 'ipv4',
    });
    assert.deepEqual(parseStaticAddress('[fd00::10]:17701'), { host: 'fd00::10', port: 17701, kind: 'ipv6' });
    assert.deepEqual(parseStaticAddress('[fe80::1%eth0]'), {
      host: 'fe80::1%eth0',
      port: 17700,
      kind: 'ipv6',
    });
    assert.deepEqual(parseStaticAddress('fd00::10'), { host: 'fd00::10', port: 17700, kind: 'ipv6' });
    assert.deepEqual(parseStaticAddress('Hub.Office.LAN:17700'), {
      host: 'hub.office.lan',
      port: 17700,
      kind: 'hostname',
    });
    assert.deepEqual(parseStaticAddress('hub', 18000), { host: 'hub', port: 18000, kind: 'hostname' });
    assert.deepEqual(
      parseStaticAddresses('10.0.0.1:1, [::1]:2\nhub:3').map((a) => `${a.host}/${a.port}`),
      ['10.0.0.1/1', '::1/2', 'hub/3'],
    );
  });

  it('refuses bad input with INVALID_STATIC_ADDRESS and says why', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['fd00::10:17700:x', /needs brackets/],
      ['[fd00::10', /in brackets/],
      ['[10.0.0.1]:17700', /not an IPv6 address/],
      ['10.0.0.1:0', /1-65535/],
      ['10.0.0.1:70000', /1-65535/],
      ['10.0.0.1:http', /not a number/],
      ['300.1.1.1:17700', /looks like an IPv4 address/],
      ['tls://hub:17700', /without a scheme/],
      ['hub_name:17700', /not an IPv4 address/],
      ['-hub:17700', /not an IPv4 address/],
      ['hub/path', /contains/],
    ];
    for (const [input, reason] of cases)
      assert.throws(
        () => parseStaticAddress(input),
        { code: 'INVALID_STATIC_ADDRESS', message: reason },
        input,
      );
    assert.throws(() => parseStaticAddresses(['10.0.0.1', 'bad host']), { code: 'INVALID_STATIC_ADDRESS' });
  });
});

describe('last hub address and candidate order', () => {
  const hubId = deviceId();
  const seen = (over: Partial<DiscoveredHub>): DiscoveredHub => ({
    deviceId: hubId,
    name: 'Hub',
    port: 17700,
    versions: [1],
    address: '10.0.0.1',
    family: 4,
    via: 'multicast',
    lastSeen: 1,
    ...over,
  });

  it('remembers atomically, loads, forgets; a damaged file counts as none', async () => {
    const dir = tempDir();
    try {
      const memory = new LastAddressMemory({ dataDir: join(dir.path, 'child'), clock: new FakeClock(5) });
      assert.equal(await memory.load(), undefined);
      await memory.remember({ host: 'fd00::1', port: 17700, deviceId: hubId });
      assert.deepEqual(await memory.load(), { host: 'fd00::1', port: 17700, deviceId: hubId, savedAt: 5 });
      assert.deepEqual(
        readdirSync(join(dir.path, 'child')),
        ['last-hub-address.json'],
        'no temporary file left',
      );
      assert.deepEqual(JSON.parse(readFileSync(memory.path, 'utf8')), {
        host: 'fd00::1',
        port: 17700,
        savedAt: 5,
        deviceId: hubId,
      });
      writeFileSync(memory.path, '{"host": 12');
      assert.equal(await memory.load(), undefined);
      writeFileSync(memory.path, JSON.stringify({ host: 'bad host', port: 1, savedAt: 1 }));
      assert.equal(await memory.load(), undefined);
      await memory.forget();
      await memory.forget();
      assert.equal(await memory.load(), undefined);
    } finally {
      dir.remove();
    }
  });

  it('fails with LAST_ADDRESS_SAVE_FAILED when the directory cannot be written', async () => {
    const dir = tempDir();
    try {
      const blocker = join(dir.path, 'file');
      writeFileSync(blocker, 'x');
      const memory = new LastAddressMemory({ dataDir: join(blocker, 'child') });
      await assert.rejects(memory.remember({ host: '10.0.0.1', port: 1 }), {
        code: 'LAST_ADDRESS_SAVE_FAILED',
      });
    } finally {
      dir.remove();
    }
  });

  it('orders last address, then static, then discovered; drops duplicates and other hubs', async () => {
    const dir = tempDir();
    try {
      const memory = new LastAddressMemory({ dataDir: dir.path });
      await memory.remember({ host: '10.0.0.9', port: 17700, deviceId: hubId });
      const other = deviceId();
      const candidates = await memory.candidates({
        statics: parseStaticAddresses('hub.lan:17700, 10.0.0.9:17700'),
        discovered: [
          seen({ address: 'fe80::1%eth0', via: 'dns-sd', lastSeen: 9 }),
          seen({ address: '10.0.0.1', lastSeen: 2 }),
          seen({ address: '10.0.0.2', lastSeen: 3 }),
          seen({ address: '10.0.0.3', deviceId: other }),
        ],
        deviceId: hubId,
      });
      assert.deepEqual(
        candidates.map((c) => `${c.source} ${c.host}`),
        [
          'last 10.0.0.9',
          'static hub.lan',
          'multicast 10.0.0.2',
          'multicast 10.0.0.1',
          'dns-sd fe80::1%eth0',
        ],
      );
      const remembered = await memory.load();
      assert.ok(remembered);
      assert.deepEqual(
        hubCandidates({ last: remembered, deviceId: other }).map((c) => c.host),
        [],
        'a remembered address of another hub is not tried for this one',
      );
    } finally {
      dir.remove();
    }
  });

  it('firstReachable returns the first candidate that accepts a TCP connection', async () => {
    const server = createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const open = (server.address() as { port: number }).port;
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    try {
      const reached = await firstReachable(
        [
          { host: '127.0.0.1', port: closed, source: 'last' },
          { host: '127.0.0.1', port: open, source: 'static' },
        ],
        { timeoutMs: 2_000 },
      );
      assert.deepEqual(reached, { host: '127.0.0.1', port: open, source: 'static' });
      assert.equal(await firstReachable([{ host: '127.0.0.1', port: closed, source: 'static' }]), undefined);
    } finally {
      server.close();
    }
  });
});
