/**
 * Scenario 3: ten workers, each with its own connection (and its own client of the library), take
 * turns on one key, holding it for 1 ms (a timer). In `greedy` mode a worker asks again as soon as
 * its release resolves; in `think` mode it first waits 5 ms.
 *
 * After a warm-up, a window is measured: critical sections, owner changes, hand-off latency,
 * fairness, wire commands (counted on the client side, so Redis runs at full speed for every
 * library) and overlapping sections. Then the workers are stopped: aborted where the library takes a signal,
 * and their connections closed after a short drain otherwise.
 */

import { setMaxListeners } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { ClientCounter } from "../client-counter.js";
import { analyse, type CriticalSection, type SectionAnalysis } from "../critical-sections.js";
import type { Held, Library, LockClient } from "../peers.js";
import { percentile, perSecond } from "../stats.js";
import { type BenchContext, describeError } from "./context.js";

export type ContentionMode = "greedy" | "think";

export interface ContentionResult extends SectionAnalysis {
  commandsPerSection: number;
  /** Wire commands per CS by command name, largest first. */
  commandMix: [string, number][];
  /** New client connections Redis accepted per second in the window. */
  connectionsPerSec: number;
  /** Acquire calls in the window that the library gave up on (it stopped retrying). */
  gaveUp: number;
  /** Acquire calls that failed at once (not a wait that ran out), with the first message. */
  failures: number;
  firstFailure: string | undefined;
  /** Median time a worker held the lock, in ms (the 1 ms timer and its overshoot). */
  holdP50: number;
}

/** An acquire that fails faster than this was not a wait that ran out. */
const INSTANT_FAILURE_MS = 1;

export async function contention(
  library: Library,
  mode: ContentionMode,
  context: BenchContext,
  run: string,
): Promise<ContentionResult> {
  const settings = context.config.contention;
  const { ttl } = context.config;
  const key = `s3:${run}:${library.id}:${mode}`;
  const connections = await Promise.all(
    Array.from({ length: settings.workers }, () => context.redis.connection()),
  );
  const counter = new ClientCounter();
  for (const redis of connections) counter.watch(redis);
  const sections: CriticalSection[] = [];
  const gaveUp: number[] = [];
  const failures: number[] = [];
  let firstFailure: string | undefined;
  const controller = new AbortController();
  setMaxListeners(100, controller.signal); // every worker's waits listen to it
  let stopping = false;

  const worker = async (index: number, client: LockClient) => {
    while (!stopping) {
      let held: Held;
      const asked = performance.now();
      try {
        held = await client.acquire(key, ttl, controller.signal);
      } catch (error) {
        if (stopping) return;
        const failed = performance.now();
        if (failed - asked >= INSTANT_FAILURE_MS) gaveUp.push(failed);
        else {
          failures.push(failed);
          firstFailure ??= describeError(error);
          await delay(INSTANT_FAILURE_MS); // a broken library must not spin the event loop
        }
        continue;
      }
      if (stopping) {
        await held.release().catch(() => {});
        return;
      }
      const start = performance.now();
      await delay(settings.holdMs);
      sections.push({ worker: index, start, end: performance.now() });
      await held.release().catch((error: unknown) => {
        failures.push(performance.now());
        firstFailure ??= `release: ${describeError(error)}`;
      });
      if (mode === "think" && !stopping) await delay(settings.thinkMs);
    }
  };

  try {
    const clients = connections.map((redis) => library.connect(redis));
    const tasks = clients.map((client, index) => worker(index, client));
    await delay(settings.warmupMs);
    const connectionsBefore = await context.redis.stat("total_connections_received");
    counter.start();
    const from = performance.now();
    await delay(settings.windowMs);
    const to = performance.now();
    counter.stop();
    const commands = counter.count;
    const mix = [...counter.byCommand].sort((a, b) => b[1] - a[1]);
    const connectionsAfter = await context.redis.stat("total_connections_received");

    stopping = true;
    controller.abort(new Error("benchmark window over"));
    const settled = Promise.allSettled(tasks);
    await Promise.race([settled, delay(settings.drainMs)]);

    const inWindow = (times: number[]) => times.filter((time) => time >= from && time < to).length;
    const analysis = analyse(sections, settings.workers, from, to);
    return {
      ...analysis,
      commandsPerSection: analysis.sections > 0 ? commands / analysis.sections : Number.NaN,
      commandMix: mix.map(([name, count]) => [name, count / Math.max(1, analysis.sections)]),
      connectionsPerSec: perSecond(connectionsAfter - connectionsBefore, to - from),
      gaveUp: inWindow(gaveUp),
      failures: inWindow(failures),
      firstFailure,
      holdP50: percentile(
        sections.map((section) => section.end - section.start),
        0.5,
      ),
    };
  } finally {
    stopping = true;
    controller.abort(new Error("benchmark window over"));
    for (const redis of connections) redis.disconnect();
  }
}
