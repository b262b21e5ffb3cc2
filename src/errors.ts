/**
 * The `LockError` family. Every failure edgelock reports is one of these, and its `code` tells the
 * three situations a caller must handle differently apart:
 *
 * - `LOCK_TIMEOUT`: someone else holds the lock and it did not come free in time (contention);
 * - `LOCK_UNAVAILABLE`: Redis or the transport failed, so nothing is known (the cause is attached);
 * - `LOCK_LOST`: a lease this process held has expired or been taken over;
 * - `INVALID_ARGUMENT`: the call was rejected before anything was sent.
 *
 * @module
 */

/** The `code` of every {@link LockError}. */
export type LockErrorCode = "LOCK_TIMEOUT" | "LOCK_UNAVAILABLE" | "LOCK_LOST" | "INVALID_ARGUMENT";

/** What every {@link LockError} may carry besides its message. */
export interface LockErrorDetails {
  /** The lock key the operation was about (the caller's key, without the prefix). */
  key?: string;
  /** The underlying error, if any. */
  cause?: unknown;
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

  constructor(code: LockErrorCode, message: string, details: LockErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.key = details.key;
  }
}

/** The lock stayed held by someone else until the wait ran out (`code: "LOCK_TIMEOUT"`). */
export class LockTimeoutError extends LockError {
  /** How long the caller was willing to wait, in milliseconds. */
  readonly timeout: number;
  /** How many acquisition attempts were made. */
  readonly attempts: number;

  constructor(key: string, timeout: number, attempts: number) {
    super("LOCK_TIMEOUT", `lock "${key}" is held by someone else (waited ${timeout} ms)`, { key });
    this.timeout = timeout;
    this.attempts = attempts;
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
   * @param secret a token to keep out of the message: transports may quote the failed command.
   */
  constructor(operation: string, key: string, cause: unknown, secret?: string) {
    const reason = describe(cause);
    const shown = secret ? reason.replaceAll(secret, "<token>") : reason;
    super("LOCK_UNAVAILABLE", `cannot ${operation} lock "${key}": ${shown}`, { key, cause });
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

/** A one-line description of an unknown thrown value, for messages. */
function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
