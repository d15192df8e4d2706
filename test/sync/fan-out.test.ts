import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FrameCache, MessageCodec } from '../../src/protocol/codec.js';
import type { SyncChangesMessage, SyncMessage } from '../../src/protocol/messages.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { ChangeBatch, ChangesQuery, DeviceId, Seq } from '../../src/store/types.js';
import { createChannelPair, type MessageChannel } from '../../src/sync/channel.js';
import { FanOut } from '../../src/sync/fan-out.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { Replica } from '../../src/sync/replica.js';
import { SyncSession } from '../../src/sync/session.js';
import { eventually, tempDir } from '../helpers.js';

const dir = tempDir();
after(() => dir.remove());
let n = 0;

/** A real SQLite store that counts the change log reads: shared ones and those for one peer. */
class CountingStore extends SqliteStore {
  shared = 0;
  readonly own = new Map<string, number>();
  override async changesSince(query: ChangesQuery): Promise<ChangeBatch> {
    if (query.origin) this.shared++;
    if (query.excludeSource) {
      const d = query.excludeSource.device;
      this.own.set(d, (this.own.get(d) ?? 0) + 1);
    }
    return super.changesSince(query);
  }
  reset(): void {
    this.shared = 0;
    this.own.clear();
  }
  ownReads(): number {
    let total = 0;
    for (const v of this.own.values()) total += v;
    return total;
  }
}

async function openHub(): Promise<{ replica: Replica; store: CountingStore }> {
  const store = new CountingStore({ path: join(dir.path, `hub${++n}.db`), synchronous: 'off' });
  const replica = new Replica({ store, deviceId: randomDeviceId(), role: 'hub' });
  await replica.start();
  return { replica, store };
}

async function openChild(): Promise<Replica> {
  const store = new SqliteStore({ path: join(dir.path, `child${++n}.db`), synchronous: 'off' });
  const replica = new Replica({ store, deviceId: randomDeviceId() });
  await replica.start();
  return replica;
}

/** What the hub's end of one child's channel sent: the frames, as a connection's codec made them. */
interface Sent {
  frames: Buffer[];
  messages: SyncChangesMessage[];
}

/**
 * The hub's end of an in-memory pair, with `sendShared` as a connection has it: a
 * real codec (zstd when built) per channel, the frame taken from the shared cache.
 * What it sends is recorded.
 */
function recording(channel: MessageChannel<SyncMessage>, sent: Sent): MessageChannel<SyncMessage> {
  const codec = new MessageCodec({ compression: zstdOrBr() });
  const record = (message: SyncMessage, frame: Buffer) => {
    if (message.type !== 'sync.changes') return;
    sent.frames.push(frame);
    sent.messages.push(message);
  };
  return {
    send: (message) => {
      record(message, codec.encode(message));
      return channel.send(message);
    },
    sendShared: (message: SyncMessage, frames: FrameCache) => {
      record(message, codec.encodeCached(message, frames));
      return channel.send(message);
    },
    onMessage: (h) => channel.onMessage(h),
    onClose: (h) => channel.onClose(h),
    close: (cause) => channel.close(cause),
  };
}

function zstdOrBr(): 'zstd' | 'br' {
  try {
    new MessageCodec({ compression: 'zstd' });
    return 'zstd';
  } catch {
    return 'br';
  }
}

interface Link {
  child: Replica;
  atHub: SyncSession;
  atChild: SyncSession;
  sent: Sent;
}

async function connect(
  hub: Replica,
  child: Replica,
  fanOut: FanOut,
  scope: string,
  readable?: (c: string) => boolean,
): Promise<Link> {
  const [hubEnd, childEnd] = createChannelPair<SyncMessage>();
  const sent: Sent = { frames: [], messages: [] };
  const atHub = new SyncSession({
    replica: hub,
    channel: recording(hubEnd, sent),
    peer: child.deviceId,
    share: { fanOut, scope },
    cursorFlushMs: 5,
    ...(readable && { readable }),
  });
  const atChild = new SyncSession({
    replica: child,
    channel: childEnd,
    peer: hub.deviceId,
    cursorFlushMs: 5,
  });
  await Promise.all([atHub.start(), atChild.start()]);
  await Promise.all([atHub.whenCaughtUp(), atChild.whenCaughtUp()]);
  return { child, atHub, atChild, sent };
}

