/**
 * The product end to end: a hub and three children as real processes started with
 * the trosyn-sync command, real TLS on loopback, real SQLite files for the children
 * and, for the hub, SQLite files (product.test.ts) or a PostgreSQL database
 * (product-postgres.test.ts). Writes are made with the CLI beside the running
 * agents, as a user would.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { eventually, tempDir } from '../helpers.js';
import { freePort, hubArgs, runCli, startAgent, startChildAgent, type Agent } from './helpers.js';

const exec = promisify(execFile);

interface Node {
  name: string;
  data: string;
  agent?: Agent;
  deviceId?: string;
  apiPort?: number;
}

/**
 * The suite, with the hub on SQLite (no `store`) or on the database `store()`
 * gives (a `--store` location the CLI can open without a password).
 */
export function productSuite(store?: () => Promise<string>): void {
  describe(`hub and three children${store ? ', the hub on PostgreSQL' : ''}`, () => {
    const dir = tempDir('trosyn-e2e-');
    let port = 0;
    let adminPort = 0;
    let adminToken = '';
    let hub: Agent;
    const hubData = join(dir.path, 'hub');
    const nodes: Record<'a' | 'b' | 'c', Node> = {
      a: { name: 'desk-a', data: join(dir.path, 'a') },
      b: { name: 'desk-b', data: join(dir.path, 'b') },
      c: { name: 'desk-c', data: join(dir.path, 'c') },
    };
    const cli = (node: Node | 'hub', ...args: string[]) =>
      runCli([...args, '--data', node === 'hub' ? hubData : node.data]);
    const get = async (node: Node | 'hub', collection: string, id: string) =>
      cli(node, 'get', collection, id).then(
        (r) => r as { rev: string; body: Record<string, unknown> },
        () => undefined,
      );

    async function startChild(node: Node): Promise<void> {
      const { agent, apiPort } = await startChildAgent(node.data, port, node.name);
      node.agent = agent;
      node.apiPort = apiPort;
      await node.agent.waitFor((l) => l.event === 'connected', 20_000, `${node.name} connects`);
    }

    before(async () => {
      port = await freePort();
      adminPort = await freePort();
      const { mkdirSync } = await import('node:fs');
      for (const d of [hubData, nodes.a.data, nodes.b.data, nodes.c.data]) mkdirSync(d, { recursive: true });
      // The hub's policy, which every child receives: tickets wait for a person, the rest is last-writer-wins.
      writeFileSync(
        join(hubData, 'config.json'),
        JSON.stringify({ collections: { tickets: { conflict: 'manual' } } }),
      );
      hub = startAgent([
        ...hubArgs(hubData, port),
        ...(store ? ['--store', await store()] : []),
        '--http-host',
        '127.0.0.1',
        '--http-port',
        String(adminPort),
      ]);
      const started = await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
      adminToken = started.adminToken as string;
      assert.match(adminToken, /^tsa_/, 'the first start shows the admin token');
      for (const node of Object.values(nodes)) {
        const code = (await cli('hub', 'pairing-code')).code as string;
        const paired = await runCli([
          'pair',
          code,
          '--hub',
          `127.0.0.1:${port}`,
          '--data',
          node.data,
          '--name',
          node.name,
        ]);
        node.deviceId = paired.deviceId as string;
        await startChild(node);
      }
    });

    after(async () => {
      for (const node of Object.values(nodes)) await node.agent?.kill();
      await hub?.kill();
      dir.remove();
    });

    it('a write on A appears on B and C', async () => {
      const written = await cli(nodes.a, 'put', 'notes', 'welcome', '{"text":"hello from A"}');
      for (const node of [nodes.b, nodes.c]) {
        await eventually(
          async () => (await get(node, 'notes', 'welcome'))?.rev === written.rev,
          10_000,
          `${node.name} has the write`,
        );
      }
    });

    it('offline edits of the same record settle the same way everywhere, are listed as conflicts, and keep the loser in history', async () => {
      await cli(nodes.a, 'put', 'notes', 'shared', '{"v":"base"}');
      await cli(nodes.a, 'put', 'tickets', 't1', '{"status":"new"}');
      for (const node of [nodes.b, nodes.c])
        await eventually(async () => (await get(node, 'tickets', 't1')) !== undefined, 10_000, 'base synced');
      await nodes.a.agent?.kill();
      await nodes.b.agent?.kill();
      const fromA = await cli(nodes.a, 'put', 'notes', 'shared', '{"v":"from A"}');
      const fromB = await cli(nodes.b, 'put', 'notes', 'shared', '{"v":"from B"}');
      await cli(nodes.a, 'put', 'tickets', 't1', '{"status":"approved by A"}');
      await cli(nodes.b, 'put', 'tickets', 't1', '{"status":"rejected by B"}');
      await startChild(nodes.a);
      await startChild(nodes.b);
      const everyone: Array<Node | 'hub'> = ['hub', nodes.a, nodes.b, nodes.c];
      await eventually(
        async () => {
          const seen = await Promise.all(everyone.map((n) => get(n, 'notes', 'shared')));
          return new Set(seen.map((r) => r?.rev)).size === 1 && seen[0] !== undefined;
        },
        15_000,
        'everyone holds the same winner',
      );
      const winner = await get('hub', 'notes', 'shared');
      const loser = winner?.rev === fromA.rev ? fromB.rev : fromA.rev;
      assert.ok(winner?.rev === fromA.rev || winner?.rev === fromB.rev);
      for (const n of everyone) {
        const history = (await cli(n, 'history', 'notes', 'shared')) as unknown as Array<{ rev: string }>;
        assert.ok(
          history.some((h) => h.rev === loser),
          'the losing version is in history',
        );
        const conflicts = (await cli(n, 'conflicts')) as unknown as Array<{
          collection: string;
          id: string;
          status: string;
        }>;
        assert.ok(
          conflicts.some((c) => c.collection === 'notes' && c.id === 'shared' && c.status === 'auto'),
        );
        await eventually(
          async () => {
            const open = (await cli(n, 'conflicts', '--status', 'open')) as unknown as Array<{ id: string }>;
            return open.some((c) => c.id === 't1');
          },
          10_000,
          'the manual conflict is open everywhere',
        );
      }
      // A person resolves the ticket on C; every replica follows.
      const resolved = await cli(
        nodes.c,
        'conflicts',
        'resolve',
        'tickets',
        't1',
        '--body',
        '{"status":"escalated"}',
      );
      for (const n of everyone) {
        await eventually(
          async () => (await get(n, 'tickets', 't1'))?.rev === resolved.rev,
          15_000,
          'resolution everywhere',
        );
      }
    });

    it("a strategy changed on the hub reaches every child and settles the record's conflict again the same way everywhere", async () => {
      const everyone: Array<Node | 'hub'> = ['hub', nodes.a, nodes.b, nodes.c];
      const statusOf = async (n: Node | 'hub') => {
        const list = (await cli(n, 'conflicts')) as unknown as Array<{
          collection: string;
          id: string;
          status: string;
        }>;
        return list.find((c) => c.collection === 'notes' && c.id === 'shared')?.status;
      };
      const before = (await cli('hub', 'settings')) as unknown as { policy: { version: number } };
      const changed = (await cli(
        'hub',
        'settings',
        'collection',
        'notes',
        '--conflict',
        'manual',
      )) as unknown as {
        policy: { version: number; collections: Record<string, { conflict?: string }> };
        resettled: number;
      };
      assert.equal(changed.policy.version, before.policy.version + 1);
      assert.equal(changed.policy.collections.notes?.conflict, 'manual');
      assert.equal(changed.resettled, 1, "the hub's own copy of notes/shared is settled again at once");
      for (const n of everyone)
        await eventually(
          async () => (await statusOf(n)) === 'open',
          10_000,
          'notes/shared waits for a person everywhere',
        );
      // And back: settled by last-writer-wins again, to the same revision on every node.
      await cli('hub', 'settings', 'collection', 'notes', '--reset');
      for (const n of everyone)
        await eventually(
          async () => (await statusOf(n)) === 'auto',
          10_000,
          'notes/shared settled again everywhere',
        );
      const revs = await Promise.all(everyone.map(async (n) => (await get(n, 'notes', 'shared'))?.rev));
      assert.equal(new Set(revs).size, 1, 'the same winner everywhere');
    });

    it('a restarted child resumes from its cursor and receives only the new changes', async () => {
      await nodes.b.agent?.kill();
      for (let i = 0; i < 5; i++) await cli(nodes.a, 'put', 'notes', `while-b-was-away-${i}`, `{"i":${i}}`);
      await startChild(nodes.b);
      await eventually(
        async () => (await get(nodes.b, 'notes', 'while-b-was-away-4')) !== undefined,
        10_000,
        'B caught up',
      );
      const token = readFileSync(join(nodes.b.data, 'api-token'), 'utf8').trim();
      const status = (await (
        await fetch(`http://127.0.0.1:${nodes.b.apiPort}/api/status`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as {
        session?: { applied: number; duplicates: number };
      };
      assert.equal(status.session?.applied, 5, 'exactly the 5 new records crossed');
      assert.equal(status.session?.duplicates, 0);
    });

    it('scopes: a child that may not write a collection gets a clear error for that write; its other writes in the same batch arrive', async () => {
      await cli('hub', 'groups', 'set', 'readers', '--read', '*', '--write', 'notes');
      await cli('hub', 'devices', 'group', nodes.c.deviceId as string, 'readers');
      await nodes.c.agent?.kill();
      await cli(nodes.c, 'put', 'policies', 'p1', '{"rule":"not allowed from C"}');
      await cli(nodes.c, 'put', 'notes', 'from-c', '{"ok":true}');
      await startChild(nodes.c);
      const refused = await nodes.c.agent?.waitFor(
        (l) => l.event === 'refused',
        15_000,
        'C is told about the refused write',
      );
      const entries = (refused?.refused ?? []) as Array<{ collection: string; code: string }>;
      assert.deepEqual(
        entries.map((e) => `${e.collection}:${e.code}`),
        ['policies:SCOPE_WRITE_DENIED'],
      );
      await eventually(
        async () => (await get('hub', 'notes', 'from-c')) !== undefined,
        10_000,
        'the allowed write arrived',
      );
      assert.equal(await get('hub', 'policies', 'p1'), undefined);
      assert.ok(await get(nodes.c, 'policies', 'p1'), 'the refused write stays on C');
      // The app on C reads it from the local API's status too.
      const token = readFileSync(join(nodes.c.data, 'api-token'), 'utf8').trim();
      const status = (await (
        await fetch(`http://127.0.0.1:${nodes.c.apiPort}/api/status`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as { refused?: Array<{ collection: string; id: string; code: string }> };
      assert.deepEqual(
        status.refused?.map((e) => `${e.collection}/${e.id}:${e.code}`),
        ['policies/p1:SCOPE_WRITE_DENIED'],
      );
    });

    it('revoke C: disconnected at once and refused on reconnect', async () => {
      await cli('hub', 'devices', 'revoke', nodes.c.deviceId as string);
      await nodes.c.agent?.waitFor(
        (l) => l.event === 'disconnected' && l.code === 'DEVICE_REVOKED',
        10_000,
        'C disconnected with DEVICE_REVOKED',
      );
      await nodes.c.agent?.kill();
      const again = startAgent([
        'child',
        '--data',
        nodes.c.data,
        '--hub',
        `127.0.0.1:${port}`,
        '--no-discovery',
        '--no-api',
      ]);
      nodes.c.agent = again;
      await again.waitFor((l) => l.event === 'started', 20_000, 'C restarts');
      await eventually(async () => {
        const s = await cli(nodes.c, 'status');
        return s !== undefined;
      }, 5000);
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(
        !again.lines.some((l) => (l as { event?: string }).event === 'connected'),
        'C is never accepted again',
      );
      const hubDevices = (await cli('hub', 'devices')) as unknown as Array<{
        deviceId: string;
        state: string;
      }>;
      assert.equal(hubDevices.find((d) => d.deviceId === nodes.c.deviceId)?.state, 'revoked');
    });

    it('the admin API refuses requests without the token; the child API refuses them too and listens on loopback only', async () => {
      const base = `http://127.0.0.1:${adminPort}/api`;
      assert.equal((await fetch(`${base}/status`)).status, 401);
      assert.equal(
        (await fetch(`${base}/status`, { headers: { authorization: 'Bearer wrong' } })).status,
        401,
      );
      const ok = await fetch(`${base}/devices`, { headers: { authorization: `Bearer ${adminToken}` } });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { devices: unknown[] }).devices.length, 3);
      const child = `http://127.0.0.1:${nodes.a.apiPort}/api/status`;
      assert.equal((await fetch(child)).status, 401);
      const { stdout } = await exec('ss', ['-Hltn', `sport = :${nodes.a.apiPort}`]).catch(() => ({
        stdout: '',
      }));
      if (stdout.trim()) assert.match(stdout, /127\.0\.0\.1:\d+/, 'the local API is bound to 127.0.0.1');
      for (const line of stdout.trim().split('\n').filter(Boolean))
        assert.doesNotMatch(line, /(\*|0\.0\.0\.0|\[::\]):\d+/);
    });
  });
}
