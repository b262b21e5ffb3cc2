/**
 * Redlock: one lock over N independent Redis instances (no replication between them), held when
 * a majority holds it, so it survives the loss of any minority.
 *
 * The adapter is a {@link LockAdapter} like any other, so the whole locker works on top of it
 * unchanged: acquire, using, withLock, keep-alive, typed errors. Each of the core's scripts is
 * sent to every instance at once, each instance with its own deadline, and the replies are
 * combined by a quorum of ⌊N/2⌋ + 1:
 *
 * - acquire: taken when a quorum granted it and then raised its fencing counter to the lease's
 *   fence; otherwise this token is released on every instance before the caller hears "held by
 *   someone else" (a quorum is impossible) or `LOCK_UNAVAILABLE` (too many instances failed);
 * - extend and release: done when a quorum did it;
 * - inspect: what a quorum holds.
 *
 * Validity: the locker starts its clock (monotonic) before the request and subtracts the whole
 * round plus the drift allowance, so a lease never outlives the instances' locks, and a grant that
 * arrives with no validity left is released instead of returned.
 *
 * Fences stay increasing across instances: each instance mints `max(counter + 1, its clock in
 * µs)`, the lease gets the largest of the grants, and a quorum must write that value back to its
 * counters before the lease is handed out, so any later quorum, which shares an instance with it,
 * mints above it. An instance that restarts empty mints from its clock: a fence can go back only
 * if a later quorum is made entirely of instances that lost (or never got) the raised counter and
 * whose clocks lag the one that minted the last fence. A raised counter is kept for the locker's
 * `fenceRetention` (24 h by default) and then expires; the instance's clock has by then passed
 * the fence, unless it lags the instance that minted it by more than the retention. Keep server
 * clocks synchronized, never stepped back.
 *
 * Caveats, as in the Redis documentation's analysis of Redlock: an instance that restarts
 * without persistence while a lease is valid forgets that lease, and another client may then
 * assemble a quorum (two holders at once). Run the instances with `appendfsync always`, or keep a
 * crashed instance down for at least the longest ttl before it rejoins. Even then, pass
 * `lease.fence` to the protected resource: it is what stops a former holder that outlived its
 * lease (a pause, a clock that ran fast).
 *
 * A request that times out on an instance may still run there later and leave this token's lock
 * behind; it blocks nobody for longer than its lease (over ioredis the release sent after it on
 * the same connection removes it). Release notifications are not offered (waiters poll with
 * jittered backoff), and only the lock scripts are supported (not the idempotency store's).
 *
 * @module
 */

import {
  acquireScript,
  checkDuration,
  describeValue,
  extendScript,
  InvalidArgumentError,
  inspectScript,
  type LockAdapter,
  releaseScript,
} from "edgelock";
import { acquireOnQuorum } from "./acquire.js";
import type { Cluster } from "./fan-out.js";
import { inspectOnQuorum } from "./inspect.js";
import { voteOnQuorum } from "./votes.js";

/** Options of {@link redlockAdapter}. */
export interface RedlockOptions {
  /**
   * How long one instance may take to answer one script, in milliseconds; a slower instance
   * counts as failed for that call. Keep it well below the ttl: an acquire that needs a slow
   * instance for its quorum spends this much of the lease.
   * @default 500
   */
  timeout?: number;
}

/**
 * Creates a quorum transport over independent Redis instances, one adapter each. Give each
 * instance adapter a client that fails fast (ioredis: `enableOfflineQueue: false`, or a small
 * `maxRetriesPerRequest`) and turn off its notifications, which are not used.
 *
 * @param instances one adapter per independent Redis (an odd number: 1, 3, 5, ...), each a
 *   different object; the adapter cannot tell if two of them reach the same server. Tested over
 *   `ioredisAdapter`; any `LockAdapter` works the same way.
 * @throws {InvalidArgumentError} before any request, for an empty or even list, a repeated
 *   adapter, something that is not a `LockAdapter`, or a bad timeout.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { createLocker } from "edgelock";
 * import { ioredisAdapter } from "edgelock/ioredis";
 * import { redlockAdapter } from "edgelock/redlock";
 *
 * const instances = ["redis://a:6379", "redis://b:6379", "redis://c:6379"].map((url) =>
 *   ioredisAdapter(new Redis(url, { enableOfflineQueue: false }), { notifications: false }),
 * );
 * const locker = createLocker({ adapter: redlockAdapter(instances, { timeout: 200 }) });
 * await locker.using("report", 10_000, async (lease) => write({ fence: lease.fence }));
 * ```
 */
export function redlockAdapter(
  instances: readonly LockAdapter[],
  options: RedlockOptions = {},
): LockAdapter {
  const cluster = checkCluster(instances, options);
  return {
    name: `redlock(${cluster.instances.length})`,
    evalScript: async (script, keys, args) => {
      switch (script.sha1) {
        case acquireScript.sha1:
          return acquireOnQuorum(cluster, keys, args);
        case releaseScript.sha1:
        case extendScript.sha1:
          return voteOnQuorum(cluster, script, keys, args);
        case inspectScript.sha1:
          return inspectOnQuorum(cluster, keys, args);
        default:
          throw new InvalidArgumentError(
            "script",
            `redlockAdapter runs only the lock's acquire, extend, release and inspect scripts, not "${script.name}"`,
          );
      }
    },
  };
}

/** Checks the instances and options, and computes the quorum. */
function checkCluster(instances: readonly LockAdapter[], options: RedlockOptions): Cluster {
  if (!Array.isArray(instances) || instances.length === 0) {
    throw new InvalidArgumentError(
      "instances",
      `redlockAdapter needs a non-empty array of LockAdapters, one per Redis instance, got ${describeValue(instances)}`,
    );
  }
  instances.forEach((instance: unknown, index) => {
    const adapter = instance as Partial<LockAdapter> | null | undefined;
    if (typeof adapter?.evalScript !== "function") {
      throw new InvalidArgumentError(
        `instances[${index}]`,
        `instances[${index}] must be a LockAdapter (with evalScript), got ${describeValue(instance)}`,
      );
    }
    const first = instances.indexOf(instance as LockAdapter);
    if (first !== index) {
      throw new InvalidArgumentError(
        `instances[${index}]`,
        `instances[${index}] is the same adapter as instances[${first}]: each must reach a different Redis`,
      );
    }
  });
  if (instances.length % 2 === 0) {
    throw new InvalidArgumentError(
      "instances",
      `redlockAdapter needs an odd number of instances (an even one tolerates no more failures than one fewer), got ${instances.length}`,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", "options must be an object");
  }
  return {
    instances: [...instances],
    quorum: Math.floor(instances.length / 2) + 1,
    timeout: checkDuration(options.timeout ?? 500, "timeout", 1),
  };
}
