/**
 * Everything one `npm run bench` measured, kept per repetition, and the medians and same-run
 * ratios the tables are made of.
 */

import type { BenchConfig } from "./config.js";
import type { Machine } from "./machine.js";
import type { ContentionMode, ContentionResult } from "./scenarios/contention.js";
import type { Outcome } from "./scenarios/context.js";
import type { InflightResult } from "./scenarios/inflight.js";
import type { LatencyResult } from "./scenarios/latency.js";
import type { MemoryResult } from "./scenarios/memory.js";
import type { RestResult } from "./scenarios/rest.js";
import type { ScaleResult } from "./scenarios/scale.js";
import type { SequentialResult } from "./scenarios/sequential.js";
import { median, ratio } from "./stats.js";

/** One library's outcomes, one per repetition. */
export type Series<T> = Outcome<T>[];

/** A row of a table: who was measured, and how. */
export interface Entry<T> {
  id: string;
  label: string;
  waits: string;
  series: Series<T>;
}

export interface Results {
  config: BenchConfig;
  machine: Machine;
  sequential: Entry<SequentialResult>[];
  inflight: Entry<InflightResult>[];
  contention: Record<ContentionMode, Entry<ContentionResult>[]>;
  /** Loopback PING, PUBLISH and least hand-off latencies (scenario 3's physical floor), per repetition. */
  latency: Series<LatencyResult>;
  /** The never-blocking control lock, greedy, once. */
  overlapControl: Outcome<ContentionResult> | undefined;
  rest: Entry<RestResult>[];
  scale: Outcome<ScaleResult>[];
  /** Redis memory per distinct key, once (undefined when scenario 6 did not run). */
  memory: Outcome<MemoryResult> | undefined;
  /** Rejections nobody handled (libraries' background work), with the first message. */
  strays: { count: number; first: string | undefined };
  /** Wall-clock duration of the whole run, in seconds. */
  seconds: number;
}

/** Adds `outcome` as repetition `repetition` of the entry `id`, creating the entry if needed. */
export function record<T>(
  entries: Entry<T>[],
  row: { id: string; label: string; waits: string },
  repetition: number,
  outcome: Outcome<T>,
): void {
  let entry = entries.find((candidate) => candidate.id === row.id);
  if (!entry) {
    entry = { ...row, series: [] };
    entries.push(entry);
  }
  entry.series[repetition] = outcome;
}

/** The first failure of a series, if every repetition failed. */
export function failure<T>(series: Series<T>): string | undefined {
  const outcomes = series.filter(Boolean);
  if (outcomes.length === 0 || outcomes.some((outcome) => outcome.ok)) return undefined;
  const first = outcomes[0];
  return first && !first.ok ? first.error : undefined;
}

/** Median over repetitions of `pick` (failed repetitions left out). */
export function med<T>(series: Series<T> | undefined, pick: (value: T) => number): number {
  const values = (series ?? []).flatMap((outcome) => (outcome?.ok ? [pick(outcome.value)] : []));
  return median(values);
}

/**
 * Median over repetitions of `pick(value) / pick(floor)`, each ratio taken within one
 * repetition (so both figures come from the same moment of the same run).
 */
export function medRatio<T>(
  series: Series<T> | undefined,
  floor: Series<T> | undefined,
  pick: (value: T) => number,
): number {
  const ratios: number[] = [];
  (series ?? []).forEach((outcome, repetition) => {
    const base = floor?.[repetition];
    if (outcome?.ok && base?.ok) ratios.push(ratio(pick(outcome.value), pick(base.value)));
  });
  return median(ratios);
}

/** The entry with id `id`. */
export function find<T>(entries: readonly Entry<T>[], id: string): Entry<T> | undefined {
  return entries.find((entry) => entry.id === id);
}

/** The first calls' requests, from the repetition that measured them. */
export function coldOf(series: Series<RestResult>): string {
  const measured = series.find((outcome) => outcome?.ok && outcome.value.cold);
  return measured?.ok && measured.value.cold ? measured.value.cold.join(" / ") : "–";
}
