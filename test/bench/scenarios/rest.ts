/**
 * Scenario 4: the REST path. An edgelock gateway (in this process) serves the Upstash REST
 * protocol in front of the benchmark's redis-server; every library talks to it through its own
 * `@upstash/redis` client at the client's defaults. A counting `fetch` tells how many HTTP
 * requests each operation costs: the first call after the script cache is flushed, then steady
 * state; then sequential tryAcquire+release pairs are timed, interleaved with the other libraries.
 */

import { randomBytes } from "node:crypto";
import { Redis as UpstashRedis } from "@upstash/redis";
import { startGateway } from "edgelock/gateway";
import { FetchCounter } from "../fetch-counter.js";
import type { RestHeld, RestLibrary } from "../rest-peers.js";
import { percentile, perSecond } from "../stats.js";
import type { BenchContext } from "./context.js";
import type { SliceRunner } from "./interleave.js";

export interface RestResult {
  /** HTTP requests per operation in steady state. */
  acquireRequests: number;
  releaseRequests: number;
  extendRequests: number;
  /** Redis commands per HTTP request, over those operations. */
  commandsPerRequest: number;
  /** HTTP requests of the first tryAcquire, extend, release after `SCRIPT FLUSH` (once). */
  cold: [number, number, number] | undefined;
  pairsPerSec: number;
  /** Pair latency percentiles, in ms. */
  p50: number;
  p99: number;
}

export interface RestBench {
  /** Counts one library's requests per operation, then times its pairs slice by slice. */
  runner(library: RestLibrary, repetition: number): Promise<SliceRunner<RestResult>>;
  close(): Promise<void>;
}

export async function startRestBench(context: BenchContext): Promise<RestBench> {
  const token = randomBytes(16).toString("hex");
  const gateway = await startGateway({ redis: context.redis.url, tokens: [token], port: 0 });
  const counter = new FetchCounter();
  const restore = counter.install();
  const { ttl, rest: settings } = context.config;

  const counted = async <T>(operation: () => Promise<T>) => {
    counter.reset();
    const result = await operation();
    return { result, requests: counter.requests, commands: counter.commands };
  };

  return {
    async runner(library, repetition) {
      const client = new UpstashRedis({ url: gateway.url, token, enableTelemetry: false });
      const lock = library.connect(client);
      const prefix = `s4:${library.id}:${repetition}`;
      const take = async (key: string) => {
        const held = await lock.tryAcquire(key, ttl);
        if (!held) throw new Error(`the uncontended key ${key} was not acquired`);
        return held;
      };

      // Once: what the first calls cost right after the script cache is flushed. Then one
      // untimed cycle, so the counted operations below are in steady state.
      let cold: RestResult["cold"];
      if (repetition === 0) await context.redis.admin.script("FLUSH");
      const first = await counted(() => take(`${prefix}:first`));
      const firstExtend = await counted(() => first.result.extend(ttl));
      const firstRelease = await counted(() => first.result.release());
      if (repetition === 0) {
        cold = [first.requests, firstExtend.requests, firstRelease.requests];
      }

      const keys = Array.from({ length: settings.countedOps }, (_, n) => `${prefix}:op:${n}`);
      const acquired = await counted(async () => {
        const held: RestHeld[] = [];
        for (const key of keys) held.push(await take(key));
        return held;
      });
      const extended = await counted(async () => {
        for (const held of acquired.result) await held.extend(ttl);
      });
      const released = await counted(async () => {
        for (const held of acquired.result) await held.release();
      });
      const operations = keys.length;
      const requests = acquired.requests + extended.requests + released.requests;
      const commands = acquired.commands + extended.commands + released.commands;

      let next = 0;
      const latencies: number[] = [];
      return {
        async slice(ms, timed) {
          const end = performance.now() + ms;
          while (performance.now() < end) {
            const before = performance.now();
            await (await take(`${prefix}:pair:${next++}`)).release();
            if (timed) latencies.push(performance.now() - before);
          }
        },
        async finish() {
          const total = latencies.reduce((sum, latency) => sum + latency, 0);
          return {
            acquireRequests: acquired.requests / operations,
            releaseRequests: released.requests / operations,
            extendRequests: extended.requests / operations,
            commandsPerRequest: commands / requests,
            cold,
            pairsPerSec: perSecond(latencies.length, total),
            p50: percentile(latencies, 0.5),
            p99: percentile(latencies, 0.99),
          };
        },
        close() {},
      };
    },
    async close() {
      restore();
      await gateway.close();
    },
  };
}
