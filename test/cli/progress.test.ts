import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sizeText } from '../../src/cli/format.js';
import { ProgressBar, progressLine, progressWanted } from '../../src/cli/progress.js';

describe('the progress bar', () => {
  it('a line: name, bar, percent, bytes and rate once half a second has passed', () => {
    assert.equal(
      progressLine('plan.docx', 5_000_000, 10_000_000, 2000, 80),
      'plan.docx  [############...........]   50%  5.0 MB / 10 MB  2.5 MB/s',
    );
    assert.equal(
      progressLine('plan.docx', 0, 10_000_000, 100, 80),
      'plan.docx  [.............................]    0%  0 B / 10 MB',
    );
    // An empty file is done at once; more than the total never shows more than 100 %.
    assert.match(progressLine('empty', 0, 0, 0), /\[#+\] +100% +0 B \/ 0 B$/);
    assert.match(progressLine('x', 20, 10, 0), / 100% /);
  });

  it('fits its width: a long name is cut from the left, a narrow terminal drops the name', () => {
    const long = `${'projects/2026/'.repeat(10)}plan.docx`;
    const line = progressLine(long, 1, 2, 0, 80);
    assert.ok(line.length <= 80, line);
    assert.match(line, /^….*plan\.docx {2}\[/);
    const narrow = progressLine(long, 1, 2, 0, 30);
    assert.match(narrow, /^\[#####\.\.\.\.\.\] +50%/);
  });

  it('on a terminal it redraws one line at most every 100 ms; in a log it writes a line at most every second', () => {
    let now = 0;
    const tty: string[] = [];
    const bar = new ProgressBar(
      'f',
      1000,
      { write: (t: string) => tty.push(t), isTTY: true, columns: 60 },
      () => now,
    );
    bar.update(10);
    now = 50;
    bar.update(20);
    now = 150;
    bar.update(30);
    bar.finish(1000);
    assert.equal(tty.length, 4, 'the first draw, the one 150 ms later, the last, and the line end');
    assert.ok(tty.slice(0, 3).every((t) => t.startsWith('\r') && t.endsWith('\x1b[K')));
    assert.match(tty[2] ?? '', /100%/);
    assert.equal(tty[3], '\n');

    now = 0;
    const log: string[] = [];
    const plain = new ProgressBar('f', 1000, { write: (t: string) => log.push(t) }, () => now);
    plain.update(10);
    now = 900;
    plain.update(500);
    now = 1900;
    plain.update(600);
    plain.finish();
    plain.finish();
    assert.deepEqual(
      log.map((l) => /(\d+)%/.exec(l)?.[1]),
      ['1', '60', '60'],
      'one line a second, then the last state once',
    );
    assert.ok(log.every((l) => l.endsWith('\n') && !l.includes('\r')));
  });

  it('shows by default only on a terminal and never with --json; --progress and --no-progress decide', () => {
    assert.equal(progressWanted({}, { write: () => true, isTTY: true }), true);
    assert.equal(progressWanted({}, { write: () => true }), false);
    assert.equal(progressWanted({ json: true }, { write: () => true, isTTY: true }), false);
    assert.equal(progressWanted({ progress: true, json: true }, { write: () => true }), true);
    assert.equal(progressWanted({ progress: false }, { write: () => true, isTTY: true }), false);
  });

  it('sizes for people', () => {
    assert.equal(sizeText(0), '0 B');
    assert.equal(sizeText(999), '999 B');
    assert.equal(sizeText(1000), '1.0 kB');
    assert.equal(sizeText(12_582_919), '13 MB');
    assert.equal(sizeText(4.5e9), '4.5 GB');
  });
});
