/**
 * The performance targets for edgelock, checked against this run's medians, with lines that are only
 * reported (goal "reported", no pass or fail).
 */

import { cell, ms, num, table, times } from "./format.js";
import { coldOf, type Entry, find, med, medRatio, type Results } from "./results.js";
import type { ContentionResult } from "./scenarios/contention.js";
import type { LatencyResult } from "./scenarios/latency.js";
import { median } from "./stats.js";

interface Target {
  what: string;
  goal: string;
  value: string;
  /** undefined when the scenario did not run. */
  met: boolean | undefined;
}

export function checkTargets(results: Results): string {
  const rows = targets(results)
    .filter((target) => target.met !== undefined)
    .map((t) => [cell(t.what), t.goal, t.value, verdict(t)]);
  if (rows.length === 0) return "No targeted scenario ran.";
  return table(["target", "goal", "edgelock", "result"], rows);
}

/** "met" or "**missed**"; "–" for a line that is only reported. */
function verdict(target: Target): string {
  if (target.goal === "reported") return "–";
  return target.met ? "met" : "**missed**";
}

/**
 * edgelock's pairs/s ÷ the fenced floor's in one uncontended scenario, reported with the fenced
 * floor's own ratio to the floor (the most any fencing lock can reach here) and that of
 * edgelock's scripts sent raw (the most edgelock's client code could reach).
 */
function perFencedFloor<T extends { pairsPerSec: number }>(
  what: string,
  entries: readonly Entry<T>[],
): Target {
  const fenced = find(entries, "fenced-floor")?.series;
  const value = medRatio(find(entries, "edgelock")?.series, fenced, (r) => r.pairsPerSec);
  const floor = find(entries, "floor")?.series;
  const bound = medRatio(fenced, floor, (r) => r.pairsPerSec);
  const scripts = medRatio(find(entries, "edgelock-scripts")?.series, floor, (r) => r.pairsPerSec);
  return {
    what,
    goal: "reported",
    value: `${times(value)} (fenced floor: ${times(bound)} floor; edgelock's scripts raw: ${times(scripts)} floor)`,
    met: Number.isFinite(value) ? true : undefined,
  };
}

/**
 * The most critical sections per second a pub/sub hand-off could reach: each one lasts the hold
 * (edgelock's median) and is followed by at least the hand-off's own latency to an idle
 * subscriber, so `1 / (hold + hand-off)`. Two bounds: a bare PUBLISH (no lock at all), and the
 * least atomic hand-off (one script that checks the holder, pops a waiter, sets the lock, mints a
 * fence and publishes), which bounds any lock that hands over inside Redis. Each is taken within
 * a repetition, as a ratio to that repetition's floor and with the share of it edgelock reached,
 * and reported as the median over repetitions.
 */
function pubsubCeiling(
  results: Results,
  think: Entry<ContentionResult>["series"] | undefined,
  thinkFloor: Entry<ContentionResult>["series"] | undefined,
): Target {
  const bound = (handOff: (latency: LatencyResult) => number) => {
    const ratios: number[] = [];
    const shares: number[] = [];
    think?.forEach((outcome, repetition) => {
      const floor = thinkFloor?.[repetition];
      const latency = results.latency[repetition];
      if (!outcome?.ok || !floor?.ok || !latency?.ok) return;
      const ceiling = 1000 / (outcome.value.holdP50 + handOff(latency.value) / 1000);
      ratios.push(ceiling / floor.value.sectionsPerSec);
      shares.push((outcome.value.sectionsPerSec / ceiling) * 100);
    });
    return { ratio: median(ratios), share: median(shares) };
  };
  const bounds = [bound((r) => r.publishP50), bound((r) => r.handOffP50)];
  const ratios = bounds.map((b) => times(b.ratio)).join(" / ");
  const shares = bounds.map((b) => `${num(b.share)} %`).join(" / ");
  return {
    what: "3b: CS/s ceiling, 1 / (hold p50 + hand-off p50), ÷ raw floor, for a bare PUBLISH / the least atomic hand-off",
    goal: "reported",
    value: `${ratios} (edgelock reached ${shares} of it)`,
    met: bounds.every((b) => Number.isFinite(b.ratio)) ? true : undefined,
  };
}

