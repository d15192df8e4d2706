/**
 * The TLS carrier of the sync engine, `syncChannel(Connection)`, passes the
 * MessageChannel acceptance suite over a real mutual-TLS connection on 127.0.0.1.
 * Both connections run on a fake clock that never moves, so no heartbeat or time
 * limit fires during the suite.
 */
import { randomBytes } from 'node:crypto';
import type { SyncMessage } from '../../src/protocol/messages.js';
import { runMessageChannelSuite } from '../../src/sync/testing/channel-suite.js';
import { connectToHub } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { syncChannel } from '../../src/transport/sync-channel.js';
import { FakeClock } from '../helpers.js';
import { childPeer, framesRead, startServer } from './helpers.js';

const identities = Promise.all([createIdentity('channel-hub'), createIdentity('channel-child')]);

runMessageChannelSuite<SyncMessage>('syncChannel over mutual TLS', {
  // The connection stops reading while its handler works through a few messages.
  capabilities: { backpressure: true },
  open: async () => {
    const [hubIdentity, child] = await identities;
    const clock = new FakeClock();
    let atHub: (conn: Connection) => void = () => undefined;
    const hubSide = new Promise<Connection>((resolve) => {
      atHub = resolve;
    });
    const { server, identity } = await startServer([child.deviceId], {
      identity: hubIdentity,
      clock,
      onConnection: (conn) => atHub(conn),
    });
    const hub = await connectToHub(
      { host: '127.0.0.1', port: server.port },
      { identity: child, local: childPeer, hubId: identity.deviceId, clock },
    );
    const conns = { a: hub.conn, b: await hubSide };
    // Frames of the handshake are not the suite's messages.
    const base = { a: conns.a.getStats().framesIn, b: conns.b.getStats().framesIn };
    return {
      a: syncChannel(conns.a),
      b: syncChannel(conns.b),
      arrived: (to, count) => framesRead(conns[to], count, base[to]),
      cleanup: async () => {
        conns.a.close();
        conns.b.close();
        await server.stop();
      },
    };
  },
  message: (n, padBytes = 0) => ({
    type: 'sync.changes',
    log: 'c'.repeat(32),
    since: n,
    upTo: n + 1,
    check: '',
    more: true,
    // Random, so compression cannot shrink it: the bytes really cross the socket.
    revisions: padBytes > 0 ? [{ pad: randomBytes(padBytes).toString('base64') } as never] : [],
  }),
  numberOf: (m) => (m.type === 'sync.changes' ? m.since : -1),
});
