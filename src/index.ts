/**
 * edgelock: a distributed lock over Redis for serverless and edge code.
 *
 * @example
 * ```ts
 * import { createLocker } from "edgelock";
 * import { memoryAdapter } from "edgelock/memory";
 *
 * const locker = createLocker({ adapter: memoryAdapter() });
 * const run = locker.withLock("nightly", 30_000, async () => "done");
 * await run();
 * ```
 *
 * @module
 */

export type {
  LockAdapter,
  LockScript,
  ScriptEmulation,
  ScriptHost,
  Unsubscribe,
} from "./adapter.js";
export { emulationOf } from "./emulations.js";
export {
  InvalidArgumentError,
  LockConfigError,
  LockError,
  type LockErrorCode,
  type LockErrorDetails,
  LockLostError,
  LockNotOpenedError,
  LockTimeoutError,
  LockUnavailableError,
} from "./errors.js";
export { FENCE_RETENTION, MIN_FENCE_RETENTION } from "./fence-retention.js";
export { type HoldingOptions, type HoldOptions, holding, settleLease } from "./hold.js";
export { Claim, type ClaimSettings } from "./idempotency/claim.js";
export { canonicalJson, sha256Hex } from "./idempotency/digest.js";
export {
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyReusedError,
  IdempotencyOutcomeUnknownError,
} from "./idempotency/errors.js";
export {
  type Begun,
  type ClaimRequest,
  IdempotencyFlow,
  type IdempotencyFlowOptions,
} from "./idempotency/flow.js";
export {
  checkIdempotencyKey,
  isRepeatedField,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  parseIdempotencyKey,
} from "./idempotency/key.js";
export { type StoreResponsesPolicy, storesStatus } from "./idempotency/policy.js";
export {
  type BegunCall,
  type CallOutcome,
  IdempotentResults,
  type OnThrow,
  type ResultPolicy,
} from "./idempotency/results.js";
export {
  type BeginOutcome,
  IdempotencyStore,
  type IdempotencyStoreOptions,
  type StoredOutcome,
} from "./idempotency/store.js";
export {
  DEFAULT_LEASE,
  DEFAULT_RETENTION,
  type IdempotencyOptions,
  type IdempotentFunction,
  withIdempotency,
} from "./idempotency/with-idempotency.js";
export { type KeepAliveOptions, keepAlive } from "./keep-alive.js";
export { inboxName, type LockNames, lockInboxName, lockNames } from "./keys.js";
export { Lease } from "./lease.js";
export {
  type AcquireOptions,
  createLocker,
  type HoldLockOptions,
  Locker,
  type LockerOptions,
  type LockState,
  type SignalOptions,
} from "./locker.js";
export { evalWithFallback, isNoScriptError } from "./noscript.js";
export {
  type LockCallback,
  type LockContext,
  RedisLock,
  type RedisLockOptions,
} from "./redis-lock/redis-lock.js";
export type { LockConnection, LockTransport, RedisTarget } from "./redis-lock/transport.js";
export { acquireScript } from "./scripts/acquire.js";
export { extendScript } from "./scripts/extend.js";
export { HAND_OFF_BUDGET } from "./scripts/hand-off.js";
export { inspectScript } from "./scripts/inspect.js";
export { releaseScript } from "./scripts/release.js";
export {
  checkDuration,
  checkFunction,
  checkWellFormed,
  describeValue,
  MAX_DURATION,
  MAX_KEY_LENGTH,
  MIN_TTL,
} from "./validate.js";
