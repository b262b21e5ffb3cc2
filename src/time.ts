/**
 * Monotonic time and cancellable sleeps. Lease arithmetic uses `performance.now()` only, so a
 * wall-clock jump on the client never stretches or shortens a lease.
 *
 * @module
 */

/** Milliseconds on a monotonic clock (not related to the wall clock). */
export function now(): number {
  return performance.now();
}

/**
 * Resolves after `ms` milliseconds, or earlier when `wake` is called; rejects with the signal's
 * reason if `signal` aborts first. The timer is always cleared.
 *
 * @example
 * ```ts
 * const nap = sleep(100, signal);
 * await nap.done; // or nap.wake() from elsewhere
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): { done: Promise<void>; wake: () => void } {
  let wake = () => {};
  const done = new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const finish = (error?: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => finish(signal?.reason);
    const timer = setTimeout(finish, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
    wake = () => finish();
  });
  return { done, wake };
}
