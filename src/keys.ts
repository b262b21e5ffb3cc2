/**
 * How a caller's lock key maps to Redis names. All keys of one lock carry the same hash tag, so
 * every script touches a single slot and works on Redis Cluster:
 *
 * - `<prefix>:{<key>}`        the lock: holds the owner's token, with the lease as its TTL;
 * - `<prefix>:{<key>}:fence`  the fencing counter: the last fence minted for this key;
 * - `<prefix>:{<key>}:queue`  the line of waiters, oldest first: each entry holds a waiting token,
 *                             its lease, the end of its wait and its client's inbox;
 * - `<prefix>:{<key>}:waiters` the tokens still in line (a waiter that gives up leaves it);
 *
 * and one pub/sub channel per locker, not per lock: `<prefix>:inbox:<id>`, on which the locker's
 * waiters are told they were handed a lock (see {@link inboxName}); on Redis Cluster with sharded
 * pub/sub, one per locker and lock instead, in the lock's slot: `<prefix>:{<key>}:inbox:<id>`
 * (see {@link lockInboxName}).
 *
 * Braces and `%` in the caller's key are percent-encoded, so a key can never choose its own hash
 * tag (which would split the keys across slots or pile locks onto one slot).
 *
 * @module
 */

import { checkKey } from "./validate.js";

/** The Redis names of one lock. */
export interface LockNames {
  /** The lock key. */
  readonly lock: string;
  /** The fencing counter's key. */
  readonly fence: string;
  /** The line of waiters, oldest first (see the module comment for an entry). */
  readonly queue: string;
  /** The hash of the tokens still in line. */
  readonly waiters: string;
}

/**
 * Computes the Redis names of `key` under `prefix`. The key is checked as every lock key is (an
 * empty one would leave the hash tag empty, and Redis would hash the keys apart).
 *
 * @example
 * ```ts
 * lockNames("edgelock", "order:42").lock; // "edgelock:{order:42}"
 * ```
 */
export function lockNames(prefix: string, key: string): LockNames {
  const lock = `${prefix}:{${escapeTag(checkKey(key))}}`;
  return {
    lock,
    fence: `${lock}:fence`,
    queue: `${lock}:queue`,
    waiters: `${lock}:waiters`,
  };
}

/**
 * The channel a locker's waiters are told on: `id` is random per locker, so a hand-off message
 * reaches only the client whose waiter it names, however many clients wait for the same lock.
 * (Pub/sub channels are not keys: they need no hash tag, even on Redis Cluster.)
 *
 * @example
 * ```ts
 * inboxName("edgelock", "Xq3v0cJ9aLmT"); // "edgelock:inbox:Xq3v0cJ9aLmT"
 * ```
 */
export function inboxName(prefix: string, id: string): string {
  return `${prefix}:inbox:${id}`;
}

/**
 * The sharded channel a locker's waiters for one lock are told on (Redis Cluster): it carries the
 * lock's hash tag, so it lives in the lock's slot, where the lock's own node counts its
 * subscribers and the scripts may publish to it.
 *
 * @example
 * ```ts
 * lockInboxName("edgelock:{order:42}", "Xq3v0cJ9aLmT"); // "edgelock:{order:42}:inbox:Xq3v0cJ9aLmT"
 * ```
 */
export function lockInboxName(lock: string, id: string): string {
  return `${lock}:inbox:${id}`;
}

const TAG_CHARS = /[%{}]/;
const TAG_CHARS_ALL = /[%{}]/g;

/** Percent-encodes the characters that would let a key escape its hash tag. */
function escapeTag(key: string): string {
  if (!TAG_CHARS.test(key)) return key;
  return key.replace(TAG_CHARS_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
