/**
 * Scenario 2: uncontended acquire+release of distinct keys with 200 pairs in flight on one
 * connection (200 loops sharing one client), interleaved with the other libraries. Measures
 * pairs/s.
 */

import type { Library } from "../peers.js";
import { perSecond } from "../stats.js";
import type { BenchContext } from "./context.js";
import type { SliceRunner } from "./interleave.js";
import { pairs } from "./pairs.js";

export interface InflightResult {
  pairsPerSec: number;
}

export async function inflight(
  library: Library,
  context: BenchContext,
  repetition: number,
): Promise<SliceRunner<InflightResult>> {
  const { ttl, inflight: settings } = context.config;
  const redis = await context.redis.connection();
  const pair = pairs(library.connect(redis), `s2:${library.id}:${repetition}`, ttl);
  let done = 0;
  let elapsed = 0;
  return {
    async slice(ms, counted) {
      let completed = 0;
      const start = performance.now();
      const stopAt = start + ms;
      const loop = async () => {
        while (performance.now() < stopAt) {
          await pair();
          completed++;
        }
      };
      await Promise.all(Array.from({ length: settings.inFlight }, loop));
      if (counted) {
        done += completed;
        elapsed += performance.now() - start;
      }
    },
    async finish() {
      return { pairsPerSec: perSecond(done, elapsed) };
    },
    close: () => redis.disconnect(),
  };
}
