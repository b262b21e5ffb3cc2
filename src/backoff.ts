/**
 * How long a waiter sleeps before its next attempt.
 *
 * @module
 */

/** What the next sleep depends on. */
export interface BackoffInput {
  /** Attempts made so far (1 after the first). */
  attempt: number;
  /** The first backoff step, in ms. */
  base: number;
  /** The largest backoff step, in ms. */
  cap: number;
  /** The holder's remaining lease in ms, as the last attempt saw it (negative: unknown). */
  holderTtl: number;
  /** Time left before the caller's deadline, in ms. */
  remaining: number;
  /** True when a hand-off announcement will wake the waiter, and its room polls for it. */
  notified: boolean;
}

/**
 * Exponential backoff with full jitter, but never past the holder's remaining lease (the lock is
 * free then) nor past the deadline. A waiter told of hand-offs sleeps until the lease ends (or
 * its deadline), relying on the announcement, or on its waiting room, to wake it earlier.
 *
 * @example
 * ```ts
 * backoffDelay({ attempt: 3, base: 50, cap: 1000, holderTtl: 120, remaining: 5000, notified: false });
 * // a random delay in [0, 120]
 * ```
 */
export function backoffDelay(input: BackoffInput): number {
  const step = Math.min(input.cap, input.base * 2 ** Math.min(input.attempt - 1, 30));
  let delay = input.notified ? input.remaining : Math.random() * step;
  if (input.holderTtl >= 0) delay = Math.min(delay, input.holderTtl + 1);
  return Math.max(0, Math.min(delay, input.remaining));
}
