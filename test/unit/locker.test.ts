import { getEventListeners } from "node:events";
import { inspect } from "node:util";
import {
  createLocker,
  FENCE_RETENTION,
  type Lease,
  type LockAdapter,
  LockError,
  LockLostError,
  LockTimeoutError,
  LockUnavailableError,
  lockNames,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it, vi } from "vitest";
import { leaseDeadline } from "../../src/lease.js";
import { activeTimers, delay, gate, record, rejection } from "./helpers.js";

const TOKEN = /^el1\.[A-Za-z0-9_-]{36}$/;

/** An adapter without pub/sub: waiters must poll. */
function withoutPubSub(inner: LockAdapter): LockAdapter {
  return {
    name: "polling",
    evalScript: (script, keys, args) => inner.evalScript(script, keys, args),
  };
}

async function mustAcquire(lease: Promise<Lease | null>): Promise<Lease> {
  const got = await lease;
  if (!got) throw new Error("expected to acquire the lock");
  return got;
}

describe("tryAcquire", () => {
  it("makes exactly one evalScript call, taking a free lock", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    expect(recording.calls.map((call) => call.script)).toEqual(["acquire"]);
    const names = lockNames("edgelock", "job");
    expect(recording.calls[0]?.keys).toEqual([names.lock, names.fence, names.queue, names.waiters]);
    expect(recording.calls[0]?.args[0]).toBe(lease.token);
    expect(recording.calls[0]?.args.slice(1)).toEqual([
      String(FENCE_RETENTION),
      "5000",
      "0", // a try does not join the line of waiters
    ]);
    expect(lease.key).toBe("job");
    expect(lease.token).toMatch(TOKEN);
    expect(lease.ttl).toBe(5_000);
    expect(lease.fence).toBeGreaterThan(0);
    expect(lease.held).toBe(true);
    expect(lease.remaining()).toBeGreaterThan(4_800);
    expect(lease.remaining()).toBeLessThanOrEqual(5_000);
    expect(recording.subscriptions).toEqual([]);
    await lease.release();
  });

  it("makes exactly one evalScript call when the lock is held, and returns null", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const first = await mustAcquire(locker.tryAcquire("job", 5_000));
    const before = recording.calls.length;
    expect(await locker.tryAcquire("job", 5_000)).toBeNull();
    expect(recording.calls.length - before).toBe(1);
    await first.release();
  });

  it("hands out a fresh token and a larger fence on every acquisition", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const tokens = new Set<string>();
    let fence = 0;
    for (let i = 0; i < 50; i++) {
      const lease = await mustAcquire(locker.tryAcquire("job", 1_000));
      expect(lease.fence).toBeGreaterThan(fence);
      fence = lease.fence;
      tokens.add(lease.token);
      expect(await lease.release()).toBe(true);
      expect(await lease.release()).toBe(false);
    }
    expect(tokens.size).toBe(50);
  });

  it("keys are independent, and prefixes separate lockers", async () => {
    const adapter = memoryAdapter();
    const a = createLocker({ adapter });
    const b = createLocker({ adapter, prefix: "other" });
    const one = await mustAcquire(a.tryAcquire("x", 1_000));
    const two = await mustAcquire(a.tryAcquire("y", 1_000));
    const three = await mustAcquire(b.tryAcquire("x", 1_000));
    expect(await a.tryAcquire("x", 1_000)).toBeNull();
    await Promise.all([one.release(), two.release(), three.release()]);
  });
});

describe("inspect", () => {
  it("reports free, held, mine and the last fence, without revealing the token", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    expect(await locker.inspect("job")).toEqual({ held: false, ttl: 0, fence: 0, mine: false });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    const state = await locker.inspect("job");
    expect(state).toMatchObject({ held: true, fence: lease.fence, mine: false });
    expect(state.ttl).toBeGreaterThan(4_900);
    expect(state.ttl).toBeLessThanOrEqual(5_000);
    expect(JSON.stringify(state)).not.toContain(lease.token);
    expect(await locker.inspect("job", lease.token)).toMatchObject({ held: true, mine: true });
    expect(await locker.inspect("job", "el1.someoneelse")).toMatchObject({ mine: false });
    await lease.release();
    expect(await locker.inspect("job", lease.token)).toEqual({
      held: false,
      ttl: 0,
      fence: lease.fence,
      mine: false,
    });
  });
});

