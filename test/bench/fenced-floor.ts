/**
 * Reference: the fenced floor, the cheapest lock that mints a fencing token in the same step as
 * the lock and keeps the counter after release (as edgelock does). Acquire is one `EVALSHA` of
 * a minimal script: `SET NX PX` the lock and, only if that took it, `INCR` the key's counter and
 * renew the counter's expiry (edgelock's default retention). Release is the floor's
 * compare-and-delete `EVAL`.
 *
 * Whatever it costs beyond the plain floor is what atomic fencing alone costs, so a fencing lock
 * cannot beat it: it bounds the "× floor" any such lock can reach on the machine it runs on.
 */

import { randomUUID } from "node:crypto";
import { FENCE_RETENTION } from "edgelock";
import { benchScript, type Held, type Library, polling, RELEASE_LUA, runScript } from "./peers.js";

/** KEYS[1] lock, KEYS[2] counter; ARGV[1] token, ARGV[2] ttl ms, ARGV[3] counter's ttl ms. */
const ACQUIRE_LUA =
  "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then " +
  "local f = redis.call('INCR', KEYS[2]); redis.call('PEXPIRE', KEYS[2], ARGV[3]); return f end; " +
  "return 0";

const ACQUIRE = benchScript("fenced-floor acquire", ACQUIRE_LUA);

export const fencedFloor: Library = {
  id: "fenced-floor",
  pkg: undefined,
  label: "reference: fenced floor, EVALSHA (SET NX PX + INCR + PEXPIRE) + EVAL",
  waits: "polls every 10 ms",
  delayConfigurable: false,
  connect(redis, retryDelay = 10) {
    const tryAcquire = async (key: string, ttl: number): Promise<Held | null> => {
      const lock = `fenced:{${key}}`;
      const token = randomUUID();
      // The fence minted, or 0 if the lock was held.
      const fence = Number(
        await runScript(
          redis,
          ACQUIRE,
          [lock, `${lock}:fence`],
          [token, String(ttl), String(FENCE_RETENTION)],
        ),
      );
      return fence > 0 ? { release: () => redis.eval(RELEASE_LUA, 1, lock, token) } : null;
    };
    return { tryAcquire, acquire: polling(tryAcquire, retryDelay) };
  },
};
