/**
 * The young collections a transfer asks for: one every SCAVENGE_EVERY_BYTES moved,
 * none where V8's `gc` is not exposed, and exposed by the CLI's launcher line; a
 * put counts only the garbage it makes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { launcher } from '../bench/launcher.js';
import { SCAVENGE_EVERY_BYTES, Scavenger } from '../src/scavenge.js';
import { tempDir } from './helpers.js';

const MiB = 1024 * 1024;
const dir = tempDir();
after(() => dir.remove());

/** Runs `code` (an ES module importing the project's sources) with the launcher's flags, or none; returns its output. */
function runWithLauncherFlags(code: string, withFlags = true): string {
  const { flags } = launcher('src/cli/main.ts');
  const script = join(dir.path, `script-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(script, code.replaceAll("from './src/", `from '${resolve('src')}/`));
  return execFileSync(process.execPath, [...(withFlags ? flags : []), '--import', 'tsx', script], {
    encoding: 'utf8',
  }).trim();
}

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
    assert.equal(Number(runWithLauncherFlags(code)), 64 / (SCAVENGE_EVERY_BYTES / MiB));
    assert.equal(Number(runWithLauncherFlags(code, false)), 0);
  });

  it("a put counts a stream's fresh buffers, not a reader's reused ones nor the chunks it stores from them", () => {
    // 64 MiB put three times: new content read through a ring of four buffers (as
    // `files put` reads a file), the same again, and the same from fresh buffers.
    const code = `import { randomBytes } from 'node:crypto';
      import { scavenger } from './src/scavenge.ts';
      import { FileStore } from './src/files/file-store.ts';
      import { PackChunkStore } from './src/files/chunk-store-pack.ts';
      const store = new PackChunkStore({ dir: ${JSON.stringify(dir.path)}, fsync: false });
      await store.start();
      const files = new FileStore(store);
      const data = randomBytes(${64 * MiB});
      const ring = Array.from({ length: 4 }, () => Buffer.alloc(${MiB}));
      async function* read(fresh) {
        for (let at = 0, n = 0; at < data.length; at += ${MiB}, n++) {
          const piece = fresh ? Buffer.alloc(${MiB}) : ring[n % 4];
          data.copy(piece, 0, at, at + ${MiB});
          yield piece;
        }
      }
      const counts = [];
      for (const [name, fresh] of [['new', false], ['again', false], ['fresh', true]]) {
        const before = scavenger.collections;
        await files.put(read(fresh), { name, modifiedAt: 0 });
        counts.push(scavenger.collections - before);
      }
      await store.stop();
      console.log(JSON.stringify(counts));`;
    const [stored, again, fresh] = JSON.parse(runWithLauncherFlags(code)) as number[];
    const every = SCAVENGE_EVERY_BYTES / MiB;
    // New chunks are written from the read slots, copied nowhere: no garbage to collect.
    assert.ok(stored !== undefined && stored <= 2, `new content, reused buffers: ${stored} collections`);
    assert.ok(again !== undefined && again <= 2, `content already stored, reused buffers: ${again}`);
    // The first 8 MiB or so are held as copies until the put knows its size, and not counted.
    assert.ok(fresh !== undefined && fresh >= (64 - 10) / every - 1, `fresh buffers: ${fresh}`);
  });
});