describe("acquire", () => {
  it("over sharded pub/sub, listens on one inbox per lock, in the lock's slot", async () => {
    const inner = record(memoryAdapter());
    const sharded: LockAdapter = { ...inner.adapter, subscriptions: "sharded" };
    const holder = createLocker({ adapter: sharded });
    const waiter = createLocker({ adapter: sharded, maxRetryDelay: 60_000 });
    const held = await Promise.all(["a", "b"].map((key) => holder.tryAcquire(key, 60_000)));
    const waiting = ["a", "b"].map((key) => waiter.acquire(key, 5_000, { timeout: 2_000 }));
    await delay(100);
    // One subscription per lock, named after the lock (its hash tag) and this locker.
    const [inboxA, inboxB] = inner.subscriptions;
    expect(inboxA).toMatch(/^edgelock:\{a\}:inbox:[\w-]{12}$/);
    expect(inboxB).toBe(inboxA?.replace("{a}", "{b}"));
    // The joins name those inboxes, and say they are sharded.
    const joins = inner.of("acquire").filter((call) => call.args[3] !== "0");
    expect(joins.map((call) => call.args.slice(4))).toEqual([
      [inboxA, "s"],
      [inboxB, "s"],
    ]);
    for (const lease of held) await lease?.release();
    const leases = await Promise.all(waiting);
    expect(leases.map((lease) => lease.key)).toEqual(["a", "b"]);
    for (const lease of leases) await lease.release();
    await vi.waitFor(() => expect(inner.active()).toBe(0)); // both inboxes closed after the linger
  });

  it("is woken by the release notification, not by polling", async () => {
    const recording = record(memoryAdapter());
    const holder = createLocker({ adapter: recording.adapter });
    const waiter = createLocker({
      adapter: recording.adapter,
      maxRetryDelay: 60_000,
      retryDelay: 60_000,
    });
    const held = await mustAcquire(holder.tryAcquire("job", 60_000));
    const started = performance.now();
    const waiting = waiter.acquire("job", 5_000, { timeout: 2_000 });
    await delay(100);
    expect(await held.release()).toBe(true);
    const lease = await waiting;
    const elapsed = performance.now() - started;
    // Neither the 60 s lease nor the 60 s poll step nor the 2 s deadline explains this.
    expect(elapsed).toBeLessThan(1_000);
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(lease.fence).toBeGreaterThan(held.fence);
    // Try, subscribe, try again (joining the line), sleep until handed the lock: two attempts,
    // no polling, and no claim, since the hand-off came with the fence.
    const attempts = recording.of("acquire").filter((call) => call.args[0] === lease.token);
    expect(attempts.map((call) => call.args[3])).toEqual(["0", expect.stringMatching(/^\d+$/)]);
    // One subscription, to this locker's own inbox, named in the attempt that joined the line.
    expect(recording.subscriptions).toEqual([expect.stringMatching(/^edgelock:inbox:[\w-]{12}$/)]);
    expect(attempts[1]?.args[4]).toBe(recording.subscriptions[0]);
    // The holder's release handed the lock over: the waiter holds it with a full lease.
    expect(recording.of("release")[0]?.args).toEqual([held.token, String(FENCE_RETENTION)]);
    expect(await holder.inspect("job", lease.token)).toMatchObject({ held: true, mine: true });
    expect(lease.remaining()).toBeGreaterThan(4_000);
    // The subscription lingers briefly for the next waiter, then goes.
    await vi.waitFor(() => expect(recording.active()).toBe(0));
    await lease.release();
  });

  it("never sleeps past the holder's lease: takes an expired lock without a release", async () => {
    const adapter = memoryAdapter();
    const holder = createLocker({ adapter });
    const waiter = createLocker({ adapter, maxRetryDelay: 60_000 });
    await mustAcquire(holder.tryAcquire("job", 150));
    const started = performance.now();
    const lease = await waiter.acquire("job", 1_000, { timeout: 2_000 });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1_500); // not the 60 s poll step, nor the 2 s deadline
    await lease.release();
  });

  it("polls with backoff when the transport has no pub/sub", async () => {
    const inner = memoryAdapter();
    const recording = record(withoutPubSub(inner));
    const holder = createLocker({ adapter: inner });
    const waiter = createLocker({ adapter: recording.adapter, retryDelay: 5, maxRetryDelay: 20 });
    const held = await mustAcquire(holder.tryAcquire("job", 60_000));
    const waiting = waiter.acquire("job", 1_000, { timeout: 2_000 });
    await delay(120);
    await held.release();
    const lease = await waiting;
    const attempts = recording.of("acquire");
    expect(attempts.length).toBeGreaterThan(3);
    // Every attempt of one acquire call uses the same token.
    expect(new Set(attempts.map((call) => call.args[0]))).toEqual(new Set([lease.token]));
    await lease.release();
  });

  it("a failed subscription falls back to polling with backoff", async () => {
    const inner = memoryAdapter();
    const recording = record({
      name: "broken-pubsub",
      evalScript: (script, keys, args) => inner.evalScript(script, keys, args),
      subscribe: async () => {
        throw new Error("SUBSCRIBE refused");
      },
    });
    const holder = createLocker({ adapter: inner });
    const waiter = createLocker({ adapter: recording.adapter, maxRetryDelay: 60_000 });
    const held = await mustAcquire(holder.tryAcquire("job", 60_000));
    vi.spyOn(Math, "random").mockReturnValue(0.5); // polls at 25, 50, 100, 200 ms...
    try {
      const started = performance.now();
      const waiting = waiter.acquire("job", 1_000, { timeout: 3_000 });
      await delay(100);
      await held.release();
      const lease = await waiting;
      // Polling with backoff finds the lock free within a few hundred ms; a waiter that took the
      // failed subscription for a working one would sleep until its 3 s deadline.
      expect(performance.now() - started).toBeLessThan(1_000);
      await lease.release();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("tells a waiter in the releaser's own process at once, without waiting for the message", async () => {
    const inner = memoryAdapter();
    const recording = record({
      name: "messages-never-arrive",
      evalScript: (script, keys, args) => inner.evalScript(script, keys, args),
      subscribe: async () => () => {}, // subscribed, but no message ever comes through
    });
    const locker = createLocker({ adapter: recording.adapter, maxRetryDelay: 60_000 });
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    const waiting = locker.acquire("job", 5_000, { timeout: 5_000 });
    await delay(50);
    const released = performance.now();
    expect(await held.release()).toBe(true);
    const lease = await waiting;
    expect(performance.now() - released).toBeLessThan(50); // not the 60 s lease or poll
    expect(lease.fence).toBeGreaterThan(held.fence);
    // Try, then join the line; the release's own reply named the waiter: no claim, no poll.
    expect(recording.of("acquire").filter((call) => call.args[0] === lease.token)).toHaveLength(2);
    await lease.release();
  });

  it("tells only the client whose waiter is handed the lock: one message per hand-off", async () => {
    const inner = memoryAdapter();
    const holder = createLocker({ adapter: inner });
    const clients = [0, 1, 2].map(() => record(inner));
    const lockers = clients.map((client) =>
      createLocker({ adapter: client.adapter, maxRetryDelay: 60_000 }),
    );
    const held = await mustAcquire(holder.tryAcquire("job", 60_000));
    const waiting: Promise<Lease>[] = [];
    for (const locker of lockers) {
      waiting.push(locker.acquire("job", 5_000, { timeout: 5_000 }));
      await delay(20); // in line in this order
    }
    await held.release();
    for (const [i, lease] of waiting.entries()) {
      const next = await lease; // in line order, each handed over by the release before it
      // Each client has heard exactly the hand-offs to its own waiters, on its own inbox.
      expect(clients.map((client) => client.messages.length)).toEqual(
        clients.map((_, j) => (j <= i ? 1 : 0)),
      );
      await next.release();
    }
    const inboxes = clients.map((client) => client.subscriptions[0]);
    expect(new Set(inboxes).size).toBe(3);
    for (const client of clients) {
      expect(client.messages).toEqual([[client.subscriptions[0], expect.stringMatching(/ \d+$/)]]);
    }
  });

  it("serves a locker's waiters on several locks through one subscription", async () => {
    const inner = memoryAdapter();
    const recording = record(inner);
    const holder = createLocker({ adapter: inner });
    const waiter = createLocker({ adapter: recording.adapter, maxRetryDelay: 60_000 });
    const held = await Promise.all(["a", "b", "c"].map((key) => holder.tryAcquire(key, 60_000)));
    const waiting = ["a", "b", "c"].map((key) => waiter.acquire(key, 5_000, { timeout: 5_000 }));
    await delay(50);
    for (const lease of held) await lease?.release();
    const leases = await Promise.all(waiting);
    expect(leases.map((lease) => lease.key)).toEqual(["a", "b", "c"]);
    expect(recording.subscriptions).toHaveLength(1);
    expect(recording.messages).toHaveLength(3);
    for (const lease of leases) await lease.release();
  });

  it("when no announcement comes, the oldest waiter of each lock still looks about every maxRetryDelay", async () => {
    const inner = memoryAdapter();
    const deaf: LockAdapter = {
      name: "messages-never-arrive",
      evalScript: (script, keys, args) => inner.evalScript(script, keys, args),
      subscribe: async () => () => {}, // subscribed, but no message ever comes through
    };
    const holder = createLocker({ adapter: inner });
    const waiter = createLocker({ adapter: deaf, maxRetryDelay: 100 });
    const held = await Promise.all(["a", "b"].map((key) => holder.tryAcquire(key, 60_000)));
    const waiting = ["a", "b"].map((key) => waiter.acquire(key, 5_000, { timeout: 5_000 }));
    await delay(30);
    const released = performance.now();
    for (const lease of held) await lease?.release(); // handed over, but nobody is told
    const leases = await Promise.all(waiting);
    // Each lock's line looked by itself: neither waited for the 60 s lease or the 5 s deadline.
    expect(performance.now() - released).toBeLessThan(1_000);
    expect(leases.map((lease) => lease.key)).toEqual(["a", "b"]);
    for (const lease of leases) await lease.release();
  });

  it("times out with LockTimeoutError: code, key, timeout and attempts", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    const before = recording.of("acquire").length;
    const started = performance.now();
    const error = await rejection(locker.acquire("job", 1_000, { timeout: 100 }));
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toBeInstanceOf(LockError);
    const timeout = error as LockTimeoutError;
    expect(timeout.code).toBe("LOCK_TIMEOUT");
    expect(timeout.key).toBe("job");
    expect(timeout.timeout).toBe(100);
    expect(timeout.attempts).toBe(recording.of("acquire").length - before);
    expect(timeout.attempts).toBeGreaterThanOrEqual(2);
    expect(timeout.message).toContain('"job"');
    expect(timeout.message).not.toContain(held.token);
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1_000);
    await vi.waitFor(() => expect(recording.active()).toBe(0)); // after the linger
    // The waiter left nothing behind: the holder still holds it.
    expect(await locker.inspect("job", held.token)).toMatchObject({ held: true, mine: true });
    await held.release();
  });

  it("timeout 0 makes a single attempt", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    recording.calls.length = 0;
    const error = await rejection(locker.acquire("job", 1_000, { timeout: 0 }));
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: "LOCK_TIMEOUT", key: "job", timeout: 0, attempts: 1 });
    expect(recording.calls.map((call) => call.script)).toEqual(["acquire"]);
    expect(recording.subscriptions).toEqual([]);
    await held.release();
    // And a single attempt that finds the lock free takes it.
    const lease = await locker.acquire("job", 1_000, { timeout: 0 });
    expect(lease.held).toBe(true);
    await lease.release();
  });

  it("leaves no abort listeners on a signal it no longer needs", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const controller = new AbortController();
    const { signal } = controller;
    for (let i = 0; i < 20; i++) {
      const lease = await locker.acquire("job", 1_000, { signal });
      await lease.release();
    }
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    const waits = [1, 2, 3].map(() =>
      rejection(locker.acquire("job", 1_000, { signal, timeout: 50 })),
    );
    expect(getEventListeners(signal, "abort").length).toBeGreaterThan(0);
    for (const wait of waits) expect(await wait).toBeInstanceOf(LockTimeoutError);
    await held.release();
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });

  it("an already aborted signal rejects with its reason and sends nothing", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const reason = new Error("client went away");
    const error = await rejection(
      locker.acquire("job", 1_000, { signal: AbortSignal.abort(reason) }),
    );
    expect(error).toBe(reason);
    expect(recording.calls).toEqual([]);
  });

  it("an abort while waiting rejects with the reason and leaves nothing locked", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    const controller = new AbortController();
    const waiting = locker.acquire("job", 1_000, { signal: controller.signal, timeout: 10_000 });
    await delay(50);
    const reason = { why: "shutdown" };
    const started = performance.now();
    controller.abort(reason);
    expect(await rejection(waiting)).toBe(reason);
    expect(performance.now() - started).toBeLessThan(500); // not the 1 s sleep it was in
    await vi.waitFor(() => expect(recording.active()).toBe(0)); // after the linger
    await held.release();
    await delay(30);
    expect(await locker.inspect("job")).toMatchObject({ held: false });
  });

  it("a waiter that times out or aborts has left the line before it settles", async () => {
    // Releases (a waiter leaving the line is one) take 30 ms, as over a network.
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "release") await delay(30);
      return run();
    });
    const holder = await mustAcquire(
      createLocker({ adapter: recording.adapter }).tryAcquire("job", 60_000),
    );
    const waiter = createLocker({ adapter: recording.adapter });
    const controller = new AbortController();
    const outcomes = [
      rejection(waiter.acquire("job", 1_000, { timeout: 150 })),
      rejection(waiter.acquire("job", 1_000, { timeout: 10_000, signal: controller.signal })),
    ];
    await delay(100);
    controller.abort(new Error("client went away"));
    for (const outcome of outcomes) {
      await outcome;
      const tokens = new Set(
        recording
          .of("acquire")
          .slice(1)
          .map((call) => call.args[0]),
      );
      const leaves = recording.of("release").filter((call) => tokens.has(call.args[0]));
      expect(leaves.length).toBeGreaterThan(0);
      expect(leaves.every((call) => call.settled)).toBe(true);
    }
    expect(await holder.release()).toBe(true); // nobody left in line to hand it to
    expect((await waiter.inspect("job")).held).toBe(false);
  });

  it("a join still in flight when its waiter aborts is undone once it lands", async () => {
    const joining = gate();
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "acquire" && call.args[3] !== "0") await joining.promise;
      return run();
    });
    const holder = await mustAcquire(
      createLocker({ adapter: recording.adapter }).tryAcquire("job", 60_000),
    );
    const waiter = createLocker({ adapter: recording.adapter });
    const controller = new AbortController();
    const waiting = waiter.acquire("job", 1_000, { timeout: 10_000, signal: controller.signal });
    await vi.waitFor(() => expect(recording.of("acquire")).toHaveLength(3));
    controller.abort(new Error("client went away"));
    await rejection(waiting);
    joining.open(); // the join lands after the waiter left (HTTP requests are not ordered)
    const token = recording.of("acquire")[2]?.args[0];
    await vi.waitFor(() =>
      expect(
        recording.of("release").filter((call) => call.args[0] === token && call.settled),
      ).toHaveLength(2),
    );
    // Its inbox is still subscribed (the room lingers), yet the release finds nobody in line.
    expect(await holder.release()).toBe(true);
    expect((await waiter.inspect("job")).held).toBe(false);
  });

  it("an abort while subscribing sends no further attempt", async () => {
    const inner = memoryAdapter();
    const subscribing = gate();
    const recording = record({
      name: "slow-subscribe",
      evalScript: (script, keys, args) => inner.evalScript(script, keys, args),
      subscribe: async (channel, listener) => {
        await subscribing.promise;
        return (await inner.subscribe?.(channel, listener)) ?? (() => {});
      },
    });
    const locker = createLocker({ adapter: recording.adapter });
    const held = await mustAcquire(locker.tryAcquire("job", 60_000));
    const controller = new AbortController();
    const waiting = locker.acquire("job", 1_000, { signal: controller.signal, timeout: 5_000 });
    await vi.waitFor(() => expect(recording.subscriptions).toHaveLength(1));
    const attempts = recording.of("acquire").length;
    const reason = new Error("stop");
    controller.abort(reason);
    subscribing.open();
    expect(await rejection(waiting)).toBe(reason);
    expect(recording.of("acquire")).toHaveLength(attempts);
    await vi.waitFor(() => expect(recording.active()).toBe(0)); // after the linger
    await held.release();
  });

  it.each(["the reply", "the request"])(
    "an abort while the attempt is in flight (%s delayed) leaves the key free",
    async (delayed) => {
      const slow = gate();
      const recording = record(memoryAdapter(), async (call, run) => {
        if (call.script !== "acquire") return run();
        if (delayed === "the request") await slow.promise;
        const reply = await run();
        if (delayed === "the reply") await slow.promise;
        return reply;
      });
      const locker = createLocker({ adapter: recording.adapter });
      const controller = new AbortController();
      const waiting = locker.acquire("job", 60_000, { signal: controller.signal });
      await vi.waitFor(() => expect(recording.of("acquire")).toHaveLength(1));
      const reason = new Error("aborted mid-flight");
      controller.abort(reason);
      expect(await rejection(waiting)).toBe(reason);
      const token = recording.of("acquire")[0]?.args[0];
      // The request lands anyway, and takes the lock...
      slow.open();
      await vi.waitFor(() => expect(recording.of("release").some((c) => c.settled)).toBe(true));
      // ...which is then released with the same token.
      expect(recording.of("release").map((call) => call.args[0])).toEqual([token]);
      expect(recording.of("release")[0]?.reply).toBe(1);
      expect(await locker.inspect("job")).toMatchObject({ held: false });
      expect(await locker.tryAcquire("job", 1_000)).not.toBeNull();
    },
  );
});