const has = async (r: Replica, collection: string, id: string) => (await r.get(collection, id)) !== undefined;
const revsIn = (sent: Sent) => new Set(sent.messages.flatMap((m) => m.revisions.map((r) => r.rev)));

describe('FanOut: one read and one encoding per batch for a read scope', () => {
  it('gives every session of a scope the same frame bytes, read once, the writer none of its own', async () => {
    const { replica: hub, store } = await openHub();
    const fanOut = new FanOut({ replica: hub });
    fanOut.start();
    const links: Link[] = [];
    for (let i = 0; i < 6; i++) links.push(await connect(hub, await openChild(), fanOut, 'all'));
    const [writer, ...others] = links as [Link, ...Link[]];
    for (const l of links) l.sent.frames.length = l.sent.messages.length = 0;
    store.reset();

    const w = await writer.child.put('notes', 'fan', { text: 'once for all' });
    for (const l of others) await eventually(() => has(l.child, 'notes', 'fan'), 5000, 'relayed');
    // Let the writer's own cursor move go out (it waits up to cursorFlushMs to share a
    // burst) and every acknowledgement come back.
    await eventually(
      () => (store.own.get(writer.child.deviceId) ?? 0) > 0,
      5000,
      "the writer's cursor move read for it",
    );
    await eventually(async () => links.every((l) => l.atHub.isCaughtUp()), 5000, 'hub sessions idle');

    assert.equal(store.shared, 1, 'the batch was read once for the scope');
    for (const l of others)
      assert.equal(store.own.get(l.child.deviceId) ?? 0, 0, 'no reader read the log for itself');
    const frames = others.map((l) => l.sent.frames);
    for (const f of frames) assert.equal(f.length, 1);
    const first = frames[0]?.[0] as Buffer;
    const message = others[0]?.sent.messages[0] as SyncChangesMessage;
    assert.deepEqual(
      message.revisions.map((r) => r.rev),
      [w.rev],
    );
    // The same bytes for everyone, and the bytes the per-child path makes for that message.
    const perChild = new MessageCodec({ compression: zstdOrBr() }).encode(message);
    assert.ok(first.equals(perChild));
    for (const f of frames) assert.equal(f[0], first, 'one buffer, encoded once');
    // The writer never gets its own revision back: its batch (a cursor move) was read for it alone.
    assert.ok(!revsIn(writer.sent).has(w.rev));
    assert.equal(store.own.get(writer.child.deviceId), 1);
    assert.ok(fanOut.stats().shared >= others.length);
    for (const l of links) await l.atChild.stop();
    await hub.stop();
  });

  it('reads once per scope: another scope gets its own batch, without what it may not read', async () => {
    const { replica: hub, store } = await openHub();
    const fanOut = new FanOut({ replica: hub });
    fanOut.start();
    const notesOnly = (c: string) => c === 'notes';
    const writer = await connect(hub, await openChild(), fanOut, 'all');
    const all = [await connect(hub, await openChild(), fanOut, 'all')];
    const narrow = [
      await connect(hub, await openChild(), fanOut, 'notes', notesOnly),
      await connect(hub, await openChild(), fanOut, 'notes', notesOnly),
    ];
    store.reset();
    await writer.child.put('notes', 'n1', { v: 1 });
    for (const l of [...all, ...narrow]) await eventually(() => has(l.child, 'notes', 'n1'), 5000, 'relayed');
    assert.equal(store.shared, 2, 'one read per scope');
    const a = narrow[0]?.sent.frames.at(-1) as Buffer;
    const b = narrow[1]?.sent.frames.at(-1) as Buffer;
    assert.equal(a, b, 'the narrow scope shares its frame');
    assert.notEqual(a, all[0]?.sent.frames.at(-1), 'the scopes do not share one');

    await writer.child.put('tasks', 't1', { v: 1 });
    await eventually(() => has(all[0]?.child as Replica, 'tasks', 't1'), 5000, 'relayed to the wide scope');
    await eventually(async () => narrow.every((l) => l.atHub.isCaughtUp()), 5000, 'narrow sessions idle');
    for (const l of narrow) assert.equal(await has(l.child, 'tasks', 't1'), false);
    for (const l of [writer, ...all, ...narrow]) await l.atChild.stop();
    await hub.stop();
  });

  it('a session that begins after a batch was held reads on past it: a held batch is not the end of the log', async () => {
    const { replica: hub } = await openHub();
    const fanOut = new FanOut({ replica: hub });
    fanOut.start();
    const early = await connect(hub, await openChild(), fanOut, 'all');
    // The early child's session reads, and the fan-out holds, the batch from 0 to r1.
    await hub.put('notes', 'r1', { v: 1 });
    await eventually(() => has(early.child, 'notes', 'r1'), 5000, 'r1 relayed');
    await hub.put('notes', 'r2', { v: 2 });
    await eventually(() => has(early.child, 'notes', 'r2'), 5000, 'r2 relayed');
    assert.ok(fanOut.stats().entries >= 1, 'the batch that ends at r1 is held');

    // A child that begins at 0 gets the held batch (ending at r1, the end when it was
    // read) and must go on to r2, though no change happens while its session runs.
    const late = await connect(hub, await openChild(), fanOut, 'all');
    assert.ok(await has(late.child, 'notes', 'r2'), 'the late child has what came after the held batch');
    assert.ok(fanOut.stats().shared >= 1, 'it was given the held batch');
    for (const l of [early, late]) await l.atChild.stop();
    await hub.stop();
  });

  it('a change heard while the window is full goes out once an acknowledgement opens it', async () => {
    // The session had found the end of the log, then a change came while its one
    // batch in flight filled the window: the acknowledgement must read on (it once
    // took the log for drained, and the change waited for the next one).
    const { replica: hub } = await openHub();
    const fanOut = new FanOut({ replica: hub });
    fanOut.start();
    const child = await openChild();
    const [hubEnd, childEnd] = createChannelPair<SyncMessage>();
    let holding = false;
    const held: Array<() => void> = [];
    const gated: MessageChannel<SyncMessage> = {
      send: (m) => childEnd.send(m),
      onMessage: (handler) =>
        childEnd.onMessage((m) =>
          holding ? new Promise<void>((resolve) => held.push(() => resolve(handler(m)))) : handler(m),
        ),
      onClose: (h) => childEnd.onClose(h),
      close: (cause) => childEnd.close(cause),
    };
    const atHub = new SyncSession({
      replica: hub,
      channel: recording(hubEnd, { frames: [], messages: [] }),
      peer: child.deviceId,
      share: { fanOut, scope: 'all' },
      window: 1,
    });
    const atChild = new SyncSession({ replica: child, channel: gated, peer: hub.deviceId });
    await Promise.all([atHub.start(), atChild.start()]);
    await Promise.all([atHub.whenCaughtUp(), atChild.whenCaughtUp()]);

    holding = true;
    await hub.put('notes', 'first', { v: 1 });
    await eventually(() => held.length === 1, 5000, 'the first batch in flight, not yet acknowledged');
    await hub.put('notes', 'second', { v: 2 });
    await sleep(50);
    holding = false;
    for (const release of held.splice(0)) release();
    await eventually(() => has(child, 'notes', 'second'), 5000, 'the change heard with the window full');
    await atChild.stop();
    await hub.stop();
  });

  it('serves a lagging child from the log, holding only a few batches', async () => {
    const { replica: hub } = await openHub();
    const fanOut = new FanOut({ replica: hub, perScope: 2 });
    fanOut.start();
    const writer = await connect(hub, await openChild(), fanOut, 'all');
    const live = await connect(hub, await openChild(), fanOut, 'all');
    const lagging = await openChild();
    // Connected once, then away while the others write.
    const first = await connect(hub, lagging, fanOut, 'all');
    await first.atChild.stop();
    for (let i = 0; i < 20; i++) {
      await writer.child.put('notes', `w${i}`, { i });
      await eventually(() => has(live.child, 'notes', `w${i}`), 5000, 'relayed live');
      assert.ok(fanOut.stats().entries <= 2, `${fanOut.stats().entries} batches held`);
    }
    const before = fanOut.stats();
    const back = await connect(hub, lagging, fanOut, 'all');
    for (let i = 0; i < 20; i++) assert.ok(await has(lagging, 'notes', `w${i}`), `w${i} caught up`);
    // Its position was no longer held: it read the log again, and what is held stayed bounded.
    assert.ok(fanOut.stats().reads > before.reads, 'the lagging child read the log');
    assert.ok(before.evicted > 0);
    assert.ok(fanOut.stats().entries <= 2);
    for (const l of [writer, live, back]) await l.atChild.stop();
    await hub.stop();
  });

  it('drops what it holds when the policy changes, so no batch of the old policy is served', async () => {
    const { replica: hub, store } = await openHub();
    const fanOut = new FanOut({ replica: hub });
    fanOut.start();
    const writer = await connect(hub, await openChild(), fanOut, 'all');
    const reader = await connect(hub, await openChild(), fanOut, 'all');
    await writer.child.put('secret', 's1', { v: 1 });
    await eventually(() => has(reader.child, 'secret', 's1'), 5000, 'relayed');
    assert.ok(fanOut.stats().entries > 0);
    await hub.setPolicy({
      version: 1,
      updatedAt: 1,
      collections: { secret: { localOnly: true } },
      hubOnly: [],
      retention: {},
    });
    assert.equal(fanOut.stats().entries, 0);
    store.reset();
    await hub.put('secret', 's2', { v: 2 });
    await hub.put('notes', 'after', { v: 1 });
    await eventually(() => has(reader.child, 'notes', 'after'), 5000, 'relayed');
    assert.equal(await has(reader.child, 'secret', 's2'), false);
    assert.ok(store.shared >= 1, 'read again under the new policy');
    for (const l of [writer, reader]) await l.atChild.stop();
    await hub.stop();
  });

  it('returns, for every peer and position, exactly the batch the peer would read for itself', async () => {
    const { replica: hub } = await openHub();
    const children = [await openChild(), await openChild(), await openChild()];
    // A log mixing the hub's writes and revisions received from each child, in a fixed shuffle.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 40; i++) {
      const who = next() % 4;
      if (who === 3) {
        await hub.put(next() % 2 ? 'notes' : 'tasks', `h${i}`, { i });
        continue;
      }
      const child = children[who] as Replica;
      const before = await child.latestSeq();
      await child.put(next() % 2 ? 'notes' : 'tasks', `c${i}`, { i });
      const log = (await child.changeLog()).id;
      const batch = await child.changesSince({ since: before });
      await hub.applyChanges(child.deviceId, { ...batch, log });
    }
    const peers = await Promise.all(
      children.map(async (c) => ({ device: c.deviceId as DeviceId, log: (await c.changeLog()).id })),
    );
    peers.push({ device: randomDeviceId(), log: 'a-peer-with-nothing-here' });
    const latest = await hub.latestSeq();
    let shared = 0;
    for (const [scope, collections] of [
      ['all', undefined],
      ['notes', (c: string) => c === 'notes'],
    ] as const) {
      for (const limit of [1, 2, 3, 1000]) {
        const fanOut = new FanOut({ replica: hub });
        fanOut.start();
        for (let since = 0; since <= latest; since++) {
          for (const peer of peers) {
            const request = { since: since as Seq, peer, limit, maxBytes: 1 << 20 };
            const got = await fanOut.changesSince({
              ...request,
              scope,
              ...(collections && { collections }),
            });
            const own = await hub.changesSince({ ...request, ...(collections && { collections }) });
            const { origin: _origin, ...batch } = got.batch;
            assert.deepEqual(batch, own, `since ${since}, limit ${limit}, scope ${scope}`);
          }
        }
        shared += fanOut.stats().shared;
        fanOut.stop();
      }
    }
    assert.ok(shared > 0, 'some batches were shared');
    for (const c of children) await c.stop();
    await hub.stop();
  });
});
