/**
 * Retrying a request whose outcome may be unknown. Every script edgelock runs is idempotent for
 * its token, so a failed request (a lost reply, a reset connection, a mangled reply) is simply
 * sent again with the same arguments.
 *
 * Retries never stretch the caller's time: a request that ran out its transport's own deadline
 * (an error named `TimeoutError`) is not sent again, since the retry would wait as long once
 * more, and an aborted `signal` stops the retries at once.
 *
 * @module
 */

import { sleep } from "./time.js";

/** The first pause before retrying a failed request, in ms (doubled each time, jittered). */
const RETRY_PAUSE = 20;

/**
 * Calls `request` until it resolves, at most `retries + 1` times, pausing 20 ms, 40 ms, ...
 * (jittered) in between; rejects with the last failure, as `fail` maps it. A failure named
 * `TimeoutError` (the transport's deadline passed) is not retried. When `signal` aborts, rejects
 * with its reason before the next attempt (a request already sent is not waited for).
 *
 * @example
 * ```ts
 * const reply = await retried(2, () => adapter.evalScript(script, keys, args));
 * ```
 */
export function retried<T>(
  retries: number,
  request: () => Promise<T>,
  fail: (error: unknown) => unknown = (error) => error,
  signal?: AbortSignal,
): Promise<T> {
  // Chained with `catch`, not an async loop: a request that succeeds (nearly all of them) costs
  // one promise here, and this sits on every lock operation's path.
  const attempt = (made: number): Promise<T> =>
    started(request, signal).catch(async (error: unknown) => {
      if (signal?.aborted) throw signal.reason;
      if (made >= retries || isTimeout(error)) throw fail(error);
      await sleep(RETRY_PAUSE * 2 ** made * (0.5 + Math.random()), signal).done;
      return attempt(made + 1);
    });
  return attempt(0);
}

/** True for a transport's own deadline: an error (or DOMException) named `TimeoutError`. */
export function isTimeout(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === "TimeoutError";
}

/** `request()`, with a synchronous throw, or a signal aborted already, turned into a rejection. */
function started<T>(request: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  try {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return request();
  } catch (error) {
    return Promise.reject(error);
  }
}
