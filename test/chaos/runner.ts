/// <reference types="node" />
/**
 * Runs a scenario a few times with seeded random timings, checks every run, and sums what the
 * runs showed. The first failing run stops the scenario; its seed (to replay it) and the path of
 * its history dump go into the failure message. `CHAOS_DUMP=1` dumps every run's history.
 */

import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addMetrics, check, emptyMetrics, type Metrics } from "./checker.js";
import type { ChaosEnvironment } from "./environment.js";
import { deriveSeed } from "./random.js";
import { RunContext, withTimeout } from "./run-context.js";
import type { Promises, Scenario } from "./scenario.js";

/** How long one run's fault injection may take. */
const RUN_TIMEOUT_MS = 40_000;

/** Where failing runs' histories are written. */
export const OUT_DIR = join(tmpdir(), "edgelock-chaos");

/** What a scenario's runs showed. */
export interface ScenarioResult {
  id: string;
  title: string;
  fault: string;
  guarantee: string;
  runs: number;
  metrics: Metrics;
  /** The longest liveness probe after a run, ms. */
  probeMs: number;
  seconds: number;
  /** Why the scenario failed, with the seed to replay it; undefined if it passed. */
  failure: string | undefined;
}

/** Runs `scenario` and reports; never throws for a failing run (see `failure`). */
export async function runScenario(
  scenario: Scenario,
  environment: ChaosEnvironment,
): Promise<ScenarioResult> {
  const started = performance.now();
  const total = emptyMetrics();
  const iterations = Number(process.env.CHAOS_ITERATIONS) || scenario.iterations;
  let runs = 0;
  let probeMs = 0;
  let failure: string | undefined;
  for (let iteration = 0; iteration < iterations && failure === undefined; iteration++) {
    const seed = deriveSeed(environment.seed, scenario.id, iteration);
    const stack = await environment.stack(scenario.stack?.(iteration) ?? "main");
    const context = new RunContext(environment, stack, scenario.id, iteration, seed);
    const problems: string[] = [];
    try {
      await withTimeout(scenario.run(context), RUN_TIMEOUT_MS, "the scenario did not finish");
      const outcomes = await context.finish();
      const timers = outcomes.reduce((sum, o) => sum + (o.kind === "done" ? o.timers : 0), 0);
      if (scenario.promises.noLeakedTimers && timers > 0) problems.push(`${timers} timers leaked`);
      await context.heal();
      await context.observer.stop(); // the probe's own lease is no business of the checker
      probeMs = Math.max(probeMs, await context.probe());
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
    await context.cleanup();
    problems.push(...environment.pool.takeCrashes().map((error) => error.message));
    const metrics = check(context.checkInput());
    addMetrics(total, metrics);
    runs++;
    problems.push(...violations(metrics, scenario.promises));
    const dump = problems.length > 0 || process.env.CHAOS_DUMP === "1";
    const path = dump ? await dumpHistory(context) : undefined;
    if (problems.length > 0) {
      failure =
        `${scenario.id} run ${iteration} (seed ${seed}) failed:\n  - ${problems.join("\n  - ")}\n` +
        `Replay: CHAOS_SEED=${environment.seed} npx vitest run --project chaos -t "${scenario.id} "\n` +
        `History: ${path}`;
    }
  }
  if (failure === undefined && scenario.promises.staleRejections && total.staleRejected === 0) {
    failure = `${scenario.id}: no stale request was rejected in ${runs} runs (master seed ${environment.seed})`;
  }
  const seconds = (performance.now() - started) / 1000;
  const { id, title, fault, guarantee } = scenario;
  return { id, title, fault, guarantee, runs, metrics: total, probeMs, seconds, failure };
}

/** What the checker found that the scenario does not allow. */
export function violations(metrics: Metrics, promises: Promises): string[] {
  const mustBeZero: (keyof Metrics)[] = [
    "acceptedOverlaps",
    "staleAccepted",
    "lostUpdates",
    "fenceInversions",
    "duplicateFences",
    "resurrections",
  ];
  if (!promises.lingeringOrphans) mustBeZero.push("orphansKeptAlive");
  if (promises.exclusive) mustBeZero.push("historyOverlaps", "plainLostUpdates");
  if (promises.timelySignals) mustBeZero.push("lateSignals");
  return mustBeZero
    .filter((name) => metrics[name] !== 0)
    .map((name) => `${name}: ${metrics[name]}`);
}

/** Writes a run's history and observer samples as JSON lines; resolves the file's path. */
async function dumpHistory(context: RunContext): Promise<string> {
  await mkdir(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, `${context.scenario}-${context.iteration}-${context.seed}.jsonl`);
  const events = [...context.history.events].sort((a, b) => a.t - b.t);
  const lines = [
    ...events.map((event) => JSON.stringify(event)),
    ...context.observer.samples.map((sample) => JSON.stringify({ sample })),
  ];
  await writeFile(file, `${lines.join("\n")}\n`);
  return file;
}
