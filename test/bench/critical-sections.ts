/**
 * What the contention scenario records and how it is judged. A critical section runs from the
 * moment a worker's acquire resolves to the moment it calls release, on one monotonic clock
 * (every worker is in this process). With a correct lock no two of them overlap.
 */

import { jain, percentile, perSecond } from "./stats.js";

export interface CriticalSection {
  readonly worker: number;
  /** When the worker learnt it holds the lock (ms, `performance.now()`). */
  readonly start: number;
  /** When the worker called release. */
  readonly end: number;
}

export interface SectionAnalysis {
  sections: number;
  sectionsPerSec: number;
  ownerChangesPerSec: number;
  /** Share of sections taken by the same worker as the one before. */
  sameOwnerShare: number;
  /** From a release to the next section of another worker, in ms. */
  handoffP50: number;
  handoffP99: number;
  handoffs: number;
  fairness: number;
  perWorker: number[];
  /** Sections that started before an earlier one ended. */
  overlaps: number;
}

/**
 * Sections that overlap an earlier one: sorted by start, a section overlaps if it starts before
 * the latest end seen so far. Sections that merely touch (start === end) do not overlap.
 */
export function countOverlaps(sections: readonly CriticalSection[]): number {
  const sorted = [...sections].sort((a, b) => a.start - b.start);
  let latestEnd = Number.NEGATIVE_INFINITY;
  let overlaps = 0;
  for (const section of sorted) {
    if (section.start < latestEnd) overlaps++;
    latestEnd = Math.max(latestEnd, section.end);
  }
  return overlaps;
}

/**
 * Judges the sections that started inside [from, to): throughput, ownership changes, hand-off
 * latency (release → next section of a different worker), Jain fairness over `workers`
 * per-worker counts, and overlaps (counted over every section recorded, window or not).
 */
export function analyse(
  all: readonly CriticalSection[],
  workers: number,
  from: number,
  to: number,
): SectionAnalysis {
  const sections = all
    .filter((section) => section.start >= from && section.start < to)
    .sort((a, b) => a.start - b.start);
  const perWorker = Array.from({ length: workers }, () => 0);
  const handoffs: number[] = [];
  let changes = 0;
  let previous: CriticalSection | undefined;
  for (const section of sections) {
    perWorker[section.worker] = (perWorker[section.worker] ?? 0) + 1;
    if (previous && previous.worker !== section.worker) {
      changes++;
      handoffs.push(section.start - previous.end);
    }
    previous = section;
  }
  const span = to - from;
  return {
    sections: sections.length,
    sectionsPerSec: perSecond(sections.length, span),
    ownerChangesPerSec: perSecond(changes, span),
    sameOwnerShare: sections.length > 1 ? 1 - changes / (sections.length - 1) : Number.NaN,
    handoffP50: percentile(handoffs, 0.5),
    handoffP99: percentile(handoffs, 0.99),
    handoffs: handoffs.length,
    fairness: jain(perWorker),
    perWorker,
    overlaps: countOverlaps(all),
  };
}
