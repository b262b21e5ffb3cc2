/**
 * The locker: a lock client bound to one adapter and one key prefix. It takes, waits for and
 * hands out leases, and wraps functions so they run under a lock.
 *
 * @module
 */

import { AbortWatch } from "./abortable.js";
import type { LockAdapter } from "./adapter.js";
import { backoffDelay } from "./backoff.js";
import { InvalidArgumentError, LockTimeoutError } from "./errors.js";
import { type HoldOptions, hold } from "./hold.js";
import { inboxName, type LockNames, lockInboxName, lockNames } from "./keys.js";
import { Lease, type LeaseInit, leaseDeadline } from "./lease.js";
import { LockOperations } from "./operations.js";
import { now, sleep } from "./time.js";
import { newToken, waiterId } from "./token.js";
import {
  checkDuration,
  checkFunction,
  checkKey,
  checkSignal,
  checkWellFormed,
  MIN_TTL,
} from "./validate.js";
import { WaitingRoom } from "./waiting-room.js";

/** Options of {@link createLocker}. */
export interface LockerOptions {
  /** The transport: `ioredisAdapter(client)`, `upstashAdapter(client)` or `memoryAdapter()`. */
  adapter: LockAdapter;
  /**
   * Namespace of every Redis key and channel this locker uses (no braces).
   * @default "edgelock"
   */
  prefix?: string;
  /**
   * How many times a failed request is retried (with the same token: every operation is
   * idempotent) before the operation fails with `LOCK_UNAVAILABLE`.
   * @default 2
   */
  retries?: number;
  /**
   * First backoff step while waiting for a held lock, in milliseconds.
   * @default 50
   */
  retryDelay?: number;
  /**
   * Largest backoff step while waiting, in milliseconds; with hand-off announcements (pub/sub),
   * how often the oldest waiter of a lock in this locker looks again by itself.
   * @default 1000
   */
  maxRetryDelay?: number;
  /**
   * Fraction of the ttl subtracted from a lease's validity for clock rate drift, on top of 2 ms
   * and a tenth of the ttl, at most 50 ms, for timers that fire late on a busy host (the margin
   * is 57 ms at a 500 ms ttl by default). Raise it where timers can be later than that.
   * @default 0.01
   */
  driftFactor?: number;
  /**
   * How long each key's fencing counter is kept after its last use, in integer ms (at least
   * 1000; never less than the lease it serves). Fences keep increasing across a counter that
   * expired as long as the Redis server clock never steps back by this much: see
   * docs/fencing.md. Each distinct key costs its counter's memory for this long.
   * @default 86_400_000 (24 hours)
   */
  fenceRetention?: number;
}

/** Options of {@link Locker.acquire}. */
export interface AcquireOptions {
  /**
   * How long to wait for a held lock, in milliseconds; 0 makes a single attempt.
   * @default the ttl
   */
  timeout?: number;
  /** Stops waiting: the call rejects with the signal's reason and leaves nothing locked. */
  signal?: AbortSignal;
  /**
   * First backoff step while waiting, in milliseconds.
   * @default the locker's retryDelay
   */
  retryDelay?: number;
}

/** The options of an operation that takes nothing but a signal. */
export interface SignalOptions {
  /**
   * Bounds the whole operation, retries included: when it aborts, the call rejects with its
   * reason at once (a request already sent may still land; what it did is undone where it
   * matters).
   */
  signal?: AbortSignal;
}

/** Options of {@link Locker.using} and {@link Locker.withLock}. */
export interface HoldLockOptions extends AcquireOptions, HoldOptions {}

/** A lock's state, as {@link Locker.inspect} reads it. */
export interface LockState {
  /** True if anyone holds the lock. */
  held: boolean;
  /** The holder's remaining lease in ms (0 when free, -1 if the key never expires). */
  ttl: number;
  /** The last fence minted for this key (0 if none is known). */
  fence: number;
  /** True if `token` (when given) is the holder's. */
  mine: boolean;
}

/** Acquire options once checked. */
interface WaitOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  retryDelay: number;
}

/** The largest `retries` accepted. */
const MAX_RETRIES = 10;

/** The longest prefix accepted. */
const MAX_PREFIX_LENGTH = 256;

