/**
 * The lease: what a successful acquisition hands back. It knows its token (the proof of
 * ownership), its fencing token, and how long it is valid on this client's monotonic clock.
 *
 * @module
 */

import { LockLostError } from "./errors.js";
import type { LockNames } from "./keys.js";
import type { LockOperations } from "./operations.js";
import { now } from "./time.js";
import { checkDuration, checkSignal, MIN_TTL } from "./validate.js";

/** How a lease's validity is computed: what the lock core tells a new {@link Lease}. */
export interface LeaseInit {
  readonly key: string;
  readonly names: LockNames;
  readonly token: string;
  readonly fence: number;
  readonly ttl: number;
  /** Monotonic time before the acquiring request was sent. */
  readonly sentAt: number;
  /** The lease Redis granted, in ms from when the script ran. */
  readonly granted: number;
  readonly driftFactor: number;
  /** Told the announcement when this lease's release hands the lock to a waiter. */
  readonly handedOver?: ((announcement: string) => void) | undefined;
}

/**
 * How late a timer may fire and a lost lease still be signalled before Redis frees the lock: with
 * every core of the host kept busy (the chaos suite's CPU-hog scenario), aborts came up to 26 ms
 * after their deadline, but for rare stalls of over 100 ms that only a larger `driftFactor` covers.
 */
const TIMER_LAG_ALLOWANCE = 50;

/**
 * How much sooner a lease ends here than in Redis: `ttl × driftFactor` for clock rate drift, 2 ms
 * for Redis's millisecond expiry resolution, and a tenth of the ttl, at most 50 ms, for timers
 * that fire late on a busy host (a tenth at most, so that short leases stay usable: 57 ms at a
 * 500 ms ttl, 3 ms at 10 ms).
 */
function driftMargin(ttl: number, driftFactor: number): number {
  return Math.floor(ttl * driftFactor) + 2 + Math.min(TIMER_LAG_ALLOWANCE, Math.floor(ttl / 10));
}

/**
 * The monotonic deadline of a lease granted for `granted` ms by a request sent at `sentAt`: the
 * grant counts from when the script ran, which is no earlier than `sentAt`, less a drift margin.
 */
export function leaseDeadline(sentAt: number, granted: number, driftFactor: number): number {
  return sentAt + granted - driftMargin(granted, driftFactor);
}

/**
 * The loss of a lease whose token Redis no longer holds, found `when` (at an extension or the
 * release): it expired there, or Redis lost it (a restart without persistence, a failover) and
 * someone else may have taken it.
 */
function takenOver(key: string, when: string): LockLostError {
  return new LockLostError(
    key,
    `Redis no longer held its token ${when} (it expired there, or Redis lost it and someone else may hold it)`,
  );
}

/**
 * A held lock. `fence` increases with every acquisition of the key: pass it to the resource you
 * protect and have it reject smaller fences, and a paused or partitioned former holder cannot
 * corrupt it. `signal` aborts with {@link LockLostError} as soon as the lease is known to be lost.
 *
 * @example
 * ```ts
 * await using lease = await locker.acquire("invoice:7", 10_000);
 * await db.write({ fence: lease.fence }, { signal: lease.signal });
 * ```
 */
export class Lease {
  /** The caller's lock key (without the prefix). */
  readonly key: string;
  /** The secret proving ownership. Treat it as a credential: never log it or send it to clients. */
  readonly token: string;
  /** The fencing token: greater than the fence of every earlier acquisition of this key. */
  readonly fence: number;
  /** The lease length this lock was acquired (or last extended) with, in ms. */
  ttl: number;
  readonly #ops: LockOperations;
  readonly #names: LockNames;
  readonly #driftFactor: number;
  readonly #handedOver: ((announcement: string) => void) | undefined;
  /** Made on the first read of `signal`: a lease nobody listens to needs neither it nor a timer. */
  #controller: AbortController | undefined;
  /** Why the lease was lost, once it is known lost. */
  #lost: LockLostError | undefined;
  #deadline: number;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #released = false;

  /** @internal Leases are made by a locker, not by hand. */
  constructor(ops: LockOperations, init: LeaseInit) {
    this.#ops = ops;
    this.key = init.key;
    this.token = init.token;
    this.fence = init.fence;
    this.ttl = init.ttl;
    this.#names = init.names;
    this.#driftFactor = init.driftFactor;
    this.#handedOver = init.handedOver;
    this.#deadline = leaseDeadline(init.sentAt, init.granted, init.driftFactor);
  }

