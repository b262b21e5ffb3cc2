/**
 * The checker: reads a chaos run's history, the observer's samples and the fenced store's final
 * counters, and counts what went right and wrong. It never trusts a client's own arithmetic:
 * intervals come from the history, server-side expiries from the observer.
 */

import type { HistoryEvent } from "./history.js";
import { expiryLowerBound, type Sample } from "./observer.js";

/** What one run (or the sum of several) showed. */
export interface Metrics {
  /** Leases granted to a client (`acquire ok`). */
  criticalSections: number;
  /** Pairs of critical sections of different leases that overlap in time (history intervals). */
  historyOverlaps: number;
  /** Pairs of accepted read-modify-writes (store read → store write) that overlap. */
  acceptedOverlaps: number;
  /** Writes accepted after a newer lease (higher fence) had reached the store. */
  staleAccepted: number;
  /** Store requests rejected as stale: fencing at work. */
  staleRejected: number;
  /** Accepted increments missing from the fenced counter. */
  lostUpdates: number;
  /** Increments missing from the unfenced counter (what the lock alone achieved). */
  plainLostUpdates: number;
  /** Fences that went down: between held samples, or for a lease certainly granted later. */
  fenceInversions: number;
  /** Two leases granted with the same fence. */
  duplicateFences: number;
  /** Leases whose `signal` aborted. */
  lostSignals: number;
  /** ...of which after the server-side expiry (the observer's lower bound). */
  lateSignals: number;
  /** Leases seen held again by the server after they had ended. */
  resurrections: number;
  /** Locks the server granted that no client was told about (abandoned or failed acquires). */
  orphans: number;
  /**
   * ...of which held for more than twice their ttl: a failed acquire's own retries may renew
   * its lock (same token) for a moment, but only a leaked extender keeps it alive longer.
   */
  orphansKeptAlive: number;
}

/** Every counter at zero. */
export function emptyMetrics(): Metrics {
  return {
    criticalSections: 0,
    historyOverlaps: 0,
    acceptedOverlaps: 0,
    staleAccepted: 0,
    staleRejected: 0,
    lostUpdates: 0,
    plainLostUpdates: 0,
    fenceInversions: 0,
    duplicateFences: 0,
    lostSignals: 0,
    lateSignals: 0,
    resurrections: 0,
    orphans: 0,
    orphansKeptAlive: 0,
  };
}

/** Adds `more` into `total`. */
export function addMetrics(total: Metrics, more: Metrics): void {
  for (const name of Object.keys(total) as (keyof Metrics)[]) total[name] += more[name];
}

/** What the checker reads. */
export interface CheckInput {
  events: readonly HistoryEvent[];
  /** Observer samples per lock key. */
  samples: ReadonlyMap<string, readonly Sample[]>;
  /** The fenced store's final counters per resource (= lock key). */
  finals: ReadonlyMap<string, { value: number; plain: number }>;
}

/** A lease's critical section: from `acquire ok` to its end (release, loss or death). */
export interface Section {
  p: number;
  key: string;
  fence: number;
  ttl: number;
  /** When the acquire that got it was invoked. */
  invoked: number;
  start: number;
  end: number;
}

/** Checks one run. */
export function check(input: CheckInput): Metrics {
  const metrics = emptyMetrics();
  const sections = criticalSections(input.events);
  metrics.criticalSections = sections.length;
  metrics.historyOverlaps = countOverlaps(sections);
  checkStore(input, metrics);
  checkFences(sections, input.samples, metrics);
  checkSignals(input, sections, metrics);
  checkServerView(input, sections, metrics);
  return metrics;
}

/**
 * The critical sections, per process in time order. A section ends at the first of: the end of
 * the protected work (`release invoke`), the lease's loss (`lost`), the process's death.
 */
export function criticalSections(events: readonly HistoryEvent[]): Section[] {
  const sections: Section[] = [];
  for (const own of byProcess(events).values()) {
    let invoked = { t: 0, ttl: 0 };
    let open: Section | undefined;
    for (const event of own) {
      if (event.op === "acquire" && event.type === "invoke") {
        invoked = { t: event.t, ttl: event.ttl ?? 0 };
      } else if (event.op === "acquire" && event.type === "ok") {
        open = {
          p: event.p,
          key: event.key ?? "",
          fence: event.fence ?? 0,
          ttl: invoked.ttl,
          invoked: invoked.t,
          start: event.t,
          end: Number.POSITIVE_INFINITY,
        };
        sections.push(open);
      } else if (open && endsSection(event, open.fence)) {
        open.end = event.t;
        open = undefined;
      }
    }
  }
  return sections;
}

function endsSection(event: HistoryEvent, fence: number): boolean {
  if (event.op === "exit") return true;
  return (event.op === "release" && event.type === "invoke") || event.op === "lost"
    ? event.fence === fence
    : false;
}

/** Each process's events in time order (the harness's records of a process merged in). */
function byProcess(events: readonly HistoryEvent[]): Map<number, HistoryEvent[]> {
  const processes = new Map<number, HistoryEvent[]>();
  for (const event of events) {
    if (event.p === 0) continue;
    const own = processes.get(event.p) ?? [];
    own.push(event);
    processes.set(event.p, own);
  }
  for (const own of processes.values()) own.sort((a, b) => a.t - b.t);
  return processes;
}

