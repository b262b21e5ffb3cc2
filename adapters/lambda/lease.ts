import {
  checkDuration,
  InvalidArgumentError,
  MAX_DURATION,
  MIN_TTL,
  describeValue as show,
} from "edgelock";

/** The part of the Lambda `Context` used here; the real `Context` of `aws-lambda` fits it. */
export interface LambdaContext {
  /** Milliseconds left before Lambda stops the invocation. */
  getRemainingTimeInMillis(): number;
  /** The function's name: the default idempotency scope. */
  readonly functionName?: string;
}

/** How {@link leaseFor} sizes a lease. */
export interface LeaseOptions {
  /**
   * The longest lease, in milliseconds. A cap below the remaining time lets a long invocation
   * outlive its lease (nothing renews it): the lock's `lease.signal` then aborts.
   * @default no cap
   */
  max?: number;
  /**
   * Added to the remaining time, in milliseconds, so the lease ends just after the function
   * can no longer run.
   * @default 1000
   */
  safety?: number;
}

/** The default safety margin of {@link leaseFor}: one second. */
export const DEFAULT_LEASE_SAFETY = 1_000;

/**
 * A lease that covers the rest of the invocation: `min(max, remaining + safety)` milliseconds,
 * at least 10.
 *
 * @throws {InvalidArgumentError} if `context` has no `getRemainingTimeInMillis()`, or for bad
 * options.
 *
 * @example
 * ```ts
 * export const handler = async (event: SQSEvent, context: Context) => {
 *   await using lease = await locker.acquire("nightly-export", leaseFor(context));
 *   await runExport({ fence: lease.fence });
 * };
 * ```
 */
export function leaseFor(context: LambdaContext, options: LeaseOptions = {}): number {
  return bounded(context, checkLeaseOptions(options));
}

/** Lease options once checked. */
export interface LeaseBounds {
  max: number;
  safety: number;
}

export function checkLeaseOptions(options: LeaseOptions | undefined): LeaseBounds {
  if (options === undefined) return { max: MAX_DURATION, safety: DEFAULT_LEASE_SAFETY };
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "lease",
      `lease options must be an object, got ${show(options)}`,
    );
  }
  return {
    max: checkDuration(options.max ?? MAX_DURATION, "max", MIN_TTL),
    safety: checkDuration(options.safety ?? DEFAULT_LEASE_SAFETY, "safety", 0),
  };
}

/** Milliseconds left in the invocation, checked. */
export function remainingTime(context: LambdaContext): number {
  if (typeof context?.getRemainingTimeInMillis !== "function") {
    throw new InvalidArgumentError(
      "context",
      `context must be a Lambda context with getRemainingTimeInMillis(), got ${show(context)}`,
    );
  }
  const remaining = context.getRemainingTimeInMillis();
  if (typeof remaining !== "number" || Number.isNaN(remaining)) {
    throw new InvalidArgumentError(
      "context",
      `getRemainingTimeInMillis() must return a number, got ${show(remaining)}`,
    );
  }
  return Math.max(0, Math.ceil(remaining));
}

export function bounded(context: LambdaContext, bounds: LeaseBounds): number {
  const lease = Math.min(bounds.max, remainingTime(context) + bounds.safety, MAX_DURATION);
  return Math.max(MIN_TTL, lease);
}

/**
 * How long to wait for a key held by someone else: `wait`, but at most half the time left for
 * Redis (the remaining time less the deadline `margin`).
 */
export function waitFor(context: LambdaContext, wait: number, margin: number): number {
  if (wait === 0) return 0;
  return Math.min(wait, Math.floor(Math.max(0, remainingTime(context) - margin) / 2));
}
