/// <reference types="node" />
/**
 * `npm run bench`: edgelock and its peers side by side, in one process, against one real
 * redis-server spawned on a free loopback port. Every figure is also given as a ratio to the raw
 * floor measured in the same repetition; the full run repeats scenarios 1–4 three times and
 * reports medians. Prints markdown tables; the full run also writes docs/benchmarks.md and
 * docs/benchmarks.svg.
 *
 *   npm run bench                 # full run (~3–4 minutes)
 *   npm run bench -- --quick      # one short repetition (~1 minute), docs/ untouched
 *   npm run bench -- --only=3     # just the contention scenario
 *   npm run bench -- --only=6 --no-write   # just the Redis memory per distinct key
 */

import { included, parseArgs, selected } from "./config.js";
import { edgelockScripts } from "./edgelock-scripts.js";
import { fencedFloor } from "./fenced-floor.js";
import { leastHandOff } from "./least-handoff.js";
import { describeMachine } from "./machine.js";
import {
  atDelay,
  edgelock,
  edgelockPolling,
  floor,
  type Library,
  redisSemaphore,
  redlock4,
  redlock5,
  redlockUniversal,
  TCP_LIBRARIES,
} from "./peers.js";
import { brokenLock, inProcessFifo } from "./reference-locks.js";
import { writeReport } from "./report.js";
import { REST_LIBRARIES } from "./rest-peers.js";
import { type Results, record } from "./results.js";
import { type ContentionMode, contention } from "./scenarios/contention.js";
import { attempt, type BenchContext, describeError, type Outcome } from "./scenarios/context.js";
import { inflight } from "./scenarios/inflight.js";
import { interleave } from "./scenarios/interleave.js";
import { latency } from "./scenarios/latency.js";
import { memory } from "./scenarios/memory.js";
import { startRestBench } from "./scenarios/rest.js";
import { scale } from "./scenarios/scale.js";
import { sequential } from "./scenarios/sequential.js";
import { startBenchRedis } from "./server.js";

const config = parseArgs(process.argv.slice(2));
const log = (message: string) => process.stderr.write(`${message}\n`);
const began = performance.now();

const strays = { count: 0, first: undefined as string | undefined };
process.on("unhandledRejection", (reason) => {
  strays.count++;
  strays.first ??= describeError(reason);
});

/**
 * The contention lineup: the floor polling every 10 ms, the least pub/sub hand-off lock, edgelock
 * (and its scripts sent raw), each peer at 10 ms too.
 */
function contenders(retryDelay: number): Library[] {
  const all = [
    floor,
    leastHandOff,
    edgelockScripts,
    edgelock,
    edgelockPolling,
    redlock5,
    atDelay(redlock5, retryDelay),
    redlock4,
    atDelay(redlock4, retryDelay),
    redisSemaphore,
    redlockUniversal,
    atDelay(redlockUniversal, retryDelay),
    inProcessFifo,
  ];
  return all.filter((library) => included(config, library.id) || library === inProcessFifo);
}

/**
 * Scenarios 1–2: the TCP libraries selected by `--libs`, the fenced floor after the floor, and
 * edgelock's scripts sent raw before edgelock.
 */
const tcpLibraries = [
  floor,
  fencedFloor,
  edgelockScripts,
  ...TCP_LIBRARIES.filter((library) => library !== floor),
].filter((library) => included(config, library.id));

/** The outcome of `library`, or a failure if it has none. */
function outcomeOf<T>(outcomes: Map<string, Outcome<T>>, library: { id: string }): Outcome<T> {
  return outcomes.get(library.id) ?? { ok: false, error: "not measured" };
}

/** `items` rotated by `by`, so no library always runs first (or last) in a repetition. */
function rotated<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

const redis = await startBenchRedis();
const context: BenchContext = { config, redis, log };
const results: Results = {
  config,
  machine: describeMachine(await redis.version()),
  sequential: [],
  inflight: [],
  contention: { greedy: [], think: [] },
  overlapControl: undefined,
  latency: [],
  rest: [],
  scale: [],
  memory: undefined,
  strays,
  seconds: 0,
};

try {
  log(`edgelock benchmark, ${config.mode} mode, ${config.repetitions} repetition(s)`);
  const rest = selected(config, "4") ? await startRestBench(context) : undefined;
  for (let repetition = 0; repetition < config.repetitions; repetition++) {
    const round = `[${repetition + 1}/${config.repetitions}]`;
    await redis.reset();
    if (selected(config, "1")) {
      log(`${round} 1 sequential, interleaved`);
      const { durationMs, rounds } = config.sequential;
      const options = { durationMs, rounds, shift: repetition };
      const outcomes = await interleave(tcpLibraries, options, context, (library) =>
        sequential(library, context, repetition),
      );
      for (const library of tcpLibraries) {
        record(results.sequential, library, repetition, outcomeOf(outcomes, library));
      }
    }
    if (selected(config, "2")) {
      log(`${round} 2 in flight, interleaved`);
      const { durationMs, rounds } = config.inflight;
      const options = { durationMs, rounds, shift: repetition };
      const outcomes = await interleave(tcpLibraries, options, context, (library) =>
        inflight(library, context, repetition),
      );
      for (const library of tcpLibraries) {
        record(results.inflight, library, repetition, outcomeOf(outcomes, library));
      }
    }
    if (selected(config, "3")) {
      for (const mode of ["think", "greedy"] as ContentionMode[]) {
        const lineup = rotated(contenders(config.contention.retryDelay), repetition);
        for (const library of lineup) {
          log(`${round} 3 contention (${mode}): ${library.id}`);
          const run = `r${repetition}`;
          const outcome = await attempt(() => contention(library, mode, context, run));
          record(results.contention[mode], library, repetition, outcome);
        }
      }
      log(`${round} 3 reference latencies: PING, PUBLISH, the least atomic hand-off`);
      results.latency[repetition] = await attempt(() => latency(context));
    }
    if (rest) {
      log(`${round} 4 REST, interleaved`);
      const restLibraries = REST_LIBRARIES.filter((library) => included(config, library.id));
      const { durationMs, rounds } = config.rest;
      const options = { durationMs, rounds, shift: repetition };
      const outcomes = await interleave(restLibraries, options, context, (library) =>
        rest.runner(library, repetition),
      );
      for (const library of restLibraries) {
        record(results.rest, { ...library, waits: "" }, repetition, outcomeOf(outcomes, library));
      }
    }
  }
  await rest?.close();
  if (selected(config, "3")) {
    log("3 overlap detector control: a lock that never blocks");
    results.overlapControl = await attempt(() => contention(brokenLock, "greedy", context, "c"));
  }
  if (selected(config, "5")) {
    await redis.reset();
    for (const waiters of config.scale.waiters) {
      log(`5 scale: ${waiters} waiters (cap ${config.scale.capMs / 1000} s)`);
      results.scale.push(await attempt(() => scale(context, waiters)));
    }
  }
  if (selected(config, "6")) {
    await redis.reset();
    log(`6 memory: ${config.memory.keys} distinct keys acquired and released`);
    results.memory = await attempt(() => memory(context));
  }
} finally {
  await redis.stop();
}

results.seconds = (performance.now() - began) / 1000;
const markdown = await writeReport(results);
process.stdout.write(`${markdown}\n`);
log(
  `done in ${results.seconds.toFixed(0)} s${config.write ? "; wrote docs/benchmarks.md and docs/benchmarks.svg" : ""}`,
);
process.exit(0);
