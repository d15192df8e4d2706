/**
 * The sync server's start and stop: idempotent, one at a time, and releasing the
 * port. Starts run concurrently on a fixed port, so a second listen would fail
 * with PORT_IN_USE rather than go unnoticed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StaticAuthenticator } from '../../src/transport/authenticator.js';
import { createIdentity } from '../../src/transport/identity.js';
import { TransportServer } from '../../src/transport/server.js';
import { freePort } from '../helpers.js';
import { hubPeer } from './helpers.js';

const identity = createIdentity('lifecycle-hub');

async function serverOn(port: number): Promise<TransportServer> {
  return new TransportServer({
    identity: await identity,
    local: hubPeer,
    authenticator: new StaticAuthenticator([]),
    host: '127.0.0.1',
    port,
    onConnection: (conn) => conn.close(),
  });
}

describe('TransportServer lifecycle', () => {
  it('two starts at once listen once; two stops at once close once', async () => {
    const port = await freePort();
    const server = await serverOn(port);
    await Promise.all([server.start(), server.start()]);
    assert.equal(server.isStarted(), true);
    assert.equal(server.port, port);
    await Promise.all([server.stop(), server.stop()]);
    assert.equal(server.isStarted(), false);
    // Nothing of it is left listening: the port is free again.
    const again = await serverOn(port);
    await again.start();
    await again.stop();
  });

  it('stop before start does nothing; start twice, stop twice', async () => {
    const server = await serverOn(0);
    await server.stop();
    await server.start();
    const port = server.port;
    await server.start();
    assert.equal(server.port, port);
    await server.stop();
    await server.stop();
    assert.equal(server.isStarted(), false);
  });

  it('a stop called while starting waits for the start, then stops', async () => {
    const port = await freePort();
    const server = await serverOn(port);
    const started = server.start();
    const stopped = server.stop();
    await Promise.all([started, stopped]);
    assert.equal(server.isStarted(), false);
    const again = await serverOn(port);
    await again.start();
    await again.stop();
  });
});
