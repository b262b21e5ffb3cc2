/**
 * Retrying a request whose outcome may be unknown. Every script edgelock runs is idempotent for
 * its token, so a failed request (a timeout, a lost reply, a mangled reply) is simply sent again
 * with the same arguments.
 *
 * @module
 */

import { sleep } from "./time.js";

/** The first pause before retrying a failed request, in ms (doubled each time, jittered). */
const RETRY_PAUSE = 20;

/**
 * Calls `request` until it resolves, at most `retries + 1` times, pausing 20 ms, 40 ms, ...
 * (jittered) in between; rejects with the last failure, as `fail` maps it.
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
): Promise<T> {
  // Chained with `catch`, not an async loop: a request that succeeds (nearly all of them) costs
  // one promise here, and this sits on every lock operation's path.
  const attempt = (made: number): Promise<T> =>
    started(request).catch(async (error: unknown) => {
      if (made >= retries) throw fail(error);
      await sleep(RETRY_PAUSE * 2 ** made * (0.5 + Math.random())).done;
      return attempt(made + 1);
    });
  return attempt(0);
}

/** `request()`, with a synchronous throw turned into a rejection. */
function started<T>(request: () => Promise<T>): Promise<T> {
  try {
    return request();
  } catch (error) {
    return Promise.reject(error);
  }
}
