/**
 * A transport whose one script fails: the idempotency store's renewals of a run that crashed,
 * or its writes after the work when Redis went away.
 */

import type { LockAdapter } from "edgelock";

/**
 * `adapter`, except that every call of the script named `script` rejects with `reason`.
 *
 * @example
 * ```ts
 * const crashed = failingScript(adapter, "idempotency-renew", "crashed"); // nobody renews
 * ```
 */
export function failingScript(adapter: LockAdapter, script: string, reason: string): LockAdapter {
  return {
    name: `${adapter.name}, ${script} failing`,
    evalScript: (called, keys, args) =>
      called.name === script
        ? Promise.reject(new Error(reason))
        : adapter.evalScript(called, keys, args),
  };
}
