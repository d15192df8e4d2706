/**
 * Runs lifecycle steps one after the other, so a stop() issued while start() is still
 * binding waits for it and then undoes it, and two concurrent start() calls bind once.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `step` after every step queued before it; a failed step does not block later ones. */
  run(step: () => Promise<void>): Promise<void> {
    const next = this.tail.then(step);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
