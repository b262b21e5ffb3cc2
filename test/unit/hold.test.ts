/// <reference types="node" />
import { setMaxListeners } from "node:events";
import {
  createLocker,
  type Lease,
  type Locker,
  LockLostError,
  LockTimeoutError,
  LockUnavailableError,
  lockNames,
  releaseScript,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it, vi } from "vitest";
import { activeTimers, delay, record, rejection } from "./helpers.js";

/** Resolves with the signal's reason once it aborts; rejects if that takes longer than `ms`. */
function aborted(signal: AbortSignal, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`signal did not abort within ${ms} ms`)), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(signal.reason);
    };
    if (signal.aborted) return done();
    signal.addEventListener("abort", done, { once: true });
  });
}

describe("using: auto-extension", () => {
  it("keeps a 200 ms lease held through a 1 s task", async () => {
    const recording = record(memoryAdapter());
    const owner = createLocker({ adapter: recording.adapter });
    const other = createLocker({ adapter: recording.adapter });
    const started = performance.now();
    const result = await owner.using("job", 200, async (lease) => {
      await delay(800);
      expect(await other.tryAcquire("job", 1_000)).toBeNull();
      expect(await other.inspect("job", lease.token)).toMatchObject({ held: true, mine: true });
      expect(lease.held).toBe(true);
      expect(lease.signal.aborted).toBe(false);
      await delay(200);
      expect(lease.signal.aborted).toBe(false);
      return "done";
    });
    expect(result).toBe("done");
    expect(performance.now() - started).toBeGreaterThanOrEqual(995);
    // About every ttl/3: some 15 extensions in a second.
    expect(recording.of("extend").length).toBeGreaterThanOrEqual(8);
    expect(recording.of("extend").every((call) => call.reply === 1)).toBe(true);
    expect(await other.inspect("job")).toMatchObject({ held: false });
    // Extension stopped with the hold.
    const extensions = recording.of("extend").length;
    await delay(150);
    expect(recording.of("extend")).toHaveLength(extensions);
  });

  it("a forced loss aborts lease.signal with LockLostError, and using rejects with it", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const other = createLocker({ adapter });
    const names = lockNames("edgelock", "job");
    let reason: unknown;
    let detectedAfter = Number.NaN;
    let thief: Lease | null = null;
    const error = await rejection(
      locker.using("job", 600, async (lease) => {
        const reply = await adapter.evalScript(
          releaseScript,
          [names.lock, names.fence],
          [lease.token, ""],
        );
        expect(reply).toBe(1);
        thief = await other.tryAcquire("job", 60_000);
        const lostAt = performance.now();
        reason = await aborted(lease.signal, 2_000);
        detectedAfter = performance.now() - lostAt;
        expect(lease.held).toBe(false);
        await expect(lease.extend()).rejects.toBeInstanceOf(LockLostError);
        return "finished anyway";
      }),
    );
    expect(reason).toBeInstanceOf(LockLostError);
    expect(reason).toMatchObject({ code: "LOCK_LOST", key: "job" });
    expect(error).toBe(reason);
    // Found by the next extension (about ttl/3 = 200 ms), not by the lease running out (~590 ms).
    expect(detectedAfter).toBeLessThan(450);
    // The lost holder never took the lock back: the new holder still has it.
    const newHolder = thief as Lease | null;
    expect(newHolder).not.toBeNull();
    expect(await other.inspect("job", newHolder?.token)).toMatchObject({ held: true, mine: true });
    await newHolder?.release();
  });

  it("a lease that runs out on its own (extensions failing) aborts its signal too", async () => {
    let broken = false;
    const recording = record(memoryAdapter(), async (call, run) => {
      if (broken && call.script === "extend") throw new Error("network down");
      return run();
    });
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const started = performance.now();
    const error = await rejection(
      locker.using("job", 150, async (lease) => {
        broken = true;
        const reason = await aborted(lease.signal, 2_000);
        expect(performance.now() - started).toBeLessThan(1_000);
        return reason;
      }),
    );
    expect(error).toBeInstanceOf(LockLostError);
    expect(recording.of("extend").length).toBeGreaterThanOrEqual(2); // retried sooner than ttl/3
  });
});

