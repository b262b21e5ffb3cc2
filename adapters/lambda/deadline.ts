import { checkDuration, LockUnavailableError, MAX_DURATION } from "edgelock";
import { type LambdaContext, remainingTime } from "./lease.js";

/**
 * The default deadline margin: every Redis operation of an invocation must be done this many
 * milliseconds before Lambda's own deadline, which leaves the handler the time to answer.
 */
export const DEFAULT_DEADLINE_MARGIN = 200;

/** Checks a `margin` option: a duration from 0. */
export function checkMargin(margin: number | undefined): number {
  return checkDuration(margin ?? DEFAULT_DEADLINE_MARGIN, "margin", 0);
}

/**
 * The deadline of one invocation's Redis operations: its remaining time less a margin. Its
 * `signal` aborts then, and {@link InvocationDeadline.bound} turns that abort into the
 * `LOCK_UNAVAILABLE` the caller gets instead of Lambda's "Task timed out". Dispose of it when the
 * invocation's work is done, so no timer outlives it.
 *
 * @example
 * ```ts
 * const deadline = new InvocationDeadline(context, 200);
 * try {
 *   const lease = await deadline.bound("acquire", key, (signal) => locker.acquire(key, ttl, { signal }));
 * } finally {
 *   deadline.dispose();
 * }
 * ```
 */
export class InvocationDeadline {
  /** Aborts when the invocation has no time left for Redis. */
  readonly signal: AbortSignal;
  readonly #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(context: LambdaContext, margin: number) {
    const remaining = remainingTime(context);
    const budget = Math.min(remaining - margin, MAX_DURATION);
    const controller = new AbortController();
    const abort = () => controller.abort(deadlineReason(remaining, margin));
    if (budget <= 0) abort();
    else this.#timer = setTimeout(abort, budget);
    this.signal = controller.signal;
  }

  /**
   * Runs `run` with the deadline's signal; if the deadline cuts it short, rejects with
   * {@link LockUnavailableError} for `operation` (and `key`), the deadline's reason as its cause.
   */
  async bound<T>(
    operation: string,
    key: string | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    try {
      return await run(this.signal);
    } catch (error) {
      throw this.explain(operation, key, error);
    }
  }

  /** `error`, or the {@link LockUnavailableError} it stands for if it is the deadline's abort. */
  explain(operation: string, key: string | undefined, error: unknown): unknown {
    if (!this.signal.aborted || error !== this.signal.reason) return error;
    return new LockUnavailableError(operation, key, error);
  }

  /** Clears the timer. */
  dispose(): void {
    clearTimeout(this.#timer);
  }
}

/** Why the deadline aborted: no answer from Redis in the invocation's time. */
function deadlineReason(remaining: number, margin: number): Error {
  const error = new Error(
    `no answer from Redis in time: the invocation had ${remaining} ms left, and every request ` +
      `must end ${margin} ms before its deadline`,
  );
  // Named as a transport's deadline is, so nothing retries it.
  error.name = "TimeoutError";
  return error;
}
