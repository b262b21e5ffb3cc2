/**
 * Hono middleware over edgelock: `lock()` runs a handler only while holding a lock.
 *
 * @module
 */

export {
  type IdempotencyEnv,
  type IdempotencyInfo,
  type IdempotencyMiddlewareOptions,
  type IdempotencyVariables,
  idempotency,
  type OnThrowPolicy,
  type StoreResponsesPolicy,
} from "./idempotency.js";
export type { IdempotencyProblem, IdempotencyProblemCode } from "./idempotency-problem.js";
export {
  type LockContentionInfo,
  type LockEnv,
  type LockOptions,
  type LockUnavailableInfo,
  type LockVariables,
  lock,
} from "./lock.js";
