/**
 * Reference latencies for judging hand-off figures: what loopback Redis itself costs on this
 * machine. A hand-off over pub/sub needs at least one PUBLISH reaching a subscriber, and the
 * waiters are idle when it arrives, so that path is measured after 1 ms of idleness, as in the
 * contention scenario.
 *
 * A lock that hands over inside Redis, as edgelock does, needs more than a PUBLISH: one script
 * that checks the holder, pops the next waiter, gives it the lock, mints its fence and publishes.
 * The least such script (the release of the least pub/sub hand-off lock, `least-handoff.ts`) is
 * timed the same way, from sending it to the message's arrival.
 */

import { setTimeout as delay } from "node:timers/promises";
import { LEAST_HAND_OFF, leastKeys } from "../least-handoff.js";
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
  /** From sending {@link LEAST_HAND_OFF} after 1 ms of idleness to the waiter's message, µs. */
  handOffP50: number;
  handOffP99: number;
}

const SAMPLES = 1_000;
const WARMUP = 200;

export async function latency(context: BenchContext): Promise<LatencyResult> {
  const publisher = await context.redis.connection();
  const subscriber = await context.redis.connection();
  try {
    const channel = "bench:latency";
    await subscriber.subscribe(channel);
    let arrived: () => void = () => {};
    subscriber.on("message", () => arrived());
    const nextMessage = () =>
      new Promise<void>((resolve) => {
        arrived = resolve;
      });
    const handOff = (await publisher.script("LOAD", LEAST_HAND_OFF.lua)) as string;
    const [lock, fence, line] = leastKeys("latency");
    const pings: number[] = [];
    const publishes: number[] = [];
    const idlePings: number[] = [];
    const handOffs: number[] = [];
    for (let n = 0; n < WARMUP + SAMPLES; n++) {
      await delay(1);
      let message = nextMessage();
      const sent = performance.now();
      void publisher.publish(channel, "1");
      await message;
      const published = performance.now();
      await publisher.ping();
      const pinged = performance.now();
      await delay(1);
      const idle = performance.now();
      await publisher.ping();
      const idlePinged = performance.now();
      await publisher.set(lock, "holder");
      await publisher.rpush(line, `waiter 10000 ${channel}`);
      await delay(1);
      message = nextMessage();
      const released = performance.now();
      void publisher.evalsha(handOff, 3, lock, fence, line, "holder");
      await message;
      if (n >= WARMUP) {
        publishes.push((published - sent) * 1000);
        pings.push((pinged - published) * 1000);
        idlePings.push((idlePinged - idle) * 1000);
        handOffs.push((performance.now() - released) * 1000);
      }
    }
    return {
      pingP50: percentile(pings, 0.5),
      pingP99: percentile(pings, 0.99),
      publishP50: percentile(publishes, 0.5),
      publishP99: percentile(publishes, 0.99),
      idlePingP50: percentile(idlePings, 0.5),
      idlePingP99: percentile(idlePings, 0.99),
      handOffP50: percentile(handOffs, 0.5),
      handOffP99: percentile(handOffs, 0.99),
    };
  } finally {
    publisher.disconnect();
    subscriber.disconnect();
  }
}
