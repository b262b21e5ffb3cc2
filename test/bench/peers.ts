/// <reference types="node" />
/**
 * Every lock library behind one shape, so each scenario drives them all the same way:
 * `tryAcquire` (a single attempt), `acquire` (wait the library's own way) and `release`.
 *
 * Each library runs over an ioredis connection the benchmark owns, at its defaults except where a
 * scenario asks for a single attempt or a 10 ms retry delay. "10 ms" means a fixed 10 ms between
 * attempts (jitter off where the library has one); every other setting stays at its default.
 */

import { createHash, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { setTimeout as delay } from "node:timers/promises";
import { createLocker, evalWithFallback, type LockScript } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import type { Redis } from "ioredis";
import { Mutex } from "redis-semaphore";
import { createLock, IoredisAdapter, type Lock, LockAcquisitionError } from "redlock-universal";

/** A held lock. */
export interface Held {
  release(): Promise<unknown>;
}

/** One library's client over one connection. */
export interface LockClient {
  /** One attempt; `null` when someone else holds the lock. */
  tryAcquire(key: string, ttl: number): Promise<Held | null>;
  /** Waits for the lock as the library does; may reject when the library gives up. */
  acquire(key: string, ttl: number, signal: AbortSignal): Promise<Held>;
}

/** A library, at its defaults or at a given retry delay. */
export interface Library {
  /** Short id for tables: `redlock5`, `redlock5@10ms`. */
  readonly id: string;
  /** The package the versions table reads, or undefined for the benchmark's own locks. */
  readonly pkg: string | undefined;
  readonly label: string;
  /** How a blocked `acquire` waits. */
  readonly waits: string;
  /** Whether the library has a retry delay to set (and so also runs at 10 ms). */
  readonly delayConfigurable: boolean;
  /** A client over `redis`, at `retryDelay` ms between attempts, or the defaults if undefined. */
  connect(redis: Redis, retryDelay?: number): LockClient;
}

/** The compare-and-delete every raw floor and most libraries release with. */
export const RELEASE_LUA =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/** A benchmark's own script, named and hashed as {@link runScript} expects. */
export function benchScript(name: string, lua: string): LockScript {
  return { name, lua, sha1: createHash("sha1").update(lua).digest("hex") };
}

/** A benchmark script's reply over `redis`: by SHA-1, with its source only after NOSCRIPT. */
export function runScript(
  redis: Redis,
  script: LockScript,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  return evalWithFallback(
    script,
    (sha1) => redis.evalsha(sha1, keys.length, ...keys, ...args),
    (lua) => redis.eval(lua, keys.length, ...keys, ...args),
  );
}

/** Polls `tryAcquire` every `every` ms until it succeeds or `signal` aborts. */
export function polling(
  tryAcquire: LockClient["tryAcquire"],
  every: number,
): (key: string, ttl: number, signal: AbortSignal) => Promise<Held> {
  return async (key, ttl, signal) => {
    for (;;) {
      signal.throwIfAborted();
      const held = await tryAcquire(key, ttl);
      if (held) return held;
      await delay(every, undefined, { signal });
    }
  };
}

/** The floor: `SET key token NX PX ttl`, released by compare-and-delete `EVAL`. */
export const floor: Library = {
  id: "floor",
  pkg: undefined,
  label: "raw floor: SET NX PX + EVAL",
  waits: "polls every 10 ms",
  delayConfigurable: false,
  connect(redis, retryDelay = 10) {
    const tryAcquire = async (key: string, ttl: number): Promise<Held | null> => {
      const token = randomUUID();
      const reply = await redis.set(key, token, "PX", ttl, "NX");
      return reply === "OK" ? { release: () => redis.eval(RELEASE_LUA, 1, key, token) } : null;
    };
    return { tryAcquire, acquire: polling(tryAcquire, retryDelay) };
  },
};

export const edgelock: Library = {
  id: "edgelock",
  pkg: undefined,
  label: "edgelock (ioredis adapter)",
  waits: "FIFO line in Redis, handed the lock by the release (pub/sub)",
  delayConfigurable: false,
  connect(redis) {
    const locker = createLocker({ adapter: ioredisAdapter(redis) });
    return {
      tryAcquire: (key, ttl) => locker.tryAcquire(key, ttl),
      acquire: (key, ttl, signal) => locker.acquire(key, ttl, { timeout: ttl, signal }),
    };
  },
};

export const edgelockPolling: Library = {
  id: "edgelock-poll",
  pkg: undefined,
  label: "edgelock, notifications off",
  waits: "full-jitter backoff 50 ms → 1 s, capped by the holder's ttl",
  delayConfigurable: false,
  connect(redis) {
    const locker = createLocker({ adapter: ioredisAdapter(redis, { notifications: false }) });
    return {
      tryAcquire: (key, ttl) => locker.tryAcquire(key, ttl),
      acquire: (key, ttl, signal) => locker.acquire(key, ttl, { timeout: ttl, signal }),
    };
  },
};

/** The part of node-redlock 5 the benchmark uses (its package exports no types). */
interface Redlock5 {
  acquire(resources: string[], duration: number): Promise<{ release(): Promise<unknown> }>;
}
type Redlock5Class = new (clients: Redis[], settings: Record<string, number>) => Redlock5;

/** Loads a CommonJS build, unwrapping a transpiled default export. */
function load<T>(name: string): T {
  const module = createRequire(import.meta.url)(name) as { default?: T };
  return module.default ?? (module as T);
}

export const redlock5: Library = {
  id: "redlock5",
  pkg: "redlock5",
  label: "node-redlock 5.0.0-beta.2",
  waits: "10 retries × 200 ± 100 ms",
  delayConfigurable: true,
  connect(redis, retryDelay) {
    const Redlock = load<Redlock5Class>("redlock5");
    const single = new Redlock([redis], { retryCount: 0 });
    const waiting = new Redlock(
      [redis],
      retryDelay === undefined ? {} : { retryDelay, retryJitter: 0 },
    );
    return {
      async tryAcquire(key, ttl) {
        try {
          return await single.acquire([key], ttl);
        } catch {
          return null; // redlock 5 reports a held lock as an ExecutionError
        }
      },
      acquire: (key, ttl) => waiting.acquire([key], ttl),
    };
  },
};

/** The part of redlock 4 (untyped, callback-era) the benchmark uses. */
interface Redlock4 {
  lock(resource: string, ttl: number): Promise<{ unlock(): Promise<unknown> }>;
}
type Redlock4Class = new (clients: Redis[], options: Record<string, number>) => Redlock4;

export const redlock4: Library = {
  id: "redlock4",
  pkg: "redlock4",
  label: "node-redlock 4.2.0",
  waits: "10 retries × 200 ± 100 ms",
  delayConfigurable: true,
  connect(redis, retryDelay) {
    const Redlock = load<Redlock4Class>("redlock4");
    const single = new Redlock([redis], { retryCount: 0 });
    const waiting = new Redlock(
      [redis],
      retryDelay === undefined ? {} : { retryDelay, retryJitter: 0 },
    );
    const held = (lock: { unlock(): Promise<unknown> }): Held => ({ release: () => lock.unlock() });
    return {
      async tryAcquire(key, ttl) {
        try {
          return held(await single.lock(key, ttl));
        } catch {
          return null; // a LockError: the resource is held
        }
      },
      acquire: async (key, ttl) => held(await waiting.lock(key, ttl)),
    };
  },
};

export const redisSemaphore: Library = {
  id: "redis-semaphore",
  pkg: "redis-semaphore",
  label: "redis-semaphore 5.8.0 Mutex",
  waits: "polls every 10 ms for up to 10 s (its default is already 10 ms)",
  delayConfigurable: false,
  connect(redis, retryDelay) {
    const client = redis as unknown as ConstructorParameters<typeof Mutex>[0];
    const held = (mutex: Mutex): Held => ({ release: () => mutex.release() });
    return {
      async tryAcquire(key, ttl) {
        const mutex = new Mutex(client, key, { lockTimeout: ttl, acquireAttemptsLimit: 1 });
        return (await mutex.tryAcquire()) ? held(mutex) : null;
      },
      async acquire(key, ttl, signal) {
        const options = retryDelay === undefined ? {} : { retryInterval: retryDelay };
        const mutex = new Mutex(client, key, { lockTimeout: ttl, ...options });
        await mutex.acquire(signal);
        return held(mutex);
      },
    };
  },
};

export const redlockUniversal: Library = {
  id: "redlock-universal",
  pkg: "redlock-universal",
  label: "redlock-universal 0.8.5",
  waits: "3 retries × 100 ms",
  delayConfigurable: true,
  connect(redis, retryDelay) {
    const adapter = new IoredisAdapter(
      redis as unknown as ConstructorParameters<typeof IoredisAdapter>[0],
    );
    const locks = new Map<string, Lock>(); // a waiting worker keeps its lock object, as users do
    const held = (lock: Lock, handle: Awaited<ReturnType<Lock["acquire"]>>): Held => ({
      release: () => lock.release(handle),
    });
    return {
      async tryAcquire(key, ttl) {
        const lock = createLock({ adapter, key, ttl, retryAttempts: 0 });
        try {
          return held(lock, await lock.acquire());
        } catch (error) {
          if (error instanceof LockAcquisitionError) return null;
          throw error;
        }
      },
      async acquire(key, ttl) {
        let lock = locks.get(key);
        if (!lock) {
          lock = createLock({
            adapter,
            key,
            ttl,
            ...(retryDelay === undefined ? {} : { retryDelay }),
          });
          locks.set(key, lock);
        }
        return held(lock, await lock.acquire());
      },
    };
  },
};

/** The libraries every TCP scenario measures, floor first. */
export const TCP_LIBRARIES: readonly Library[] = [
  floor,
  edgelock,
  redlock5,
  redlock4,
  redisSemaphore,
  redlockUniversal,
];

/** A variant of `library` at `retryDelay` ms, for the contention scenario. */
export function atDelay(library: Library, retryDelay: number): Library {
  return {
    ...library,
    id: `${library.id}@${retryDelay}ms`,
    label: `${library.label}, ${retryDelay} ms retry`,
    waits: `every ${retryDelay} ms (no jitter)`,
    connect: (redis) => library.connect(redis, retryDelay),
  };
}
