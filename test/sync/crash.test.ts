import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openReplica } from '../../src/index.js';
import { randomDeviceId } from '../../src/sync/ids.js';
import { tempDir } from '../helpers.js';

describe('crash safety', () => {
  it('a process killed with SIGKILL mid-sync reopens with its cursor and records in step', async () => {
    const dir = tempDir();
    const path = join(dir.path, 'child.db');
    const deviceId = randomDeviceId();
    const peer = randomDeviceId();
    try {
      for (let round = 0; round < 3; round++) {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'test/fixtures/apply-forever.ts', path, deviceId, peer],
          {
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let acknowledged = 0;
        let lines = 0;
        await new Promise<void>((resolve) => {
          child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
            for (const line of chunk.split('\n').filter(Boolean)) {
              acknowledged = Number(line);
              // Kill at a different point each round, mid-batch as often as not.
              if (++lines === 5 + round * 3) {
                setTimeout(() => child.kill('SIGKILL'), round);
              }
            }
          });
          child.on('exit', () => resolve());
        });
        const replica = await openReplica({ path, deviceId });
        const cursor = (await replica.cursorFor(peer)).seq;
        const { records } = await replica.stats();
        assert.ok(
          cursor >= acknowledged,
          `every acknowledged batch survived (cursor ${cursor} >= ${acknowledged})`,
        );
        assert.equal(
          records,
          cursor,
          'records and cursor moved together: no half batch, nothing applied twice',
        );
        assert.equal(cursor % 100, 0);
        await replica.stop();
      }
    } finally {
      dir.remove();
    }
  });
});
