/**
 * Reference: edgelock's own acquire and release scripts, sent raw with `EVALSHA` over the
 * benchmark's ioredis connection, with none of the library around them (no validation, no lease,
 * no retries, no deadlines). Between the fenced floor and edgelock, it splits edgelock's gap to
 * the floor into what its scripts cost (the line of waiters, the clock floor of the fence, four
 * keys per call) and what its client code costs.
 */

import { randomUUID } from "node:crypto";
import {
  acquireScript,
  evalWithFallback,
  FENCE_RETENTION,
  type LockScript,
  lockNames,
  releaseScript,
} from "edgelock";
import type { Redis } from "ioredis";
import { type Held, type Library, polling } from "./peers.js";

/** The script's reply, by SHA-1, with its source only after NOSCRIPT. */
function run(redis: Redis, script: LockScript, keys: string[], args: string[]): Promise<unknown> {
  return evalWithFallback(
    script,
    (sha1) => redis.evalsha(sha1, keys.length, ...keys, ...args),
    (lua) => redis.eval(lua, keys.length, ...keys, ...args),
  );
}

export const edgelockScripts: Library = {
  id: "edgelock-scripts",
  pkg: undefined,
  label: "reference: edgelock's scripts sent raw (EVALSHA, no library code)",
  waits: "polls every 10 ms",
  delayConfigurable: false,
  connect(redis, retryDelay = 10) {
    const retention = String(FENCE_RETENTION);
    const tryAcquire = async (key: string, ttl: number): Promise<Held | null> => {
      const names = lockNames("scripts", key);
      const keys = [names.lock, names.fence, names.queue, names.waiters];
      const token = `el1.${randomUUID()}`; // as long as edgelock's tokens
      const reply = await run(redis, acquireScript, keys, [token, retention, String(ttl), "0"]);
      if (typeof reply !== "number") return null; // a fresh grant answers its bare fence
      return { release: () => run(redis, releaseScript, keys, [token, retention]) };
    };
    return { tryAcquire, acquire: polling(tryAcquire, retryDelay) };
  },
};
