/**
 * Hono middleware over edgelock: `lock()` runs a handler only while holding a lock.
 *
 * @module
 */

export {
  type LockContentionInfo,
  type LockEnv,
  type LockOptions,
  type LockUnavailableInfo,
  type LockVariables,
  lock,
} from "./lock.js";