describe("every operation takes a signal that bounds all its attempts", () => {
  /** A memory backend whose scripts named in `slow` hang until `open` (their requests are lost). */
  function hanging(...slow: string[]) {
    const gateOpen = gate();
    const recording = record(memoryAdapter(), async (call, run) => {
      if (slow.includes(call.script)) await gateOpen.promise;
      return run();
    });
    return { recording, open: gateOpen.open };
  }

  it("an aborted signal rejects with its reason before any request", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter });
    const reason = new Error("deadline passed");
    const signal = AbortSignal.abort(reason);
    expect(await rejection(locker.tryAcquire("job", 1_000, { signal }))).toBe(reason);
    expect(await rejection(locker.inspect("job", undefined, { signal }))).toBe(reason);
    expect(await rejection(locker.acquire("job", 1_000, { signal }))).toBe(reason);
    expect(recording.calls).toEqual([]);
  });

  it("tryAcquire gives up at the abort; a grant that lands later is released", async () => {
    const { recording, open } = hanging("acquire");
    const locker = createLocker({ adapter: recording.adapter });
    const started = performance.now();
    const signal = AbortSignal.timeout(50);
    const error = await rejection(locker.tryAcquire("job", 60_000, { signal }));
    expect(error).toMatchObject({ name: "TimeoutError" });
    expect(performance.now() - started).toBeLessThan(500);
    open(); // the request lands and takes the lock...
    await vi.waitFor(() => expect(recording.of("release").some((call) => call.settled)).toBe(true));
    expect(recording.of("release")[0]?.reply).toBe(1); // ...which is released with its token
    expect((await locker.inspect("job")).held).toBe(false);
  });

  it("extend, release and inspect reject at the abort, retries included", async () => {
    const broken = new Set<string>();
    const recording = record(memoryAdapter(), async (call, run) => {
      if (broken.has(call.script)) throw new Error("connection reset");
      return run();
    });
    const locker = createLocker({ adapter: recording.adapter, retries: 10 });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    broken.add("extend").add("release").add("inspect");
    for (const operation of [
      (signal: AbortSignal) => lease.extend(5_000, { signal }),
      (signal: AbortSignal) => locker.inspect("job", lease.token, { signal }),
      (signal: AbortSignal) => lease.release({ signal }),
    ]) {
      const started = performance.now();
      const error = await rejection(operation(AbortSignal.timeout(60)));
      expect(error).toMatchObject({ name: "TimeoutError" });
      // Ten retries would pause ~20 s in all: the signal ended them.
      expect(performance.now() - started).toBeLessThan(1_000);
    }
    broken.clear();
    expect(lease.held).toBe(true); // neither lost nor released by the abort
    expect(await lease.release()).toBe(true);
  });

  it("options are checked", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    await expect(
      locker.tryAcquire("job", 1_000, { signal: "soon" as never }),
    ).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(locker.inspect("job", undefined, null as never)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    const lease = await mustAcquire(locker.tryAcquire("job", 1_000));
    await expect(lease.extend(1_000, { signal: 5 as never })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(lease.release({ signal: {} as never })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(await lease.release()).toBe(true);
  });
});

