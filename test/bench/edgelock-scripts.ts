/**
 * Reference: edgelock's own acquire and release scripts, sent raw with `EVALSHA` over the
 * benchmark's ioredis connection, with none of the library around them (no validation, no lease,
 * no retries, no deadlines, no waiting room). Between the fenced floor and edgelock, it splits
 * edgelock's gap to the floor into what its scripts cost (the line of waiters, the clock floor of
 * the fence, four keys per call) and what its client code costs.
 *
 * In the contention scenario it waits as edgelock does, with the least code that protocol needs
 * (see `line-lock.ts`): its critical sections per second are what edgelock's protocol reaches on
 * this machine before any library code runs.
 */

import { acquireScript, FENCE_RETENTION, lockNames, releaseScript } from "edgelock";
import { type LineProtocol, lineLock } from "./line-lock.js";
import type { Library } from "./peers.js";

const retention = String(FENCE_RETENTION);

/** edgelock's scripts, keys and arguments, under the prefix `scripts`. */
const protocol: LineProtocol = {
  acquire: acquireScript,
  release: releaseScript,
  keys(key) {
    const names = lockNames("scripts", key);
    return [names.lock, names.fence, names.queue, names.waiters];
  },
  acquireArgs: (token, ttl, channel) =>
    channel === undefined
      ? [token, retention, String(ttl), "0"]
      : [token, retention, String(ttl), String(ttl), channel, "1"], // one Redis counts the inbox
  releaseArgs: (token) => [token, retention],
};

export const edgelockScripts: Library = {
  id: "edgelock-scripts",
  pkg: undefined,
  label: "reference: edgelock's scripts sent raw (EVALSHA, no library code)",
  waits: "FIFO line in Redis, handed the lock by the release (pub/sub)",
  delayConfigurable: false,
  connect: (redis) => lineLock(redis, protocol),
};
