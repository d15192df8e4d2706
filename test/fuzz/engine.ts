/**
 * A small coverage-guided fuzzer for targets that take a list of socket writes.
 * Inputs come from a seed corpus of valid exchanges by seeded mutation
 * (mutate.ts); an input that makes the target's source files run a block, or run
 * one a number of times, not seen before (coverage.ts) joins the corpus and is
 * mutated in turn. Each input is checked by the target's own oracle: a target
 * throws when the product misbehaved, and the fuzzer records the input with the
 * error. An input that does not finish within its limit, or an exception nobody
 * caught while it ran, is a failure too.
 */
import { BlockCoverage, bucket } from './coverage.js';
import { type Input, mutate } from './mutate.js';
import { prng } from './random.js';

/** What the fuzzer drives: a product part behind a socket, with its oracle. */
export interface FuzzTarget {
  readonly name: string;
  /** Source files or directories, from the repository root, whose blocks guide the fuzzer. */
  readonly sources: readonly string[];
  /** Valid exchanges (and a few known-bad ones) to start from. */
  seeds(): Input[];
  /** Strings worth putting in JSON values: method names, the harness's tokens. */
  readonly dictionary: readonly string[];
  start(): Promise<void>;
  /** Runs one input against the product; throws when its answer was wrong. */
  run(input: Input): Promise<void>;
  /** After the run: throws unless the product still serves a well-behaved peer. */
  check(): Promise<void>;
  stop(): Promise<void>;
}

export interface FuzzOptions {
  seed: number;
  /** Inputs to run, seeds included. */
  inputs: number;
  /** Stop starting new inputs after this long (a bound on the run, not a speed target). */
  timeLimitMs: number;
  /** An input still running after this long is a hang. Default 20 s. */
  inputLimitMs?: number;
  /**
   * Keep inputs that reach new blocks, to mutate them in turn (default). False
   * mutates the seeds only: blind fuzzing, to compare against.
   */
  guided?: boolean;
  /** Stop once this many inputs have failed. Default: run every input. */
  stopAfterFailures?: number;
  /** Called every `every` inputs with the report so far. */
  progress?: { every: number; report(r: FuzzReport): void };
}

export interface FuzzFailure {
  /** Which input of the run (0-based; seeds first). */
  index: number;
  /** The writes, in hex, to replay the input. */
  input: string[];
  message: string;
  stack?: string;
}

export interface FuzzReport {
  target: string;
  seed: number;
  inputsRun: number;
  corpusSize: number;
  seeds: number;
  /** Blocks of the sources that ran at least once, and all those V8 reported. */
  blocksCovered: number;
  blocksKnown: number;
  /** Blocks covered once the seeds had run. */
  blocksCoveredBySeeds: number;
  /** Distinct (block, hit-count bucket) pairs seen. */
  features: number;
  failures: FuzzFailure[];
  /** The check after the run, when it failed. */
  afterRun?: string;
  elapsedMs: number;
}

/** Runs `target` under the options; never throws for a failure of the product, reports it. */
export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const r = prng(options.seed);
  const coverage = new BlockCoverage(target.sources);
  const features = new Set<string>();
  const corpus: Input[] = [];
  const failures: FuzzFailure[] = [];
  const seeds = target.seeds();
  let inputsRun = 0;
  let blocksCoveredBySeeds = 0;
  // Whatever escapes the product's handlers while an input runs is that input's failure.
  let escaped: Error | undefined;
  const onEscape = (err: unknown) => {
    escaped ??= err instanceof Error ? err : new Error(String(err));
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);

  const report = (): FuzzReport => ({
    target: target.name,
    seed: options.seed,
    inputsRun,
    corpusSize: corpus.length,
    seeds: seeds.length,
    blocksCovered: coverage.covered.size,
    blocksKnown: coverage.blocksKnown,
    blocksCoveredBySeeds,
    features: features.size,
    failures,
    elapsedMs: Math.round(performance.now() - started),
  });

  const runOne = async (input: Input, isSeed: boolean) => {
    const index = inputsRun++;
    escaped = undefined;
    let limit: NodeJS.Timeout | undefined;
    let failure: Error | undefined;
    try {
      await Promise.race([
        target.run(input),
        new Promise<never>((_, reject) => {
          limit = setTimeout(
            () => reject(new Error(`hang: the input did not finish in ${options.inputLimitMs ?? 20_000} ms`)),
            options.inputLimitMs ?? 20_000,
          );
        }),
      ]);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      clearTimeout(limit);
    }
    // Read through a cast: the handler above sets it while the input runs.
    const uncaught = escaped as Error | undefined;
    if (!failure && uncaught)
      failure = Object.assign(new Error(`uncaught: ${uncaught.message}`), { stack: uncaught.stack });
    if (failure)
      failures.push({
        index,
        input: input.map((w) => w.toString('hex')),
        message: failure.message,
        ...(failure.stack !== undefined && { stack: failure.stack }),
      });
    let fresh = false;
    for (const [block, count] of coverage.take()) {
      const feature = `${block}#${bucket(count)}`;
      if (features.has(feature)) continue;
      features.add(feature);
      fresh = true;
    }
    // A failing input is kept for the report, not mutated further: its
    // neighbours would mostly fail the same way.
    if (((fresh && options.guided !== false) || isSeed) && !failure) corpus.push(input);
    if (options.progress && inputsRun % options.progress.every === 0) options.progress.report(report());
  };

  try {
    await target.start();
    coverage.discard();
    try {
      for (const input of seeds) await runOne(input, true);
      blocksCoveredBySeeds = coverage.covered.size;
      const ctx = { corpus, dictionary: target.dictionary };
      while (
        inputsRun < options.inputs &&
        performance.now() - started < options.timeLimitMs &&
        failures.length < (options.stopAfterFailures ?? Infinity)
      ) {
        const parent = corpus.length > 0 ? r.pick(corpus) : r.pick(seeds);
        await runOne(mutate(parent, r, ctx), false);
      }
      const result = report();
      try {
        await target.check();
      } catch (err) {
        result.afterRun = (err as Error).stack ?? String(err);
      }
      return result;
    } finally {
      await target.stop();
    }
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  }
}