/** Pairs of intervals of the same key and different leases that overlap. */
function countOverlaps(intervals: readonly Section[]): number {
  let count = 0;
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i];
      const b = intervals[j];
      if (!a || !b || a.key !== b.key || (a.p === b.p && a.fence === b.fence)) continue;
      if (a.start < b.end && b.start < a.end) count++;
    }
  }
  return count;
}

/** Accepted overlaps, stale writes accepted and rejected, lost updates. */
function checkStore(input: CheckInput, metrics: Metrics): void {
  const ops = input.events.filter((event) => event.op === "read" || event.op === "write");
  const accepted: Section[] = [];
  const acceptedWrites = new Map<string, number>();
  const plainWrites = new Map<string, number>();
  for (const op of ops) {
    const key = op.key ?? "";
    if (op.type === "fail") metrics.staleRejected++;
    if (op.op !== "write") continue;
    if (op.plain !== undefined) plainWrites.set(key, (plainWrites.get(key) ?? 0) + 1);
    if (op.type !== "ok") continue;
    acceptedWrites.set(key, (acceptedWrites.get(key) ?? 0) + 1);
    const newer = ops.some(
      (other) => other.key === op.key && other.t < op.t && (other.fence ?? 0) > (op.fence ?? 0),
    );
    if (newer) metrics.staleAccepted++;
    const reads = ops.filter(
      (other) =>
        other.op === "read" &&
        other.type === "ok" &&
        other.p === op.p &&
        other.fence === op.fence &&
        other.key === op.key &&
        other.t <= op.t,
    );
    const start = reads.at(-1)?.t ?? op.t;
    accepted.push({ ...sectionOf(op), invoked: start, start, end: op.t });
  }
  metrics.acceptedOverlaps = countOverlaps(accepted);
  for (const [key, final] of input.finals) {
    metrics.lostUpdates += (acceptedWrites.get(key) ?? 0) - final.value;
    metrics.plainLostUpdates += (plainWrites.get(key) ?? 0) - final.plain;
  }
}

function sectionOf(event: HistoryEvent): Omit<Section, "invoked" | "start" | "end"> {
  return { p: event.p, key: event.key ?? "", fence: event.fence ?? 0, ttl: 0 };
}

/**
 * Fences must grow: across held samples in server order, and between two leases of a key when
 * one was certainly granted after the other (its acquire was invoked after the other's `ok`).
 * No two leases may share a fence.
 */
function checkFences(
  sections: readonly Section[],
  samples: ReadonlyMap<string, readonly Sample[]>,
  metrics: Metrics,
): void {
  for (const own of samples.values()) {
    let last = 0;
    for (const sample of own) {
      if (!sample.held) continue;
      if (sample.fence < last) metrics.fenceInversions++;
      last = Math.max(last, sample.fence);
    }
  }
  sections.forEach((a, i) => {
    sections.forEach((b, j) => {
      if (i === j || a.key !== b.key) return;
      if (b.invoked > a.start && b.fence <= a.fence) metrics.fenceInversions++;
      if (i < j && a.fence === b.fence) metrics.duplicateFences++;
    });
  });
}

/** Lost signals, and those that fired after the server-side expiry. */
function checkSignals(input: CheckInput, sections: readonly Section[], metrics: Metrics): void {
  for (const event of input.events) {
    if (event.op !== "lost") continue;
    metrics.lostSignals++;
    const section = sections.find((s) => s.p === event.p && s.fence === event.fence);
    const samples = input.samples.get(event.key ?? "") ?? [];
    const expiry =
      expiryLowerBound(samples, event.fence ?? 0) ??
      (section ? section.invoked + section.ttl : Number.POSITIVE_INFINITY);
    if (event.t > expiry) metrics.lateSignals++;
  }
}

/** Resurrections and orphans, from the observer's samples. */
function checkServerView(input: CheckInput, sections: readonly Section[], metrics: Metrics): void {
  for (const [key, own] of input.samples) {
    const granted = new Set(sections.filter((s) => s.key === key).map((s) => s.fence));
    const asked = input.events.filter((e) => e.key === key && e.op === "acquire" && e.ttl);
    const longestTtl = Math.max(0, ...asked.map((e) => e.ttl ?? 0));
    const ended = new Set<number>();
    const resurrected = new Set<number>();
    const heldSpan = new Map<number, { first: number; last: number }>();
    let holder: number | undefined;
    for (const sample of own) {
      const now = sample.held ? sample.fence : undefined;
      if (holder !== undefined && now !== holder) ended.add(holder);
      if (now !== undefined && ended.has(now)) resurrected.add(now);
      if (now !== undefined) {
        const span = heldSpan.get(now) ?? { first: sample.sent, last: sample.sent };
        span.last = sample.sent;
        heldSpan.set(now, span);
      }
      holder = now;
    }
    metrics.resurrections += resurrected.size;
    for (const [fence, span] of heldSpan) {
      if (granted.has(fence)) continue;
      metrics.orphans++;
      if (span.last - span.first > 2 * longestTtl + ORPHAN_SLACK_MS) metrics.orphansKeptAlive++;
    }
  }
}

/** Sampling jitter allowed when telling an orphan's span from its ttl. */
const ORPHAN_SLACK_MS = 50;