describe("using: a takeover is always told", () => {
  /** Frees the lease's key behind its back, as a Redis restarted without persistence would. */
  async function forget(adapter: ReturnType<typeof memoryAdapter>, lease: Lease) {
    const names = lockNames("edgelock", lease.key);
    const keys = [names.lock, names.fence, names.queue, names.waiters];
    expect(await adapter.evalScript(releaseScript, keys, [lease.token, "1000"])).toBe(1);
  }

  it("rejects with LockLostError when the release finds another holder, never with fn's result", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const other = createLocker({ adapter });
    let thief: Lease | null = null;
    let during: Lease | undefined;
    const error = await rejection(
      locker.using("job", 3_000, async (lease) => {
        during = lease;
        await forget(adapter, lease);
        thief = await other.tryAcquire("job", 60_000);
        expect(lease.signal.aborted).toBe(false); // nothing has told it yet: no extension is due
        return "written while someone else held the lock";
      }),
    );
    expect(error).toBeInstanceOf(LockLostError);
    expect(error).toMatchObject({ code: "LOCK_LOST", key: "job" });
    expect(String((error as Error).message)).toMatch(/no longer held its token at release/);
    expect(during?.signal.aborted).toBe(true);
    expect(during?.signal.reason).toBe(error);
    // The thief's lock is untouched.
    expect(await other.inspect("job", (thief as Lease | null)?.token)).toMatchObject({
      held: true,
      mine: true,
    });
  });

  it("withLock rejects the same way", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const run = locker.withLock("job", 3_000, async (lease) => {
      await forget(adapter, lease);
      await createLocker({ adapter }).tryAcquire("job", 60_000);
      return "done";
    });
    await expect(run()).rejects.toMatchObject({ code: "LOCK_LOST" });
  });

  it("the callback's own error still wins over a takeover found at release", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const failure = new Error("fn failed");
    const error = await rejection(
      locker.using("job", 3_000, async (lease) => {
        await forget(adapter, lease);
        throw failure;
      }),
    );
    expect(error).toBe(failure);
  });

  it("lease.release() resolves false and aborts the signal when another holder has the lock", async () => {
    const adapter = memoryAdapter();
    const lease = await createLocker({ adapter }).tryAcquire("job", 3_000);
    if (!lease) throw new Error("expected the lock");
    const signal = lease.signal;
    await forget(adapter, lease);
    expect(await lease.release()).toBe(false);
    expect(signal.reason).toBeInstanceOf(LockLostError);
    // A normal release never aborts.
    const kept = await createLocker({ adapter }).tryAcquire("other", 3_000);
    const keptSignal = kept?.signal;
    expect(await kept?.release()).toBe(true);
    expect(keptSignal?.aborted).toBe(false);
  });
});

describe("using: the first extension comes in time", () => {
  /** Runs a 2 s task under a 1 s lease over `adapter`; resolves with what it saw. */
  async function longTask(adapter: ReturnType<typeof memoryAdapter>, observer: Locker) {
    const locker = createLocker({ adapter });
    const mine: boolean[] = [];
    const result = await locker.using("job", 1_000, async (lease) => {
      for (let i = 0; i < 8; i++) {
        await delay(250);
        mine.push((await observer.inspect("job", lease.token)).mine);
      }
      return lease.signal.aborted;
    });
    return { aborted: result, mine };
  }

  it("keeps a lease whose acquisition stalled 700 ms of its 1 s ttl", async () => {
    const store = memoryAdapter();
    let stalled = false;
    // The store stalls before running the first acquire, as a paused Redis would: the lock is
    // granted for 1 s from when it runs, but the client learns of it 700 ms after sending.
    const recording = record(store, async (call, run) => {
      if (call.script === "acquire" && !stalled) {
        stalled = true;
        await delay(700);
      }
      return run();
    });
    const seen = await longTask(recording.adapter, createLocker({ adapter: store }));
    expect(seen).toEqual({ aborted: false, mine: Array(8).fill(true) });
    // The first extension went out before the ~290 ms of validity left ran out.
    const first = recording.of("extend")[0];
    expect(first?.reply).toBe(1);
  });

  it("keeps a 1 s lease through a 2 s task over a link with 100 ms each way", async () => {
    const store = memoryAdapter();
    const link = record(store, async (_call, run) => {
      await delay(100);
      const reply = await run();
      await delay(100);
      return reply;
    });
    const seen = await longTask(link.adapter, createLocker({ adapter: store }));
    expect(seen).toEqual({ aborted: false, mine: Array(8).fill(true) });
    expect(link.of("extend").every((call) => call.reply === 1)).toBe(true);
  });
});

