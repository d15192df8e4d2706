import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { testHub } from '../fixtures/nodes.js';
import type { Hub } from '../../src/hub/hub.js';
import { MESSAGE_TYPES, type Message, type MessageType, parseMessage } from '../../src/protocol/messages.js';
import type { DeviceId } from '../../src/store/types.js';
import { connectToHub } from '../../src/transport/client.js';
import type { Connection } from '../../src/transport/connection.js';
import { createIdentity } from '../../src/transport/identity.js';
import { tempDir } from '../helpers.js';
import { sampleMessages } from '../protocol/fixtures.js';
import { buildRevision } from '../../src/sync/testing/revisions.js';

/*
 * A device whose certificate the hub does not know gets a pairing connection: it
 * may run pair.start, pair.exchange and pair.confirm, and nothing else. Each test
 * sends one other kind of message from such a device and checks that the hub ends
 * the connection (or, for the messages every connection handles the same way, that
 * they change nothing) and that neither hub.db nor trosyn.db changed by a byte of
 * content.
 */

const dir = tempDir();
const dataDir = join(dir.path, 'hub');
let hub: Hub;
let address: { host: string; port: number };
let n = 0;

before(async () => {
  hub = testHub(dataDir, {
    // No pings from the hub during a test: every frame the stranger gets is an answer.
    heartbeatMs: 600_000,
    pairingLimits: {
      perAddress: { burst: 1000, perMinute: 1000 },
      overall: { burst: 1000, perMinute: 1000 },
    },
  });
  await hub.start();
  address = { host: '127.0.0.1', port: hub.port };
  // An active code, so a stranger has something it could try to spend or burn.
  await hub.registry.issueCode();
});

after(async () => {
  await hub.stop();
  dir.remove();
});

/** Every row of every table of both databases, read with connections of their own. */
function contents(): string {
  const dump: Record<string, unknown> = {};
  for (const file of ['hub.db', 'trosyn.db']) {
    const db = new Database(join(dataDir, file), { readonly: true });
    try {
      const tables = db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all();
      for (const { name } of tables) dump[`${file}:${name}`] = db.prepare(`SELECT * FROM "${name}"`).all();
    } finally {
      db.close();
    }
  }
  return JSON.stringify(dump);
}

/** A device the hub has never seen, connected and past the welcome. */
async function stranger(): Promise<{ conn: Connection; deviceId: DeviceId; closed: Promise<unknown> }> {
  const identity = await createIdentity(`stranger-${++n}`);
  const { conn } = await connectToHub(address, {
    identity,
    local: { name: 'stranger', role: 'child', appVersion: '0', heartbeatMs: 600_000 },
    hubId: hub.deviceId,
  });
  const closed = once(conn, 'close').then(([cause]) => cause);
  return { conn, deviceId: identity.deviceId, closed };
}

/**
 * A valid message of each type, as a stranger would send it: the protocol tests'
 * own samples (kept in step with the schemas), with a sync.changes that carries a
 * well-formed revision the stranger wrote itself, so that, were it applied, the
 * store would hold it.
 */
function example(type: MessageType, deviceId: DeviceId): Message {
  const sample = sampleMessages().find((s) => s.message.type === type)?.message;
  assert.ok(sample, `no sample of a ${type} message in the protocol fixtures`);
  if (sample.type !== 'sync.changes') return sample;
  const revision = buildRevision({
    collection: 'notes',
    id: 'from-a-stranger',
    author: deviceId,
    wall: Date.now(),
    body: { text: 'let me in' },
  });
  // Valid by the codec's own schema, so the hub's answer is about the pairing connection, not the message.
  return parseMessage({ ...sample, since: 0, upTo: 1, more: false, revisions: [revision] });
}

/**
 * Asks something the hub answers at once on an open pairing connection (a pair.start
 * without parameters). Requests are handled in order, so the answer says whether
 * the connection was still open after everything sent before.
 */
function probe(conn: Connection): Promise<string> {
  return conn.request('pair.start', {}).then(
    () => 'answered',
    (e: { code: string }) => e.code,
  );
}

