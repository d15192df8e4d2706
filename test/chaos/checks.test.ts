/**
 * The chaos runs' final checks catch what they are there to catch: on real SQLite
 * stores, a write missing on one node, a write held with another value, a record
 * whose revisions differ and a revision stored twice are each reported; identical
 * stores pass.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openReplica } from '../../src/index.js';
import { parseDeviceId } from '../../src/transport/device-id.js';
import { tempDir } from '../helpers.js';
import { COLLECTION, Cluster } from './cluster.js';

const dir = tempDir('trosyn-chaos-checks-');
after(() => dir.remove());

const LAYOUT = { hubArgs: [], childArgs: [], pairAddress: '', childWrites: 'cli' as const };

/** Two stores, hub and c1, holding the same three writes: the hub's store, and a copy of it. */
async function twoStores(name: string): Promise<Cluster> {
  const cluster = new Cluster(join(dir.path, name), 1, LAYOUT);
  const [hub, child] = cluster.nodes;
  assert.ok(hub && child);
  const replica = await openReplica({
    path: join(hub.data, 'trosyn.db'),
    deviceId: parseDeviceId('a'.repeat(64)),
    role: 'hub',
  });
  for (let n = 1; n <= 3; n++) {
    const w = await replica.put(COLLECTION, `w${n}`, { value: n });
    cluster.acked.push({ node: 'hub', id: `w${n}`, value: n, rev: w.rev, phase: 'test' });
  }
  // A clean stop leaves no WAL behind: the file alone is the store.
  await replica.stop();
  copyFileSync(join(hub.data, 'trosyn.db'), join(child.data, 'trosyn.db'));
  return cluster;
}

function sql(cluster: Cluster, node: number, statement: string): void {
  const db = new Database(join(cluster.nodes[node]?.data ?? '', 'trosyn.db'));
  db.exec(statement);
  db.close();
}

describe('the chaos checks', () => {
  it('pass identical stores', async () => {
    const c = await twoStores('same');
    const check = c.verify();
    assert.deepEqual(
      {
        lost: check.lost.length,
        divergent: check.divergent,
        duplicates: check.duplicates,
        integrity: check.integrity,
      },
      { lost: 0, divergent: [], duplicates: 0, integrity: [] },
    );
  });

  it('report a write missing on one node as lost and its record as divergent', async () => {
    const c = await twoStores('missing');
    sql(c, 1, `DELETE FROM revisions WHERE record_id = 'w2'`);
    const check = c.verify();
    assert.deepEqual(
      check.lost.map((w) => w.id),
      ['w2'],
    );
    assert.deepEqual(check.divergent, ['w2']);
  });

  it('report a write held with another value as lost', async () => {
    const c = await twoStores('value');
    sql(c, 1, `UPDATE revisions SET body = '{"value":99}' WHERE record_id = 'w3'`);
    assert.deepEqual(
      c.verify().lost.map((w) => w.id),
      ['w3'],
    );
  });

  it('count a revision stored twice in one change log', async () => {
    const c = await twoStores('twice');
    const db = new Database(join(c.nodes[0]?.data ?? '', 'trosyn.db'));
    const columns = (db.pragma('table_info(revisions)') as { name: string }[])
      .map((x) => x.name)
      .filter((x) => x !== 'seq')
      .join(', ');
    db.exec(`INSERT INTO revisions (${columns}) SELECT ${columns} FROM revisions WHERE record_id = 'w1'`);
    db.close();
    assert.equal(c.verify().duplicates, 1);
  });

  it('report a damaged SQLite file beside the store', async () => {
    const c = await twoStores('damaged');
    const path = join(c.nodes[1]?.data ?? '', 'extra.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (x TEXT); CREATE INDEX t_x ON t (x)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    for (let i = 0; i < 2000; i++) insert.run(`row ${i} ${'x'.repeat(50)}`);
    db.close();
    // Zeros over the middle of the file: pages of the table or its index.
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096), 0, 4096, 8 * 4096);
    closeSync(fd);
    const check = c.verify();
    assert.equal(check.integrity.length, 1);
    assert.match(check.integrity[0] ?? '', /^c1\/extra\.db: /);
  });
});
