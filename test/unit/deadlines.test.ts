import { describe, expect, it } from "vitest";
import { type DeadlineGroup, Deadlines } from "../../adapters/deadlines.js";
import { activeTimers, delay, gate, rejection } from "./helpers.js";

describe("Deadlines", () => {
  it("passes answers and failures through, and holds no process open once nothing is pending", async () => {
    const timers = activeTimers();
    const deadlines = new Deadlines(1_000);
    expect(await deadlines.run(Promise.resolve(7))).toBe(7);
    const failure = new Error("NOSCRIPT");
    expect(await rejection(deadlines.run(Promise.reject(failure)))).toBe(failure);
    expect(activeTimers()).toBe(timers);
  });

  it("still enforces a deadline after idling past the timer an earlier request left", async () => {
    const deadlines = new Deadlines(40);
    expect(await deadlines.run(Promise.resolve(1))).toBe(1); // leaves its timer set
    await delay(20);
    const hung = deadlines.run(new Promise(() => {})).catch((error: Error) => error.message);
    const started = performance.now();
    await delay(40); // the earlier request's timer fires first, finding this one not yet due
    expect(await hung).toBe("Redis did not answer within 40 ms");
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    expect(performance.now() - started).toBeLessThan(120);
  });

  it("rejects each request that outlives the timeout, in order, and only those", async () => {
    const deadlines = new Deadlines(60);
    const hung = gate();
    const quick = gate();
    const first = deadlines.run(hung.promise).catch((error: Error) => error.message);
    await delay(30);
    const second = deadlines.run(new Promise(() => {})).catch((error: Error) => error.message);
    const answered = deadlines.run(quick.promise);
    quick.open();
    await answered;
    const started = performance.now();
    expect(await first).toBe("Redis did not answer within 60 ms");
    expect(performance.now() - started).toBeLessThan(55); // at its own deadline, not later
    expect(await second).toBe("Redis did not answer within 60 ms");
    hung.open(); // a late answer changes nothing
  });

  it("is in its group's busy set only while requests are pending, and can give them all up", async () => {
    const timers = activeTimers();
    const group: DeadlineGroup = { busy: new Set(), unready: undefined };
    const deadlines = new Deadlines(1_000, (error) => new Error(`mapped: ${String(error)}`), group);
    expect(group.busy.size).toBe(0);
    const late = gate();
    const first = deadlines.run(late.promise).catch((error: Error) => error.message);
    const second = deadlines.run(new Promise(() => {})).catch((error: Error) => error.message);
    expect([...group.busy]).toEqual([deadlines]);
    const started = performance.now();
    deadlines.abandon("refused");
    expect(await first).toBe("mapped: refused");
    expect(await second).toBe("mapped: refused");
    expect(performance.now() - started).toBeLessThan(50); // at once, not at the deadline
    expect(group.busy.size).toBe(0);
    expect(deadlines.pending).toBe(0);
    late.open(); // a late answer changes nothing
    expect(await deadlines.run(Promise.resolve(3))).toBe(3);
    expect(group.busy.size).toBe(0);
    await delay(1_050); // the timer left from the abandoned requests finds nothing due, and stops
    expect(activeTimers()).toBeLessThanOrEqual(timers);
  });

  it("says why a request may have gone unanswered, when its group knows", async () => {
    const group: DeadlineGroup = {
      busy: new Set(),
      unready: 'not connected (ioredis status "connect")',
    };
    const deadlines = new Deadlines(30, undefined, group);
    const error = await rejection(deadlines.run(new Promise(() => {})));
    expect(error).toMatchObject({
      name: "TimeoutError",
      message: 'Redis did not answer within 30 ms: not connected (ioredis status "connect")',
    });
  });
});
