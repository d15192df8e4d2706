/**
 * Garbage collection of file content: removes the chunks no kept revision of a
 * files collection references. A version in history keeps its content until
 * retention drops its body; every side of a conflict is a head, so it keeps its
 * content; a deleted file's versions stay in history, and so does their content.
 * Chunks of a transfer in progress are kept twice over: the version's record is
 * already in history, and the chunk store never removes what was written during
 * the grace period before the collection started.
 */
import type { Logger } from 'pino';
import type { GcReport } from './chunk-store.js';
import { type Clock, type Startable, type Timer, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { Replica } from '../sync/replica.js';
import { asFileBody } from './file-body.js';
import type { FileStore } from './file-store.js';
import { type ManifestEntry, ManifestInvalidError } from './manifest.js';

/** Every chunk a kept revision of `collections` names: its chunk list's chunks and its content's. */
export async function referencedChunks(
  replica: Replica,
  files: FileStore,
  collections: readonly string[],
): Promise<Set<string>> {
  const referenced = new Set<string>();
  const listsSeen = new Set<string>();
  for (const collection of collections) {
    let after: string | undefined;
    for (;;) {
      const page = await replica.list(collection, {
        limit: 500,
        includeDeleted: true,
        ...(after && { after }),
      });
      for (const record of page) {
        for (const entry of await replica.history(collection, record.id)) {
          const body = asFileBody(entry.body);
          if (!body) continue;
          for (const h of body.manifest) referenced.add(h);
          const key = body.manifest.join();
          if (listsSeen.has(key)) continue;
          listsSeen.add(key);
          // A version whose chunk list is not here has no content here either.
          if ((await files.chunks.missing(body.manifest)).length > 0) continue;
          // Every chunk the list names, even when it does not describe this version
          // (a peer's bad record): the same list may be another version's, seen once.
          let listed: ManifestEntry[];
          try {
            listed = await files.listed(body);
          } catch (err) {
            // A list that does not decode names nothing that can be read.
            if (err instanceof ManifestInvalidError) continue;
            throw err;
          }
          for (const e of listed) referenced.add(e.hash);
        }
      }
      if (page.length < 500) break;
      after = page[page.length - 1]?.id;
    }
  }
  return referenced;
}

export interface FileGcOptions {
  replica: Replica;
  files: FileStore;
  /** The files collections, now (the configuration may name more later). */
  collections: () => readonly string[];
  /** Run this often while started (and once, `firstAfterMs` after the start). Default hourly. */
  everyMs?: number;
  firstAfterMs?: number;
  /** Keep chunks written this recently whatever references them (ChunkStore.gc). Default one hour. */
  graceMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/** Collects unreferenced chunks now and then while an agent runs. */
export class FileGc implements Startable {
  private readonly o: FileGcOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private timers: Timer[] = [];
  private running: Promise<GcReport> | undefined;
  private controller: AbortController | undefined;

  constructor(options: FileGcOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  isStarted(): boolean {
    return this.timers.length > 0;
  }

  async start(): Promise<void> {
    if (this.isStarted()) return;
    const tick = () => {
      this.run().catch((err: unknown) => this.logger.warn({ err }, 'file garbage collection failed'));
    };
    this.timers = [
      this.clock.setTimeout(tick, this.o.firstAfterMs ?? 10 * 60_000),
      this.clock.setInterval(tick, this.o.everyMs ?? 3600_000),
    ];
  }

  async stop(): Promise<void> {
    for (const t of this.timers) t.cancel();
    this.timers = [];
    this.controller?.abort(new Error('the agent is stopping'));
    await this.running?.catch(() => undefined);
  }

  /** One collection now (or the one already running). */
  run(): Promise<GcReport> {
    this.running ??= this.collect().finally(() => {
      this.running = undefined;
      this.controller = undefined;
    });
    return this.running;
  }

  private async collect(): Promise<GcReport> {
    const { replica, files } = this.o;
    this.controller = new AbortController();
    const referenced = await referencedChunks(replica, files, this.o.collections());
    const report = await files.chunks.gc((hash) => referenced.has(hash), {
      graceMs: this.o.graceMs ?? 3600_000,
      signal: this.controller.signal,
    });
    if (report.removed > 0)
      this.logger.info({ ...report, referenced: referenced.size }, 'unreferenced file content removed');
    return report;
  }
}
