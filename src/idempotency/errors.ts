/**
 * The errors of idempotent execution. They belong to the {@link LockError} family and carry what
 * HTTP error handlers look for (`statusCode`, `status`, `expose`, `headers`), so middy's
 * http-error-handler, Express and Hono can turn them into responses as they are.
 *
 * @module
 */

import { InvalidArgumentError, LockError } from "../errors.js";

/**
 * An idempotency key that is not 1 to 255 printable ASCII characters, or a request that carries
 * several (`code: "INVALID_ARGUMENT"`, 400): the client must send one valid key. Thrown before
 * any request to Redis.
 */
export class IdempotencyKeyInvalidError extends InvalidArgumentError {
  readonly statusCode = 400;
  readonly status = 400;
  readonly expose = true;
  readonly headers: Readonly<Record<string, string>> = {};

  constructor(message: string) {
    super("key", message);
  }
}

/**
 * The idempotency key was already used for a different request (`code:
 * "IDEMPOTENCY_KEY_REUSED"`, 422): the caller must fix the request or use a new key.
 */
export class IdempotencyKeyReusedError extends LockError {
  readonly statusCode = 422;
  readonly status = 422;
  readonly expose = true;
  readonly headers: Readonly<Record<string, string>> = {};

  constructor(key: string) {
    super("IDEMPOTENCY_KEY_REUSED", `idempotency key "${key}" was used for a different request`, {
      key,
    });
  }
}

/**
 * The first request with this idempotency key is still running (`code:
 * "IDEMPOTENCY_IN_PROGRESS"`, 409): retry the same request with the same key after
 * `retryAfter` ms.
 */
export class IdempotencyConflictError extends LockError {
  readonly statusCode = 409;
  readonly status = 409;
  readonly expose = true;
  /** When to try again, in ms. */
  readonly retryAfter: number;
  /** `Retry-After`, in whole seconds (at least 1). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(key: string, retryAfter: number) {
    super("IDEMPOTENCY_IN_PROGRESS", `a request with idempotency key "${key}" is in progress`, {
      key,
      details: { retryAfter },
    });
    this.retryAfter = retryAfter;
    this.headers = { "Retry-After": String(Math.max(1, Math.ceil(retryAfter / 1000))) };
  }
}

/**
 * The first request with this idempotency key ran, but its outcome cannot be replayed (`code:
 * "IDEMPOTENCY_OUTCOME_UNKNOWN"`, 409): it was too large or could not be stored, or the run
 * failed in a way that was kept (`onThrow: "hold"`). Running it again could repeat its effects,
 * so the key stays taken until the record expires.
 */
export class IdempotencyOutcomeUnknownError extends LockError {
  readonly statusCode = 409;
  readonly status = 409;
  readonly expose = true;
  readonly headers: Readonly<Record<string, string>> = {};

  /** @param cause why the stored outcome could not be read back, when it was stored. */
  constructor(key: string, cause?: unknown) {
    super(
      "IDEMPOTENCY_OUTCOME_UNKNOWN",
      `the request with idempotency key "${key}" ran, but its outcome cannot be replayed`,
      { key, cause },
    );
  }
}
