/**
 * Both discovery browsers run the one acceptance suite: each harness only says how a
 * hub of its method sounds on the wire (a Trosyn announcement, a DNS-SD answer).
 */
import { createSocket, type Socket } from 'node:dgram';
import makeMdns from 'multicast-dns';
import { DnsSdBrowser } from '../../src/discovery/dns-sd.js';
import { DNS_SD_SERVICE } from '../../src/discovery/mdns.js';
import { HubBrowser } from '../../src/discovery/multicast.js';
import {
  type BrowserHarness,
  type HubClaim,
  runDiscoveryBrowserSuite,
} from '../../src/discovery/testing/browser-suite.js';
import type { DiscoveryVia } from '../../src/discovery/types.js';
import { encodeDiscoveryMessage } from '../../src/discovery/wire.js';
import { FakeClock } from '../helpers.js';
import { freeUdpPort, loopbackOnly } from './helpers.js';

/**
 * One sending socket per source address, kept for the whole test, so datagrams from
 * one address arrive in the order they were sent.
 */
class Senders {
  private readonly sockets = new Map<string, Promise<Socket>>();

  of(from: string): Promise<Socket> {
    let socket = this.sockets.get(from);
    if (!socket) {
      const s = createSocket('udp4');
      socket = new Promise<Socket>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, from, () => resolve(s));
      });
      this.sockets.set(from, socket);
    }
    return socket;
  }

  async send(from: string, data: Buffer, port: number): Promise<void> {
    const socket = await this.of(from);
    await new Promise<void>((resolve, reject) =>
      socket.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    const sockets = await Promise.all(this.sockets.values());
    this.sockets.clear();
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function harness(
  via: DiscoveryVia,
  make: (
    port: number,
    senders: Senders,
  ) => Omit<Awaited<ReturnType<BrowserHarness['create']>>, 'browser'> & {
    browser: (options: Parameters<BrowserHarness['create']>[0]) => HubBrowser | DnsSdBrowser;
  },
): BrowserHarness {
  const senders = new Senders();
  return {
    via,
    clock: () => new FakeClock(),
    create: async (options) => {
      const made = make(await freeUdpPort(), senders);
      return { ...made, browser: made.browser(options) };
    },
    cleanup: () => senders.close(),
  };
}

runDiscoveryBrowserSuite(
  'HubBrowser (multicast)',
  harness('multicast', (port, senders) => ({
    browser: (options) => new HubBrowser({ ...loopbackOnly(port), queryOnStart: false, ...options }),
    hear: (hub, from = '127.0.0.1') =>
      senders.send(from, encodeDiscoveryMessage({ type: 'announce', ...hub }), port),
    hearGoodbye: (hub, from = '127.0.0.1') =>
      senders.send(
        from,
        encodeDiscoveryMessage({ type: 'bye', deviceId: hub.deviceId, port: hub.port }),
        port,
      ),
  })),
);

/** The instance a DNS-SD hub registers; it names the goodbye, so it must not change with the name. */
const instanceOf = (hub: HubClaim): string => `Hub-${hub.deviceId.slice(0, 8)}.${DNS_SD_SERVICE}`;

/** Sends a DNS-SD response, encoded by multicast-dns, from the sender socket of `from`. */
async function respond(
  senders: Senders,
  from: string,
  port: number,
  answers: makeMdns.ResponseOutgoingPacket['answers'],
): Promise<void> {
  const mdns = makeMdns({ socket: await senders.of(from), bind: false, multicast: false });
  await new Promise<void>((resolve, reject) =>
    mdns.respond({ answers }, { address: '127.0.0.1', port }, (err: Error | null) =>
      err ? reject(err) : resolve(),
    ),
  );
}

runDiscoveryBrowserSuite(
  'DnsSdBrowser (DNS-SD)',
  harness('dns-sd', (port, senders) => ({
    browser: (options) => new DnsSdBrowser({ mdnsPort: port, families: [4], interfaces: ['lo'], ...options }),
    hear: (hub, from = '127.0.0.1') =>
      respond(senders, from, port, [
        { name: DNS_SD_SERVICE, type: 'PTR', ttl: 120, data: instanceOf(hub) },
        {
          name: instanceOf(hub),
          type: 'SRV',
          ttl: 120,
          data: { port: hub.port, target: 'hub.local', priority: 0, weight: 0 },
        },
        {
          name: instanceOf(hub),
          type: 'TXT',
          ttl: 120,
          data: [
            'txtvers=1',
            `deviceId=${hub.deviceId}`,
            `versions=${hub.versions.join(',')}`,
            `name=${hub.name}`,
          ],
        },
      ]),
    hearGoodbye: (hub, from = '127.0.0.1') =>
      respond(senders, from, port, [{ name: DNS_SD_SERVICE, type: 'PTR', ttl: 0, data: instanceOf(hub) }]),
  })),
);
