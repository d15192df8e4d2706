import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type Database from 'better-sqlite3';
import { SqliteRegistryBackend } from '../../src/hub/sqlite-registry.js';
import { runRegistryBackendSuite } from '../../src/hub/testing/registry-suite.js';
import { tempDir } from '../helpers.js';

runRegistryBackendSuite('SqliteRegistryBackend', async () => {
  const dir = tempDir();
  let files = 0;
  const open = async (path: string) => {
    const backend = new SqliteRegistryBackend({ path });
    await backend.start();
    return backend;
  };
  return {
    create: () => open(join(dir.path, `hub-${++files}.db`)),
    reopen: async (backend) => {
      await backend.stop();
      return open((backend as SqliteRegistryBackend).path);
    },
    cleanup: async () => dir.remove(),
  };
});

describe('SqliteRegistryBackend: commits that do not wait for the disk', () => {
  it('events and observations survive a killed process, and the writes after them wait for the disk again', async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, 'hub.db');
      // A process appends events and an observation, then is killed before it can close.
      const script = `
        import { SqliteRegistryBackend } from ${JSON.stringify(new URL('../../src/hub/sqlite-registry.ts', import.meta.url).href)};
        const b = new SqliteRegistryBackend({ path: ${JSON.stringify(path)} });
        await b.start();
        await b.appendEvents([{ at: 1, type: 'device-paired', deviceId: null, data: '{}' }]);
        await b.setSetting('health', 'seen', { durable: false });
        process.kill(process.pid, 'SIGKILL');`;
      const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
      assert.equal(run.signal, 'SIGKILL', run.stderr.toString());
      const b = new SqliteRegistryBackend({ path });
      await b.start();
      try {
        assert.equal(await b.getSetting('health'), 'seen');
        assert.equal((await b.listEvents({ order: 'asc', limit: 10 })).length, 1);
        await b.appendEvents([{ at: 2, type: 'device-paired', deviceId: null, data: '{}' }]);
        await b.setSetting('health', 'again', { durable: false });
        // The connection is back to waiting for the disk: a pairing or a revoke is durable.
        const sql = (b as unknown as { sql: Database.Database }).sql;
        assert.equal(sql.pragma('synchronous', { simple: true }), 2, 'synchronous = FULL');
      } finally {
        await b.stop();
      }
    } finally {
      dir.remove();
    }
  });
});
