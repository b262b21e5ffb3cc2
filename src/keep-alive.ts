/**
 * Auto-extension: keeps a lease alive while a callback runs, with a chain of timers (never an
 * interval, so a slow extension is never overlapped by the next one).
 *
 * @module
 */

import { LockLostError } from "./errors.js";
import type { Lease } from "./lease.js";
import { now } from "./time.js";
import { MIN_TTL } from "./validate.js";

/** When auto-extension stops. */
export interface KeepAliveOptions {
  /** Never extend the hold beyond this many ms after it began (unbounded when undefined). */
  maxHold?: number | undefined;
}

/**
 * Extends `lease` until the returned function is called: each extension comes after `ttl / 3`,
 * or after half the validity the lease has left if that is sooner, so a lease that arrived with
 * little validity left (a slow acquisition, a slow link, a hand-off) is extended in time instead
 * of running out before the first attempt. An extension that finds the lock gone aborts
 * `lease.signal` (the lease does that itself); one that fails to reach Redis is retried sooner
 * while the lease is still valid, and the lease's own deadline aborts the signal if none
 * succeeds in time. With `maxHold`, the last extension is trimmed to end at the limit and the
 * lease then lapses. Nothing here ever throws or rejects into the caller.
 *
 * @returns stop: clears the pending timer; an extension already in flight is ignored when it ends.
 */
export function keepAlive(lease: Lease, options: KeepAliveOptions = {}): () => void {
  const ttl = lease.ttl;
  const limit = options.maxHold === undefined ? Number.POSITIVE_INFINITY : now() + options.maxHold;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const schedule = (delay: number) => {
    if (!stopped && !lease.signal.aborted) timer = setTimeout(tick, Math.max(1, delay));
  };
  /** When the next extension is due: ttl/3, or sooner while less than 2/3 of the ttl is left. */
  const due = () => Math.min(ttl / 3, lease.remaining() / 2);

  const tick = () => {
    const next = Math.min(ttl, Math.floor(limit - now()));
    // Near maxHold an extension could not lengthen the lease: let it lapse.
    if (next < MIN_TTL || (next < ttl && next <= lease.remaining())) return;
    lease.extend(next).then(
      // An extension trimmed to end at maxHold is the last one: the lease then lapses.
      () => next === ttl && schedule(due()),
      (error: unknown) => {
        if (error instanceof LockLostError) return;
        schedule(Math.min(ttl / 10, lease.remaining() / 2));
      },
    );
  };

  schedule(due());
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
