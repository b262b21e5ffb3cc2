/**
 * Running a callback while holding a lease: auto-extension, release in `finally`, and the
 * outcome the caller is told (the callback's own error always wins; otherwise a lease lost at
 * any point up to its release is reported, never hidden behind the callback's result).
 *
 * @module
 */

import { keepAlive } from "./keep-alive.js";
import type { Lease } from "./lease.js";

/** What {@link hold} needs besides the lease and the callback. */
export interface HoldOptions {
  /** Stop auto-extending this many ms after the hold began; the lease then lapses. */
  maxHold?: number | undefined;
  /**
   * Told about a release that failed (Redis unreachable after the callback). Such a failure is
   * never thrown: the callback's outcome stands, and the lease expires on its own.
   */
  onReleaseError?: ((error: unknown) => void) | undefined;
}

/**
 * Runs `fn(lease)`, extending the lease while it runs (see {@link keepAlive}), then releases it.
 *
 * - If `fn` throws, that error is rethrown unchanged after the release (whatever the release did).
 * - If `fn` resolves but the lease was lost meanwhile (`lease.signal` aborted, or the release
 *   found another holder's token while the lease was still valid here: Redis restarted without
 *   persistence, failed over, or its clock jumped), the {@link LockLostError} is thrown:
 *   exclusivity was not guaranteed, and the caller must know.
 * - Otherwise `fn`'s result is returned. Timers are cleared on every path.
 */
export function hold<T>(
  lease: Lease,
  fn: (lease: Lease) => T | PromiseLike<T>,
  options: HoldOptions,
): Promise<Awaited<T>> {
  const stop = keepAlive(lease, options);
  return holding(lease, () => fn(lease), { onReleaseError: options.onReleaseError, stop });
}

/** How {@link holding} ends a hold, besides releasing the lease. */
export interface HoldingOptions {
  /** Told about a release that failed; never thrown (the lease expires on its own). */
  onReleaseError?: ((error: unknown) => void) | undefined;
  /** Called once `fn` settles, before the release (to stop auto-extension). */
  stop?: (() => void) | undefined;
  /** Bounds the release: when it aborts, the release is given up (see {@link settleLease}). */
  signal?: AbortSignal | undefined;
}

/**
 * The end of {@link hold} for a lease that is not auto-extended (one sized to cover the work,
 * such as a Lambda invocation's): runs `fn`, calls `stop` once it settles, releases the lease,
 * and tells the outcome as {@link hold} does.
 *
 * @example
 * ```ts
 * const result = await holding(lease, () => handler(event, context, lease));
 * ```
 */
export async function holding<T>(
  lease: Lease,
  fn: () => T | PromiseLike<T>,
  options: HoldingOptions = {},
): Promise<Awaited<T>> {
  let result: Awaited<T>;
  try {
    result = await fn();
  } catch (error) {
    options.stop?.();
    await settleLease(lease, options);
    throw error;
  }
  options.stop?.();
  const lost = await settleLease(lease, options);
  if (lost !== undefined) throw lost;
  return result;
}

/**
 * Releases a lease at the end of a hold and tells whether it was kept to the end: resolves with
 * the {@link LockLostError} if the lease was lost before or at its release (so the work done
 * under it was not exclusive), undefined otherwise. A release that cannot reach Redis, or that
 * `signal` cuts short, goes to `onReleaseError` and counts as kept (nothing is known; the lease
 * expires on its own). Never rejects. Stop auto-extension first.
 *
 * @example
 * ```ts
 * const stop = keepAlive(lease);
 * const result = await work(lease);
 * stop();
 * const lost = await settleLease(lease);
 * if (lost) throw lost;
 * ```
 */
export async function settleLease(
  lease: Lease,
  options: Pick<HoldingOptions, "onReleaseError" | "signal"> = {},
): Promise<unknown> {
  const { onReleaseError, signal } = options;
  await lease.release(signal ? { signal } : {}).catch((error: unknown) => {
    try {
      onReleaseError?.(error);
    } catch {
      // A faulty listener must not replace the callback's outcome either.
    }
  });
  return lease.signal.aborted ? lease.signal.reason : undefined;
}
