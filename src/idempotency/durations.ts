/**
 * How long runs take, as this process sees them: what an in-progress conflict's `Retry-After`
 * is made of, so a duplicate of a 300 ms request is told to come back in a second, not when a
 * 30 s lease ends.
 *
 * @module
 */

/** The weight of the latest run in the moving average. */
const WEIGHT = 0.3;

/**
 * A moving average of run durations, and the time a run in progress likely has left.
 *
 * @example
 * ```ts
 * const durations = new RunDurations();
 * durations.observe(320);
 * durations.left(100); // about 220
 * ```
 */
export class RunDurations {
  #average: number | undefined;

  /** Takes note of a run that took `ms`. */
  observe(ms: number): void {
    this.#average =
      this.#average === undefined ? ms : this.#average + WEIGHT * (ms - this.#average);
  }

  /**
   * How long a run that has been going for `running` ms likely has left: the usual duration less
   * that; with none seen yet, as long again as it has run.
   */
  left(running: number): number {
    return this.#average === undefined ? running : Math.max(0, this.#average - running);
  }
}
