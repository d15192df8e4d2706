import { sizeText } from './format.js';

/** Where a progress bar draws: a terminal (redrawn in place) or a log (a line now and then). */
export interface ProgressOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Whether a command shows progress: `--progress` / `--no-progress` when given,
 * otherwise only on a terminal and never with `--json` (whose output is for programs).
 */
export function progressWanted(
  opts: { progress?: boolean; json?: boolean },
  out: ProgressOut = process.stderr,
): boolean {
  if (opts.progress !== undefined) return opts.progress;
  return !opts.json && out.isTTY === true;
}

/** One line of progress: `name  [#####.....]  48%  24 MB / 50 MB  31 MB/s`. */
export function progressLine(
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
  width = 80,
): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const rate = elapsedMs >= 500 ? `  ${sizeText((done / elapsedMs) * 1000)}/s` : '';
  const counts = `${sizeText(done)} / ${sizeText(total)}`;
  const bar = (cells: number) => `[${'#'.repeat(Math.round(fraction * cells)).padEnd(cells, '.')}]`;
  const tail = `${percent}  ${counts}${rate}`;
  const room = width - tail.length - 4;
  const cells = Math.max(10, Math.min(30, Math.floor(room / 2)));
  const name = label.length > room - cells - 2 ? `…${label.slice(-(room - cells - 3))}` : label;
  return room - cells - 2 >= 4 ? `${name}  ${bar(cells)}  ${tail}` : `${bar(10)}  ${tail}`;
}

/**
 * A progress bar on stderr. On a terminal it redraws one line at most 10 times a
 * second; elsewhere (`--progress` into a log) it writes a line at most once a second.
 * `finish` draws the last state and ends the line.
 */
export class ProgressBar {
  private readonly started: number;
  private lastDraw = -Infinity;
  private done = 0;
  private finished = false;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly out: ProgressOut = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  update(done: number, total = this.total): void {
    this.done = done;
    this.total = total;
    const t = this.now();
    if (t - this.lastDraw < (this.out.isTTY ? 100 : 1000)) return;
    this.draw(t);
  }

  finish(done = this.done): void {
    if (this.finished) return;
    this.finished = true;
    this.done = done;
    this.draw(this.now());
    if (this.out.isTTY) this.out.write('\n');
  }

  private draw(t: number): void {
    this.lastDraw = t;
    const line = progressLine(this.label, this.done, this.total, t - this.started, this.out.columns ?? 80);
    this.out.write(this.out.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }
}
