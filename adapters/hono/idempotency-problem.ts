/**
 * The refusals of the Idempotency-Key middleware, as RFC 9457 problem details with a `code`
 * that tells the situations apart for machines.
 *
 * @module
 */

import type { IdempotencyConflictError } from "edgelock";

/** The `code` of each refusal of the Idempotency-Key middleware. */
export type IdempotencyProblemCode =
  /** 400: the route requires a key and there is none. */
  | "idempotency_key_missing"
  /**
   * 400: the key is not 1 to 255 printable ASCII characters (or fails `validate`), or the
   * request carries several `Idempotency-Key` headers.
   */
  | "idempotency_key_invalid"
  /** 413: the body is too large to fingerprint. */
  | "idempotency_body_too_large"
  /** 422: the key was used for a different request. Use a new key. */
  | "idempotency_key_reused"
  /** 409: the first request with the key is still running. Retry with the same key. */
  | "idempotency_request_in_progress"
  /** 409: the first request ran, but its response cannot be replayed (too large, or unknown). */
  | "idempotency_outcome_unknown"
  /** 503: the idempotency store cannot be reached; nothing ran. */
  | "idempotency_store_unavailable";

/** A refusal, before it is rendered. */
export interface IdempotencyProblem {
  /** The HTTP status. */
  status: 400 | 409 | 413 | 422 | 503;
  /** What happened, for machines. */
  code: IdempotencyProblemCode;
  /** The status's reason phrase. */
  title: string;
  /** What happened and what to do, for people. */
  detail: string;
  /** When to try again, in whole seconds (the `Retry-After` header), if it makes sense. */
  retryAfter?: number;
}

const TITLES = {
  400: "Bad Request",
  409: "Conflict",
  413: "Content Too Large",
  422: "Unprocessable Content",
  503: "Service Unavailable",
} as const;

/** Builds a refusal. */
export function idempotencyProblem(
  status: IdempotencyProblem["status"],
  code: IdempotencyProblemCode,
  detail: string,
  retryAfter?: number,
): IdempotencyProblem {
  return {
    status,
    code,
    title: TITLES[status],
    detail,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  };
}

/**
 * The refusal for an error of the idempotency flow (a key reused, a duplicate in progress, an
 * outcome that cannot be replayed, a store out of reach); undefined for any other error.
 */
export function problemOf(error: unknown, header: string): IdempotencyProblem | undefined {
  switch ((error as { code?: unknown } | null)?.code) {
    case "IDEMPOTENCY_KEY_REUSED":
      return idempotencyProblem(
        422,
        "idempotency_key_reused",
        `This ${header} was used for a different request: use a new key.`,
      );
    case "IDEMPOTENCY_IN_PROGRESS": {
      const seconds = Math.max(1, Math.ceil((error as IdempotencyConflictError).retryAfter / 1000));
      const detail = `A request with this ${header} is in progress; retry with the same key in ${seconds} s.`;
      return idempotencyProblem(409, "idempotency_request_in_progress", detail, seconds);
    }
    case "IDEMPOTENCY_OUTCOME_UNKNOWN":
      return idempotencyProblem(
        409,
        "idempotency_outcome_unknown",
        `The request with this ${header} was processed, but its response cannot be replayed.`,
      );
    case "LOCK_UNAVAILABLE":
      return idempotencyProblem(
        503,
        "idempotency_store_unavailable",
        "The idempotency store is unreachable; nothing was processed.",
        1,
      );
    default:
      return undefined;
  }
}
