/**
 * The chaos suite (`npm run test:chaos`): every scenario of test/chaos/scenarios, a few runs
 * each with seeded random timings, over real redis-server and real client processes. Prints a
 * per-scenario table at the end and writes it as JSON (and, with `CHAOS_WRITE=1`, as
 * docs/chaos-results.md). `CHAOS_SEED` replays a run; `CHAOS_ITERATIONS` sets the runs per
 * scenario.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChaosEnvironment } from "./environment.js";
import { runScenario, type ScenarioResult } from "./runner.js";
import { scenarios } from "./scenarios/index.js";
import { metricsTable, writeReports } from "./summary.js";

let environment: ChaosEnvironment | undefined;
const results: ScenarioResult[] = [];
const started = performance.now();

beforeAll(async () => {
  environment = await ChaosEnvironment.start();
});

afterAll(async () => {
  await environment?.close();
  if (!environment || results.length === 0) return;
  const seconds = (performance.now() - started) / 1000;
  const written = await writeReports(results, environment.seed, seconds);
  console.log(
    `chaos: master seed ${environment.seed}, ${seconds.toFixed(1)} s\n${metricsTable(results)}\n` +
      `written: ${written.join(", ")}`,
  );
});

describe("chaos", () => {
  for (const scenario of scenarios) {
    it(`${scenario.id} ${scenario.title}`, async () => {
      if (!environment) throw new Error("the chaos environment did not start");
      const result = await runScenario(scenario, environment);
      results.push(result);
      expect(result.failure, result.failure).toBeUndefined();
      expect(result.runs).toBeGreaterThan(0);
    });
  }
});