describe("transport failures", () => {
  /** An adapter that fails every call, quoting the command (and the token) in its message. */
  function failing() {
    const errors: Error[] = [];
    const recording = record(memoryAdapter(), async (call) => {
      const error = new Error(
        `ECONNRESET while sending EVALSHA ${call.keys.join(" ")} ${call.args.join(" ")}`,
      );
      errors.push(error);
      throw error;
    });
    return { recording, errors };
  }

  it.each([0, 1, 3])(
    "retries %i times, then fails with LockUnavailableError (token kept out of the message)",
    async (retries) => {
      const { recording, errors } = failing();
      const locker = createLocker({ adapter: recording.adapter, retries });
      const error = await rejection(locker.tryAcquire("job", 1_000));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error).toBeInstanceOf(LockError);
      const unavailable = error as LockUnavailableError;
      expect(unavailable.code).toBe("LOCK_UNAVAILABLE");
      expect(unavailable.operation).toBe("acquire");
      expect(unavailable.key).toBe("job");
      const attempts = recording.of("acquire");
      expect(attempts).toHaveLength(retries + 1);
      const token = attempts[0]?.args[0] ?? "";
      expect(token).toMatch(TOKEN);
      expect(attempts.every((call) => call.args[0] === token)).toBe(true);
      expect(unavailable.cause).toBe(attempts.at(-1)?.error);
      expect(errors).toContain(unavailable.cause);
      expect((unavailable.cause as Error).message).toContain(token); // the transport did quote it
      expect(unavailable.message).not.toContain(token);
      expect(unavailable.message).toContain("ECONNRESET");
      expect(String(unavailable)).not.toContain(token);
      expect(unavailable.stack ?? "").not.toContain(token);
    },
  );

  it("acquire fails with LockUnavailableError, not a timeout", async () => {
    const { recording } = failing();
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const error = await rejection(locker.acquire("job", 1_000, { timeout: 5_000 }));
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "acquire" });
    expect(recording.of("acquire")).toHaveLength(1);
  });

  it("release, extend and inspect failures name their operation and hide the token", async () => {
    let broken = false;
    const recording = record(memoryAdapter(), async (call, run) => {
      if (!broken) return run();
      throw new Error(`socket closed: ${call.script} ${call.args.join(",")}`);
    });
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    broken = true;
    for (const [operation, run] of [
      ["extend", () => lease.extend()],
      ["release", () => lease.release()],
      ["inspect", () => locker.inspect("job", lease.token)],
    ] as const) {
      const error = await rejection(run());
      expect(error, operation).toBeInstanceOf(LockUnavailableError);
      expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation, key: "job" });
      expect((error as Error).message).not.toContain(lease.token);
      expect(((error as Error).cause as Error).message).toContain(lease.token);
    }
    broken = false;
    // A failed release leaves the lease usable: it can be released once Redis is back.
    expect(await lease.release()).toBe(true);
  });

  it.each([0, 2])(
    "a failed acquire (reply lost after the lock was taken) is compare-and-deleted with its token (retries %i)",
    async (retries) => {
      const recording = record(memoryAdapter(), async (call, run) => {
        const reply = await run();
        if (call.script === "acquire") throw new Error("ETIMEDOUT: reply lost");
        return reply;
      });
      const locker = createLocker({ adapter: recording.adapter, retries });
      const error = await rejection(locker.tryAcquire("job", 60_000));
      expect(error).toBeInstanceOf(LockUnavailableError);
      const token = recording.of("acquire")[0]?.args[0];
      await vi.waitFor(() => expect(recording.of("release").some((c) => c.settled)).toBe(true));
      const release = recording.of("release")[0];
      expect(release?.args[0]).toBe(token);
      expect(release?.keys[0]).toBe(lockNames("edgelock", "job").lock);
      expect(release?.reply).toBe(1); // it really was holding the lock
      expect(await locker.inspect("job")).toMatchObject({ held: false });
    },
  );

  it.each([[0], [-5], [1.5], ["17"], [[1, 2]]])(
    "an acquire reply of the wrong shape (%j) is a failure, not an answer: nothing stays locked",
    async (mangled) => {
      const recording = record(memoryAdapter(), async (call, run) => {
        const reply = await run();
        return call.script === "acquire" ? mangled : reply;
      });
      const locker = createLocker({ adapter: recording.adapter, retries: 0 });
      const error = await rejection(locker.tryAcquire("job", 60_000));
      expect(error).toBeInstanceOf(LockUnavailableError);
      await vi.waitFor(() => expect(recording.of("release").some((c) => c.settled)).toBe(true));
      expect(await locker.inspect("job")).toMatchObject({ held: false });
    },
  );
});

