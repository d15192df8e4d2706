import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DiscoveryAttempt } from '../../src/discovery/attempt.js';
import { describeAttempt } from '../../src/discovery/report.js';
import { parseStaticAddresses } from '../../src/discovery/static.js';
import type { DiscoveredHub, DiscoveryDiagnostics } from '../../src/discovery/types.js';
import { formatDeviceId } from '../../src/transport/device-id.js';
import { deviceId } from './helpers.js';

function browserDiagnostics(over: Partial<DiscoveryDiagnostics> = {}): DiscoveryDiagnostics {
  return {
    via: 'multicast',
    role: 'browser',
    started: true,
    families: [
      {
        family: 4,
        port: 17702,
        groups: ['239.255.77.2'],
        bound: true,
        interfaces: [
          {
            name: 'wlan0',
            family: 4,
            addresses: ['192.168.1.5'],
            joined: ['239.255.77.2'],
            sent: 0,
            errors: [
              { op: 'send', group: '239.255.77.2', code: 'ENETUNREACH', message: 'send ENETUNREACH', at: 1 },
              { op: 'send', group: '239.255.77.2', code: 'ENETUNREACH', message: 'send ENETUNREACH', at: 2 },
            ],
          },
        ],
        skipped: [{ name: 'lo', reason: 'loopback' }],
      },
      {
        family: 6,
        port: 17702,
        groups: ['ff02::7702', 'ff05::7702'],
        bound: false,
        bindError: 'EAFNOSUPPORT: address family not supported',
        interfaces: [],
        skipped: [],
      },
    ],
    counters: {
      received: 0,
      malformed: 0,
      oversized: 0,
      ignored: 0,
      sent: 0,
      sendErrors: 2,
      queries: 2,
      answersSuppressed: 0,
      entriesDropped: 0,
    },
    ...over,
  };
}

describe('discovery report', () => {
  it('when nothing is found: what was tried, what stands out, and the usual causes', () => {
    const attempt: DiscoveryAttempt = { hubs: [], diagnostics: [browserDiagnostics()], waitedMs: 3_000 };
    const lines = describeAttempt(attempt, { statics: parseStaticAddresses('hub.lan') });
    const text = lines.join('\n');
    assert.equal(lines[0], 'No hub found after 3.0 s.');
    assert.match(text, /IPv4 239\.255\.77\.2: wlan0 \(192\.168\.1\.5\) joined, 0 sent/);
    assert.equal(
      text.match(/send 239\.255\.77\.2 failed: ENETUNREACH/g)?.length,
      1,
      'a repeated error is shown once',
    );
    assert.match(text, /IPv4 skipped lo: loopback/);
    assert.match(text, /IPv6 ff02::7702, ff05::7702: not used, bind failed: EAFNOSUPPORT/);
    assert.match(text, /Static addresses: hub\.lan:17700/);
    assert.match(text, /no multicast route\. Add one: ip route add 224\.0\.0\.0\/4 dev wlan0/);
    assert.match(text, /IPv6 could not be used/);
    for (const cause of [
      /firewall drops UDP 17702/,
      /Wi-Fi client isolation/,
      /VPN/,
      /IPv6 disabled/,
      /hub is not running/,
    ])
      assert.match(text, cause);
  });

  it('lists found hubs by readable device ID and points out one ID claimed from several addresses', () => {
    const id = deviceId();
    const hub = (address: string): DiscoveredHub => ({
      deviceId: id,
      name: 'Office hub',
      port: 17700,
      versions: [1],
      address,
      family: address.includes(':') ? 6 : 4,
      via: 'multicast',
      interface: 'eth0',
      lastSeen: 1,
    });
    const lines = describeAttempt({
      hubs: [hub('10.0.0.1'), hub('fd00::1')],
      diagnostics: [browserDiagnostics()],
      waitedMs: 120,
    });
    const text = lines.join('\n');
    assert.equal(lines[0], 'Found 2 hubs in 0.1 s:');
    assert.ok(
      text.includes(
        `Office hub  ${formatDeviceId(id)}  10.0.0.1:17700  (multicast IPv4 on eth0, protocol 1)`,
      ),
    );
    assert.ok(text.includes('[fd00::1]:17700'));
    assert.match(text, /announced from 2 addresses \(10\.0\.0\.1, fd00::1\)/);
    assert.match(text, /certificate pinned at pairing decides/);
    assert.doesNotMatch(text, /Usual causes/);
  });
});
