/**
 * Scenario 1: uncontended acquire+release of distinct keys, one after another on one connection.
 * Measures pairs/s and per-pair latency (interleaved with the other libraries), then counts wire
 * commands per pair with MONITOR in a separate pass, so MONITOR never slows the timed pairs.
 */

import type { Library } from "../peers.js";
import { percentile, perSecond } from "../stats.js";
import { type BenchContext, withCommandCount } from "./context.js";
import type { SliceRunner } from "./interleave.js";
import { pairs } from "./pairs.js";

export interface SequentialResult {
  pairsPerSec: number;
  /** Pair latency percentiles, in µs. */
  p50: number;
  p99: number;
  commandsPerPair: number;
  /**
   * Redis time per pair, µs: the `INFO commandstats` time of the commands the library sends (a
   * script's time includes the commands it runs), measured in a pass without MONITOR.
   */
  redisMicrosPerPair: number;
}

export async function sequential(
  library: Library,
  context: BenchContext,
  repetition: number,
): Promise<SliceRunner<SequentialResult>> {
  const { ttl, sequential: settings } = context.config;
  const redis = await context.redis.connection();
  const pair = pairs(library.connect(redis), `s1:${library.id}:${repetition}`, ttl);
  try {
    for (let n = 0; n < settings.warmupPairs; n++) await pair();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const latencies: number[] = [];
  let elapsed = 0;
  return {
    async slice(ms, counted) {
      const start = performance.now();
      const end = start + ms;
      let last = start;
      while (last < end) {
        await pair();
        const now = performance.now();
        if (counted) latencies.push((now - last) * 1000);
        last = now;
      }
      if (counted) elapsed += last - start;
    },
    async finish() {
      const { result: sent, commands } = await withCommandCount(context, async (counter) => {
        for (let n = 0; n < settings.countedPairs; n++) await pair();
        return [...counter.byCommand.keys()];
      });
      const timedPairs = settings.countedPairs * 10;
      const before = await context.redis.commandMicros();
      for (let n = 0; n < timedPairs; n++) await pair();
      const after = await context.redis.commandMicros();
      const spent = sent.reduce(
        (sum, name) => sum + (after.get(name) ?? 0) - (before.get(name) ?? 0),
        0,
      );
      return {
        pairsPerSec: perSecond(latencies.length, elapsed),
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        commandsPerPair: commands / settings.countedPairs,
        redisMicrosPerPair: spent / timedPairs,
      };
    },
    close: () => redis.disconnect(),
  };
}