describe("LockUnavailableError", () => {
  it("cuts a secret out of the transport's message, and withholds the message for a short one", () => {
    const cause = new Error("ERR fetch failed for el1.secret-token-123");
    expect(new LockUnavailableError("acquire", "k", cause, "el1.secret-token-123").message).toBe(
      'cannot acquire lock "k": ERR fetch failed for <token>',
    );
    const weak = new LockUnavailableError("open", undefined, new Error("fetch failed"), "e");
    expect(weak.message).toBe("cannot open: (reason withheld)");
    expect(weak.cause).toBeInstanceOf(Error);
  });
});

describe("lease display", () => {
  it("never shows the token in JSON or console output", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    const shown = [JSON.stringify(lease), inspect(lease), inspect({ lease }, { depth: 5 })];
    for (const text of shown) {
      expect(text).not.toContain(lease.token);
      expect(text).toContain(String(lease.fence));
    }
    expect(JSON.parse(JSON.stringify(lease))).toEqual({
      key: "job",
      fence: lease.fence,
      ttl: 5_000,
      held: true,
    });
    await lease.release();
  });
});

describe("wall-clock jumps (S8)", () => {
  it.each([60_000, -60_000])(
    "change nothing about a lease's validity: Date.now %+d ms",
    async (jump) => {
      const locker = createLocker({ adapter: memoryAdapter() });
      const lease = await mustAcquire(locker.tryAcquire("job", 300));
      const { signal } = lease;
      const real = Date.now();
      vi.spyOn(Date, "now").mockReturnValue(real + jump);
      try {
        expect(lease.held).toBe(true);
        expect(lease.remaining()).toBeGreaterThan(250);
        await delay(100);
        expect(signal.aborted).toBe(false); // neither expired early nor stretched
        await delay(250);
        expect(signal.aborted).toBe(true);
      } finally {
        vi.restoreAllMocks();
      }
    },
  );
});

