import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { interfaceForAddress, selectInterfaces } from '../../src/discovery/interfaces.js';
import {
  type DiscoveryMessage,
  decodeDiscoveryMessage,
  encodeDiscoveryMessage,
  MAX_DATAGRAM_BYTES,
} from '../../src/discovery/wire.js';
import { deviceId } from './helpers.js';

describe('discovery datagrams', () => {
  const id = deviceId();

  it('round-trip every message type', () => {
    const messages: DiscoveryMessage[] = [
      { type: 'announce', deviceId: id, name: 'Office hub', port: 17700, versions: [1, 2] },
      { type: 'query' },
      { type: 'query', deviceId: id },
      { type: 'bye', deviceId: id, port: 17700 },
    ];
    for (const m of messages)
      assert.deepEqual(decodeDiscoveryMessage(encodeDiscoveryMessage(m)), { ok: true, message: m });
  });

  it('is the documented JSON', () => {
    const bytes = encodeDiscoveryMessage({
      type: 'announce',
      deviceId: id,
      name: 'Hub',
      port: 17700,
      versions: [1],
    });
    assert.deepEqual(JSON.parse(bytes.toString()), {
      proto: 'trosyn-sync',
      v: 1,
      type: 'announce',
      deviceId: id,
      name: 'Hub',
      port: 17700,
      versions: [1],
    });
    assert.deepEqual(JSON.parse(encodeDiscoveryMessage({ type: 'query' }).toString()), {
      proto: 'trosyn-sync',
      v: 1,
      type: 'query',
    });
  });

  it('the largest announcement fits in a datagram', () => {
    const bytes = encodeDiscoveryMessage({
      type: 'announce',
      deviceId: id,
      // 64 characters of 3 bytes each in UTF-8 (JSON leaves them unescaped).
      name: '\u{ffee}'.repeat(64),
      port: 65535,
      versions: Array.from({ length: 16 }, () => 65535),
    });
    assert.ok(bytes.length <= MAX_DATAGRAM_BYTES, `${bytes.length} bytes`);
  });

  it('reads later format versions that only add fields', () => {
    const r = decodeDiscoveryMessage(
      Buffer.from(JSON.stringify({ proto: 'trosyn-sync', v: 2, type: 'query', extra: { x: 1 } })),
    );
    assert.deepEqual(r, { ok: true, message: { type: 'query' } });
  });

  it('says why a datagram is refused', () => {
    const cases: [unknown, string][] = [
      ['{', 'malformed'],
      ['null', 'malformed'],
      [{ proto: 'other', v: 1, type: 'query' }, 'foreign'],
      [{ proto: 'trosyn-sync', v: 0, type: 'query' }, 'malformed'],
      [{ proto: 'trosyn-sync', v: 1.5, type: 'query' }, 'malformed'],
      [{ proto: 'trosyn-sync', v: 1, type: 'gossip' }, 'unknown-type'],
      [{ proto: 'trosyn-sync', v: 1, type: 'query', deviceId: 'ABC' }, 'malformed'],
      [
        {
          proto: 'trosyn-sync',
          v: 1,
          type: 'announce',
          deviceId: id.toUpperCase(),
          name: 'x',
          port: 1,
          versions: [1],
        },
        'malformed',
      ],
      [
        {
          proto: 'trosyn-sync',
          v: 1,
          type: 'announce',
          deviceId: id,
          name: 'x'.repeat(65),
          port: 1,
          versions: [1],
        },
        'malformed',
      ],
      [
        { proto: 'trosyn-sync', v: 1, type: 'announce', deviceId: id, name: 'x', port: 0, versions: [1] },
        'malformed',
      ],
      [
        { proto: 'trosyn-sync', v: 1, type: 'announce', deviceId: id, name: 'x', port: 1, versions: [] },
        'malformed',
      ],
      [
        { proto: 'trosyn-sync', v: 1, type: 'announce', deviceId: id, name: 'x', port: 1, versions: ['1'] },
        'malformed',
      ],
      [{ proto: 'trosyn-sync', v: 1, type: 'bye', deviceId: id }, 'malformed'],
    ];
    for (const [value, reason] of cases) {
      const r = decodeDiscoveryMessage(
        Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
      );
      assert.equal(r.ok ? 'ok' : r.reason, reason, JSON.stringify(value));
    }
    const big = decodeDiscoveryMessage(Buffer.alloc(MAX_DATAGRAM_BYTES + 1, 0x20));
    assert.equal(big.ok ? 'ok' : big.reason, 'oversized');
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        decodeDiscoveryMessage(bytes);
      }),
    );
    fc.assert(
      fc.property(fc.json(), (text) => {
        decodeDiscoveryMessage(Buffer.from(text));
      }),
    );
  });
});

describe('interface selection', () => {
  const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({
    address,
    netmask: '255.255.255.0',
    family: 'IPv4',
    mac: '00:00:00:00:00:00',
    internal,
    cidr: `${address}/24`,
  });
  const v6 = (address: string, internal = false): NetworkInterfaceInfo => ({
    address,
    netmask: 'ffff:ffff:ffff:ffff::',
    family: 'IPv6',
    mac: '00:00:00:00:00:00',
    internal,
    cidr: `${address}/64`,
    scopeid: 0,
  });
  const table = () => ({
    lo: [v4('127.0.0.1', true), v6('::1', true)],
    eth0: [v4('192.168.1.5'), v6('fe80::1'), v6('fd00::5')],
    wlan0: [v4('10.0.0.7')],
    tun0: [v4('10.8.0.2')],
  });
  const flags = (name: string) => (name === 'tun0' ? 0x1 | 0x10 : name === 'lo' ? 0x1 | 0x8 : 0x1 | 0x1000);

  it('uses every multicast-capable interface but loopback by default, and says why others were left out', () => {
    const s4 = selectInterfaces(4, {}, table, flags);
    assert.deepEqual(
      s4.selected.map((i) => [i.name, i.membershipAddress]),
      [
        ['eth0', '192.168.1.5'],
        ['wlan0', '10.0.0.7'],
      ],
    );
    assert.deepEqual(s4.skipped.map((s) => s.name).sort(), ['lo', 'tun0']);
    assert.match(s4.skipped.find((s) => s.name === 'tun0')?.reason ?? '', /multicast is off/);
    const s6 = selectInterfaces(6, {}, table, flags);
    assert.deepEqual(
      s6.selected.map((i) => [i.name, i.membershipAddress, i.addresses]),
      [['eth0', '::%eth0', ['fe80::1', 'fd00::5']]],
    );
    assert.match(s6.skipped.find((s) => s.name === 'wlan0')?.reason ?? '', /no IPv6 address/);
  });

  it('includes loopback on request, and uses named interfaces as given', () => {
    assert.ok(
      selectInterfaces(4, { includeLoopback: true }, table, flags).selected.some((i) => i.name === 'lo'),
    );
    const named = selectInterfaces(4, { interfaces: ['lo', 'eth9'] }, table, flags);
    assert.deepEqual(
      named.selected.map((i) => i.name),
      ['lo'],
    );
    assert.deepEqual(named.skipped, [{ name: 'eth9', reason: 'not found, down, or without any address' }]);
  });

  it('tells which interface a source address belongs to', () => {
    assert.equal(interfaceForAddress('192.168.1.77', table), 'eth0');
    assert.equal(interfaceForAddress('fd00::9', table), 'eth0');
    assert.equal(interfaceForAddress('fe80::9%wlan0', table), 'wlan0');
    assert.equal(interfaceForAddress('172.16.0.1', table), undefined);
    assert.equal(interfaceForAddress('not an address', table), undefined);
  });
});
