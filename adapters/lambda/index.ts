/**
 * AWS Lambda glue: leases bounded by the invocation's remaining time, wrappers for
 * `(event, context)` handlers, and middy middlewares for locks and idempotency.
 *
 * - **One lease, no heartbeat.** A function cannot outlive `context.getRemainingTimeInMillis()`,
 *   so a lease of the remaining time plus a small safety margin covers the whole invocation. No
 *   timer renews it, and when an invocation times out or crashes, the key frees itself about one
 *   second after the deadline: the retry proceeds at once instead of waiting out a fixed lease.
 * - **Everything awaited.** Lambda has no `waitUntil` and freezes the sandbox when the handler's
 *   promise settles, so releases and stored results complete before it does.
 * - **Within the deadline.** Every Redis request ends a margin (200 ms) before the invocation's
 *   deadline, so a Redis out of reach gives `LOCK_UNAVAILABLE` the handler can still answer,
 *   never Lambda's "Task timed out".
 * - **Middy without middy.** The middlewares are plain `{ before, after, onError }` objects typed
 *   structurally; `@middy/core` is not imported.
 *
 * Web-standard APIs only (Web Crypto for record keys), so it also bundles for other runtimes.
 *
 * @see {@link https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html} the Lambda context
 * @see {@link https://middy.js.org/docs/writing-middlewares/intro} writing middy middlewares
 *
 * @module
 */

export { DEFAULT_DEADLINE_MARGIN } from "./deadline.js";
export { type HttpEvent, headerKey } from "./header-key.js";
export {
  type LambdaIdempotencyOptions,
  lambdaWithIdempotency,
} from "./idempotency.js";
export {
  DEFAULT_LEASE_SAFETY,
  type LambdaContext,
  type LeaseOptions,
  leaseFor,
} from "./lease.js";
export { type LambdaLockOptions, lambdaWithLock } from "./lock.js";
export {
  idempotencyMiddleware,
  type LockMiddlewareOptions,
  lockMiddleware,
  type MiddyMiddleware,
  type MiddyRequest,
} from "./middy.js";
