/**
 * Which HTTP outcomes are kept for replay: the one policy the HTTP front ends share (the Hono
 * middleware's responses, and HTTP-shaped results of the Lambda wrappers).
 *
 * @module
 */

/** Which responses are stored for replay (the others free the key, so a retry runs again). */
export type StoreResponsesPolicy =
  /**
   * 2xx, 3xx and 4xx except authentication failures (401, 403: the retry may carry fresh
   * credentials) and the transient 408, 409, 425 and 429.
   */
  | "non-5xx"
  /** 2xx and 3xx. */
  | "success"
  /** Every status, 5xx included (Stripe, and the IETF draft). */
  | "all";

/**
 * Statuses a retry may well change: authentication failures and transient conditions. Never
 * stored under `"non-5xx"`.
 */
const TRANSIENT: ReadonlySet<number> = new Set([401, 403, 408, 409, 425, 429]);

/**
 * Whether a response with a status is stored under `policy`.
 *
 * @example
 * ```ts
 * storesStatus("non-5xx")(201); // true
 * storesStatus("non-5xx")(503); // false: a retry may well succeed
 * storesStatus("non-5xx")(401); // false: the retry may carry fresh credentials
 * ```
 */
export function storesStatus(policy: StoreResponsesPolicy): (status: number) => boolean {
  if (policy === "all") return () => true;
  if (policy === "success") return (status) => status >= 200 && status < 400;
  return (status) => status < 500 && !TRANSIENT.has(status);
}
