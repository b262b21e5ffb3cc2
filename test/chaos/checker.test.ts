/**
 * The checker on hand-written histories: each violation it exists to find is found, and a clean
 * history stays clean. Without this, a chaos suite that never reports anything would pass.
 */

import { describe, expect, it } from "vitest";
import { type CheckInput, check } from "./checker.js";
import type { HistoryEvent } from "./history.js";
import type { Sample } from "./observer.js";

const KEY = "resource";

/** A process `p` holding fence `fence` from `start` to `end`, reading and writing the store. */
function section(
  p: number,
  fence: number,
  [start, end]: [number, number],
  store: { read?: number; write?: number; accepted?: boolean; value?: number } = {},
): HistoryEvent[] {
  const events: HistoryEvent[] = [
    { t: start - 1, p, op: "acquire", type: "invoke", key: KEY, ttl: 100 },
    { t: start, p, op: "acquire", type: "ok", key: KEY, fence },
  ];
  if (store.read !== undefined) {
    events.push({ t: store.read, p, op: "read", type: "ok", key: KEY, fence, value: 0, plain: 0 });
  }
  if (store.write !== undefined) {
    const type = store.accepted === false ? "fail" : "ok";
    const value = store.value ?? 1;
    events.push({ t: store.write, p, op: "write", type, key: KEY, fence, value, plain: value });
  }
  events.push({ t: end, p, op: "release", type: "invoke", key: KEY, fence });
  return events;
}

function input(
  events: HistoryEvent[],
  samples: Sample[] = [],
  final = { value: 0, plain: 0 },
): CheckInput {
  return { events, samples: new Map([[KEY, samples]]), finals: new Map([[KEY, final]]) };
}

const held = (sent: number, fence: number, ttl = 100): Sample => ({ sent, held: true, ttl, fence });
const free = (sent: number, fence: number): Sample => ({ sent, held: false, ttl: 0, fence });

describe("chaos checker", () => {
  it("finds nothing wrong in two back-to-back sections", () => {
    const events = [
      ...section(1, 10, [0, 50], { read: 10, write: 40 }),
      ...section(2, 11, [60, 90], { read: 65, write: 80, value: 2 }),
    ];
    const metrics = check(
      input(events, [held(5, 10), free(55, 10), held(70, 11)], { value: 2, plain: 2 }),
    );
    expect(metrics).toMatchObject({
      criticalSections: 2,
      historyOverlaps: 0,
      acceptedOverlaps: 0,
      staleAccepted: 0,
      staleRejected: 0,
      lostUpdates: 0,
      plainLostUpdates: 0,
      fenceInversions: 0,
      duplicateFences: 0,
      resurrections: 0,
      orphans: 0,
    });
  });

  it("counts overlapping sections, and overlapping accepted writes as lost updates", () => {
    const events = [
      ...section(1, 10, [0, 50], { read: 10, write: 40 }),
      ...section(2, 11, [30, 90], { read: 35, write: 45 }),
    ];
    const metrics = check(input(events, [], { value: 1, plain: 1 }));
    expect(metrics).toMatchObject({
      historyOverlaps: 1,
      acceptedOverlaps: 1,
      lostUpdates: 1,
      plainLostUpdates: 1,
    });
  });

  it("tells accepted stale writes from rejected ones", () => {
    const accepted = [
      ...section(1, 10, [0, 50], { read: 10, write: 70 }),
      ...section(2, 11, [60, 90], { read: 65 }),
    ];
    expect(check(input(accepted, [], { value: 1, plain: 1 })).staleAccepted).toBe(1);
    const rejected = [
      ...section(1, 10, [0, 50], { read: 10, write: 70, accepted: false }),
      ...section(2, 11, [60, 90], { read: 65 }),
    ];
    expect(check(input(rejected, [], { value: 0, plain: 1 }))).toMatchObject({
      staleAccepted: 0,
      staleRejected: 1,
    });
  });

  it("finds fences that go down or repeat", () => {
    const down = [...section(1, 10, [0, 50]), ...section(2, 9, [60, 90])];
    expect(check(input(down, [held(5, 10), held(70, 9)])).fenceInversions).toBe(2);
    const twice = [...section(1, 10, [0, 50]), ...section(2, 10, [60, 90])];
    expect(check(input(twice)).duplicateFences).toBe(1);
  });

  it("finds loss signalled after the server-side expiry", () => {
    const events = [
      ...section(1, 10, [0, 200]),
      { t: 90, p: 1, op: "lost", type: "info", key: KEY, fence: 10 } as const,
      ...section(2, 11, [300, 400]),
      { t: 150, p: 2, op: "lost", type: "info", key: KEY, fence: 11 } as const,
    ];
    // Fence 10 was seen with 95 ms left at t = 5 (expiry ≥ 100); fence 11 never: ok + ttl = 400.
    const metrics = check(input(events, [held(5, 10, 95)]));
    expect(metrics).toMatchObject({ lostSignals: 2, lateSignals: 0 });
    const late = check(input(events, [held(5, 10, 50)]));
    expect(late.lateSignals).toBe(1);
  });

  it("finds resurrected leases and orphan locks kept alive", () => {
    const events = section(1, 10, [0, 50]);
    const resurrected = [held(5, 10), free(20, 10), held(30, 10)];
    expect(check(input(events, resurrected)).resurrections).toBe(1);
    const orphan = [held(100, 77), held(200, 77), free(250, 77)];
    expect(check(input(events, orphan))).toMatchObject({ orphans: 1, orphansKeptAlive: 0 });
    const keptAlive = [held(100, 77), held(400, 77)];
    expect(check(input(events, keptAlive))).toMatchObject({ orphans: 1, orphansKeptAlive: 1 });
  });

  it("ends a section at its process's death", () => {
    const killed = [
      ...section(1, 10, [0, 500]).slice(0, 2),
      { t: 50, p: 1, op: "exit", type: "info", detail: "killed" } as const,
      ...section(2, 11, [60, 90]),
    ];
    expect(check(input(killed)).historyOverlaps).toBe(0);
  });
});
