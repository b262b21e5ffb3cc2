/// <reference types="node" />
/**
 * Scenario 5: many waiters on one key in one process, through one edgelock client (one ioredis
 * connection). A holder takes the key; the waiters queue behind it; once every waiter has
 * subscribed, the holder releases and each waiter, once served, releases at once. Measures the
 * subscriber connections opened, memory, wire commands and the time until every waiter has held
 * the lock once, within a cap (the run stops there and reports how many were served).
 */

import { setMaxListeners } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createLocker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { callsBetween } from "../server.js";
import { perSecond } from "../stats.js";
import type { BenchContext } from "./context.js";

export interface Memory {
  /** Resident set size, MiB. */
  rss: number;
  /** V8 heap in use, MiB. */
  heap: number;
}

export interface ScaleResult {
  waiters: number;
  served: number;
  /** From the holder's release until the last waiter held the lock, ms; undefined at the cap. */
  allServedMs: number | undefined;
  /** How long the serving phase ran (to the last waiter, or to the cap), ms. */
  elapsedMs: number;
  handoffsPerSec: number;
  /** EVALSHA/EVAL calls per waiter served, while serving (a release is one of them). */
  scriptCallsPerServed: number;
  subscribeCommands: number;
  /** Connections in pub/sub mode while everyone waited (CLIENT LIST TYPE pubsub). */
  subscriberConnections: number;
  clientConnections: number;
  /** Time for every waiter to make its first attempt and subscribe, ms. */
  queueingMs: number;
  before: Memory;
  waiting: Memory;
  after: Memory;
}

const LEASE = 60_000;
const SUBSCRIBE_WAIT_MS = 20_000;
/** How long the waiters' attempts must have paused before they count as queued, in ms. */
const QUIET_MS = 200;

/** A full garbage collection, so memory readings compare live data. */
const collect: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

function memory(): Memory {
  collect();
  const usage = process.memoryUsage();
  const mib = (bytes: number) => bytes / 1024 / 1024;
  return { rss: mib(usage.rss), heap: mib(usage.heapUsed) };
}

export async function scale(context: BenchContext, waiters: number): Promise<ScaleResult> {
  const { capMs } = context.config.scale;
  const key = `s5:${waiters}`;
  const redis = await context.redis.connection();
  const controller = new AbortController();
  setMaxListeners(waiters + 100, controller.signal); // every waiter listens to it
  try {
    const locker = createLocker({ adapter: ioredisAdapter(redis) });
    const holder = await locker.tryAcquire(key, LEASE);
    if (!holder) throw new Error(`${key} was not free`);
    const before = memory();
    const initial = await context.redis.commandCalls();

    let served = 0;
    let lastServedAt = 0;
    let everyoneServed: () => void = () => {};
    const allServed = new Promise<void>((resolve) => {
      everyoneServed = resolve;
    });
    const queuedAt = performance.now();
    for (let n = 0; n < waiters; n++) {
      locker
        .acquire(key, LEASE, { timeout: SUBSCRIBE_WAIT_MS + capMs, signal: controller.signal })
        .then((lease) => {
          served++;
          lastServedAt = performance.now();
          if (served === waiters) everyoneServed();
          return lease.release();
        })
        .catch(() => {});
    }
    // Queued = every waiter has made its first attempt, a subscription is up, and the attempts
    // have stopped for a moment (each waiter is asleep until it is woken or its fallback poll).
    let queueingMs = Number.NaN;
    let lastCalls = -1;
    let quietSince = performance.now();
    while (performance.now() - queuedAt < SUBSCRIBE_WAIT_MS) {
      const calls = await context.redis.commandCalls();
      const attempts = callsBetween(initial, calls, ["evalsha", "eval"]);
      if (attempts !== lastCalls) {
        lastCalls = attempts;
        quietSince = performance.now();
      }
      const subscribed = callsBetween(initial, calls, ["subscribe"]) > 0;
      if (attempts >= waiters && subscribed && performance.now() - quietSince >= QUIET_MS) {
        queueingMs = quietSince - queuedAt;
        break;
      }
      await delay(20);
    }
    const waiting = memory();
    const connections = await context.redis.clients();

    const serving = await context.redis.commandCalls();
    const releasedAt = performance.now();
    await holder.release();
    await Promise.race([allServed, delay(capMs)]);
    const stoppedAt = performance.now();
    const end = await context.redis.commandCalls();
    const finished = served === waiters;
    controller.abort(new Error("scale cap reached"));
    await delay(200);

    const elapsedMs = (finished ? lastServedAt : stoppedAt) - releasedAt;
    return {
      waiters,
      served,
      allServedMs: finished ? elapsedMs : undefined,
      elapsedMs,
      handoffsPerSec: perSecond(served, elapsedMs),
      scriptCallsPerServed: callsBetween(serving, end, ["evalsha", "eval"]) / Math.max(1, served),
      subscribeCommands: callsBetween(initial, end, ["subscribe"]),
      subscriberConnections: connections.pubsub,
      clientConnections: connections.total,
      queueingMs,
      before,
      waiting,
      after: memory(),
    };
  } finally {
    controller.abort(new Error("scale scenario over"));
    redis.disconnect();
  }
}
