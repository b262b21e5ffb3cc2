/**
 * Reference latencies for judging hand-off figures: what loopback Redis itself costs on this
 * machine. A hand-off over pub/sub needs at least one PUBLISH reaching a subscriber, and the
 * waiters are idle when it arrives, so that path is measured after 1 ms of idleness, as in the
 * contention scenario.
 */

import { setTimeout as delay } from "node:timers/promises";
import { percentile } from "../stats.js";
import type { BenchContext } from "./context.js";

export interface LatencyResult {
  /** PING round trip on one connection, µs. */
  pingP50: number;
  pingP99: number;
  /** From sending PUBLISH on one connection to the message arriving on another, µs. */
  publishP50: number;
  publishP99: number;
  /** PING round trip sent after 1 ms of idleness (a waiter's or holder's first request), µs. */
  idlePingP50: number;
  idlePingP99: number;
}

const SAMPLES = 1_000;
const WARMUP = 200;

export async function latency(context: BenchContext): Promise<LatencyResult> {
  const publisher = await context.redis.connection();
  const subscriber = await context.redis.connection();
  try {
    await subscriber.subscribe("bench:latency");
    let arrived: () => void = () => {};
    subscriber.on("message", () => arrived());
    const pings: number[] = [];
    const publishes: number[] = [];
    const idlePings: number[] = [];
    for (let n = 0; n < WARMUP + SAMPLES; n++) {
      await delay(1);
      const message = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      const sent = performance.now();
      void publisher.publish("bench:latency", "1");
      await message;
      const published = performance.now();
      await publisher.ping();
      const pinged = performance.now();
      await delay(1);
      const idle = performance.now();
      await publisher.ping();
      if (n >= WARMUP) {
        publishes.push((published - sent) * 1000);
        pings.push((pinged - published) * 1000);
        idlePings.push((performance.now() - idle) * 1000);
      }
    }
    return {
      pingP50: percentile(pings, 0.5),
      pingP99: percentile(pings, 0.99),
      publishP50: percentile(publishes, 0.5),
      publishP99: percentile(publishes, 0.99),
      idlePingP50: percentile(idlePings, 0.5),
      idlePingP99: percentile(idlePings, 0.99),
    };
  } finally {
    publisher.disconnect();
    subscriber.disconnect();
  }
}
