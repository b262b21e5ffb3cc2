/**
 * Server faults (design §3 D and E): Redis frozen past the lease, killed and restarted with and
 * without AOF, and unreachable when a lock is wanted.
 */

import { expect } from "vitest";
import { freePort } from "../../support/redis-server.js";
import { monotonicMs } from "../history.js";
import type { Scenario } from "../scenario.js";

/** S19: redis-server frozen (SIGSTOP) for longer than the lease. */
export const redisPaused: Scenario = {
  id: "S19",
  title: "Redis paused longer than the ttl",
  fault:
    "SIGSTOP redis-server for ttl + 200–500 ms while a lease is held (ttl 800 ms, default options)",
  guarantee:
    "the holder's signal aborts before the server-side expiry; the key has expired on resume " +
    "and the waiter gets it within 1.5 s",
  iterations: 3,
  promises: { exclusive: true, timelySignals: true },
  async run(context) {
    const ttl = 800;
    const a = await context.start(0, { ttl, work: [1_500, 1_800] });
    const b = await context.start(1, { ttl, timeout: 6_000, retryFor: 6_000 });
    a.go();
    await context.next(a, "read");
    b.go();
    await context.sleep(context.rng.between(50, 200));
    await context.nemesis("pause redis", () => context.stack.redis.pause());
    await context.sleep(ttl + context.rng.between(200, 500));
    await context.nemesis("resume redis", () => context.stack.redis.resume());
    const resumed = monotonicMs();
    await context.finish();
    expect(context.last(a, "hold")).toMatchObject({ type: "fail", code: "LOCK_LOST" });
    expect(context.last(b, "acquire", "ok").t - resumed).toBeLessThan(1_500);
  },
};

/** S20: redis-server killed (-9) and restarted while a lease is held, without and with AOF. */
export const redisRestarted: Scenario = {
  id: "S20",
  title: "Redis kill -9 and restart, without / with AOF",
  fault: "kill -9 redis-server 100–400 ms into a 1.2–1.5 s section (ttl 1.5 s), restart at once",
  guarantee:
    "without persistence the holder learns at its next extension (LOCK_LOST) and fences keep " +
    "growing; with appendfsync always the lease survives and the lock stays exclusive",
  iterations: 4,
  stack: (iteration) => (iteration % 2 === 0 ? "main" : "aof"),
  promises: { exclusive: false },
  async run(context) {
    const ttl = 1_500;
    const { redis } = context.stack;
    const a = await context.start(0, { ttl, work: [1_200, 1_500] });
    const b = await context.start(1, { ttl, timeout: 6_000, retryFor: 6_000 });
    a.go();
    await context.next(a, "read");
    b.go();
    await context.sleep(context.rng.between(100, 400));
    await context.nemesis("kill -9 redis", () => redis.kill());
    await context.sleep(context.rng.between(0, 200));
    await context.nemesis("restart redis", () => redis.restart());
    const restarted = monotonicMs();
    await context.finish();
    const aFence = context.last(a, "acquire", "ok").fence ?? 0;
    if (context.stack.name === "aof") {
      expect(context.last(a, "hold").type).toBe("ok");
      const survived = context.observer.samples.some(
        (s) => s.sent > restarted && s.held && s.fence === aFence,
      );
      expect(survived, "the lease was not in Redis after the restart").toBe(true);
      expect(context.metrics().historyOverlaps).toBe(0);
    } else {
      expect(context.last(a, "hold")).toMatchObject({ type: "fail", code: "LOCK_LOST" });
      expect(context.last(b, "acquire", "ok").fence).toBeGreaterThan(aFence);
    }
  },
};

/** S30: Redis unreachable when the lock is wanted. */
export const redisUnavailable: Scenario = {
  id: "S30",
  title: "Redis unavailable at acquire",
  fault: "every connection reset, or nothing listening (stopped server), from the start",
  guarantee: "fail closed: LOCK_UNAVAILABLE within 3 s and fn never runs",
  iterations: 2,
  promises: { exclusive: true },
  async run(context) {
    const { proxy } = context.stack;
    if (context.iteration % 2 === 0) {
      await context.nemesis("refuse connections", () => proxy.refuse());
    } else {
      const nothing = await freePort();
      await context.nemesis("server stopped", () => proxy.retarget(nothing));
    }
    const api = context.rng.chance(0.5) ? "using" : "acquire";
    const a = await context.start(0, { api, ttl: 800, warm: false });
    a.go();
    const invoked = await context.next(a, "acquire", "invoke");
    await context.finish();
    const failed = context.last(a, "acquire");
    expect(failed).toMatchObject({ type: "info", code: "LOCK_UNAVAILABLE" });
    expect(failed.t - invoked.t).toBeLessThan(3_000);
    expect(context.events(a, "read")).toEqual([]);
    await context.nemesis("heal", () => context.heal());
  },
};
