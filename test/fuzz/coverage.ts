/**
 * V8's own block coverage, read in this process through the inspector: which
 * blocks of the target's source files ran since the last look, and how often.
 * It needs no instrumentation and no native module, so it works with any Node
 * and with TypeScript loaded through tsx (the offsets are those of the code V8
 * runs, which is all a fuzzer needs to tell inputs apart).
 */
import { type Profiler, Session } from 'node:inspector';
import { fileURLToPath } from 'node:url';

/** The repository root, as a path with a trailing separator. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}

/** Hit counts in AFL's buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128 and more. */
export function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

/**
 * One profiler session for the process, started when this module is first
 * imported (before the product's modules, by whoever imports it first) and never
 * stopped: V8 counts blocks only in functions compiled while precise coverage is
 * on. A session in the same thread answers synchronously.
 */
const session = new Session();
session.connect();
const post = <T>(method: string, params?: object): T => {
  let out: { error: Error | null; result?: T } | undefined;
  session.post(method, params, (error, result) => (out = { error, result: result as T }));
  if (!out) throw new Error(`the inspector did not answer ${method} at once`);
  if (out.error) throw out.error;
  return out.result as T;
};
post('Profiler.enable');
post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });

export class BlockCoverage {
  private readonly sources: readonly string[];
  /** Every block ever reported in the sources, per script URL, as [start, end]. */
  private readonly known = new Map<string, Map<string, [number, number]>>();
  /** Blocks that ran at least once, as `url:start-end`. */
  readonly covered = new Set<string>();

  /** `sources`: paths from the repository root (`src/hub/pairing.ts`, or a directory `src/protocol/`). */
  constructor(sources: readonly string[]) {
    this.sources = sources.map((s) => ROOT + s);
  }

  /** Forgets what ran since the last look (the target's start, say): it is nobody's input. */
  discard(): void {
    post('Profiler.takePreciseCoverage');
  }

  /** Blocks seen in the sources so far, run or not. */
  get blocksKnown(): number {
    let n = 0;
    for (const blocks of this.known.values()) n += blocks.size;
    return n;
  }

  /**
   * The blocks of the sources that ran since the last call (V8 resets its counters
   * as it reports), each as `url:start-end` with its count.
   *
   * V8 reports a function's ranges nested, leaving out a block that ran exactly as
   * often as the block around it: a block's count is that of the innermost reported
   * range that contains it. So every block ever seen is looked up that way, not only
   * those reported this time.
   */
  take(): Map<string, number> {
    const { result } = post<Profiler.TakePreciseCoverageReturnType>('Profiler.takePreciseCoverage');
    const hits = new Map<string, number>();
    for (const script of result) {
      if (!script.url.startsWith('file://')) continue;
      const path = fileURLToPath(script.url);
      if (!this.sources.some((s) => path.startsWith(s))) continue;
      const ranges: Range[] = script.functions.flatMap((f) => f.ranges);
      let blocks = this.known.get(script.url);
      if (!blocks) this.known.set(script.url, (blocks = new Map()));
      for (const r of ranges) blocks.set(`${r.startOffset}-${r.endOffset}`, [r.startOffset, r.endOffset]);
      for (const [key, [start, end]] of blocks) {
        let inner: Range | undefined;
        for (const r of ranges) {
          if (r.startOffset > start || r.endOffset < end) continue;
          if (!inner || r.endOffset - r.startOffset < inner.endOffset - inner.startOffset) inner = r;
        }
        if (!inner || inner.count === 0) continue;
        const id = `${script.url}:${key}`;
        hits.set(id, inner.count);
        this.covered.add(id);
      }
    }
    return hits;
  }
}
