/**
 * A socket read into one buffer used again for every read (Node's `onread` option),
 * rather than a fresh buffer per read. A connection receiving a file would
 * otherwise allocate its size again in 16 KiB buffers outside V8's heap; the
 * connection copies what it keeps (its frames) out of each read before the next.
 */

/** Bytes of the reused buffer: several TLS records (16 KiB each) per read. */
export const READ_BUFFER_BYTES = 64 * 1024;

export class ReusedReads {
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private sink: ((bytes: Buffer) => void) | undefined;
  /** Reads that came before a sink was attached, copied. */
  private early: Buffer[] = [];

  /** The `onread` option of `tls.connect` / `net.connect`. */
  readonly onread = {
    buffer: this.buffer,
    callback: (length: number): boolean => {
      const bytes = this.buffer.subarray(0, length);
      if (this.sink) this.sink(bytes);
      else this.early.push(Buffer.from(bytes));
      return true;
    },
  };

  /**
   * Sends every read to `sink`, first those that came before. The bytes given are
   * valid only until `sink` returns: the next read overwrites them.
   */
  attach(sink: (bytes: Buffer) => void): void {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    for (const bytes of early) sink(bytes);
  }
}