/**
 * What a reference lock that waits as edgelock does reaches in the same run: its critical sections
 * per second as a ratio to the floor, with the share of it edgelock reached. The least pub/sub
 * hand-off lock bounds any lock that hands over through pub/sub with an atomic fence; edgelock's
 * scripts sent raw tell what edgelock's scripts cost from what its client code costs.
 */
function referenceRow(
  what: string,
  think: Entry<ContentionResult>["series"] | undefined,
  thinkFloor: Entry<ContentionResult>["series"] | undefined,
  reference: Entry<ContentionResult>["series"] | undefined,
): Target {
  const ratio = medRatio(reference, thinkFloor, (r) => r.sectionsPerSec);
  const reached = medRatio(think, reference, (r) => r.sectionsPerSec);
  return {
    what,
    goal: "reported",
    value: `${times(ratio)} (edgelock reached ${num(reached * 100)} % of it)`,
    met: Number.isFinite(ratio) ? true : undefined,
  };
}

/** `test` of a value, or undefined when the value is missing. */
function judge(value: number, test: (value: number) => boolean): boolean | undefined {
  return Number.isFinite(value) ? test(value) : undefined;
}

function targets(results: Results): Target[] {
  const list: Target[] = [];
  const seq = results.sequential;
  const seqRatio = medRatio(
    find(seq, "edgelock")?.series,
    find(seq, "floor")?.series,
    (r) => r.pairsPerSec,
  );
  list.push({
    what: "1: sequential pairs/s ÷ floor",
    goal: "≥ 0.95×",
    value: times(seqRatio),
    met: judge(seqRatio, (v) => v >= 0.95),
  });
  list.push(perFencedFloor("1: sequential pairs/s ÷ fenced floor", seq));
  const flight = results.inflight;
  const flightRatio = medRatio(
    find(flight, "edgelock")?.series,
    find(flight, "floor")?.series,
    (r) => r.pairsPerSec,
  );
  list.push({
    what: "2: pairs/s with 200 in flight ÷ floor",
    goal: "≥ 0.92×",
    value: times(flightRatio),
    met: judge(flightRatio, (v) => v >= 0.92),
  });
  list.push(perFencedFloor("2: pairs/s with 200 in flight ÷ fenced floor", flight));
  const commands = med(find(seq, "edgelock")?.series, (r) => r.commandsPerPair);
  list.push({
    what: "1: wire commands per uncontended pair",
    goal: "2",
    value: num(commands, 2),
    met: judge(commands, (v) => v <= 2),
  });

  const think = find(results.contention.think, "edgelock")?.series;
  const thinkFloor = find(results.contention.think, "floor")?.series;
  const p50 = med(think, (r) => r.handoffP50);
  const p99 = med(think, (r) => r.handoffP99);
  const csRatio = medRatio(think, thinkFloor, (r) => r.sectionsPerSec);
  const thinkFair = med(think, (r) => r.fairness);
  const perCs = med(think, (r) => r.commandsPerSection);
  list.push(
    {
      what: "3b (5 ms think): handoff p50",
      goal: "≤ 0.5 ms",
      value: `${ms(p50)} ms`,
      met: judge(p50, (v) => v <= 0.5),
    },
    {
      what: "3b: handoff p99",
      goal: "≤ 2 ms",
      value: `${ms(p99)} ms`,
      met: judge(p99, (v) => v <= 2),
    },
    {
      what: "3b: CS/s ÷ raw floor polling every 10 ms",
      goal: "≥ 2×",
      value: times(csRatio),
      met: judge(csRatio, (v) => v >= 2),
    },
    pubsubCeiling(results, think, thinkFloor),
    referenceRow(
      "3b: CS/s of the least pub/sub hand-off lock (measured) ÷ raw floor",
      think,
      thinkFloor,
      find(results.contention.think, "least-handoff")?.series,
    ),
    referenceRow(
      "3b: CS/s of edgelock's scripts sent raw (no library code) ÷ raw floor",
      think,
      thinkFloor,
      find(results.contention.think, "edgelock-scripts")?.series,
    ),
    {
      what: "3b: Jain fairness",
      goal: "≥ 0.95",
      value: num(thinkFair, 2),
      met: judge(thinkFair, (v) => v >= 0.95),
    },
    {
      what: "3b: wire commands per CS",
      goal: "≤ 2.5",
      value: num(perCs, 2),
      met: judge(perCs, (v) => v <= 2.5),
    },
  );

  const greedy = find(results.contention.greedy, "edgelock")?.series;
  const changes = med(greedy, (r) => r.ownerChangesPerSec);
  const greedyFair = med(greedy, (r) => r.fairness);
  list.push(
    {
      what: "3a (greedy): owner changes/s",
      goal: "≥ 300",
      value: num(changes),
      met: judge(changes, (v) => v >= 300),
    },
    {
      what: "3a: Jain fairness",
      goal: "≥ 0.95",
      value: num(greedyFair, 2),
      met: judge(greedyFair, (v) => v >= 0.95),
    },
  );

  const runs = [...results.contention.think, ...results.contention.greedy].flatMap((e) => e.series);
  if (runs.length > 0) {
    const overlaps = runs.reduce((sum, o) => sum + (o?.ok ? o.value.overlaps : 0), 0);
    const control = results.overlapControl;
    const detected = control?.ok ? control.value.overlaps : 0;
    list.push({
      what: "3: overlapping critical sections, every library (control lock: detected)",
      goal: "0 (control > 0)",
      value: `${overlaps} (control: ${detected})`,
      met: overlaps === 0 && detected > 0,
    });
  }

  const rest = find(results.rest, "edgelock")?.series;
  if (rest?.some((o) => o?.ok)) {
    const perOp = [
      med(rest, (r) => r.acquireRequests),
      med(rest, (r) => r.releaseRequests),
      med(rest, (r) => r.extendRequests),
    ];
    const cold = coldOf(rest);
    list.push({
      what: "4: HTTP requests per tryAcquire / release / extend",
      goal: "1 / 1 / 1",
      value: `${perOp.map((v) => num(v, 2)).join(" / ")} (first calls after SCRIPT FLUSH: ${cold})`,
      met: perOp.every((v) => v === 1),
    });
  }

  const headline = results.scale[0];
  if (headline?.ok) {
    const s = headline.value;
    list.push(
      {
        what: `5: subscriber connections for ${num(s.waiters)} waiters in one client`,
        goal: "1",
        value: String(s.subscriberConnections),
        met: s.subscriberConnections === 1,
      },
      {
        what: `5: every waiter served (cap ${results.config.scale.capMs / 1000} s)`,
        goal: `${num(s.waiters)}`,
        value: `${num(s.served)} in ${ms(s.elapsedMs)} ms`,
        met: s.served === s.waiters,
      },
      {
        what: "5: memory (RSS / heap MiB) before → waiting → after",
        goal: "reported",
        value: `${s.before.rss.toFixed(0)}/${s.before.heap.toFixed(0)} → ${s.waiting.rss.toFixed(0)}/${s.waiting.heap.toFixed(0)} → ${s.after.rss.toFixed(0)}/${s.after.heap.toFixed(0)}`,
        met: true,
      },
    );
  } else if (headline) {
    list.push({ what: "5: scale scenario", goal: "runs", value: cell(headline.error), met: false });
  }

  const memory = results.memory;
  if (memory?.ok) {
    const m = memory.value;
    list.push({
      what: "6: memory per distinct key (bytes), kept after release for the default fenceRetention",
      goal: "reported",
      value: `${num(m.bytesPerKey)} (counter: ${num(m.releasedCounter)} by MEMORY USAGE; ${num(m.keys)} keys)`,
      met: true,
    });
  } else if (memory) {
    list.push({ what: "6: memory scenario", goal: "runs", value: cell(memory.error), met: false });
  }
  return list;
}
