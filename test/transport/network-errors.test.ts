/**
 * Every failure the transport reports carries a documented TrosynError code: Node's
 * socket errors (ECONNRESET and the rest) are named, and a server that is not a
 * Trosyn Sync hub is called that, not a frame-size error. Real servers on
 * 127.0.0.1 produce each failure.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { isTrosynError } from '../../src/errors.js';
import { connectToHub, type HubAddress, TransportClient } from '../../src/transport/client.js';
import { fromSocketError } from '../../src/transport/errors.js';
import { createIdentity } from '../../src/transport/identity.js';
import { FakeClock } from '../helpers.js';
import { childPeer, startServer } from './helpers.js';

const documented = new Set(
  [...readFileSync('docs/ERRORS.md', 'utf8').matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]),
);

async function listen(server: Server): Promise<HubAddress> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port };
}

async function close(server: Server): Promise<void> {
  // An HTTP server keeps idle keep-alive sockets open; close them too.
  (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
}

/** The first code connectToHub fails with at `address`, with and without a pinned hub. */
async function failureCode(address: HubAddress, hubId?: string): Promise<string> {
  const identity = await createIdentity('probe');
  try {
    const hub = await connectToHub(address, {
      identity,
      local: childPeer,
      hubId: hubId as never,
      timeoutMs: 5000,
    });
    hub.conn.close();
  } catch (err) {
    assert.ok(isTrosynError(err), `a TrosynError, not ${String(err)}`);
    return err.code;
  }
  throw new Error('the connection succeeded');
}

/**
 * A TCP relay in front of a port, as a router or firewall on the way: `reset()`
 * sends a TCP reset to every client it carries.
 */
async function startRelay(port: number) {
  const carried = new Set<Socket>();
  const relay = createNetServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port });
    carried.add(client);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.once('close', () => {
      carried.delete(client);
      upstream.destroy();
    });
    client.pipe(upstream).pipe(client);
  });
  const address = await listen(relay);
  return {
    address,
    reset: () => {
      for (const client of carried) client.resetAndDestroy();
    },
    close: () => close(relay),
  };
}

describe('named codes for network failures', () => {
  it('each socket error code of Node maps to a documented code, before and after connecting', () => {
    const nodeCodes = [
      'ECONNRESET',
      'ECONNABORTED',
      'EPIPE',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'EHOSTDOWN',
      'ENETUNREACH',
      'ENETDOWN',
      'EADDRNOTAVAIL',
      'ENOTFOUND',
      'EAI_AGAIN',
      'ESOMETHINGNEW',
      undefined,
    ];
    const seen: Record<string, string[]> = {};
    for (const connecting of [true, false]) {
      for (const nodeCode of nodeCodes) {
        const cause = Object.assign(new Error(`socket failed: ${nodeCode}`), { code: nodeCode });
        const err = fromSocketError(cause, '127.0.0.1:17700', connecting);
        assert.ok(isTrosynError(err));
        assert.ok(documented.has(err.code), `${err.code} (from ${nodeCode}) is in docs/ERRORS.md`);
        assert.equal(err.details?.syscallCode, nodeCode);
        (seen[err.code] ??= []).push(`${nodeCode ?? 'none'}${connecting ? ' (connecting)' : ''}`);
      }
    }
    assert.deepEqual(Object.keys(seen).sort(), [
      'ADDRESS_UNAVAILABLE',
      'CONNECTION_FAILED',
      'CONNECTION_RESET',
      'CONNECT_FAILED',
      'CONNECT_REFUSED',
      'CONNECT_TIMEOUT',
      'HOST_NOT_FOUND',
      'HOST_UNREACHABLE',
      'NETWORK_TIMEOUT',
      'NETWORK_UNREACHABLE',
    ]);
    assert.deepEqual(seen.NETWORK_TIMEOUT, ['ETIMEDOUT']);
    assert.deepEqual(seen.CONNECT_TIMEOUT, ['ETIMEDOUT (connecting)']);
  });

  it('a connection reset on the way ends the session with CONNECTION_RESET, never ECONNRESET', async () => {
    const child = await createIdentity('reset-child');
    const { server, identity, untilConnections } = await startServer([child.deviceId]);
    const relay = await startRelay(server.port);
    const client = new TransportClient({
      identity: child,
      local: childPeer,
      hubId: identity.deviceId,
      addresses: () => [relay.address],
      onConnected: () => undefined,
      // The clock never moves: there is no second attempt to muddle the first one's end.
      clock: new FakeClock(),
    });
    const causes: Array<string | undefined> = [];
    client.on('disconnected', (cause) => causes.push((cause as { code?: string } | undefined)?.code));
    const connected = once(client, 'connected');
    await client.start();
    await Promise.all([connected, untilConnections(1)]);
    const disconnected = once(client, 'disconnected');
    relay.reset();
    await disconnected;
    const status = client.status();
    // Connected again, the failure is still there to see, older than the new session.
    const again = once(client, 'connected');
    client.retryNow();
    await Promise.all([again, untilConnections(2)]);
    const after = client.status();
    const seen = [...causes];
    await client.stop();
    await relay.close();
    await server.stop();
    assert.deepEqual(seen, ['CONNECTION_RESET']);
    assert.equal(status.lastError?.code, 'CONNECTION_RESET');
    assert.equal(after.state, 'connected');
    assert.equal(after.lastError?.code, 'CONNECTION_RESET', 'kept after the reconnect');
    assert.ok((after.lastError?.at ?? Infinity) <= (after.connectedSince ?? 0));
  });

  it('connecting: a reset before TLS is CONNECTION_RESET, a closed port CONNECT_REFUSED', async () => {
    const resetting = createNetServer((socket) => socket.resetAndDestroy());
    const address = await listen(resetting);
    const reset = await failureCode(address);
    await close(resetting);
    const refused = await failureCode(address);
    assert.deepEqual({ reset, refused }, { reset: 'CONNECTION_RESET', refused: 'CONNECT_REFUSED' });
  });

  it('an HTTP server on the port is NOT_A_TROSYN_HUB (its answer is not TLS)', async () => {
    const http = createHttpServer((_req, res) => res.end('hello'));
    const address = await listen(http);
    const code = await failureCode(address);
    await close(http);
    assert.equal(code, 'NOT_A_TROSYN_HUB');
  });

  it('a TLS server that answers HTTP is NOT_A_TROSYN_HUB, as pairing (no pinned hub) and as sync', async () => {
    const { keyPem, certPem, deviceId } = await createIdentity('web-server');
    const https = createHttpsServer({ key: keyPem, cert: certPem, minVersion: 'TLSv1.3' }, (_req, res) =>
      res.end('hello'),
    );
    const address = await listen(https);
    const pairing = await failureCode(address);
    const pinned = await failureCode(address, deviceId);
    await close(https);
    assert.deepEqual({ pairing, pinned }, { pairing: 'NOT_A_TROSYN_HUB', pinned: 'NOT_A_TROSYN_HUB' });
  });
});
