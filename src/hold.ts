/**
 * Running a callback while holding a lease: auto-extension, release in `finally`, and error
 * precedence (the callback's own error always wins).
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
 * Runs `fn(lease)`, extending the lease about every ttl/3 while it runs, then releases it.
 *
 * - If `fn` throws, that error is rethrown unchanged after the release (whatever the release did).
 * - If `fn` resolves but the lease was lost meanwhile (`lease.signal` aborted), the
 *   {@link LockLostError} is thrown: exclusivity was not guaranteed, and the caller must know.
 * - Otherwise `fn`'s result is returned. Timers are cleared on every path.
 */
export async function hold<T>(
  lease: Lease,
  fn: (lease: Lease) => T | PromiseLike<T>,
  options: HoldOptions,
): Promise<Awaited<T>> {
  const stop = keepAlive(lease, options);
  const release = async () => {
    stop();
    await lease.release().catch((error: unknown) => {
      try {
        options.onReleaseError?.(error);
      } catch {
        // A faulty listener must not replace the callback's outcome either.
      }
    });
  };
  let result: Awaited<T>;
  try {
    result = await fn(lease);
  } catch (error) {
    await release();
    throw error;
  }
  const lost: unknown = lease.signal.aborted ? lease.signal.reason : undefined;
  await release();
  if (lost !== undefined) throw lost;
  return result;
}
