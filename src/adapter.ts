/**
 * The boundary between the lock core and a transport. A transport runs the core's Lua scripts and,
 * if it can, tells waiters when a lock is released. That is all the core needs, so the same core
 * runs over TCP (ioredis), HTTP (Upstash REST) and in memory.
 *
 * @module
 */

/**
 * A key-value store as the in-memory backend sees it: the few Redis commands the scripts use, with
 * Redis's semantics (`pttl` is -2 for a missing key and -1 for one without expiry).
 */
export interface ScriptHost {
  /** The string at `key` (throws WRONGTYPE for a hash, as Redis does). */
  get(key: string): string | null;
  /** Sets `key` to `value`, expiring after `ttl` ms. */
  set(key: string, value: string, ttl: number): void;
  del(key: string): boolean;
  /** Sets a missing key's TTL: returns false (and creates nothing) when `key` is absent. */
  pexpire(key: string, ttl: number): boolean;
  pttl(key: string): number;
  /** The server clock in microseconds, as Redis `TIME` gives it. */
  timeMicros(): number;
  publish(channel: string, message: string): void;
  /** A field of the hash at `key` (throws WRONGTYPE for a string). */
  hget(key: string, field: string): string | null;
  /** Sets fields of the hash at `key`, creating it without expiry if absent. */
  hset(key: string, fields: Readonly<Record<string, string>>): void;
  /**
   * Removes a field of the hash at `key` (true if it was there); a hash left empty is deleted, as
   * Redis does.
   */
  hdel(key: string, field: string): boolean;
  /** Appends to the list at `key`, creating it without expiry if absent. */
  rpush(key: string, value: string): void;
  /** Puts `value` back at the head of the list at `key`, creating it without expiry if absent. */
  lpush(key: string, value: string): void;
  /** Removes and returns the list's first element (null if none); an emptied list is deleted. */
  lpop(key: string): string | null;
  /** Removes the first element equal to `value` from the list at `key`, as `LREM key 1 value`. */
  lrem(key: string, value: string): void;
  /** How many subscribers `channel` has, as `PUBSUB NUMSUB` counts them. */
  subscribers(channel: string): number;
}

/**
 * One of the core's scripts: its Lua source with the SHA-1 that `EVALSHA` uses. Each runs as one
 * atomic step. Its twin in TypeScript for the in-memory backend is a {@link ScriptEmulation}
 * kept beside it, apart, so that Redis-only bundles leave it out.
 */
export interface LockScript {
  /** A short name for messages and metrics. */
  readonly name: string;
  /** The Lua source, sent with `EVAL` only after a `NOSCRIPT` reply. */
  readonly lua: string;
  /** The SHA-1 of `lua`, in lowercase hex. */
  readonly sha1: string;
}

/** A script's semantics over a {@link ScriptHost}, returning what its Lua returns. */
export type ScriptEmulation = (
  host: ScriptHost,
  keys: readonly string[],
  args: readonly string[],
) => unknown;

/** Stops a subscription; safe to call more than once. */
export type Unsubscribe = () => void;

/**
 * What a transport implements. Adapters wrap a client the user created and never close it.
 *
 * @example
 * ```ts
 * const adapter: LockAdapter = {
 *   name: "my-transport",
 *   evalScript: (script, keys, args) => runEvalshaWithFallback(script, keys, args),
 * };
 * ```
 */
export interface LockAdapter {
  /** The transport's name, for messages. */
  readonly name: string;
  /**
   * Runs `script` with `EVALSHA`, falling back to `EVAL` only on a real `NOSCRIPT` reply, and
   * resolves with its reply. Rejects on any transport or Redis failure; must not hang forever.
   */
  evalScript(
    script: LockScript,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<unknown>;
  /**
   * Calls `listener` with every message that arrives on `channel` until the returned function is
   * called, and with an empty message after the subscription was interrupted and re-established
   * (messages may have been lost meanwhile). Resolves once the subscription is active. Transports
   * without pub/sub omit this, and waiters fall back to polling.
   */
  subscribe?(channel: string, listener: (message: string) => void): Promise<Unsubscribe>;
  /**
   * How the Redis that runs the scripts sees this transport's subscriptions, so that a release
   * can pass over a waiter whose process died (nobody listens on its inbox any more) instead of
   * granting it the lock for a whole lease:
   *
   * - `"counted"`: one server holds them (or a gateway in front of one): `PUBSUB NUMSUB` counts
   *   them, and one inbox per locker serves every lock;
   * - `"sharded"`: Redis Cluster with sharded pub/sub (Redis 7): `subscribe` uses `SSUBSCRIBE`,
   *   and each locker listens on one inbox per lock, named in that lock's hash slot, so the
   *   lock's own node counts it (`PUBSUB SHARDNUMSUB`) and announcements go out with `SPUBLISH`;
   * - unset: nobody can count them (a subscription may live on another node than the scripts
   *   run on): waiters are granted the lock as they come.
   *
   * Read at each acquisition: a transport may settle it once it knows what its server offers.
   */
  readonly subscriptions?: "counted" | "sharded" | undefined;
}