/**
 * A lock client. Make one with {@link createLocker}; share it across requests.
 */
export class Locker {
  readonly #ops: LockOperations;
  readonly #prefix: string;
  readonly #retryDelay: number;
  readonly #maxRetryDelay: number;
  readonly #driftFactor: number;
  /** Where waiters hear of hand-offs; undefined when the transport has no pub/sub. */
  readonly #room: WaitingRoom | undefined;
  /** Tells this locker's waiters of a hand-off made by one of its own releases. */
  readonly #tellWaiters: ((announcement: string) => void) | undefined;

  /** @internal Use {@link createLocker}. */
  constructor(options: LockerOptions) {
    const adapter = options?.adapter;
    if (typeof adapter?.evalScript !== "function") {
      throw new InvalidArgumentError("adapter", "adapter must be a LockAdapter (with evalScript)");
    }
    this.#prefix = checkPrefix(options.prefix ?? "edgelock");
    const retries = checkCount(options.retries ?? 2, "retries");
    this.#ops = new LockOperations(adapter, retries, options.fenceRetention);
    this.#retryDelay = checkDuration(options.retryDelay ?? 50, "retryDelay", 1);
    this.#maxRetryDelay = checkDuration(options.maxRetryDelay ?? 1000, "maxRetryDelay", 1);
    this.#driftFactor = checkFraction(options.driftFactor ?? 0.01, "driftFactor");
    const subscribe = adapter.subscribe?.bind(adapter);
    if (subscribe) {
      const id = waiterId(newToken());
      const shared = inboxName(this.#prefix, id);
      // Read at each join: a transport may settle whether its subscriptions are sharded.
      const inboxOf = (lock: string) =>
        adapter.subscriptions === "sharded" ? lockInboxName(lock, id) : shared;
      const room = new WaitingRoom(subscribe, inboxOf, this.#maxRetryDelay);
      this.#room = room;
      this.#tellWaiters = (announcement) => room.announce(announcement);
    }
  }

  /**
   * Makes exactly one attempt to take the lock: one round trip.
   *
   * @param key the lock's name (non-empty, at most 1024 characters).
   * @param ttl the lease, in milliseconds (10 to 2^31−1).
   * @returns the lease, or `null` if someone else holds the lock, or waiters are in line for it
   *   (a free lock goes to the oldest waiter first).
   * @throws {InvalidArgumentError} before any request, for a bad key or ttl.
   * @throws {LockUnavailableError} when Redis cannot be reached.
   * @throws the signal's reason when `options.signal` aborts first (a lock the attempt took
   *   anyway is released once it lands).
   *
   * @example
   * ```ts
   * const lease = await locker.tryAcquire("nightly-report", 60_000);
   * if (!lease) return; // another worker has it
   * try { await run(lease.signal); } finally { await lease.release(); }
   * ```
   */
  async tryAcquire(key: string, ttl: number, options: SignalOptions = {}): Promise<Lease | null> {
    checkKey(key);
    checkDuration(ttl, "ttl", MIN_TTL);
    const signal = checkSignalOptions(options);
    const names = lockNames(this.#prefix, key);
    const token = newToken();
    if (!signal) {
      const outcome = await this.#attempt(key, names, token, ttl);
      return outcome instanceof Lease ? outcome : null;
    }
    const watch = new AbortWatch(signal);
    try {
      watch.check();
      // Abandoned in flight, the attempt may still take the lock: release it once it lands.
      const leave = () => this.#leave(key, names, token);
      const outcome = await watch.race(this.#attempt(key, names, token, ttl), (late) =>
        late.then(leave, leave),
      );
      return outcome instanceof Lease ? outcome : null;
    } finally {
      watch.dispose();
    }
  }

  /**
   * Takes the lock, waiting up to `timeout` ms while someone else holds it. Over transports with
   * pub/sub, waiters form a line in Redis and a release hands the lock straight to the oldest
   * (first come, first served, across processes); otherwise they back off with full jitter. A
   * sleep never outlasts the holder's remaining lease.
   *
   * @throws {LockTimeoutError} if the lock stayed held (`code: "LOCK_TIMEOUT"`).
   * @throws {LockUnavailableError} when Redis cannot be reached (`code: "LOCK_UNAVAILABLE"`).
   * @throws the signal's reason when `options.signal` aborts; nothing stays locked.
   *
   * @example
   * ```ts
   * await using lease = await locker.acquire("account:42", 5_000, { timeout: 2_000 });
   * await transfer({ fence: lease.fence });
   * ```
   */
  async acquire(key: string, ttl: number, options: AcquireOptions = {}): Promise<Lease> {
    checkKey(key);
    checkDuration(ttl, "ttl", MIN_TTL);
    const wait = this.#checkAcquireOptions(options, ttl);
    return this.#acquire(key, ttl, wait);
  }

  /**
   * Takes the lock (waiting as {@link Locker.acquire} does), runs `fn` with the lease while
   * extending it about every ttl/3, and releases it when `fn` settles.
   *
   * `fn`'s error is rethrown unchanged; a failed release never replaces it. If the lease is lost
   * while `fn` runs, `lease.signal` aborts and, once `fn` resolves, {@link LockLostError} is
   * thrown.
   *
   * @example
   * ```ts
   * const total = await locker.using("ledger", 10_000, async (lease) => {
   *   return recompute({ fence: lease.fence, signal: lease.signal });
   * });
   * ```
   */
  async using<T>(
    key: string,
    ttl: number,
    fn: (lease: Lease) => T | PromiseLike<T>,
    options: HoldLockOptions = {},
  ): Promise<Awaited<T>> {
    checkKey(key);
    checkDuration(ttl, "ttl", MIN_TTL);
    checkFunction(fn, "fn");
    const wait = this.#checkAcquireOptions(options, ttl);
    const holding = this.#checkHoldOptions(options);
    return hold(await this.#acquire(key, ttl, wait), fn, holding);
  }

  /**
   * Wraps `fn` so every call runs under the lock: the returned function takes the call's
   * arguments, runs `fn(lease, ...args)` while holding the lock (extending it as
   * {@link Locker.using} does), and resolves with `fn`'s result. The lease comes first, so `fn`
   * can pass `lease.fence` to what it writes and `lease.signal` to what it awaits; a function
   * that needs neither simply ignores it. `key` may be computed from the call's arguments. Each
   * call waits for the lock as {@link Locker.using} does (by default up to `ttl` ms) and throws
   * {@link LockTimeoutError} if it never comes, or {@link LockLostError} (after `fn` resolves)
   * if the lease was lost on the way.
   *
   * @example
   * ```ts
   * export const handler = locker.withLock(
   *   (event: OrderEvent) => `order:${event.id}`,
   *   30_000,
   *   async (lease, event: OrderEvent) => orders.save(event, { fence: lease.fence }),
   * );
   * ```
   */
  withLock<A extends unknown[], R>(
    key: string | ((...args: A) => string),
    ttl: number,
    fn: (lease: Lease, ...args: A) => R | PromiseLike<R>,
    options: HoldLockOptions = {},
  ): (...args: A) => Promise<Awaited<R>> {
    if (typeof key !== "function") checkKey(key);
    checkDuration(ttl, "ttl", MIN_TTL);
    checkFunction(fn, "fn");
    const wait = this.#checkAcquireOptions(options, ttl);
    const holding = this.#checkHoldOptions(options);
    const locker = this;
    return async function locked(this: unknown, ...args: A): Promise<Awaited<R>> {
      const name = typeof key === "function" ? checkKey(key.apply(this, args)) : key;
      const lease = await locker.#acquire(name, ttl, wait);
      return hold(lease, () => fn.call(this, lease, ...args), holding);
    };
  }

  /**
   * Reads a lock's state without changing it. Pass a lease's token to learn whether it still
   * holds the lock.
   *
   * @throws the signal's reason when `options.signal` aborts first.
   */
  async inspect(key: string, token?: string, options: SignalOptions = {}): Promise<LockState> {
    checkKey(key);
    if (token !== undefined) checkKey(token, "token");
    const signal = checkSignalOptions(options);
    const names = lockNames(this.#prefix, key);
    const state = await this.#ops.inspect(key, names, token, signal);
    return { ...state, ttl: state.held ? state.ttl : 0 };
  }

  /**
   * The waiting acquisition behind acquire, using and withLock, with checked arguments.
   *
   * The first attempt is a plain try. If the lock is held and the transport has pub/sub, the
   * waiter takes a seat in the lock's waiting room (subscribing if this locker is not already
   * listening there) and joins the line in Redis with its next attempt; a release then hands the
   * lock to the oldest waiter in the same script and announces it, and that waiter holds the lock
   * without another round trip. A waiter looks again by itself when the holder's lease should
   * have ended, or when its room says to (see `waiting-room.ts`). Without pub/sub, waiters poll
   * with full-jitter backoff.
   */
  async #acquire(key: string, ttl: number, wait: WaitOptions): Promise<Lease> {
    const { timeout, retryDelay } = wait;
    const names = lockNames(this.#prefix, key);
    const token = newToken(); // one token for every attempt: a retried attempt is idempotent
    const deadline = now() + timeout;
    const watch = new AbortWatch(wait.signal);
    const leave = () => this.#leave(key, names, token);
    const room = this.#room;
    let seat = room?.seatIfOpen(names.lock, waiterId(token));
    let queuedAt: number | undefined; // when the request that put this token in line was sent
    let lease: Lease | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        watch.check();
        const sentAt = now();
        const line = seat ? Math.max(0, deadline - sentAt) : 0;
        if (line > 0) queuedAt ??= sentAt;
        // Abandoned in flight, the attempt may still take the lock or join the line once it
        // lands (over HTTP, after a release sent now): release or leave once it has.
        const sent = this.#attempt(key, names, token, ttl, line, seat?.channel);
        const outcome = await watch.race(sent, (late) => late.then(leave, leave));
        if (outcome instanceof Lease) {
          lease = outcome;
          return lease;
        }
        const remaining = deadline - now();
        if (remaining <= 0) throw new LockTimeoutError(key, timeout, attempt, outcome.holderTtl);
        if (room && !seat) {
          // Listen, then look again at once (joining the line): the lock may be free by now.
          seat = await watch.race(room.join(names.lock, waiterId(token)), (late) =>
            late.then((seat) => seat?.leave()),
          );
          if (seat) continue;
        }
        const delay = backoffDelay({
          attempt,
          base: retryDelay,
          cap: this.#maxRetryDelay,
          holderTtl: outcome.holderTtl,
          remaining,
          notified: seat !== undefined,
        });
        await watch.pause(seat ? seat.nap(delay) : sleep(delay));
        if (seat?.fence !== undefined && queuedAt !== undefined) {
          lease = this.#handedOver(key, names, token, ttl, seat.fence, queuedAt);
          if (lease) return lease;
          seat.fence = undefined; // too little of the hand-off lease is known to be left: claim it
        }
      }
    } finally {
      watch.dispose();
      seat?.leave();
      // Leave the line (taking this token's entry out of it), or pass on a lock handed over too
      // late, before the caller hears of the failure: a waiter that gave up leaves nothing behind.
      if (queuedAt !== undefined && !lease) await leave();
    }
  }

  /**
   * Releases whatever `token` has (a lock, or a place in line) for an acquisition that gave up;
   * never rejects (a failure leaves a lease to expire, an entry to be passed over).
   */
  #leave(key: string, names: LockNames, token: string): Promise<boolean> {
    return this.#ops.release(key, names, token, this.#tellWaiters).catch(() => false);
  }

  /**
   * The lease of a lock handed over to this waiter, which knows only that the hand-off came after
   * its request to join the line was sent (`queuedAt`). If less than half the ttl is left by that
   * reckoning, undefined: the next attempt then claims the lock with a fresh lease (or, if it
   * expired meanwhile, joins the line again).
   */
  #handedOver(
    key: string,
    names: LockNames,
    token: string,
    ttl: number,
    fence: number,
    queuedAt: number,
  ): Lease | undefined {
    const left = leaseDeadline(queuedAt, ttl, this.#driftFactor) - now();
    if (left < ttl / 2) return undefined;
    return this.#lease({ key, names, token, fence, ttl, sentAt: queuedAt, granted: ttl });
  }

  /**
   * One acquisition attempt, joining the line for up to `line` ms if the lock is held, to be told
   * of its hand-off on `inbox` (its seat's channel). Returns the lease, or what the holder's
   * lease has left. A lease that arrives with no validity left (the
   * round trip took too long) is released and counts as not acquired. A failed request may still
   * have taken the lock, so its token is released before the failure is reported: a lock is
   * never left held by a caller who was told it failed.
   */
  #attempt(
    key: string,
    names: LockNames,
    token: string,
    ttl: number,
    line = 0,
    inbox = "",
  ): Promise<Lease | { holderTtl: number }> {
    const sentAt = now();
    // A promise chain, not an async frame: this is every acquisition's path.
    return this.#ops.acquire(key, names, token, ttl, line, inbox).then(
      (reply) => {
        if (!reply.acquired) return { holderTtl: reply.holderTtl };
        if (leaseDeadline(sentAt, reply.ttl, this.#driftFactor) <= now()) {
          const lapsed = { holderTtl: -1 };
          return this.#leave(key, names, token).then(() => lapsed);
        }
        const { fence, ttl: granted } = reply;
        return this.#lease({ key, names, token, fence, ttl, sentAt, granted });
      },
      (error: unknown) => {
        this.#leave(key, names, token);
        throw error;
      },
    );
  }

  /** A lease granted to this locker: its drift allowance, and hand-offs told to its waiters. */
  #lease(grant: Omit<LeaseInit, "driftFactor" | "handedOver">): Lease {
    // Fields copied one by one: an object spread here cost ~10 µs per acquisition in V8.
    return new Lease(this.#ops, {
      key: grant.key,
      names: grant.names,
      token: grant.token,
      fence: grant.fence,
      ttl: grant.ttl,
      sentAt: grant.sentAt,
      granted: grant.granted,
      driftFactor: this.#driftFactor,
      handedOver: this.#tellWaiters,
    });
  }

  #checkAcquireOptions(options: AcquireOptions, ttl: number): WaitOptions {
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError("options", "options must be an object");
    }
    return {
      timeout: checkDuration(options.timeout ?? ttl, "timeout", 0),
      signal: checkSignal(options.signal),
      retryDelay: checkDuration(options.retryDelay ?? this.#retryDelay, "retryDelay", 1),
    };
  }

  #checkHoldOptions(options: HoldOptions): HoldOptions {
    const { maxHold, onReleaseError } = options;
    if (maxHold !== undefined) checkDuration(maxHold, "maxHold", MIN_TTL);
    if (onReleaseError !== undefined) checkFunction(onReleaseError, "onReleaseError");
    return { maxHold, onReleaseError };
  }
}

