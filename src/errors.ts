/**
 * The `LockError` family. Every failure edgelock reports is one of these, and its `code` tells the
 * three situations a caller must handle differently apart:
 *
 * - `LOCK_TIMEOUT`: someone else holds the lock and it did not come free in time (contention);
 * - `LOCK_UNAVAILABLE`: Redis or the transport failed, so nothing is known (the cause is attached);
 * - `LOCK_LOST`: a lease this process held has expired or been taken over;
 * - `INVALID_ARGUMENT`: the call was rejected before anything was sent;
 * - `INVALID_CONFIG`, `NOT_OPENED`: the {@link RedisLock} component was misconfigured or used
 *   before `open`.
 *
 * @module
 */

/** The `code` of every {@link LockError}. */
export type LockErrorCode =
  | "LOCK_TIMEOUT"
  | "LOCK_UNAVAILABLE"
  | "LOCK_LOST"
  | "INVALID_ARGUMENT"
  | "INVALID_CONFIG"
  | "NOT_OPENED"
  | "IDEMPOTENCY_KEY_REUSED"
  | "IDEMPOTENCY_IN_PROGRESS"
  | "IDEMPOTENCY_OUTCOME_UNKNOWN";

/** What every {@link LockError} may carry besides its message. */
export interface LockErrorDetails {
  /** The lock key the operation was about (the caller's key, without the prefix). */
  key?: string;
  /** The underlying error, if any. */
  cause?: unknown;
  /** The trace id of the call chain (pip-services' correlation id), when the caller gave one. */
  traceId?: string | undefined;
  /** More facts about the failure, pip-services style (for example `{ key }`). */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * Base class of every error edgelock throws. Test `code` rather than the class when errors cross
 * package copies or realms.
 *
 * @example
 * ```ts
 * try {
 *   await locker.acquire("report", 10_000, { timeout: 2_000 });
 * } catch (error) {
 *   if (error instanceof LockError && error.code === "LOCK_TIMEOUT") return; // someone else runs it
 *   throw error;
 * }
 * ```
 */
export class LockError extends Error {
  /** Which kind of failure this is. */
  readonly code: LockErrorCode;
  /** The lock key, when the error is about one. */
  readonly key: string | undefined;
  /** The trace id of the call chain, when the caller gave one. */
  traceId: string | undefined;
  /** More facts about the failure (always includes `key` when there is one). */
  details: Readonly<Record<string, unknown>>;

  constructor(code: LockErrorCode, message: string, details: LockErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.key = details.key;
    this.traceId = details.traceId;
    this.details = {
      ...(details.key === undefined ? {} : { key: details.key }),
      ...details.details,
    };
  }
}

/** The lock stayed held by someone else until the wait ran out (`code: "LOCK_TIMEOUT"`). */
export class LockTimeoutError extends LockError {
  /** How long the caller was willing to wait, in milliseconds. */
  readonly timeout: number;
  /** How many acquisition attempts were made. */
  readonly attempts: number;
  /**
   * The holder's remaining lease at the last attempt, in ms (-1 when unknown): when to try
   * again, for a `Retry-After` header.
   */
  readonly holderTtl: number;
  /** 409 Conflict, for HTTP error handlers (middy's http-error-handler, Express). */
  readonly statusCode = 409;
  readonly status = 409;
  readonly expose = true;
  /** `Retry-After`: the holder's remaining lease in whole seconds (at least 1; 1 when unknown). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(key: string, timeout: number, attempts: number, holderTtl = -1) {
    super("LOCK_TIMEOUT", `lock "${key}" is held by someone else (waited ${timeout} ms)`, { key });
    this.timeout = timeout;
    this.attempts = attempts;
    this.holderTtl = holderTtl;
    this.headers = { "Retry-After": String(Math.max(1, Math.ceil(holderTtl / 1000))) };
  }
}

/**
 * Redis or the transport failed (`code: "LOCK_UNAVAILABLE"`): the outcome is unknown, not "held".
 * The transport's error is the `cause`.
 */
export class LockUnavailableError extends LockError {
  /** The operation that failed: `"acquire"`, `"release"`, `"extend"` or `"inspect"`. */
  readonly operation: string;
  /**
   * 503 Service Unavailable, for HTTP error handlers (middy's http-error-handler, Express). The
   * message, which handlers that honour `expose` show, names the transport's failure (never a
   * token or password).
   */
  readonly statusCode = 503;
  readonly status = 503;
  readonly expose = true;
  /** `Retry-After: 1`: nothing ran, so the same request can be sent again. */
  readonly headers: Readonly<Record<string, string>> = { "Retry-After": "1" };

  /**
   * @param secret a token to keep out of the message: transports may quote the failed command.
   */
  constructor(operation: string, key: string | undefined, cause: unknown, secret?: string) {
    const reason = describe(cause);
    // A short secret (a weak password) could be cut out of ordinary words: withhold the reason.
    const short = secret !== undefined && secret.length < 8 && reason.includes(secret);
    const shown = short
      ? "(reason withheld)"
      : secret
        ? reason.replaceAll(secret, "<token>")
        : reason;
    const what = key === undefined ? "" : ` lock "${key}"`;
    super("LOCK_UNAVAILABLE", `cannot ${operation}${what}: ${shown}`, { key, cause });
    this.operation = operation;
  }
}

/** A lease this process held is no longer held: it expired or was taken over (`LOCK_LOST`). */
export class LockLostError extends LockError {
  constructor(key: string, reason: string, cause?: unknown) {
    super("LOCK_LOST", `lock "${key}" was lost: ${reason}`, { key, cause });
  }
}

/** An argument was rejected before any network call (`code: "INVALID_ARGUMENT"`). */
export class InvalidArgumentError extends LockError {
  /** The name of the rejected argument. */
  readonly argument: string;

  constructor(argument: string, message: string) {
    super("INVALID_ARGUMENT", message);
    this.argument = argument;
  }
}

/**
 * A {@link RedisLock} configuration value is missing or malformed (`code: "INVALID_CONFIG"`).
 * `details.config` names the configuration key.
 */
export class LockConfigError extends LockError {
  /** The configuration key at fault, such as `connection.port`. */
  readonly configKey: string;

  constructor(configKey: string, message: string) {
    super("INVALID_CONFIG", `${configKey}: ${message}`, { details: { config: configKey } });
    this.configKey = configKey;
  }
}

/** A {@link RedisLock} method was called before `open` or after `close` (`code: "NOT_OPENED"`). */
export class LockNotOpenedError extends LockError {
  constructor(traceId?: string) {
    super("NOT_OPENED", "the lock component is not opened", { traceId });
  }
}

/** A one-line description of an unknown thrown value, for messages. */
function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
