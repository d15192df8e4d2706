/**
 * Copies of chunks on their way to the disk, packed side by side into a few large
 * buffers that are used again once their chunks are written.
 *
 * A store that copies each chunk it writes into a buffer of its own (so the caller
 * may reuse its bytes) allocates a file's worth of buffers. Those live until their
 * write is done, long enough to outlive two young collections and reach V8's old
 * generation, where only a full collection frees them; and V8 counts the memory
 * they hold outside its heap toward starting one. A 1 GiB transfer ran about 125
 * full collections, their concurrent marking about half of the receiving agent's
 * CPU (bench/files.ts with --trace-gc). Slabs allocate nothing once warm.
 */

/** A region of a slab; `release` it once nothing reads it any more. */
export interface SlabRegion {
  readonly bytes: Buffer;
  release(): void;
}

interface Slab {
  readonly buffer: Buffer;
  /** Bytes handed out since the slab was (re)started. */
  used: number;
  /** Copies handed out and not released. */
  live: number;
}

const NOTHING_TO_RELEASE = (): void => undefined;

/** A slab allocator for short-lived regions; used from one thread. */
export class Slabs {
  private current: Slab | undefined;
  private readonly free: Buffer[] = [];
  /** Slabs allocated in all (a figure for tests). */
  allocated = 0;
  /** A region was taken since the last look of the idle timer. */
  private touched = false;
  private idle: NodeJS.Timeout | undefined;

  /**
   * @param slabBytes the size of each slab
   * @param keep released slabs kept for reuse; more are left to the collector
   * @param largest the longest region given from a slab (a quarter of it by
   *   default, so a slab is never mostly wasted); a longer one is a buffer of its own
   * @param idleMs once no region has been taken for this long (and at most twice
   *   as long), the slabs kept are let go: a transfer's memory is not held at rest
   */
  constructor(
    private readonly slabBytes = 1024 * 1024,
    private readonly keep = 4,
    private readonly largest = slabBytes / 4,
    private readonly idleMs = 10_000,
  ) {
    if (largest > slabBytes)
      throw new RangeError(`a region of ${largest} bytes does not fit a slab of ${slabBytes}`);
  }

  /** A copy of `bytes`, made now: the caller may change its bytes as soon as this returns. */
  copy(bytes: Uint8Array): SlabRegion {
    const region = this.take(bytes.byteLength);
    region.bytes.set(bytes);
    return region;
  }

  /**
   * `length` bytes for the caller to fill, holding whatever the slab held before.
   * Not calling `release` is safe: the slab is then never reused, and the collector
   * frees it once nothing refers to it.
   */
  take(length: number): SlabRegion {
    if (length > this.largest || length === 0)
      return { bytes: Buffer.allocUnsafe(length), release: NOTHING_TO_RELEASE };
    this.touched = true;
    let slab = this.current;
    if (!slab || slab.used + length > slab.buffer.length) {
      if (slab && slab.live === 0) slab.used = 0;
      else slab = this.start();
    }
    const at = slab.used;
    slab.used += length;
    slab.live++;
    const region = slab.buffer.subarray(at, at + length);
    let released = false;
    const owner = slab;
    return {
      bytes: region,
      release: () => {
        if (released) return;
        released = true;
        this.release(owner);
      },
    };
  }

  /** Slabs kept for reuse now (a figure for tests). */
  get kept(): number {
    return this.free.length;
  }

  private start(): Slab {
    const reused = this.free.pop();
    if (!reused) this.allocated++;
    this.current = { buffer: reused ?? Buffer.allocUnsafe(this.slabBytes), used: 0, live: 0 };
    return this.current;
  }

  private release(slab: Slab): void {
    slab.live--;
    if (slab.live > 0) return;
    // The slab being filled starts over; a full one goes back to the free list.
    if (slab === this.current) slab.used = 0;
    else if (this.free.length < this.keep) this.free.push(slab.buffer);
    this.trimWhenIdle();
  }

  private trimWhenIdle(): void {
    if (this.idle) return;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.touched) {
        this.touched = false;
        this.trimWhenIdle();
        return;
      }
      this.free.length = 0;
      if (this.current?.live === 0) this.current = undefined;
    }, this.idleMs);
    this.idle.unref();
  }
}
