import {
  checkDuration,
  checkFunction,
  holding,
  type Lease,
  type Locker,
  LockTimeoutError,
  LockUnavailableError,
} from "edgelock";
import { checkLocker, checkObject, checkOptionalFunction } from "./checks.js";
import { checkMargin, InvocationDeadline } from "./deadline.js";
import {
  bounded,
  checkLeaseOptions,
  type LambdaContext,
  type LeaseBounds,
  type LeaseOptions,
  type leaseFor,
  waitFor,
} from "./lease.js";

/** Options of {@link lambdaWithLock}. */
export interface LambdaLockOptions<E, C extends LambdaContext, R> {
  /**
   * How long to wait for a lock held by someone else, in milliseconds (at most half the
   * remaining time less the `margin`); 0 makes one attempt.
   * @default 0
   */
  wait?: number;
  /** How the lease is sized from the remaining time; see {@link leaseFor}. */
  lease?: LeaseOptions;
  /**
   * The result when the lock stays held (the handler does not run), for example a 409 for API
   * Gateway. Without it, the {@link LockTimeoutError} is thrown (`statusCode` 409, `Retry-After`).
   */
  onContention?: (error: LockTimeoutError, event: E, context: C) => R | PromiseLike<R>;
  /**
   * The result when Redis cannot be reached, or does not answer in the invocation's time (the
   * handler does not run), for example a 503 for API Gateway. Without it, the
   * {@link LockUnavailableError} is thrown (`statusCode` 503, `Retry-After: 1`).
   */
  onUnavailable?: (error: LockUnavailableError, event: E, context: C) => R | PromiseLike<R>;
  /**
   * Told about a release that failed (Redis unreachable). Such a failure is never thrown: the
   * lease ends on its own just after the invocation's deadline.
   */
  onReleaseError?: (error: unknown) => void;
  /**
   * How long before the invocation's deadline every Redis request must be done, in
   * milliseconds: each is bounded by the remaining time less this, so a Redis that does not
   * answer gives `LOCK_UNAVAILABLE` while the handler can still answer, not Lambda's "Task
   * timed out". A release with no time left is not sent (the lease ends just after the deadline).
   * @default 200
   */
  margin?: number;
}

/**
 * Wraps a Lambda handler so it runs only while holding the lock named by `key(event, context)`.
 * The lease covers the remaining time (see {@link leaseFor}) and is handed to the handler as a
 * third argument (`lease.fence` for fenced writes). The lock is released, and the release
 * awaited, before the returned promise settles.
 *
 * - Contention: `onContention`'s result, or a thrown {@link LockTimeoutError}.
 * - Redis out of reach, or silent past the invocation's time less `margin`: `onUnavailable`'s
 *   result, or a thrown {@link LockUnavailableError} (503), before Lambda's own deadline.
 * - The handler's error is rethrown unchanged; a failed release never replaces it.
 * - If the lease was lost while the handler ran (with `lease.max` below the remaining time, or
 *   when the release finds another holder's token: Redis restarted without persistence or
 *   failed over), `LockLostError` is thrown once the handler resolves, never its result.
 *
 * @example
 * ```ts
 * export const handler = lambdaWithLock(
 *   locker,
 *   (event: APIGatewayProxyEventV2) => `account:${event.pathParameters?.id}`,
 *   async (event, context, lease) => ({ statusCode: 200, body: await debit(event, lease.fence) }),
 *   { onContention: (error) => ({ statusCode: 409, headers: error.headers, body: "busy" }) },
 * );
 * ```
 */
export function lambdaWithLock<E, R, C extends LambdaContext = LambdaContext>(
  locker: Locker,
  key: (event: E, context: C) => string,
  handler: (event: E, context: C, lease: Lease) => R | PromiseLike<R>,
  options: LambdaLockOptions<E, C, R> = {},
): (event: E, context: C) => Promise<Awaited<R>> {
  checkLocker(locker);
  checkFunction(key, "key");
  checkFunction(handler, "handler");
  const settings = checkLockOptions(options);
  checkOptionalFunction(options.onUnavailable, "onUnavailable");
  return async function lockedHandler(event: E, context: C): Promise<Awaited<R>> {
    const name = key(event, context);
    const deadline = new InvocationDeadline(context, settings.margin);
    try {
      let lease: Lease;
      try {
        lease = await acquire(locker, name, context, settings, deadline);
      } catch (error) {
        if (error instanceof LockTimeoutError && options.onContention) {
          return await options.onContention(error, event, context);
        }
        if (error instanceof LockUnavailableError && options.onUnavailable) {
          return await options.onUnavailable(error, event, context);
        }
        throw error;
      }
      return await holding(lease, () => handler(event, context, lease), {
        onReleaseError: settings.onReleaseError && reportRelease(deadline, name, settings),
        signal: deadline.signal,
      });
    } finally {
      deadline.dispose();
    }
  };
}

/** Lock options once checked. */
export interface LockSettings {
  wait: number;
  bounds: LeaseBounds;
  margin: number;
  onReleaseError: ((error: unknown) => void) | undefined;
}

export function checkLockOptions(options: {
  wait?: number;
  lease?: LeaseOptions;
  margin?: number;
  onReleaseError?: (error: unknown) => void;
  onContention?: unknown;
}): LockSettings {
  checkObject(options, "options");
  checkOptionalFunction(options.onContention, "onContention");
  checkOptionalFunction(options.onReleaseError, "onReleaseError");
  return {
    wait: checkDuration(options.wait ?? 0, "wait", 0),
    bounds: checkLeaseOptions(options.lease),
    margin: checkMargin(options.margin),
    onReleaseError: options.onReleaseError,
  };
}

/** `onReleaseError`, told a release the deadline cut short as the unavailability it is. */
export function reportRelease(
  deadline: InvocationDeadline,
  key: string,
  settings: LockSettings,
): (error: unknown) => void {
  return (error) => settings.onReleaseError?.(deadline.explain("release", key, error));
}

/** A wait longer than this (in ms) is followed by trimming the lease to the time then left. */
const TRIM_AFTER_WAIT = 250;

/**
 * Takes the lock with a lease covering the rest of the invocation, every request bounded by
 * `deadline`. After a long wait the lease, sized when the wait began, is trimmed to the time then
 * left.
 *
 * @throws {LockUnavailableError} also when the deadline cuts a request short.
 */
export async function acquire(
  locker: Locker,
  key: string,
  context: LambdaContext,
  settings: LockSettings,
  deadline: InvocationDeadline,
): Promise<Lease> {
  const started = performance.now();
  const ttl = bounded(context, settings.bounds);
  const timeout = waitFor(context, settings.wait, settings.margin);
  const lease = await deadline.bound("acquire", key, (signal) =>
    locker.acquire(key, ttl, { timeout, signal }),
  );
  if (performance.now() - started > TRIM_AFTER_WAIT) {
    // A failure leaves the longer lease in place; a lost lock aborts lease.signal.
    const { signal } = deadline;
    await lease.extend(bounded(context, settings.bounds), { signal }).catch(() => {});
  }
  return lease;
}