describe("using: error precedence", () => {
  function brokenRelease() {
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "release") throw new Error("release transport down");
      return run();
    });
    return { recording, locker: createLocker({ adapter: recording.adapter, retries: 0 }) };
  }

  it("the callback's error wins over a release error, which goes to onReleaseError", async () => {
    const { recording, locker } = brokenRelease();
    const boom = new Error("callback failed");
    const onReleaseError = vi.fn();
    const error = await rejection(
      locker.using(
        "job",
        1_000,
        async () => {
          throw boom;
        },
        { onReleaseError },
      ),
    );
    expect(error).toBe(boom);
    expect(recording.of("release")).toHaveLength(1);
    expect(onReleaseError).toHaveBeenCalledTimes(1);
    const releaseError = onReleaseError.mock.calls[0]?.[0];
    expect(releaseError).toBeInstanceOf(LockUnavailableError);
    expect(releaseError).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "release" });
    expect((releaseError as Error).cause).toBe(recording.of("release")[0]?.error);
  });

  it("a synchronous throw and a non-Error throw win too", async () => {
    const { locker } = brokenRelease();
    const onReleaseError = vi.fn();
    const sync = await rejection(
      locker.using(
        "a",
        1_000,
        () => {
          throw "plain string";
        },
        { onReleaseError },
      ),
    );
    expect(sync).toBe("plain string");
    const value = { not: "an error" };
    const async = await rejection(locker.using("b", 1_000, () => Promise.reject(value)));
    expect(async).toBe(value);
    expect(onReleaseError).toHaveBeenCalledTimes(1);
  });

  it("a failed release after success keeps the result; a throwing listener changes nothing", async () => {
    const { locker } = brokenRelease();
    const onReleaseError = vi.fn(() => {
      throw new Error("listener is broken");
    });
    expect(await locker.using("job", 1_000, async () => 42, { onReleaseError })).toBe(42);
    expect(onReleaseError).toHaveBeenCalledTimes(1);
    expect(await locker.using("job2", 1_000, async () => 43)).toBe(43);
  });

  it("the callback's error wins over a lost lease", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const names = lockNames("edgelock", "job");
    const boom = new Error("callback failed after the loss");
    const error = await rejection(
      locker.using("job", 150, async (lease) => {
        await adapter.evalScript(releaseScript, [names.lock, names.fence], [lease.token, ""]);
        await aborted(lease.signal, 2_000);
        throw boom;
      }),
    );
    expect(error).toBe(boom);
  });
});

describe("using: maxHold", () => {
  it("stops extending at maxHold; the lease lapses and the signal aborts", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const started = performance.now();
    let abortedAfter = Number.NaN;
    const error = await rejection(
      locker.using(
        "job",
        100,
        async (lease) => {
          const reason = await aborted(lease.signal, 2_000);
          abortedAfter = performance.now() - started;
          expect(reason).toBeInstanceOf(LockLostError);
          return "finished";
        },
        { maxHold: 150 },
      ),
    );
    expect(error).toBeInstanceOf(LockLostError);
    expect(abortedAfter).toBeGreaterThanOrEqual(100);
    expect(abortedAfter).toBeLessThan(700); // not held on: it would run to the 2 s guard
    // Never extended past maxHold: the lock is free in the store by then.
    expect(await locker.inspect("job")).toMatchObject({ held: false });
    const extensions = recording.of("extend").length;
    expect(extensions).toBeGreaterThanOrEqual(1);
    await delay(120);
    expect(recording.of("extend")).toHaveLength(extensions);
  });
});

describe("withLock", () => {
  it("passes the lease, the arguments and this, returns fn's result, and keys on the args", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const keyOf = vi.fn(function (this: unknown, id: number, _extra: number) {
      return `order:${id}`;
    });
    const heldWhileRunning: boolean[] = [];
    const leases: Lease[] = [];
    const service = {
      factor: 3,
      run: locker.withLock(
        keyOf,
        1_000,
        async function (this: { factor: number }, lease: Lease, id: number, extra: number) {
          leases.push(lease);
          heldWhileRunning.push((await locker.inspect(`order:${id}`, lease.token)).mine);
          heldWhileRunning.push((await locker.inspect(`order:${id + 1}`)).held);
          return this.factor * id + extra;
        },
      ),
    };
    expect(await service.run(2, 1)).toBe(7);
    expect(keyOf).toHaveBeenCalledTimes(1);
    expect(keyOf).toHaveBeenCalledWith(2, 1);
    expect(keyOf.mock.contexts[0]).toBe(service);
    expect(heldWhileRunning).toEqual([true, false]);
    expect(leases).toHaveLength(1);
    expect(leases[0]).toMatchObject({ key: "order:2", ttl: 1_000 });
    expect(leases[0]?.fence).toBeGreaterThan(0);
    expect(leases[0]?.signal.aborted).toBe(false);
    expect(await locker.inspect("order:2")).toMatchObject({ held: false });
  });

  it("serializes calls on one key and runs other keys in parallel", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const running = new Map<string, number>();
    let most = 0;
    let overall = 0;
    let mostOverall = 0;
    const run = locker.withLock(
      (key: string, _ms: number) => key,
      2_000,
      async (_lease, key: string, ms: number) => {
        running.set(key, (running.get(key) ?? 0) + 1);
        overall++;
        most = Math.max(most, running.get(key) ?? 0);
        mostOverall = Math.max(mostOverall, overall);
        await delay(ms);
        running.set(key, (running.get(key) ?? 0) - 1);
        overall--;
        return key;
      },
    );
    const calls = ["a", "b", "a", "b", "a", "c"].map((key) => run(key, 20));
    expect(await Promise.all(calls)).toEqual(["a", "b", "a", "b", "a", "c"]);
    expect(most).toBe(1);
    expect(mostOverall).toBeGreaterThan(1);
  });

  it("by default waits up to the ttl for the lock", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const holder = await locker.tryAcquire("job", 60_000);
    const run = locker.withLock("job", 500, async () => "ran");
    setTimeout(() => void holder?.release(), 100);
    const started = performance.now();
    expect(await run()).toBe("ran");
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  it("by default gives up after ttl ms with LockTimeoutError", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const holder = await locker.tryAcquire("job", 60_000);
    const fn = vi.fn(async () => "ran");
    const run = locker.withLock("job", 150, fn);
    const started = performance.now();
    const error = await rejection(run());
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: "LOCK_TIMEOUT", key: "job", timeout: 150 });
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(1_000);
    expect(fn).not.toHaveBeenCalled();
    await holder?.release();
  });
});

