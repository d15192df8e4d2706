/**
 * A node whose store is lost or rolled back, with real processes: a hub and two
 * children started with the trosyn-sync command, stores deleted or replaced by
 * older copies of themselves while writes go on everywhere. After convergence
 * every acknowledged write is on every node, and a child never says "synced" while
 * something it should hold, or the hub should hold from it, is missing.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JsonObject } from '../../src/store/types.js';
import { eventually, tempDir } from '../helpers.js';
import { freePort, hubArgs, openNode, runCli, startAgent, startChildAgent, type Agent } from './helpers.js';

const dir = tempDir('trosyn-lost-');

interface Node {
  name: string;
  data: string;
  agent?: Agent;
  apiPort?: number;
}

interface Write {
  collection: string;
  id: string;
  rev: string;
  by: string;
}

const STORE_FILES = ['trosyn.db', 'trosyn.db-wal', 'trosyn.db-shm'];

describe('a lost or rolled-back store loses no acknowledged write', () => {
  let port = 0;
  const hub: Node = { name: 'hub', data: join(dir.path, 'hub') };
  const a: Node = { name: 'desk-a', data: join(dir.path, 'a') };
  const b: Node = { name: 'desk-b', data: join(dir.path, 'b') };
  const nodes = [hub, a, b];
  const writes: Write[] = [];
  let counter = 0;

  /** A write made beside the running agent, as the CLI makes it; the agent syncs it. */
  async function write(node: Node, collection = 'notes'): Promise<Write> {
    const replica = await openNode(node.data);
    try {
      const id = `${node.name}-${++counter}`;
      const body: JsonObject = { by: node.name, n: counter };
      const w = await replica.put(collection, id, body);
      const entry = { collection, id, rev: w.rev, by: node.name };
      writes.push(entry);
      return entry;
    } finally {
      await replica.stop();
    }
  }

  /** Which of `list` the node does not hold. */
  async function missingOn(node: Node, list: readonly Write[]): Promise<Write[]> {
    const replica = await openNode(node.data);
    try {
      const missing: Write[] = [];
      for (const w of list) {
        const history = await replica.history(w.collection, w.id);
        if (!history.some((h) => h.rev === w.rev)) missing.push(w);
      }
      return missing;
    } finally {
      await replica.stop();
    }
  }

  async function converged(what: string): Promise<void> {
    await eventually(
      async () => {
        for (const n of nodes) if ((await missingOn(n, writes)).length > 0) return false;
        return true;
      },
      30_000,
      what,
    );
  }

  async function status(node: Node): Promise<{ state: string; pending: number }> {
    const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${node.apiPort}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as { state: string; pending: number };
  }

  function startHub(extra: string[] = []): Promise<Record<string, unknown>> {
    hub.agent = startAgent([...hubArgs(hub.data, port), '--no-admin-api', ...extra]);
    return hub.agent.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
  }

  async function startChild(node: Node, extra: string[] = []): Promise<void> {
    const { agent, apiPort } = await startChildAgent(node.data, port, node.name, ...extra);
    node.agent = agent;
    node.apiPort = apiPort;
  }

  function deleteStore(node: Node): void {
    for (const f of STORE_FILES) rmSync(join(node.data, f), { force: true });
  }

  /** Copies the store of a stopped node (a clean stop leaves no WAL behind). */
  function copyStore(node: Node, to: string): void {
    mkdirSync(to, { recursive: true });
    for (const f of STORE_FILES)
      if (existsSync(join(node.data, f))) copyFileSync(join(node.data, f), join(to, f));
  }

  function restoreStore(node: Node, from: string): void {
    deleteStore(node);
    for (const f of STORE_FILES)
      if (existsSync(join(from, f))) copyFileSync(join(from, f), join(node.data, f));
  }

  /** A start that must fail: resolves with what it printed on stderr. */
  async function refusedStart(args: string[]): Promise<string> {
    const err = await runCli(args).then(
      () => assert.fail('the start should have been refused'),
      (e: Error & { exitCode: number; stderr: string }) => e,
    );
    assert.equal(err.exitCode, 1);
    return err.stderr;
  }

  /**
   * Polls a child's status until it says synced with nothing pending, checking each
   * time it does that nothing from `mustHave` is missing there, and that the hub
   * holds every write the child made before that status.
   */
  async function watchUntilSynced(node: Node, mustHave: readonly Write[]): Promise<number> {
    let checks = 0;
    await eventually(
      async () => {
        const ownBefore = writes.filter((w) => w.by === node.name);
        const s = await status(node);
        if (s.state !== 'synced' || s.pending !== 0) return false;
        checks++;
        assert.deepEqual(
          (await missingOn(node, mustHave)).map((w) => w.id),
          [],
          `${node.name} says synced, so it holds everything the hub had`,
        );
        assert.deepEqual(
          (await missingOn(hub, ownBefore)).map((w) => w.id),
          [],
          `${node.name} says synced with nothing pending, so the hub holds its writes`,
        );
        return true;
      },
      30_000,
      `${node.name} in sync`,
    );
    return checks;
  }

  before(async () => {
    port = await freePort();
    for (const n of nodes) mkdirSync(n.data, { recursive: true });
    await startHub();
    for (const node of [a, b]) {
      const code = (await runCli(['pairing-code', '--data', hub.data])).code as string;
      await runCli(['pair', code, '--hub', `127.0.0.1:${port}`, '--data', node.data, '--name', node.name]);
      await startChild(node);
    }
    for (const n of nodes) for (let i = 0; i < 3; i++) await write(n);
    await converged('first writes everywhere');
  });

  after(async () => {
    for (const n of nodes) await n.agent?.kill('SIGKILL');
    dir.remove();
  });

  it('a child whose store was deleted refuses to start without --recover, then gets everything back, its own writes included', async () => {
    await a.agent?.kill('SIGKILL');
    deleteStore(a);
    const stderr = await refusedStart([
      'child',
      '--data',
      a.data,
      '--hub',
      `127.0.0.1:${port}`,
      '--no-discovery',
    ]);
    assert.match(stderr, /STORE_MISSING/);
    assert.match(stderr, /--recover/);
    assert.equal(existsSync(join(a.data, 'trosyn.db')), false, 'the refused start made no store');

    const before = [...writes];
    await startChild(a, ['--recover']);
    // Writes everywhere while it recovers; the new ones on A sit at positions the hub had seen.
    for (let i = 0; i < 3; i++) {
      await write(a);
      await write(b);
      await write(hub);
    }
    const checks = await watchUntilSynced(a, before);
    assert.ok(checks > 0);
    await converged('after the child recovered');
  });

  it('a child restored from an older copy of its store sends what it writes at reused positions', async () => {
    await a.agent?.kill();
    const copy = join(dir.path, 'a-copy');
    copyStore(a, copy);
    await startChild(a);
    for (let i = 0; i < 4; i++) await write(a);
    await converged('writes after the copy are everywhere');
    await a.agent?.kill('SIGKILL');

    restoreStore(a, copy);
    const before = [...writes];
    await startChild(a);
    // These take the positions of the writes the copy lacks, which the hub has seen.
    for (let i = 0; i < 4; i++) {
      await write(a);
      await write(b);
    }
    await watchUntilSynced(a, before);
    await converged('after the child was rolled back');
  });

  it('a hub whose store was deleted refuses to start without --recover, then takes back everything from the children', async () => {
    await hub.agent?.kill('SIGKILL');
    // Emptied rather than deleted: a zero-length file is no fresh start either.
    deleteStore(hub);
    writeFileSync(join(hub.data, 'trosyn.db'), '');
    const stderr = await refusedStart(['hub', '--data', hub.data, '--port', String(port), '--no-discovery']);
    assert.match(stderr, /STORE_MISSING: the store .* is empty/);

    const before = [...writes];
    await startHub(['--recover']);
    for (let i = 0; i < 3; i++) {
      await write(a);
      await write(b);
      await write(hub);
    }
    for (const child of [a, b]) await watchUntilSynced(child, before);
    assert.deepEqual(
      (await missingOn(hub, before)).map((w) => w.id),
      [],
      'the hub holds again what it lost, its own writes included',
    );
    await converged('after the hub recovered');
  });

  it('a hub restored from an older copy of its store gets back what it lost and sends what it writes at reused positions', async () => {
    await hub.agent?.kill();
    const copy = join(dir.path, 'hub-copy');
    copyStore(hub, copy);
    await startHub();
    for (let i = 0; i < 3; i++) {
      await write(hub);
      await write(a);
      await write(b);
    }
    await converged('writes after the hub copy are everywhere');
    await hub.agent?.kill('SIGKILL');

    restoreStore(hub, copy);
    const before = [...writes];
    await startHub();
    for (let i = 0; i < 3; i++) {
      await write(hub);
      await write(a);
    }
    for (const child of [a, b]) await watchUntilSynced(child, before);
    await converged('after the hub was rolled back');
  });
});
