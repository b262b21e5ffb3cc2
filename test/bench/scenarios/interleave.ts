/**
 * Interleaved timing for the uncontended scenarios. The machine this runs on is shared and noisy,
 * so instead of timing each library in one block, every library runs in short slices, round
 * robin, for several rounds: whatever disturbs the machine disturbs every library alike, and
 * the same-run ratios stay meaningful. The first round is a warm-up and is not counted.
 */

import { attempt, type BenchContext, describeError, type Outcome } from "./context.js";

/** One library's part in an interleaved scenario. */
export interface SliceRunner<R> {
  /** Runs the workload for about `ms` milliseconds; `counted` is false in the warm-up round. */
  slice(ms: number, counted: boolean): Promise<void>;
  /** The result, once every round has run (may do untimed work, such as counting commands). */
  finish(): Promise<R>;
  close(): void;
}

export interface InterleaveOptions {
  rounds: number;
  /** Total measured time per library, split evenly over the rounds. */
  durationMs: number;
  /** Where the round-robin order starts, so no library is always first. */
  shift: number;
}

/** Runs `start(library)` for each library, then their slices round robin; one outcome each. */
export async function interleave<L extends { id: string }, R>(
  libraries: readonly L[],
  options: InterleaveOptions,
  context: BenchContext,
  start: (library: L) => Promise<SliceRunner<R>>,
): Promise<Map<string, Outcome<R>>> {
  const outcomes = new Map<string, Outcome<R>>();
  const runners = new Map<string, SliceRunner<R>>();
  for (const library of libraries) {
    const started = await attempt(() => start(library));
    if (started.ok) runners.set(library.id, started.value);
    else outcomes.set(library.id, started);
  }
  const sliceMs = options.durationMs / options.rounds;
  const order = [...runners.keys()];
  try {
    for (let round = 0; round <= options.rounds; round++) {
      const shift = (options.shift + round) % Math.max(1, order.length);
      for (const id of [...order.slice(shift), ...order.slice(0, shift)]) {
        const runner = runners.get(id);
        if (!runner || outcomes.has(id)) continue;
        try {
          await runner.slice(sliceMs, round > 0);
        } catch (error) {
          outcomes.set(id, { ok: false, error: describeError(error) });
        }
      }
    }
    for (const [id, runner] of runners) {
      if (!outcomes.has(id)) outcomes.set(id, await attempt(() => runner.finish()));
    }
  } finally {
    for (const runner of runners.values()) runner.close();
  }
  context.log(`  ${[...outcomes].map(([id, o]) => `${id}${o.ok ? "" : " (failed)"}`).join(", ")}`);
  return outcomes;
}