describe("nothing is left behind", () => {
  it("200 mixed withLock calls leave no timers and no unhandled rejections", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      const before = activeTimers();
      const adapter = memoryAdapter();
      const locker = createLocker({ adapter });
      const blockers = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => locker.tryAcquire(`blocked:${i}`, 60_000)),
      );
      const controller = new AbortController();
      setMaxListeners(100, controller.signal); // 40 waiters share this signal
      const ok = locker.withLock(
        (i: number) => `k:${i % 10}`,
        1_000,
        async (_lease, i: number) => {
          await delay(i % 3);
          return i;
        },
      );
      const fails = locker.withLock(
        (i: number) => `k:${i % 10}`,
        1_000,
        async (_lease, i: number) => {
          await delay(i % 2);
          throw new Error(`task ${i} failed`);
        },
      );
      const throwsSync = locker.withLock(
        (i: number) => `k:${i % 10}`,
        1_000,
        (_lease, i: number): number => {
          throw new Error(`task ${i} failed at once`);
        },
      );
      const abortedWaiting = locker.withLock(
        (i: number) => `blocked:${i % 5}`,
        1_000,
        async (_lease, i: number) => i,
        { signal: controller.signal },
      );
      const abortedBefore = locker.withLock(
        (i: number) => `k:${i % 10}`,
        1_000,
        async () => 0,
        {
          signal: AbortSignal.abort(new Error("already aborted")),
        },
      );
      // Each outcome is collected as soon as the call is made, so no rejection goes unhandled.
      const calls: Array<Promise<PromiseSettledResult<unknown>>> = [];
      const settle = (call: Promise<unknown>) =>
        calls.push(
          call.then(
            (value) => ({ status: "fulfilled", value }) as const,
            (reason: unknown) => ({ status: "rejected", reason }) as const,
          ),
        );
      for (let i = 0; i < 200; i++) {
        const kind = i % 5;
        if (kind === 0) settle(ok(i));
        else if (kind === 1) settle(fails(i));
        else if (kind === 2) settle(throwsSync(i));
        else if (kind === 3) settle(abortedWaiting(i));
        else settle(abortedBefore(i));
      }
      await delay(30);
      controller.abort(new Error("shutting down"));
      const outcomes = await Promise.all(calls);
      const fulfilled = outcomes.filter((outcome) => outcome.status === "fulfilled");
      const reasons = outcomes.flatMap((outcome) =>
        outcome.status === "rejected" ? [String((outcome.reason as Error).message)] : [],
      );
      expect(fulfilled).toHaveLength(40);
      expect(reasons.filter((m) => m === "shutting down")).toHaveLength(40);
      expect(reasons.filter((m) => m === "already aborted")).toHaveLength(40);
      expect(reasons.filter((m) => m.startsWith("task"))).toHaveLength(80);
      await Promise.all(blockers.map((lease) => lease?.release()));
      for (let i = 0; i < 10; i++) {
        expect(await locker.inspect(`k:${i}`)).toMatchObject({ held: false });
      }
      for (let i = 0; i < 5; i++) {
        expect(await locker.inspect(`blocked:${i}`)).toMatchObject({ held: false });
      }
      await delay(20);
      expect(activeTimers()).toBeLessThanOrEqual(before);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });
});
