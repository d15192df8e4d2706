import type { Clock } from '../lifecycle.js';

/**
 * At most `perSecond` answers in any one-second window, so a flood of queries
 * cannot turn the hub into a traffic amplifier. Uses the injected clock, so tests
 * can hold time still; a wall-clock jump backwards only resets one window.
 */
export class AnswerBudget {
  private windowStart = 0;
  private used = 0;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {}

  /** Spends one answer; false when this second's budget is used up. */
  take(): boolean {
    const now = this.clock.now();
    if (now - this.windowStart >= 1000 || now < this.windowStart) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perSecond) return false;
    this.used++;
    return true;
  }
}