describe("lease signal", () => {
  it("costs no timer until it is read, and a lease read after its deadline is already aborted", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const timers = activeTimers();
    const lease = await mustAcquire(locker.tryAcquire("job", 50));
    expect(activeTimers()).toBeLessThanOrEqual(timers); // nobody listens: no expiry timer
    await delay(80);
    expect(lease.held).toBe(false);
    expect(lease.signal.aborted).toBe(true); // read late, it tells the truth at once
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    await expect(lease.extend()).rejects.toBe(lease.signal.reason);
    expect(activeTimers()).toBeLessThanOrEqual(timers);
  });

  it("once read, aborts by itself when the lease runs out", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const lease = await mustAcquire(locker.tryAcquire("job", 50));
    const { signal } = lease;
    expect(signal.aborted).toBe(false);
    await delay(80);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ code: "LOCK_LOST" });
  });
});

describe("an extension answered after the lease ran out", () => {
  it("is undone: the lock it renewed is released, and extend throws the loss", async () => {
    const recording = record(memoryAdapter(), async (call, run) => {
      const reply = await run();
      if (call.script === "extend") await delay(100); // lands in Redis at once, answers late
      return reply;
    });
    const locker = createLocker({ adapter: recording.adapter });
    const lease = await mustAcquire(locker.tryAcquire("job", 60));
    const { signal } = lease;
    const extending = lease.extend(5_000).catch((e: unknown) => e);
    await delay(80);
    expect(signal.aborted).toBe(true); // given up here while the request was out
    expect((await locker.inspect("job", lease.token)).mine).toBe(true); // but renewed in Redis
    expect(await extending).toBe(signal.reason);
    await vi.waitFor(() => expect(recording.of("release")).toHaveLength(1));
    expect(await locker.inspect("job")).toMatchObject({ held: false });
  });
});

