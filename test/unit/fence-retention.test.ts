/**
 * The fencing counter's retention (`fenceRetention`) on the in-memory backend, on a clock the
 * test moves: what each operation asks the scripts to keep, when the counter really goes, and
 * that fences keep increasing across a counter that went. test/integration/fence-retention.test.ts
 * reads the same on a real Redis with PTTL.
 */

import {
  createLocker,
  FENCE_RETENTION,
  type Lease,
  type Locker,
  MAX_DURATION,
  MIN_FENCE_RETENTION,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it } from "vitest";
import { delay, record } from "./helpers.js";

const RETENTION = 5_000;

/** A locker over a store whose expiry clock the test sets, recording every script call. */
function onClock(fenceRetention?: number) {
  const clock = { now: 0 };
  const recording = record(memoryAdapter({ clock: () => clock.now }));
  const locker = createLocker({ adapter: recording.adapter, fenceRetention });
  /** The last fence the store knows for `key` (0 once its counter is gone). */
  const counter = async (key: string) => (await locker.inspect(key)).fence;
  return { clock, recording, locker, counter };
}

async function mustAcquire(locker: Locker, key: string, ttl: number): Promise<Lease> {
  const lease = await locker.tryAcquire(key, ttl);
  if (!lease) throw new Error(`expected to acquire ${key}`);
  return lease;
}

describe("fenceRetention", () => {
  it("defaults to 24 hours, at least 1 s", () => {
    expect(FENCE_RETENTION).toBe(86_400_000);
    expect(MIN_FENCE_RETENTION).toBe(1_000);
  });

  it.each([
    [999, "between 1000 and"],
    [0, "between 1000 and"],
    [-1, "between 1000 and"],
    [MAX_DURATION + 1, "between 1000 and"],
    [1_500.5, "integer number of milliseconds"],
    [Number.NaN, "integer number of milliseconds"],
    [Number.POSITIVE_INFINITY, "integer number of milliseconds"],
    ["86400000", "integer number of milliseconds"],
  ])("refuses %s with INVALID_ARGUMENT, before any request", (fenceRetention, says) => {
    const recording = record(memoryAdapter());
    expect(() =>
      createLocker({ adapter: recording.adapter, fenceRetention: fenceRetention as number }),
    ).toThrow(
      expect.objectContaining({
        code: "INVALID_ARGUMENT",
        argument: "fenceRetention",
        message: expect.stringContaining(says),
      }),
    );
    expect(recording.calls).toEqual([]);
  });

  it("asks every script to keep the counter for the retention, or the lease if longer", async () => {
    const { recording, locker } = onClock(RETENTION);
    const short = await mustAcquire(locker, "short", 1_000);
    await short.extend(2_000);
    await short.release();
    const long = await mustAcquire(locker, "long", 8_000);
    await long.extend(9_000);
    await long.release();
    const kept = recording.calls.map((call) =>
      call.script === "extend" ? [call.script, call.args[2]] : [call.script, call.args[1]],
    );
    expect(kept).toEqual([
      ["acquire", "5000"],
      ["extend", "5000"],
      ["release", "5000"],
      ["acquire", "8000"],
      ["extend", "9000"],
      ["release", "5000"],
    ]);
  });

  it("keeps the counter exactly that long after its last acquire or extend, on the store's clock", async () => {
    const { clock, locker, counter } = onClock(RETENTION);
    const lease = await mustAcquire(locker, "job", 1_000);
    clock.now = 500;
    await lease.extend(1_000);
    await lease.release();
    clock.now = 500 + RETENTION - 1;
    expect(await counter("job")).toBe(lease.fence);
    clock.now = 500 + RETENTION;
    expect(await counter("job")).toBe(0);

    // A lease longer than the retention keeps its counter as long as itself.
    const long = await mustAcquire(locker, "long", 8_000);
    clock.now += 7_999;
    expect(await counter("long")).toBe(long.fence);
    clock.now += 1;
    expect(await counter("long")).toBe(0);
  });

  it("keeps the counter of a lock handed to a waiter for the waiter's lease, if longer", async () => {
    const { clock, locker, counter } = onClock(RETENTION);
    const holder = await mustAcquire(locker, "job", 1_000);
    const waiting = locker.acquire("job", 9_000, { timeout: 5_000 });
    await delay(50); // the waiter is in line
    clock.now = 100;
    await holder.release(); // hands the lock over, minting the waiter's fence
    const waiter = await waiting;
    expect(waiter.fence).toBeGreaterThan(holder.fence);
    clock.now = 100 + 9_000 - 1;
    expect(await counter("job")).toBe(waiter.fence);
    clock.now = 100 + 9_000;
    expect(await counter("job")).toBe(0);
  });

  it("fences keep increasing across a counter that expired (the clock floor)", async () => {
    const { clock, locker, counter } = onClock(MIN_FENCE_RETENTION);
    let last = 0;
    for (let round = 0; round < 3; round++) {
      const lease = await mustAcquire(locker, "job", 100);
      expect(lease.fence).toBeGreaterThan(last);
      last = lease.fence;
      await lease.release();
      clock.now += MIN_FENCE_RETENTION;
      expect(await counter("job")).toBe(0); // gone: the next fence comes from the clock alone
      await delay(2);
    }
  });
});