/** Sends `message` as a stranger; the hub must end the connection with `code`, writing nothing. */
async function refused(message: Message, code: string): Promise<void> {
  const before = contents();
  const s = await stranger();
  await s.conn.send(message);
  assert.equal(
    await probe(s.conn),
    'CONNECTION_CLOSED',
    `${message.type}: the hub closed before answering more`,
  );
  const cause = await s.closed;
  assert.equal((cause as { code?: string } | undefined)?.code, code, `${message.type}: ${String(cause)}`);
  assert.equal(contents(), before, 'nothing was written to hub.db or trosyn.db');
  assert.equal(await hub.registry.get(s.deviceId), undefined);
}

/** Messages every connection handles the same way (heartbeats, responses, errors). */
const CONNECTION_LEVEL = new Set<string>(['ping', 'pong', 'response', 'error']);

describe('a device with an unknown certificate can do nothing but pair', () => {
  it('the hub gives it a welcome and a pairing connection, not a refusal', async () => {
    const s = await stranger();
    assert.equal(s.conn.closed, false);
    const refusedStart = await s.conn
      .request('pair.start', { lookup: 'ZZZZ', nonce: Buffer.alloc(32).toString('base64') })
      .then(
        () => 'started',
        (e: { code: string }) => e.code,
      );
    assert.ok(['PAIRING_CODE_INVALID', 'started'].includes(refusedStart), refusedStart);
    s.conn.close();
  });

  for (const type of MESSAGE_TYPES.filter((t) => !CONNECTION_LEVEL.has(t) && t !== 'request')) {
    it(`a ${type} message gets UNEXPECTED_MESSAGE and the connection ends`, async () => {
      await refused(example(type, (await createIdentity('for-example')).deviceId), 'UNEXPECTED_MESSAGE');
    });
  }

  for (const method of [
    'devices.list',
    'devices.approve',
    'registry.register',
    'sync.open',
    'admin.token',
    'pair',
    'pair.approve',
    'pair.start2',
    'pairing.start',
  ]) {
    it(`a request for ${method} gets UNEXPECTED_MESSAGE and the connection ends`, async () => {
      const message = parseMessage({ type: 'request', id: 7, method, params: { deviceId: 'me' } });
      await refused(message, 'UNEXPECTED_MESSAGE');
    });
  }

  for (const type of [...CONNECTION_LEVEL].filter((t) => t !== 'error')) {
    it(`a ${type} is handled as on any connection, changes nothing, and leaves a pairing connection`, async () => {
      const before = contents();
      const s = await stranger();
      const framesBefore = s.conn.getStats().framesIn;
      await s.conn.send(example(type as MessageType, s.deviceId));
      // Still open, and still a pairing connection: a pairing request gets its answer...
      assert.equal(await probe(s.conn), 'INVALID_MESSAGE');
      if (type === 'ping')
        assert.ok(s.conn.getStats().framesIn >= framesBefore + 2, 'a pong and the answer came');
      // ...and the next message that is not pairing ends it.
      await s.conn.send(example('sync.ack', s.deviceId));
      const cause = await s.closed;
      assert.equal((cause as { code?: string } | undefined)?.code, 'UNEXPECTED_MESSAGE');
      assert.equal(contents(), before);
      assert.equal(await hub.registry.get(s.deviceId), undefined);
    });
  }

  it('an error from it closes the connection, as on any connection, and changes nothing', async () => {
    const before = contents();
    const s = await stranger();
    await s.conn.send(example('error', s.deviceId));
    // The hub answers an error with nothing but the close.
    const cause = await s.closed;
    assert.equal((cause as { code?: string } | undefined)?.code, 'CONNECTION_CLOSED');
    assert.equal(contents(), before);
  });

  it('every message type of the protocol is covered above', () => {
    for (const type of MESSAGE_TYPES) assert.ok(example(type, 'cd'.repeat(32) as DeviceId), type);
  });
});
