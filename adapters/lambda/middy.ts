import type {
  BegunCall,
  Claim,
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  Lease,
  Locker,
  LockTimeoutError,
} from "edgelock";
import { checkFunction, settleLease } from "edgelock";
import { checkLocker, checkObject } from "./checks.js";
import { InvocationDeadline } from "./deadline.js";
import {
  LambdaIdempotency,
  type LambdaIdempotencyOptions,
  type lambdaWithIdempotency,
} from "./idempotency.js";
import type { LambdaContext, LeaseOptions, leaseFor } from "./lease.js";
import { acquire, checkLockOptions, type LambdaLockOptions, reportRelease } from "./lock.js";
import { timedOutEarly, watchForTimeout } from "./middy-timeout.js";

/** The part of a middy request the middlewares use (`middy.Request`, typed structurally). */
export interface MiddyRequest<E = unknown, R = unknown, C extends LambdaContext = LambdaContext> {
  event: E;
  context: C;
  response: R | null | undefined;
  /** Set to short-circuit: middy then skips the handler and every other middleware. */
  earlyResponse?: R | null | undefined;
  error: unknown;
  internal?: unknown;
}

/** A middy middleware object (`middy.MiddlewareObj`, typed structurally). */
export interface MiddyMiddleware<
  E = unknown,
  R = unknown,
  C extends LambdaContext = LambdaContext,
> {
  name?: string;
  before?: (request: MiddyRequest<E, R, C>) => Promise<R | undefined>;
  after?: (request: MiddyRequest<E, R, C>) => Promise<void>;
  onError?: (request: MiddyRequest<E, R, C>) => Promise<void>;
}

/** Options of {@link lockMiddleware}. */
export interface LockMiddlewareOptions<E, C extends LambdaContext> {
  /** The lock client, from `createLocker({ adapter })`; create it outside the handler. */
  locker: Locker;
  /** The lock's name for an invocation (at most 1024 characters). */
  key: (event: E, context: C) => string | PromiseLike<string>;
  /**
   * How long to wait for a lock held by someone else, in milliseconds (at most half the
   * remaining time less the `margin`); 0 makes one attempt.
   * @default 0
   */
  wait?: number;
  /** How the lease is sized from the remaining time; see {@link leaseFor}. */
  lease?: LeaseOptions;
  /**
   * Also put the lease on the context, as `context.lease`, for the handler (middy's
   * `setToContext` convention).
   * @default false
   */
  setToContext?: boolean;
  /** Told about a release that failed; never thrown (the lease ends just after the deadline). */
  onReleaseError?: (error: unknown) => void;
  /**
   * How long before the invocation's deadline every Redis request must be done, in
   * milliseconds (see {@link LambdaLockOptions.margin}).
   * @default 200
   */
  margin?: number;
}

/**
 * Middy middleware: the handler runs only while holding the lock named by `key`.
 *
 * - `before` takes the lock with a lease covering the remaining time. If it stays held, the
 *   {@link LockTimeoutError} is thrown: it carries `statusCode: 409`, `expose: true` and a
 *   `Retry-After` header from the holder's remaining lease, so `@middy/http-error-handler`
 *   turns it into a 409 response as it is.
 * - `after` releases the lock, and `onError` releases it after an error, before the invocation
 *   ends. The error is left untouched for the middlewares after it, and a failed release never
 *   masks it. If the lease was lost before its release (the release found another holder's
 *   token: Redis restarted without persistence or failed over), `after` throws the
 *   `LockLostError` (code `LOCK_LOST`) instead of letting the handler's response stand.
 * - When middy times the handler out (`timeoutEarlyInMillis`), the lock is kept: the handler may
 *   still be running, and the lease ends just after the deadline anyway. This holds in any
 *   order of the middlewares (`@middy/http-error-handler` before or after this one): middy's
 *   timeout is told by the mark middy puts on it, not by its name, so a `TimeoutError` the
 *   handler throws itself (`AbortSignal.timeout` on a `fetch`) releases the lock like any error.
 *   A `timeoutEarlyResponse` that returns a response instead of throwing cannot be told from
 *   the handler's own: keep middy's default.
 *
 * @example
 * ```ts
 * export const handler = middy(transfer)
 *   .use(httpErrorHandler())
 *   .use(lockMiddleware({ locker, key: (event) => `account:${event.pathParameters.id}` }));
 * ```
 */
