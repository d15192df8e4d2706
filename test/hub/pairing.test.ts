import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from 'node:tls';
import { createChild } from '../../src/child/factory.js';
import type { Child } from '../../src/child/child.js';
import { savePairedHub } from '../../src/child/paired-hub.js';
import { PairingExchange, pairWithHub } from '../../src/child/pairing.js';
import { startTestHub } from '../fixtures/nodes.js';
import type { Hub, HubEvent, HubInit } from '../../src/hub/hub.js';
import { nodeReplica } from '../../src/sync/node-replica.js';
import { connectToHub } from '../../src/transport/client.js';
import { createIdentity, type DeviceIdentity, loadOrCreateIdentity } from '../../src/transport/identity.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;

async function startHub(options: Partial<HubInit> = {}) {
  const hub = await startTestHub(join(dir.path, `hub-${++n}`), options);
  const events: HubEvent[] = [];
  hub.on('event', (e) => events.push(e));
  return { hub, events, address: { host: '127.0.0.1', port: hub.port } };
}

function childDir(name: string) {
  return join(dir.path, `${name}-${++n}`);
}

/** A new child's identity, made as `trosyn-sync pair` makes it: together with the node's store. */
async function identityIn(dataDir: string): Promise<DeviceIdentity> {
  const identity = await loadOrCreateIdentity(join(dataDir, 'identity'));
  const replica = nodeReplica({ dataDir, deviceId: identity.deviceId, role: 'child', synchronous: 'off' });
  await replica.start();
  await replica.stop();
  return identity;
}

/**
 * Pairs a device with a fresh code, records the hub in its data directory (to be
 * reached at `connectVia`, by default the hub itself), and returns its child agent,
 * not started yet.
 */
async function pairedChild(
  hub: Hub,
  identity: DeviceIdentity,
  dataDir: string,
  name: string,
  options: { connectVia?: { host: string; port: number } } = {},
): Promise<Child> {
  const address = { host: '127.0.0.1', port: hub.port };
  const result = await pairWithHub({ identity, code: (await hub.registry.issueCode()).code, address, name });
  savePairedHub(dataDir, {
    hubId: result.hubId,
    hubName: result.hubName,
    addresses: [options.connectVia ?? address],
    pairedAt: Date.now(),
    group: result.group,
  });
  return createChild({
    dataDir,
    discovery: false,
    synchronous: 'off',
    backoff: { initialMs: 20, maxMs: 100 },
  });
}

/** A code with the same lookup group as `code` and a different secret. */
function wrongCode(code: string): string {
  const plain = code.replace(/-/g, '');
  return `${plain.slice(0, 10)}${plain.slice(10) === 'ZZ' ? 'YY' : 'ZZ'}`;
}

/** A device with a new identity, connected to the hub for pairing, driven one request at a time. */
async function pairingSession(address: { host: string; port: number }, name: string, code: string) {
  const identity = await createIdentity(name);
  const hub = await connectToHub(address, {
    identity,
    local: { name, role: 'child', appVersion: '0', heartbeatMs: 15000 },
    hubId: undefined,
  });
  const exchange = new PairingExchange(hub.conn, { code, childId: identity.deviceId, hubId: hub.hubId });
  return {
    identity,
    exchange,
    /** The code of the error pair.confirm answered with, or 'paired'. */
    confirm: () =>
      exchange.confirm(name).then(
        () => 'paired',
        (e: { code: string }) => e.code,
      ),
    close: () => hub.conn.close(),
  };
}

/**
 * A man in the middle: terminates the child's TLS with its own certificate and
 * opens its own TLS session to the hub, relaying the decrypted bytes both ways.
 */
