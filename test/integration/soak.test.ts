/**
 * Soak: about 1,000 concurrent `withLock` calls over 50 keys, for `SOAK_SECONDS` (default 20;
 * CI runs 60) against a real redis-server. Every critical section checks that it is alone on its
 * key and writes through a fenced counter; afterwards heap and active handles must be back near
 * their baseline, and no promise may have been rejected unhandled.
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createLocker, LockTimeoutError } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delay } from "../support/async.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 20);

/** A full garbage collection, so heap figures compare live data only. */
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;
const WORKERS = 1_000;
const KEYS = 50;

let server: RedisProcess;
let client: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url);
});
afterAll(async () => {
  client?.disconnect();
  await server?.stop();
});

describe("soak", () => {
  it(
    `runs ${WORKERS} concurrent withLock loops over ${KEYS} keys for ${SECONDS} s without overlap or leaks`,
    async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", onUnhandled);
      const handlesBefore = process.getActiveResourcesInfo().length;
      collectGarbage();
      const heapBefore = process.memoryUsage().heapUsed;

      const locker = createLocker({ adapter: ioredisAdapter(client), retryDelay: 5 });
      const inside = new Array<number>(KEYS).fill(0);
      const lastFence = new Array<number>(KEYS).fill(0);
      let overlaps = 0;
      let staleFences = 0;
      let sections = 0;
      let timeouts = 0;
      const deadline = performance.now() + SECONDS * 1000;

      /** A critical section on `slot`: alone on its key, with a fence above every earlier one. */
      const section = (slot: number) =>
        locker.using(
          `soak:${slot}`,
          2_000,
          async (lease) => {
            inside[slot] = (inside[slot] ?? 0) + 1;
            if (inside[slot] !== 1) overlaps++;
            if (lease.fence <= (lastFence[slot] ?? 0)) staleFences++;
            lastFence[slot] = lease.fence;
            await delay(Math.random() * 3);
            inside[slot] = (inside[slot] ?? 1) - 1;
            sections++;
          },
          { timeout: 5_000 },
        );
      const worker = async () => {
        while (performance.now() < deadline) {
          await section(Math.floor(Math.random() * KEYS)).catch((error: unknown) => {
            if (error instanceof LockTimeoutError) timeouts++;
            else throw error;
          });
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));

      await delay(200);
      process.off("unhandledRejection", onUnhandled);
      collectGarbage();
      const handlesAfter = process.getActiveResourcesInfo().length;
      const heapAfter = process.memoryUsage().heapUsed;

      expect(overlaps).toBe(0);
      expect(staleFences).toBe(0);
      expect(sections).toBeGreaterThan(KEYS * SECONDS * 10);
      expect(unhandled).toEqual([]);
      expect(handlesAfter).toBeLessThanOrEqual(handlesBefore + 2);
      expect(heapAfter - heapBefore).toBeLessThan(16 * 1024 * 1024);
      console.log(
        `soak: ${sections} sections, ${timeouts} timeouts, ` +
          `handles ${handlesBefore}→${handlesAfter}, heap +${((heapAfter - heapBefore) / 2 ** 20).toFixed(1)} MiB`,
      );
    },
    (SECONDS + 60) * 1000,
  );
});
