/**
 * Documents, property-based: a hub and 2-3 children on real SQLite files and real
 * chunk stores make random files and random edits of them (insert, delete,
 * overwrite, append, copy of another file); the hub and one child at a time sync
 * records and then content through the real content sync and chunk exchange, the
 * exchange cut after a random number of chunks; nodes are closed and reopened
 * between steps. After final full rounds every node holds every version ever
 * written, each byte-identical to what its author wrote.
 *
 * TROSYN_PROPERTY_RUNS sets the number of schedules (default 40);
 * TROSYN_PROPERTY_SEED replays one.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkExchange } from '../../src/files/chunk-exchange.js';
import { DiskChunkStore } from '../../src/files/chunk-store-disk.js';
import { ContentIndex } from '../../src/files/content-index.js';
import { ContentSync } from '../../src/files/content-sync.js';
import { FileStore } from '../../src/files/file-store.js';
import { type FileVersion, NodeFiles } from '../../src/files/node-files.js';
import { openReplica } from '../../src/index.js';
import type { DeviceId } from '../../src/store/types.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import type { Replica } from '../../src/sync/replica.js';
import { transfer } from '../../src/sync/transfer.js';
import { linkPair } from '../fixtures/link-pair.js';
import { fixedClock, tempDir } from '../helpers.js';
import { noise, sha } from '../fixtures/bytes.js';

const RUNS = Number(process.env.TROSYN_PROPERTY_RUNS ?? 40);
const SEED =
  process.env.TROSYN_PROPERTY_SEED === undefined ? undefined : Number(process.env.TROSYN_PROPERTY_SEED);
const FILES = ['a.bin', 'b.bin', 'c.bin'];

const dir = tempDir('trosyn-files-property-');
after(() => dir.remove());
let run = 0;

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** One node: its replica, chunks, files and content sync, closed and reopened at will. */
class Node {
  replica!: Replica;
  chunks!: DiskChunkStore;
  files!: NodeFiles;
  content!: ContentSync;

  constructor(
    readonly at: string,
    readonly deviceId: DeviceId,
    readonly role: 'hub' | 'child',
  ) {}

  async open(): Promise<void> {
    this.replica = await openReplica({
      path: join(this.at, 'trosyn.db'),
      deviceId: this.deviceId,
      role: this.role,
      synchronous: 'off',
    });
    this.chunks = new DiskChunkStore({ dir: join(this.at, 'chunks'), fsync: false });
    await this.chunks.start();
    const store = new FileStore(this.chunks);
    this.files = new NodeFiles(this.replica, store);
    this.content = new ContentSync({
      replica: this.replica,
      files: store,
      index: new ContentIndex(join(this.at, 'files.db')),
      policies: { files: 'eager' },
      role: this.role,
      // No timers: the test drives every round.
      clock: fixedClock(() => Date.now()),
    });
    await this.content.start();
  }

  async close(): Promise<void> {
    await this.content.stop();
    await this.chunks.stop();
    await this.replica.stop();
  }