async function startRelay(target: { host: string; port: number }) {
  const identity = await createIdentity('relay');
  const sockets: TLSSocket[] = [];
  let relayedBytes = 0;
  const server = tlsServer(
    {
      key: identity.keyPem,
      cert: identity.certPem,
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false,
    },
    (inbound) => {
      const outbound = tlsConnect({
        ...target,
        key: identity.keyPem,
        cert: identity.certPem,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      sockets.push(inbound, outbound);
      inbound.on('data', (d: Buffer) => {
        relayedBytes += d.length;
        outbound.write(d);
      });
      outbound.on('data', (d: Buffer) => inbound.write(d));
      for (const [a, b] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        a.on('close', () => b.destroy());
        a.on('error', () => b.destroy());
      }
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    identity,
    address: { host: '127.0.0.1', port },
    relayedBytes: () => relayedBytes,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('pairing', () => {
  it('a child pairs with a code, pins the hub, then syncs', async () => {
    const { hub, events, address } = await startHub();
    const { code } = await hub.registry.issueCode();
    const dataDir = childDir('child');
    const identity = await identityIn(dataDir);
    const result = await pairWithHub({ identity, code: code.toLowerCase(), address, name: 'laptop-1' });
    assert.equal(result.hubId, hub.deviceId);
    assert.equal(result.state, 'approved');
    const device = await hub.registry.get(identity.deviceId);
    assert.equal(device?.name, 'laptop-1');
    assert.equal(device?.state, 'approved');
    assert.ok(events.some((e) => e.type === 'device-paired'));
    assert.equal(await hub.registry.findActiveCode(code.slice(0, 4)), undefined, 'the code is used up');

    savePairedHub(dataDir, {
      hubId: result.hubId,
      hubName: result.hubName,
      addresses: [address],
      pairedAt: Date.now(),
      group: result.group,
    });
    const child = createChild({
      dataDir,
      discovery: false,
      synchronous: 'off',
      backoff: { initialMs: 50, maxMs: 500 },
    });
    await child.start();
    const w = await child.replica.put('notes', 'hello', { from: 'paired child' });
    await eventually(
      async () => (await hub.replica.get('notes', 'hello'))?.rev === w.rev,
      10_000,
      'the write reached the hub',
    );
    await child.stop();
    await hub.stop();
  });

  it('in approval mode a paired device is refused until an admin approves it', async () => {
    const { hub, address } = await startHub({ requireApproval: true });
    const dataDir = childDir('pending');
    const identity = await identityIn(dataDir);
    const result = await pairWithHub({
      identity,
      code: (await hub.registry.issueCode()).code,
      address,
      name: 'pending-1',
    });
    assert.equal(result.state, 'pending');
    await assert.rejects(
      connectToHub(address, {
        identity,
        local: { name: 'x', role: 'child', appVersion: '0', heartbeatMs: 15000 },
        hubId: hub.deviceId,
      }),
      { code: 'DEVICE_PENDING_APPROVAL' },
    );
    await hub.approve(identity.deviceId);
    const ok = await connectToHub(address, {
      identity,
      local: { name: 'x', role: 'child', appVersion: '0', heartbeatMs: 15000 },
      hubId: hub.deviceId,
    });
    ok.conn.close();
    await hub.stop();
  });

  it('a wrong code fails without pinning; three wrong guesses burn the code', async () => {
    const { hub, address } = await startHub({
      pairingLimits: { perAddress: { burst: 100, perMinute: 100 } },
    });
    const { code } = await hub.registry.issueCode();
    const wrong = wrongCode(code);
    for (let i = 0; i < 3; i++) {
      const identity = await createIdentity(`guesser-${i}`);
      await assert.rejects(pairWithHub({ identity, code: wrong, address, name: 'guess' }), {
        code: 'PAIRING_FAILED',
      });
      assert.equal(await hub.registry.get(identity.deviceId), undefined, 'nothing registered');
    }
    const honest = await createIdentity('honest');
    await assert.rejects(pairWithHub({ identity: honest, code, address, name: 'late' }), {
      code: 'PAIRING_CODE_INVALID',
    });
    assert.equal((await hub.registry.listCodes())[0]?.state, 'burned');
    await hub.stop();
  });

  it('sessions opened in parallel add no guesses: once the code burns, every open session gets PAIRING_CODE_INVALID, right code or wrong', async () => {
    const { hub, address } = await startHub({
      pairingLimits: { perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 100, perMinute: 100 } },
    });
    const { code } = await hub.registry.issueCode();
    // Six sessions all get as far as the confirmation while the code is active; the
    // fifth knows the code, the others guess wrong.
    const sessions = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        pairingSession(address, `parallel-${i}`, i === 4 ? code : wrongCode(code)),
      ),
    );
    await Promise.all(sessions.map((s) => s.exchange.start()));
    await Promise.all(sessions.map((s) => s.exchange.exchange()));
    const outcomes: string[] = [];
    for (const s of sessions) outcomes.push(await s.confirm());
    assert.deepEqual(outcomes, [
      'PAIRING_FAILED',
      'PAIRING_FAILED',
      'PAIRING_FAILED',
      // Burned: the same answer whether the tag was wrong or right.
      'PAIRING_CODE_INVALID',
      'PAIRING_CODE_INVALID',
      'PAIRING_CODE_INVALID',
    ]);
    const [listed] = await hub.registry.listCodes();
    assert.equal(listed?.state, 'burned');
    assert.equal(listed?.failedAttempts, 3, 'no guess was counted, or checked, after the third');
    for (const s of sessions) assert.equal(await hub.registry.get(s.identity.deviceId), undefined);
    for (const s of sessions) s.close();
    await hub.stop();
  });

  it('confirmations racing in parallel: at most three wrong tags are ever checked against one code', async () => {
    const { hub, address } = await startHub({
      pairingLimits: { perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 100, perMinute: 100 } },
    });
    const { code } = await hub.registry.issueCode();
    const sessions = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        pairingSession(address, `race-${i}`, i === 9 ? code : wrongCode(code)),
      ),
    );
    await Promise.all(sessions.map((s) => s.exchange.start()));
    await Promise.all(sessions.map((s) => s.exchange.exchange()));
    const outcomes = await Promise.all(sessions.map((s) => s.confirm()));
    const failed = outcomes.filter((o) => o === 'PAIRING_FAILED').length;
    const [listed] = await hub.registry.listCodes();
    assert.ok(failed <= 3, `${failed} wrong tags were answered PAIRING_FAILED`);
    assert.equal(listed?.failedAttempts, failed);
    assert.equal(
      outcomes.filter((o) => !['PAIRING_FAILED', 'PAIRING_CODE_INVALID', 'paired'].includes(o)).length,
      0,
      outcomes.join(' '),
    );
    // The one session holding the code pairs if and only if it came before the third wrong tag.
    const honest = sessions[9];
    assert.ok(honest);
    assert.equal(outcomes[9] === 'paired', (await hub.registry.get(honest.identity.deviceId)) !== undefined);
    assert.equal(listed?.state, outcomes[9] === 'paired' ? 'used' : 'burned');
    for (const s of sessions) s.close();
    await hub.stop();
  });

  it('pairing attempts are rate-limited per address and overall', async () => {
    const { hub, address } = await startHub({
      pairingLimits: { perAddress: { burst: 3, perMinute: 1 }, overall: { burst: 100, perMinute: 100 } },
    });
    const codes: string[] = [];
    const identity = await createIdentity('limited');
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push((await hub.registry.issueCode()).code);
      outcomes.push(
        await pairWithHub({ identity, code: `${codes[i]?.slice(0, 5)}0000-0000`, address, name: 'x' }).then(
          () => 'paired',
          (e: { code: string }) => e.code,
        ),
      );
    }
    assert.deepEqual(outcomes.slice(3), ['PAIRING_RATE_LIMITED', 'PAIRING_RATE_LIMITED']);
    await hub.stop();

    const overall = await startHub({
      pairingLimits: { perAddress: { burst: 100, perMinute: 100 }, overall: { burst: 2, perMinute: 1 } },
    });
    const results: string[] = [];
    for (let i = 0; i < 3; i++) {
      const someone = await createIdentity(`o${i}`);
      results.push(
        await pairWithHub({
          identity: someone,
          code: '0000-0000-0000',
          address: overall.address,
          name: 'x',
        }).then(
          () => 'paired',
          (e: { code: string }) => e.code,
        ),
      );
    }
    assert.equal(results[2], 'PAIRING_RATE_LIMITED');
    await overall.hub.stop();
  });

  it('a man in the middle can neither pair its own device nor make the child pin it; afterwards sync never flows through it', async () => {
    const { hub, address } = await startHub();
    const relay = await startRelay(address);
    const { code } = await hub.registry.issueCode();
    const dataDir = childDir('victim');
    const identity = await identityIn(dataDir);
    await assert.rejects(pairWithHub({ identity, code, address: relay.address, name: 'victim' }), {
      code: 'PAIRING_FAILED',
    });
    assert.equal(await hub.registry.get(identity.deviceId), undefined);
    assert.equal(await hub.registry.get(relay.identity.deviceId), undefined, 'the relay did not pair itself');

    // Paired for real (new code), the child is pinned: the relay is refused before any byte of sync is sent.
    const child = await pairedChild(hub, identity, dataDir, 'victim', { connectVia: relay.address });
    const before = relay.relayedBytes();
    await child.start();
    await child.replica.put('secrets', 's1', { v: 'not for the relay' });
    await eventually(
      async () => (await child.status()).connection.lastError?.code === 'HUB_IDENTITY_MISMATCH',
      5000,
      'child refuses the relay',
    );
    assert.equal(relay.relayedBytes(), before, 'no application byte went through the relay');
    assert.equal(await hub.replica.get('secrets', 's1'), undefined);
    await child.stop();
    await relay.close();
    await hub.stop();
  });

  it('a captured pairing exchange cannot be replayed', async () => {
    const { hub, address } = await startHub({
      pairingLimits: { perAddress: { burst: 100, perMinute: 100 } },
    });
    const { code } = await hub.registry.issueCode();
    const identity = await createIdentity('original');
    // Record what the child sends in a successful exchange.
    const sent: Array<{ method: string; params: unknown }> = [];
    const { Connection } = await import('../../src/transport/connection.js');
    const original = Connection.prototype.request;
    Connection.prototype.request = function (
      this: InstanceType<typeof Connection>,
      method: string,
      params?: unknown,
      options?: object,
    ) {
      sent.push({ method, params });
      return original.call(this, method, params, options);
    };
    try {
      await pairWithHub({ identity, code, address, name: 'original' });
    } finally {
      Connection.prototype.request = original;
    }
    assert.deepEqual(
      sent.map((s) => s.method),
      ['pair.start', 'pair.exchange', 'pair.confirm'],
    );
    // Replayed by an attacker (its own certificate), the used code is refused at once.
    const attacker = await createIdentity('attacker');
    const replay = async () => {
      const c = await connectToHub(address, {
        identity: attacker,
        local: { name: 'a', role: 'child', appVersion: '0', heartbeatMs: 15000 },
        hubId: undefined,
      });
      try {
        for (const s of sent) await c.conn.request(s.method, s.params);
        return 'accepted';
      } catch (e) {
        return (e as { code: string }).code;
      } finally {
        c.conn.close();
      }
    };
    assert.equal(await replay(), 'PAIRING_CODE_INVALID');
    // Even against a fresh code with the same first group, the old proof does not fit the new session.
    const fresh = await hub.registry.issueCode();
    const first = sent[0]?.params as { lookup: string; nonce: string };
    sent[0] = { method: 'pair.start', params: { ...first, lookup: fresh.code.slice(0, 4) } };
    assert.equal(await replay(), 'PAIRING_FAILED');
    assert.equal(await hub.registry.get(attacker.deviceId), undefined);
    await hub.stop();
  });

  it('revoke disconnects a device at once, refuses it from then on, and it cannot pair again', async () => {
    const { hub, events, address } = await startHub();
    const dataDir = childDir('revoked');
    const identity = await identityIn(dataDir);
    const child = await pairedChild(hub, identity, dataDir, 'soon-gone');
    await child.start();
    await eventually(() => hub.connectedChildren().length === 1, 5000, 'connected');
    await hub.revoke(identity.deviceId);
    await eventually(async () => (await child.status()).state === 'error', 5000, 'child knows it is revoked');
    assert.equal((await child.status()).connection.lastError?.code, 'DEVICE_REVOKED');
    assert.equal(hub.connectedChildren().length, 0);
    assert.ok(events.some((e) => e.type === 'device-revoked'));
    await assert.rejects(
      connectToHub(address, {
        identity,
        local: { name: 'x', role: 'child', appVersion: '0', heartbeatMs: 15000 },
        hubId: hub.deviceId,
      }),
      { code: 'DEVICE_REVOKED' },
    );
    await assert.rejects(
      pairWithHub({ identity, code: (await hub.registry.issueCode()).code, address, name: 'again' }),
      { code: 'DEVICE_REVOKED' },
    );
    await child.stop();
    await hub.stop();
  });

  it('a connection flood from one address is cut off while paired devices keep syncing', async () => {
    const { hub, address } = await startHub({ connectionLimit: { burst: 10, perMinute: 10 } });
    const dataDir = childDir('steady');
    const identity = await identityIn(dataDir);
    const child = await pairedChild(hub, identity, dataDir, 'steady');
    await child.start();
    await eventually(() => hub.connectedChildren().length === 1, 5000, 'connected');
    // 200 connections from another loopback address: after the burst, each is dropped at once.
    let dropped = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        const s = netConnect({ host: '127.0.0.1', port: address.port, localAddress: '127.0.0.2' });
        s.on('error', () => undefined);
        // Not TLS (a record header claiming an oversized record): an admitted one fails at once.
        s.on('connect', () => s.write(Buffer.alloc(64 * 1024, 0x41)));
        // A reset is a fine answer to a flood: wait for the close whatever came before it.
        await new Promise((resolve) => s.once('close', resolve));
        dropped++;
      }),
    );
    assert.equal(dropped, 200);
    const w = await child.replica.put('notes', 'during-flood', { ok: true });
    await eventually(
      async () => (await hub.replica.get('notes', 'during-flood'))?.rev === w.rev,
      10_000,
      'the paired child still syncs',
    );
    assert.equal(hub.connectedChildren().length, 1, 'the paired session was never dropped');
    await child.stop();
    await hub.stop();
  });
});