describe("the drift margin", () => {
  // ttl × driftFactor + 2 ms + a tenth of the ttl, at most 50 ms, for timers running late.
  it.each([
    [10, 7],
    [100, 87],
    [250, 221],
    [500, 443],
    [1_000, 938],
    [30_000, 29_648],
  ])("a %i ms lease is valid here for %i ms from before its request", (ttl, valid) => {
    expect(leaseDeadline(1_000, ttl, 0.01)).toBe(1_000 + valid);
  });

  it("driftFactor adds its share of the ttl to the timer allowance", () => {
    expect(leaseDeadline(0, 1_000, 0)).toBe(948);
    expect(leaseDeadline(0, 1_000, 0.05)).toBe(898);
    expect(leaseDeadline(0, 10, 0)).toBe(7);
  });
});

describe("a lease that arrives too late", () => {
  function slowReplies(ms: number) {
    return record(memoryAdapter(), async (call, run) => {
      const reply = await run();
      if (call.script === "acquire") await delay(ms);
      return reply;
    });
  }

  it("a reply slower than the ttl: not returned, and released with its token", async () => {
    const recording = slowReplies(120);
    const locker = createLocker({ adapter: recording.adapter });
    expect(await locker.tryAcquire("job", 50)).toBeNull();
    const token = recording.of("acquire")[0]?.args[0];
    expect(recording.of("release").map((call) => call.args[0])).toEqual([token]);
  });

  it("a reply past the local validity (ttl − drift): the still-held lock is released", async () => {
    // ttl 1000 with driftFactor 0.45: valid locally for 1000 − (450 + 2 + 50) = 498 ms; Redis
    // keeps it 1 s.
    const recording = slowReplies(650);
    const locker = createLocker({ adapter: recording.adapter, driftFactor: 0.45 });
    expect(await locker.tryAcquire("job", 1_000)).toBeNull();
    const release = recording.of("release")[0];
    expect(release?.args[0]).toBe(recording.of("acquire")[0]?.args[0]);
    expect(release?.reply).toBe(1);
    expect(await locker.inspect("job")).toMatchObject({ held: false });
  });

  it("a reply within the validity is kept", async () => {
    // Valid locally for 1000 − (400 + 2 + 50) = 548 ms from when the request was sent.
    const recording = slowReplies(50);
    const locker = createLocker({ adapter: recording.adapter, driftFactor: 0.4 });
    const lease = await mustAcquire(locker.tryAcquire("job", 1_000));
    expect(lease.remaining()).toBeGreaterThan(0);
    expect(lease.remaining()).toBeLessThanOrEqual(548 - 45);
    expect(recording.of("release")).toHaveLength(0);
    await lease.release();
  });
});
