/**
 * Scenario 6: the Redis memory each distinct key costs, with edgelock's default `fenceRetention`
 * (the built package, as users install it). A held lock is its key and its fencing counter; a
 * released one leaves only the counter, kept for the retention. Measures `MEMORY USAGE` of both
 * while held and of the counter after release, then the growth of `INFO memory`'s `used_memory`
 * over many acquire + release pairs of distinct keys on an emptied server: what a counter really
 * costs, its share of Redis's key tables included.
 */

import { createLocker, FENCE_RETENTION, lockNames } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import type { Redis } from "ioredis";
import type { BenchContext } from "./context.js";

/** What scenario 6 measured. */
export interface MemoryResult {
  /** Distinct keys acquired and released for the growth figure. */
  keys: number;
  /** How many of those pairs ran at once. */
  inFlight: number;
  /** Characters in each of those keys (their Redis names are this plus the prefix's). */
  keyLength: number;
  /** `MEMORY USAGE` while held, bytes: the lock key and its counter. */
  heldLock: number;
  heldCounter: number;
  /** `MEMORY USAGE` of the counter after release, bytes. */
  releasedCounter: number;
  /** PTTL of the counter right after release, ms: the retention. */
  counterTtl: number;
  /** Redis keys left per distinct key after release (1: the counter alone). */
  keysLeftPerKey: number;
  /** `used_memory` growth per distinct key after the pairs, bytes. */
  bytesPerKey: number;
}

/** Pairs in flight at once while filling the server. */
const IN_FLIGHT = 200;
const LEASE = 10_000;

/** The `n`-th key: fixed width, so every key's names have the same length. */
const keyOf = (n: number) => `order:${String(n).padStart(8, "0")}`;

/**
 * Measures one held lock and one released key with `MEMORY USAGE`, then empties the server and
 * acquires and releases `config.memory.keys` distinct keys, reading `used_memory` before and after.
 * Throws if the counter is not kept for the default retention (a stale `dist/`).
 */
export async function memory(context: BenchContext): Promise<MemoryResult> {
  const { keys } = context.config.memory;
  const { admin } = context.redis;
  const redis = await context.redis.connection();
  try {
    const locker = createLocker({ adapter: ioredisAdapter(redis) });
    const usage = async (name: string) =>
      Number(await admin.call("MEMORY", "USAGE", name, "SAMPLES", "0"));
    const sample = lockNames("edgelock", keyOf(0));
    const lease = await locker.tryAcquire(keyOf(0), LEASE);
    if (!lease) throw new Error(`${keyOf(0)} was not free`);
    const heldLock = await usage(sample.lock);
    const heldCounter = await usage(sample.fence);
    await lease.release();
    const releasedCounter = await usage(sample.fence);
    const counterTtl = await admin.pttl(sample.fence);
    if (counterTtl > FENCE_RETENTION || counterTtl < FENCE_RETENTION - 60_000) {
      throw new Error(`the counter is kept ${counterTtl} ms, not the default retention`);
    }

    await admin.flushall("SYNC");
    const before = await usedMemory(admin);
    for (let next = 0; next < keys; next += IN_FLIGHT) {
      const batch = Array.from({ length: Math.min(IN_FLIGHT, keys - next) }, (_, i) => next + i);
      await Promise.all(
        batch.map(async (n) => {
          const held = await locker.tryAcquire(keyOf(n), LEASE);
          if (!held) throw new Error(`${keyOf(n)} was not free`);
          await held.release();
        }),
      );
    }
    const after = await usedMemory(admin);
    return {
      keys,
      inFlight: IN_FLIGHT,
      keyLength: keyOf(0).length,
      heldLock,
      heldCounter,
      releasedCounter,
      counterTtl,
      keysLeftPerKey: (await admin.dbsize()) / keys,
      bytesPerKey: (after - before) / keys,
    };
  } finally {
    redis.disconnect();
  }
}

/** `used_memory` from `INFO memory`, bytes. */
async function usedMemory(admin: Redis): Promise<number> {
  const info = await admin.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}
