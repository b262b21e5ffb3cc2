/**
 * Benchmark settings: the full run (3 repetitions, medians) and `--quick` (one shorter
 * repetition, for development). Durations are in milliseconds.
 */

/** The scenarios, by issue-6 number (6: memory per key, added since). */
export type ScenarioId = "1" | "2" | "3" | "4" | "5" | "6";

export interface BenchConfig {
  mode: "full" | "quick";
  /** Repetitions of scenarios 1–4; the headline ratios are medians over them. */
  repetitions: number;
  /** Lease of every lock taken, in ms: far longer than any hold, so no lease ever expires. */
  ttl: number;
  /**
   * Scenario 1: warm-up pairs, then `durationMs` of pairs per library, interleaved with the other
   * libraries in `rounds` slices (plus one warm-up round); then `countedPairs` under MONITOR.
   */
  sequential: { warmupPairs: number; durationMs: number; rounds: number; countedPairs: number };
  /** Scenario 2: `inFlight` concurrent pair loops on one connection, interleaved likewise. */
  inflight: { inFlight: number; durationMs: number; rounds: number };
  /** Scenario 3: `workers` workers on one key, each holding `holdMs`. */
  contention: {
    workers: number;
    holdMs: number;
    thinkMs: number;
    warmupMs: number;
    windowMs: number;
    /** How long stopped workers get to finish before their connections are closed. */
    drainMs: number;
    /** The retry delay every configurable peer is also measured at. */
    retryDelay: number;
  };
  /** Scenario 4: operations counted per kind, then pairs timed for `durationMs`, interleaved. */
  rest: { countedOps: number; durationMs: number; rounds: number };
  /** Scenario 5: waiter counts (the first is the headline) and the time each may take. */
  scale: { waiters: readonly number[]; capMs: number };
  /** Scenario 6: distinct keys acquired and released to measure Redis memory per key. */
  memory: { keys: number };
  /** Write docs/benchmarks.md and docs/benchmarks.svg. */
  write: boolean;
  /** Only these scenarios (all when undefined). */
  only: ReadonlySet<ScenarioId> | undefined;
  /** Only libraries whose id starts with one of these (floors, bounds always run); all if unset. */
  libraries: readonly string[] | undefined;
}

const FULL: BenchConfig = {
  mode: "full",
  repetitions: 3,
  ttl: 10_000,
  sequential: { warmupPairs: 300, durationMs: 1_000, rounds: 10, countedPairs: 200 },
  inflight: { inFlight: 200, durationMs: 1_000, rounds: 10 },
  contention: {
    workers: 10,
    holdMs: 1,
    thinkMs: 5,
    warmupMs: 250,
    windowMs: 1_200,
    drainMs: 300,
    retryDelay: 10,
  },
  rest: { countedOps: 20, durationMs: 1_000, rounds: 10 },
  scale: { waiters: [10_000, 1_000, 100], capMs: 12_000 },
  memory: { keys: 100_000 },
  write: true,
  only: undefined,
  libraries: undefined,
};

const QUICK: BenchConfig = {
  ...FULL,
  mode: "quick",
  repetitions: 1,
  sequential: { warmupPairs: 200, durationMs: 500, rounds: 5, countedPairs: 100 },
  inflight: { inFlight: 200, durationMs: 500, rounds: 5 },
  contention: { ...FULL.contention, warmupMs: 200, windowMs: 800, drainMs: 200 },
  rest: { countedOps: 10, durationMs: 400, rounds: 4 },
  scale: { waiters: [10_000], capMs: 8_000 },
  memory: { keys: 20_000 },
  write: false,
};

const USAGE = `usage: npm run bench -- [--quick] [--write | --no-write] [--only=1,3] [--reps=N]
  --quick      one short repetition (~1 minute); does not write docs/ unless --write
  --only=LIST  run only these scenarios (1 sequential, 2 in flight, 3 contention, 4 REST, 5 scale,
               6 memory per key)
  --libs=LIST  only libraries whose id starts with one of these (floors, bounds always run)
  --reps=N     repetitions of scenarios 1-4 (default 3, quick 1)
  --waiters=N,M  waiter counts of scenario 5 (default 10000,1000,100; quick 10000)
  --keys=N     distinct keys of scenario 6 (default 100000; quick 20000)`;

/** Reads the command line; throws with the usage text on anything unknown. */
export function parseArgs(argv: readonly string[]): BenchConfig {
  const quick = argv.includes("--quick");
  const config: BenchConfig = { ...(quick ? QUICK : FULL) };
  for (const arg of argv) {
    if (arg === "--quick") continue;
    if (arg === "--write") config.write = true;
    else if (arg === "--no-write") config.write = false;
    else if (arg.startsWith("--only=")) config.only = parseOnly(arg.slice("--only=".length));
    else if (arg.startsWith("--reps=")) config.repetitions = parseReps(arg.slice("--reps=".length));
    else if (arg.startsWith("--libs=")) config.libraries = arg.slice("--libs=".length).split(",");
    else if (arg.startsWith("--waiters=")) {
      const waiters = arg.slice("--waiters=".length).split(",").map(Number);
      if (!waiters.every((n) => Number.isInteger(n) && n > 0)) {
        throw new Error(`--waiters takes positive integers, got ${JSON.stringify(arg)}\n${USAGE}`);
      }
      config.scale = { ...config.scale, waiters };
    } else if (arg.startsWith("--keys=")) {
      const keys = Number(arg.slice("--keys=".length));
      if (!Number.isInteger(keys) || keys < 1) {
        throw new Error(`--keys takes a positive integer, got ${JSON.stringify(arg)}\n${USAGE}`);
      }
      config.memory = { keys };
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  return config;
}

/** The floors and bounds every ratio is measured against: `--libs` never leaves them out. */
const ALWAYS_RUN: ReadonlySet<string> = new Set(["floor", "fenced-floor", "least-handoff"]);

/**
 * True if the library `id` is selected. The floors and bounds always are; the row of edgelock's
 * scripts sent raw (`edgelock-scripts`) goes with `edgelock`, whose prefix it shares.
 */
export function included(config: BenchConfig, id: string): boolean {
  const wanted = config.libraries;
  return (
    wanted === undefined || ALWAYS_RUN.has(id) || wanted.some((prefix) => id.startsWith(prefix))
  );
}

/** True if scenario `id` is selected. */
export function selected(config: BenchConfig, id: ScenarioId): boolean {
  return config.only === undefined || config.only.has(id);
}

function parseOnly(list: string): ReadonlySet<ScenarioId> {
  const ids = list.split(",").map((item) => item.trim());
  for (const id of ids) {
    if (!["1", "2", "3", "4", "5", "6"].includes(id)) {
      throw new Error(`--only takes scenario numbers 1-6, got ${JSON.stringify(id)}\n${USAGE}`);
    }
  }
  return new Set(ids as ScenarioId[]);
}

function parseReps(value: string): number {
  const reps = Number(value);
  if (!Number.isInteger(reps) || reps < 1 || reps > 9) {
    throw new Error(`--reps must be an integer from 1 to 9, got ${JSON.stringify(value)}`);
  }
  return reps;
}
