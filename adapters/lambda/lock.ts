import {
  checkDuration,
  checkFunction,
  holding,
  type Lease,
  type Locker,
  LockTimeoutError,
} from "edgelock";
import { checkLocker, checkObject, checkOptionalFunction } from "./checks.js";
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
   * remaining time); 0 makes one attempt.
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
   * Told about a release that failed (Redis unreachable). Such a failure is never thrown: the
   * lease ends on its own just after the invocation's deadline.
   */
  onReleaseError?: (error: unknown) => void;
}

/**
 * Wraps a Lambda handler so it runs only while holding the lock named by `key(event, context)`.
 * The lease covers the remaining time (see {@link leaseFor}) and is handed to the handler as a
 * third argument (`lease.fence` for fenced writes). The lock is released, and the release
 * awaited, before the returned promise settles.
 *
 * - Contention: `onContention`'s result, or a thrown {@link LockTimeoutError}.
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
  return async function lockedHandler(event: E, context: C): Promise<Awaited<R>> {
    let lease: Lease;
    try {
      lease = await acquire(locker, key(event, context), context, settings);
    } catch (error) {
      if (error instanceof LockTimeoutError && options.onContention) {
        return await options.onContention(error, event, context);
      }
      throw error;
    }
    return holding(lease, () => handler(event, context, lease), settings.onReleaseError);
  };
}

/** Lock options once checked. */
export interface LockSettings {
  wait: number;
  bounds: LeaseBounds;
  onReleaseError: ((error: unknown) => void) | undefined;
}

export function checkLockOptions(options: {
  wait?: number;
  lease?: LeaseOptions;
  onReleaseError?: (error: unknown) => void;
  onContention?: unknown;
}): LockSettings {
  checkObject(options, "options");
  checkOptionalFunction(options.onContention, "onContention");
  checkOptionalFunction(options.onReleaseError, "onReleaseError");
  return {
    wait: checkDuration(options.wait ?? 0, "wait", 0),
    bounds: checkLeaseOptions(options.lease),
    onReleaseError: options.onReleaseError,
  };
}

/** A wait longer than this (in ms) is followed by trimming the lease to the time then left. */
const TRIM_AFTER_WAIT = 250;

/**
 * Takes the lock with a lease covering the rest of the invocation. After a long wait the lease,
 * sized when the wait began, is trimmed to the time then left.
 */
export async function acquire(
  locker: Locker,
  key: string,
  context: LambdaContext,
  settings: LockSettings,
): Promise<Lease> {
  const started = performance.now();
  const ttl = bounded(context, settings.bounds);
  const lease = await locker.acquire(key, ttl, { timeout: waitFor(context, settings.wait) });
  if (performance.now() - started > TRIM_AFTER_WAIT) {
    // A failure leaves the longer lease in place; a lost lock aborts lease.signal.
    await lease.extend(bounded(context, settings.bounds)).catch(() => {});
  }
  return lease;
}
