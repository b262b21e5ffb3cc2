/**
 * `EVALSHA` with a fallback to `EVAL`, shared by the Redis adapters.
 *
 * @module
 */

import type { LockScript } from "./adapter.js";

/**
 * True only for a Redis `NOSCRIPT` error reply: one whose message starts with `NOSCRIPT`. An error
 * that merely mentions the word (a network error quoting a command, say) is not one.
 */
export function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/**
 * Runs `script` by SHA-1 and, only if Redis answers `NOSCRIPT`, once more with its full source.
 * Every other failure is passed through untouched.
 *
 * @example
 * ```ts
 * const reply = await evalWithFallback(
 *   script,
 *   (sha1) => client.evalsha(sha1, keys.length, ...keys, ...args),
 *   (lua) => client.eval(lua, keys.length, ...keys, ...args),
 * );
 * ```
 */
export function evalWithFallback<T>(
  script: LockScript,
  evalsha: (sha1: string) => Promise<T>,
  evalSource: (lua: string) => Promise<T>,
): Promise<T> {
  return evalsha(script.sha1).catch((error: unknown) => {
    if (!isNoScriptError(error)) throw error;
    return evalSource(script.lua);
  });
}
