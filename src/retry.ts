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
 * (jittered) in between; rejects with the last failure.
 *
 * @example
 * ```ts
 * const reply = await retried(2, () => adapter.evalScript(script, keys, args));
 * ```
 */
export async function retried<T>(retries: number, request: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (attempt >= retries) throw error;
      await sleep(RETRY_PAUSE * 2 ** attempt * (0.5 + Math.random())).done;
    }
  }
}