  /** Until no round runs (a round may start another when records arrived meanwhile). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await this.content.settled();
      if (!this.content.status().busy) return;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('content sync did not settle');
  }

  async bytes(v: FileVersion): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of this.files.read(v)) parts.push(p);
    return Buffer.concat(parts);
  }
}

type Edit =
  | { t: 'insert'; at: number; len: number; seed: number }
  | { t: 'delete'; at: number; len: number }
  | { t: 'overwrite'; at: number; len: number; seed: number }
  | { t: 'append'; len: number; seed: number }
  | { t: 'copy'; from: number };

type Step =
  | { t: 'write'; node: number; file: number; edit: Edit }
  | { t: 'sync'; child: number; cutAfter: number | null }
  | { t: 'reopen'; node: number };

const frac = fc.double({ min: 0, max: 1, noNaN: true });
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    t: fc.constant('insert' as const),
    at: frac,
    len: fc.integer({ min: 1, max: 120_000 }),
    seed: fc.nat(),
  }),
  fc.record({ t: fc.constant('delete' as const), at: frac, len: fc.integer({ min: 1, max: 100_000 }) }),
  fc.record({
    t: fc.constant('overwrite' as const),
    at: frac,
    len: fc.integer({ min: 1, max: 80_000 }),
    seed: fc.nat(),
  }),
  fc.record({ t: fc.constant('append' as const), len: fc.integer({ min: 1, max: 200_000 }), seed: fc.nat() }),
  fc.record({ t: fc.constant('copy' as const), from: fc.nat({ max: FILES.length - 1 }) }),
);

function steps(children: number): fc.Arbitrary<Step[]> {
  return fc.array(
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant('write' as const),
          node: fc.nat({ max: children }),
          file: fc.nat({ max: FILES.length - 1 }),
          edit,
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          t: fc.constant('sync' as const),
          child: fc.integer({ min: 1, max: children }),
          cutAfter: fc.option(fc.integer({ min: 0, max: 12 }), { nil: null }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ t: fc.constant('reopen' as const), node: fc.nat({ max: children }) }),
      },
    ),
    { minLength: 4, maxLength: 16 },
  );
}

/** The bytes of `node`'s current version of `name`, or empty when it has none (or not its content yet). */
async function current(node: Node, name: string): Promise<Buffer> {
  try {
    return await node.bytes(await node.files.version(name));
  } catch {
    return Buffer.alloc(0);
  }
}

function apply(base: Buffer, e: Edit, copied: Buffer): Buffer {
  const at = (f: number) => Math.floor(f * base.length);
  switch (e.t) {
    case 'insert': {
      const i = at(e.at);
      return Buffer.concat([base.subarray(0, i), noise(e.len, e.seed), base.subarray(i)]);
    }
    case 'delete': {
      const i = at(e.at);
      return Buffer.concat([base.subarray(0, i), base.subarray(i + e.len)]);
    }
    case 'overwrite': {
      const i = at(e.at);
      const out = Buffer.from(base);
      noise(Math.min(e.len, out.length - i), e.seed).copy(out, i);
      return out;
    }
    case 'append':
      return Buffer.concat([base, noise(e.len, e.seed)]);
    case 'copy':
      return Buffer.from(copied);
  }
}

/** Records, then content, between the hub and one child; the exchange cut after `cutAfter` chunks. */
async function syncPair(hub: Node, child: Node, cutAfter: number | null): Promise<void> {
  await transfer(child.replica, hub.replica);
  await transfer(hub.replica, child.replica);
  const [hubEnd, childEnd] = linkPair();
  const atHub = new ChunkExchange(hubEnd, hub.chunks);
  const atChild = new ChunkExchange(childEnd, child.chunks);
  hubEnd.onClose = (err) => {
    atHub.abort(err);
    atChild.abort(err);
  };
  if (cutAfter !== null) {
    let sent = 0;
    const cut = (end: typeof hubEnd) => (payload: Buffer) => {
      if (++sent > cutAfter) end.close(new Error('the link was cut'));
      return payload;
    };
    hubEnd.tamper = cut(hubEnd);
    childEnd.tamper = cut(childEnd);
  }
  const detachHub = hub.content.attach(child.deviceId, atHub);
  const detachChild = child.content.attach(hub.deviceId, atChild);
  await Promise.all([hub.idle(), child.idle()]);
  // The child may have asked before the hub had it: once more now that the hub is idle.
  if (!hubEnd.closed) {
    detachChild();
    child.content.attach(hub.deviceId, atChild);
    await child.idle();
  }
  detachHub();
  detachChild();
  hubEnd.close(new Error('sync over'));
}

describe('documents converge byte for byte, property-based', () => {
  it(`${RUNS} random schedules of edits, cut transfers and reopens`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }).chain((children) => fc.tuple(fc.constant(children), steps(children))),
        async ([children, plan]) => {
          const base = join(dir.path, `run-${++run}`);
          const nodes = Array.from(
            { length: children + 1 },
            (_, i) => new Node(join(base, `n${i}`), randomDeviceId(), i === 0 ? 'hub' : 'child'),
          );
          for (const n of nodes) await n.open();
          /** Every version written: its revision and the SHA-256 of what was written. */
          const written = new Map<string, { name: string; sha: string }>();
          try {
            for (const step of plan) {
              if (step.t === 'write') {
                const node = nodes[step.node] as Node;
                const name = FILES[step.file] as string;
                const before = await current(node, name);
                const copied =
                  step.edit.t === 'copy'
                    ? await current(node, FILES[step.edit.from] as string)
                    : Buffer.alloc(0);
                const bytes = apply(before, step.edit, copied);
                const v = await node.files.putStream(once(bytes), { name });
                written.set(v.rev, { name, sha: sha(bytes) });
              } else if (step.t === 'sync') {
                await syncPair(nodes[0] as Node, nodes[step.child] as Node, step.cutAfter);
              } else {
                const node = nodes[step.node] as Node;
                await node.close();
                await node.open();
              }
            }
            // Final full rounds: the hub gets each author's content, then every child the rest.
            for (let round = 0; round < 2; round++)
              for (let c = 1; c <= children; c++) await syncPair(nodes[0] as Node, nodes[c] as Node, null);

            for (const node of nodes) {
              for (const [rev, w] of written) {
                const v = await node.files.version(w.name, { rev });
                assert.equal(v.rev, rev);
                assert.equal(
                  sha(await node.bytes(v)),
                  w.sha,
                  `${node.role} ${node.deviceId.slice(0, 6)} holds ${w.name}@${rev.slice(0, 8)} as written`,
                );
              }
              assert.equal(node.content.status().pending, 0, 'nothing is left waiting');
            }
          } finally {
            for (const n of nodes) await n.close().catch(() => undefined);
          }
        },
      ),
      { numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }), verbose: 1 },
    );
  });
});
