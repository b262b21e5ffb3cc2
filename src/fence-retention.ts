/**
 * How long a lock's fencing counter (`<prefix>:{<key>}:fence`) is kept after its last use, and
 * why a day is enough.
 *
 * A grant's fence is `max(counter + 1, server TIME in µs)`. The clock term alone puts each fence
 * above the last one whenever the server clock has moved forward in between, so the counter
 * matters only while the clock is behind a fence already handed out. That happens when the server
 * clock is stepped back (an NTP step, a leap second, a virtual machine restored or migrated, a
 * clock set by hand), after a failover to a server whose clock lags, and with Redlock, whose
 * counters are raised to the largest fence of the quorum, minted by whichever instance's clock
 * ran ahead; and, in theory, if fences were minted faster than one per µs. Call "lag" how far the
 * fence written into the counter is ahead of the server clock when it is written: 0 in every
 * other case.
 *
 * Redis expires the counter on the very clock that `TIME` reads: a counter written at server
 * time T and kept R ms is gone only once that clock reads T + R, so the next fence is then at
 * least T + R, while the last one was T + lag. Hence fences keep rising across an expired
 * counter as long as the lag stays below the retention: **fences survive any backward step of
 * the server clock (or skew between Redlock instances) shorter than the retention**, and nothing
 * longer. (On Redis, a step made after the last grant also delays the expiry, which follows the
 * clock back.)
 *
 * The default, 24 hours, survives every step back short of a day: leap seconds, NTP steps,
 * restored VMs, even a server clock kept in local time instead of UTC and then corrected (no time
 * zone is more than 14 hours from UTC). A longer retention adds only steps of more than a day,
 * which no sound operation makes, for proportionally more memory: each distinct key's counter
 * costs about 150 bytes of Redis memory while it is kept (measured in docs/fencing.md), so a
 * million new keys a day settle near 150 MB (a gigabyte at seven days). The minimum, 1 s, is a
 * leap second: below it even a healthy, NTP-synchronized server could send fences back.
 *
 * Whatever the retention, the counter lives at least as long as the lease it was minted or
 * renewed for (`max(lease, retention)`), so a retried acquire and `inspect` always find the
 * holder's fence.
 *
 * @module
 */

import { checkDuration } from "./validate.js";

/** The default of the `fenceRetention` option: 24 hours, in ms (see the module comment). */
export const FENCE_RETENTION = 24 * 60 * 60 * 1000;

/** The shortest `fenceRetention` accepted: 1 s, the step back of a leap second. */
export const MIN_FENCE_RETENTION = 1000;

/**
 * Checks a `fenceRetention` option: integer ms from {@link MIN_FENCE_RETENTION} to 2^31−1, or
 * undefined for the default.
 *
 * @example
 * ```ts
 * checkFenceRetention(undefined); // 86_400_000
 * checkFenceRetention(500); // throws: fenceRetention must be between 1000 and 2147483647 ...
 * ```
 */
export function checkFenceRetention(value: unknown): number {
  return checkDuration(value ?? FENCE_RETENTION, "fenceRetention", MIN_FENCE_RETENTION);
}

/**
 * How long to keep a counter touched for a lease of `ttl` ms (0 when there is none), as the
 * scripts' argument: the retention, or the lease if that is longer.
 */
export function counterRetention(ttl: number, retention: number): string {
  return String(Math.max(ttl, retention));
}