  /**
   * Aborts with a {@link LockLostError} when the lease is known lost: an extension found the lock
   * gone, or the lease ran out on this client's clock. Never aborts on a normal release.
   */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#lost) this.#controller.abort(this.#lost);
      else if (!this.#released && this.#deadline <= now()) this.#lose(this.#ranOut());
      else if (!this.#released) this.#armExpiry();
    }
    return this.#controller.signal;
  }

  /** When the lease runs out, as a wall-clock timestamp (ms since the epoch); for display only. */
  get expiresAt(): number {
    return Date.now() + this.remaining();
  }

  /** Milliseconds of validity left on this client's clock (0 once lost or released). */
  remaining(): number {
    if (this.#released || this.#lost) return 0;
    return Math.max(0, this.#deadline - now());
  }

  /** True while the lease is valid on this client's clock and not released or lost. */
  get held(): boolean {
    return this.remaining() > 0;
  }

  /**
   * Renews the lease to `ttl` ms from now (default: the current ttl). Throws
   * {@link LockLostError} if the lock is no longer held by this lease — it is never re-created —
   * {@link LockUnavailableError} if Redis cannot be reached, and the signal's reason if
   * `options.signal` aborts first (the lease then keeps its earlier deadline).
   */
  async extend(ttl: number = this.ttl, options: { signal?: AbortSignal } = {}): Promise<void> {
    checkDuration(ttl, "ttl", MIN_TTL);
    const signal = checkSignal(options?.signal, "options.signal");
    if (this.#released) throw new LockLostError(this.key, "it was released");
    if (this.remaining() === 0) throw this.#lose(this.#ranOut());
    const sentAt = now();
    const extended = await this.#ops.extend(this.key, this.#names, this.token, ttl, signal);
    if (this.#released) return;
    if (this.#lost) {
      // Given up while the request was on its way (its answer came after the lease ran out here):
      // an extension that landed anyway must not keep the lock from everyone else.
      if (extended) this.#ops.release(this.key, this.#names, this.token).catch(() => false);
      throw this.#lost;
    }
    if (!extended) throw this.#lose(takenOver(this.key, "at extension"));
    this.ttl = ttl;
    this.#deadline = leaseDeadline(sentAt, ttl, this.#driftFactor);
    this.#armExpiry();
  }

  /**
   * Releases the lock. Resolves true if this call released it, false if it had already expired,
   * been taken over or been released; never throws for those. A lease that finds another
   * holder's token (or none) at release was lost before it ended: `signal` then aborts with a
   * {@link LockLostError}, as if an extension had found it. Throws {@link LockUnavailableError}
   * only if Redis cannot be reached (the lease then ends on its own), and the signal's reason if
   * `options.signal` aborts first (the release may still land).
   */
  async release(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const signal = checkSignal(options?.signal, "options.signal");
    if (this.#released) return false;
    this.#released = true;
    clearTimeout(this.#expiry);
    let released: boolean;
    try {
      const { key, token } = this;
      released = await this.#ops.release(key, this.#names, token, this.#handedOver, signal);
    } catch (error) {
      this.#released = false;
      this.#armExpiry();
      throw error;
    }
    if (!released) this.#lose(this.#lost ?? takenOver(this.key, "at release"));
    return released;
  }

  /** What `JSON.stringify` shows: everything but the token, which is a credential. */
  toJSON(): { key: string; fence: number; ttl: number; held: boolean } {
    return { key: this.key, fence: this.fence, ttl: this.ttl, held: this.held };
  }

  /** What Node's `console.log` and `util.inspect` show: the same, never the token. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `Lease ${JSON.stringify(this)}`;
  }

  /** Releases the lock for `await using`; swallows failures, since the lease expires anyway. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch(() => false);
  }

  #ranOut(): LockLostError {
    return new LockLostError(this.key, "its lease ran out");
  }

  /** Marks the lease lost (the first reason wins) and tells every listener of `signal`. */
  #lose(error: LockLostError): LockLostError {
    clearTimeout(this.#expiry);
    this.#lost ??= error;
    this.#controller?.abort(this.#lost);
    return this.#lost;
  }

  /** Aborts the signal when the local deadline passes without an extension (if it was ever read). */
  #armExpiry(): void {
    clearTimeout(this.#expiry);
    if (!this.#controller) return;
    this.#expiry = setTimeout(
      () => this.#lose(this.#ranOut()),
      Math.max(0, this.#deadline - now()),
    );
  }
}
