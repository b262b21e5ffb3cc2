/**
 * The one error type the gateway answers with: an HTTP status and a message that becomes the JSON
 * body `{"error": message}`. The `@upstash/redis` client reads `error` on every non-2xx status,
 * so every failure the gateway reports takes this shape, never text or HTML.
 *
 * @module
 */

/** The statuses the gateway answers errors with. */
export type GatewayErrorStatus = 400 | 401 | 404 | 405 | 413 | 500 | 503;

/** The JSON body of every error response. */
export interface GatewayErrorBody {
  error: string;
}

/** The message of every authentication failure, as Upstash documents it. */
export const WRONGPASS = "WRONGPASS invalid or missing auth token";

/**
 * A failure to answer with a status and a JSON `{"error"}` body.
 *
 * - 400: a Redis error reply, a bad body, a blocked command, a write with a read-only token;
 * - 401: authentication; 404: unknown path; 405: not POST; 413: body over the limit;
 * - 503: Redis unreachable or a command timed out (the command may or may not have run).
 *
 * @example
 * ```ts
 * throw new GatewayError(400, "ERR the request body is not valid JSON");
 * ```
 */
export class GatewayError extends Error {
  override readonly name = "GatewayError";

  constructor(
    /** The HTTP status of the response. */
    readonly status: GatewayErrorStatus,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The response body: `{"error": message}`. */
  toJSON(): GatewayErrorBody {
    return { error: this.message };
  }
}
