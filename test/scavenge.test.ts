/**
 * The young collections a transfer asks for: one every SCAVENGE_EVERY_BYTES moved,
 * none where V8's `gc` is not exposed, and exposed by the CLI's launcher line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { launcher } from '../bench/launcher.js';
import { SCAVENGE_EVERY_BYTES, Scavenger } from '../src/scavenge.js';

const MiB = 1024 * 1024;

describe('Scavenger', () => {
  it('asks for one young collection every SCAVENGE_EVERY_BYTES moved, whatever the pieces', () => {
    const asked: unknown[] = [];
    const s = new Scavenger((o) => asked.push(o));
    for (let i = 0; i < SCAVENGE_EVERY_BYTES / (16 * 1024) - 1; i++) s.moved(16 * 1024);
    assert.equal(asked.length, 0, 'one piece short of the cadence');
    s.moved(16 * 1024);
    assert.deepEqual(asked, [{ type: 'minor' }]);
    s.moved(3 * SCAVENGE_EVERY_BYTES);
    assert.equal(asked.length, 2, 'one large move is one collection, and the count starts again');
    s.moved(SCAVENGE_EVERY_BYTES - 1);
    assert.equal(asked.length, 2);
    assert.equal(s.collections, 2);
  });

  it('does nothing where gc is not exposed', () => {
    const s = new Scavenger(undefined);
    s.moved(100 * SCAVENGE_EVERY_BYTES);
    assert.equal(s.collections, 0);
  });

  it("the process scavenger collects for real under the CLI launcher's flags, and not without them", () => {
    const { flags } = launcher('src/cli/main.ts');
    assert.ok(flags.includes('--expose-gc'), `the launcher line exposes gc: ${flags.join(' ')}`);
    const code = `import { scavenger } from './src/scavenge.ts';
      for (let i = 0; i < 64; i++) scavenger.moved(${MiB});
      console.log(scavenger.collections);`;
    const run = (extra: string[]) =>
      Number(
        execFileSync(process.execPath, [...extra, '--import', 'tsx', '--input-type=module', '-e', code], {
          encoding: 'utf8',
        }).trim(),
      );
    assert.equal(run(flags), 64 / (SCAVENGE_EVERY_BYTES / MiB));
    assert.equal(run([]), 0);
  });
});
