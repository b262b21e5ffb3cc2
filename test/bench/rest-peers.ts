/**
 * The REST (Upstash protocol) locks behind one shape: the raw floor over `@upstash/redis`,
 * edgelock's Upstash adapter, and `@upstash/lock`. Each runs over a client the benchmark owns.
 */

import { Lock } from "@upstash/lock";
import type { Redis } from "@upstash/redis";
import { createLocker } from "edgelock";
import { upstashAdapter } from "edgelock/upstash";
import { RELEASE_LUA } from "./peers.js";

export interface RestHeld {
  release(): Promise<unknown>;
  /** Renews the lease to `ttl` ms (or as close as the library can). */
  extend(ttl: number): Promise<unknown>;
}

export interface RestLibrary {
  readonly id: string;
  readonly pkg: string | undefined;
  readonly label: string;
  connect(client: Redis): { tryAcquire(key: string, ttl: number): Promise<RestHeld | null> };
}

const EXTEND_LUA =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

export const restFloor: RestLibrary = {
  id: "floor",
  pkg: "@upstash/redis",
  label: "raw floor: @upstash/redis SET NX PX + EVAL",
  connect(client) {
    return {
      async tryAcquire(key, ttl) {
        const token = crypto.randomUUID();
        const reply = await client.set(key, token, { nx: true, px: ttl });
        if (reply !== "OK") return null;
        return {
          release: () => client.eval(RELEASE_LUA, [key], [token]),
          extend: (next) => client.eval(EXTEND_LUA, [key], [token, String(next)]),
        };
      },
    };
  },
};

export const restEdgelock: RestLibrary = {
  id: "edgelock",
  pkg: undefined,
  label: "edgelock (upstash adapter)",
  connect(client) {
    const locker = createLocker({ adapter: upstashAdapter(client) });
    return {
      async tryAcquire(key, ttl) {
        const lease = await locker.tryAcquire(key, ttl);
        return lease && { release: () => lease.release(), extend: (next) => lease.extend(next) };
      },
    };
  },
};

export const upstashLock: RestLibrary = {
  id: "@upstash/lock",
  pkg: "@upstash/lock",
  label: "@upstash/lock 0.2.1",
  connect(client) {
    return {
      async tryAcquire(key, ttl) {
        const lock = new Lock({
          id: key,
          redis: client,
          lease: ttl,
          retry: { attempts: 1, delay: 0 },
        });
        if (!(await lock.acquire())) return null;
        // extend() adds whole seconds with EXPIRE (amounts under 1 s break it), so extend by 1 s.
        return { release: () => lock.release(), extend: () => lock.extend(1000) };
      },
    };
  },
};

export const REST_LIBRARIES: readonly RestLibrary[] = [restFloor, restEdgelock, upstashLock];
