/**
 * Frees the buffers a transfer or a large put has dropped long before V8 would on
 * its own.
 *
 * Every TLS read on a server's socket gives a fresh 16 KiB buffer, every chunk
 * sent another of up to 256 KiB, and a stream put from fresh buffers (an upload)
 * drops each once read. (A client's socket reads into one reused buffer, received
 * chunk frames and the pack store's copies lie in reused slabs, src/slabs.ts, and a
 * file's put stores chunks from its read slots.) Their memory lies
 * outside V8's heap, and V8 collects the young generation only once it has
 * allocated a semi-space of its own objects (4 MB under the launchers' flag): these
 * allocate few objects for their bytes, so the dead buffers pile up until V8's
 * limit on memory outside the heap (64 MB above what the last full collection left)
 * sets off a full collection. Measured on a 1 GiB transfer (bench/files.ts): both
 * agents peaked 20 MiB higher than with a young collection every 4 MiB moved, which
 * costs well under a millisecond each.
 *
 * The collection needs V8's `gc` function: the launchers pass `--expose-gc`
 * (the CLI's launcher line, `npm start`, the container and the service files).
 * In a process started without it (an application using the library), nothing is
 * collected here and memory behaves as V8 decides.
 */

/** Bytes moved (sent, received or put) between two young collections. */
export const SCAVENGE_EVERY_BYTES = 4 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

export class Scavenger {
  private bytes = 0;
  private count = 0;

  constructor(
    private readonly collect: Collect | undefined,
    private readonly everyBytes = SCAVENGE_EVERY_BYTES,
  ) {}

  /** Counts bytes moved; every `everyBytes` of them, the young generation is collected. */
  moved(bytes: number): void {
    if (!this.collect) return;
    this.bytes += bytes;
    if (this.bytes < this.everyBytes) return;
    this.bytes = 0;
    this.count++;
    this.collect({ type: 'minor' });
  }

  /** Young collections asked for so far. */
  get collections(): number {
    return this.count;
  }
}

/** The process's scavenger: one count for every connection and put, so many peers do not each collect. */
export const scavenger = new Scavenger((globalThis as { gc?: Collect }).gc);