/**
 * Creates a locker over a transport.
 *
 * @example
 * ```ts
 * import { createLocker } from "edgelock";
 * import { ioredisAdapter } from "edgelock/ioredis";
 *
 * const locker = createLocker({ adapter: ioredisAdapter(new Redis(process.env.REDIS_URL)) });
 * const lease = await locker.tryAcquire("job:42", 30_000);
 * ```
 */
export function createLocker(options: LockerOptions): Locker {
  return new Locker(options);
}

/** The signal of a {@link SignalOptions}, checked. */
export function checkSignalOptions(options: SignalOptions): AbortSignal | undefined {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("options", "options must be an object");
  }
  return checkSignal(options.signal);
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || prefix.length === 0 || prefix.length > MAX_PREFIX_LENGTH) {
    throw new InvalidArgumentError(
      "prefix",
      `prefix must be a non-empty string of at most ${MAX_PREFIX_LENGTH} characters`,
    );
  }
  if (/[{}]/.test(prefix)) {
    throw new InvalidArgumentError("prefix", `prefix must not contain braces, got "${prefix}"`);
  }
  return checkWellFormed(prefix, "prefix");
}

function checkCount(value: unknown, argument: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_RETRIES) {
    return value;
  }
  throw new InvalidArgumentError(
    argument,
    `${argument} must be an integer from 0 to ${MAX_RETRIES}, got ${String(value)}`,
  );
}

function checkFraction(value: unknown, argument: string): number {
  if (typeof value === "number" && value >= 0 && value < 0.5) return value;
  throw new InvalidArgumentError(
    argument,
    `${argument} must be a number in [0, 0.5), got ${String(value)}`,
  );
}