export function lockMiddleware<E = unknown, R = unknown, C extends LambdaContext = LambdaContext>(
  options: LockMiddlewareOptions<E, C>,
): MiddyMiddleware<E, R, C> {
  checkObject(options, "options");
  const locker = checkLocker(options.locker);
  checkFunction(options.key, "key");
  const settings = checkLockOptions(options);
  /** What each request in flight holds: its own, never another middleware's or request's. */
  const held = new WeakMap<object, { key: string; lease?: Lease; deadline: InvocationDeadline }>();

  /**
   * Ends the request's hold: releases its lease unless `keep`, and clears its deadline; resolves
   * with the lease's loss if it was not held to the end.
   */
  const end = async (request: MiddyRequest<E, R, C>, keep = false): Promise<unknown> => {
    const hold = held.get(request);
    if (!hold) return undefined;
    held.delete(request);
    const { key, lease, deadline } = hold;
    try {
      if (!lease || keep) return undefined;
      const onReleaseError = settings.onReleaseError && reportRelease(deadline, key, settings);
      return await settleLease(lease, { onReleaseError, signal: deadline.signal });
    } finally {
      deadline.dispose();
    }
  };

  return {
    name: "edgelock-lock",
    before: async (request) => {
      held.delete(request);
      watchForTimeout(request);
      const key = await options.key(request.event, request.context);
      const deadline = new InvocationDeadline(request.context, settings.margin);
      const hold: { key: string; lease?: Lease; deadline: InvocationDeadline } = { key, deadline };
      held.set(request, hold);
      hold.lease = await acquire(locker, key, request.context, settings, deadline);
      if (options.setToContext) Object.assign(request.context as object, { lease: hold.lease });
      return undefined;
    },
    after: async (request) => {
      const lost = await end(request);
      if (lost !== undefined) throw lost; // never let the handler's result stand
    },
    onError: async (request) => {
      // Timed out by middy, the handler may still be running: the lease ends after the deadline.
      await end(request, timedOutEarly(request));
    },
  };
}

/**
 * Middy middleware: idempotent invocations, with the semantics of
 * {@link lambdaWithIdempotency} (the options are the same). Records belong to the Lambda
 * function (`context.functionName`), or to `scope`.
 *
 * - `before` claims the key. A finished duplicate short-circuits: `before` returns the stored
 *   response (with `Idempotent-Replayed: true` on HTTP-shaped responses), so middy skips the
 *   handler and every other middleware's `after`. A duplicate in progress throws
 *   {@link IdempotencyConflictError} (409, `Retry-After`), a key reused for a different request
 *   {@link IdempotencyKeyReusedError} (422): `@middy/http-error-handler` maps both.
 * - `after` stores `request.response`, awaited.
 * - `onError` frees the key (or holds it, per `onThrow`), leaving the error untouched for the
 *   middlewares after it. When middy times the handler out, the key stays claimed until its
 *   lease ends, in any middleware order, as {@link lockMiddleware} keeps its lock.
 *
 * Order: the response stored and replayed is the one this middleware's `after` sees, so `use`
 * it before (outside) the middlewares that shape the response, such as http-response-serializer
 * and http-cors: a replay then returns the finished response. Its `key` and `fingerprint` then
 * see the raw event (headers as the client sent them).
 *
 * @example
 * ```ts
 * export const handler = middy(createOrder)
 *   .use(
 *     idempotencyMiddleware({
 *       adapter,
 *       key: headerKey(), // the Idempotency-Key header: 400 if invalid or repeated
 *       scope: (event) => event.requestContext.authorizer.jwt.claims.sub, // the caller
 *     }),
 *   )
 *   .use(httpErrorHandler());
 * ```
 */
export function idempotencyMiddleware<
  E = unknown,
  R = unknown,
  C extends LambdaContext = LambdaContext,
>(options: LambdaIdempotencyOptions<E, C, R>): MiddyMiddleware<E, R, C> {
  const flow = new LambdaIdempotency(options);
  /** The claim of each request in flight (reset per request: `internal` may be reused). */
  const claims = new WeakMap<object, { claim?: Claim; deadline: InvocationDeadline }>();

  /** Forgets the request's claim and clears its deadline. */
  const end = (request: MiddyRequest<E, R, C>): void => {
    claims.get(request)?.deadline.dispose();
    claims.delete(request);
  };

  return {
    name: "edgelock-idempotency",
    before: async (request) => {
      claims.delete(request);
      watchForTimeout(request);
      const deadline = flow.deadline(request.context);
      const entry: { claim?: Claim; deadline: InvocationDeadline } = { deadline };
      claims.set(request, entry);
      let begun: BegunCall<Awaited<R>> | undefined;
      try {
        const claimRequest = await flow.request(request.event, request.context, deadline.signal);
        begun = claimRequest && (await flow.results.begin(claimRequest));
      } finally {
        if (begun?.kind === "run") entry.claim = begun.claim;
        else end(request);
      }
      if (begun?.kind !== "replay") return undefined;
      // middy ≥ 6 honours earlyResponse even when the stored response is undefined.
      request.earlyResponse = begun.result as R;
      return begun.result as R | undefined;
    },
    after: async (request) => {
      const entry = claims.get(request);
      const claim = entry?.claim;
      if (claim) await flow.results.complete(claim, request.response as Awaited<R>);
      end(request);
    },
    onError: async (request) => {
      const entry = claims.get(request);
      const claim = entry?.claim;
      // Timed out by middy, the handler may still be running: the key stays claimed.
      if (claim) await flow.results.fail(claim, timedOutEarly(request) ? "hold" : undefined);
      end(request);
    },
  };
}
