/**
 * Network faults between the clients and Redis (design §3 C): ambiguous acquires over TCP and
 * HTTP, blackholes during acquire and during a hold, reset storms and latency.
 */

import { acquireScript } from "edgelock";
import { expect } from "vitest";
import type { HistoryEvent } from "../history.js";
import type { Plan, Transport } from "../protocol.js";
import type { RunContext } from "../run-context.js";
import type { Scenario } from "../scenario.js";
import type { RunHandle } from "../worker-pool.js";

/** S13: the acquire reaches Redis, its reply is lost, the connection resets; ioredis re-sends. */
export const ambiguousAcquireTcp: Scenario = {
  id: "S13",
  title: "ambiguous acquire over TCP",
  fault: "replies dropped while the acquire is sent; 5–400 ms later the connection resets",
  guarantee:
    "acquired with the one fence Redis minted for it, or failed with nothing left held; " +
    "never a phantom lock",
  iterations: 3,
  promises: { exclusive: true },
  async run(context) {
    const ttl = 1_000;
    const a = await context.start(0, { ttl, linger: 2 * ttl });
    await context.nemesis("drop replies", () => context.stack.proxy.dropReplies());
    a.go();
    await context.next(a, "acquire", "invoke");
    await context.sleep(context.rng.between(5, 400));
    await context.nemesis("reset and heal", () => context.stack.proxy.heal());
    await expectOneFenceOrNothing(context, a, ttl);
  },
};

/** S14: the same over HTTP: Redis runs the acquire, the response is lost, the SDK retries. */
export const ambiguousAcquireHttp: Scenario = {
  id: "S14",
  title: "ambiguous acquire over HTTP",
  fault: "@upstash/redis → gateway: the acquire's response (1–2 of them) lost after Redis ran it",
  guarantee: "acquired once, with the fence of the first execution (the retry is idempotent)",
  iterations: 2,
  promises: { exclusive: true },
  async run(context) {
    const ttl = 1_000;
    const rest = await context.environment.rest();
    const transport: Transport = {
      kind: "upstash",
      url: rest.url,
      token: rest.token,
      requestTimeout: 1_000,
    };
    const a = await context.start(0, { ttl, linger: 2 * ttl, transport });
    const before = rest.proxy.requests.length;
    const lost = context.rng.between(1, 2);
    await context.nemesis(`lose ${lost} responses`, () =>
      rest.proxy.inject({ kind: "drop-response" }, lost),
    );
    a.go();
    await expectOneFenceOrNothing(context, a, ttl);
    const acquires = rest.proxy.requests
      .slice(before)
      .filter(({ body }) => Array.isArray(body) && body[1] === acquireScript.sha1);
    expect(acquires.length).toBeGreaterThan(lost);
    expect(context.last(a, "hold").type).toBe("ok");
  },
};

/** S15: Redis unreachable (blackhole) while acquiring. */
export const blackholeDuringAcquire: Scenario = {
  id: "S15",
  title: "blackhole during acquire",
  fault: "blackhole before the acquire (timeout 600 ms); healed 0–300 ms after it fails",
  guarantee:
    "acquire fails with LOCK_UNAVAILABLE within its own deadline; fn never runs; what the " +
    "held-back requests take after healing is released",
  iterations: 3,
  promises: { exclusive: true },
  async run(context) {
    const ttl = 800;
    const a = await context.start(0, { ttl, timeout: 600, linger: 2 * ttl });
    await context.nemesis("blackhole", () => context.stack.proxy.blackhole());
    a.go();
    const invoked = await context.next(a, "acquire", "invoke");
    const failed = await context.outcome(a);
    expect(failed).toMatchObject({ type: "info", code: "LOCK_UNAVAILABLE" });
    expect(failed.t - invoked.t).toBeLessThan(3_000);
    await context.sleep(context.rng.between(0, 300));
    await context.nemesis("heal", () => context.stack.proxy.heal());
    await context.untilFree(failed.t + 300 + ttl + 1_000);
    a.wrapUp();
    await context.finish();
    expect(context.events(a, "read")).toHaveLength(0);
  },
};

/** S16: Redis unreachable from the holder while it holds (its extensions fail). */
export const blackholeDuringHold: Scenario = {
  id: "S16",
  title: "blackhole during a hold",
  fault:
    "blackhole between the holder and Redis 50–300 ms into a 2 s section (ttl 1 s, default " +
    "options); a waiter connected directly",
  guarantee:
    "the holder's signal aborts before the server-side expiry; the waiter gets the lock only " +
    "after that abort; the holder's late write is rejected",
  iterations: 3,
  promises: { exclusive: true, timelySignals: true, staleRejections: true },
  run: (context) => holdThroughBlackhole(context, { ttl: 1_000, work: [1_800, 2_200] }),
};

/**
 * The run of S16 (and of S39, on a busy host): a holder whose extensions stop reaching Redis
 * 50–300 ms into its section, and a waiter connected directly. The holder's signal must abort
 * before the server-side expiry, and the waiter get the lock only after that abort.
 * `beforeHeal` runs once the holder has been told of the loss.
 */
export async function holdThroughBlackhole(
  context: RunContext,
  holder: Partial<Plan> & { ttl: number },
  beforeHeal: () => Promise<void> = async () => {},
): Promise<void> {
  const a = await context.start(0, holder);
  const b = await context.start(1, { ttl: holder.ttl, timeout: 5_000, transport: context.direct });
  a.go();
  await context.next(a, "read");
  b.go();
  await context.sleep(context.rng.between(50, 300));
  await context.nemesis("blackhole", () => context.stack.proxy.blackhole());
  const lost = await context.next(a, "lost", "info", 5_000);
  await beforeHeal();
  await context.sleep(context.rng.between(0, 200));
  await context.nemesis("heal", () => context.stack.proxy.heal());
  await context.finish();
  expect(lost.t, "abort time vs server-side expiry").toBeLessThan(context.expiryOf(lost.fence));
  expect(context.last(a, "hold")).toMatchObject({ type: "fail", code: "LOCK_LOST" });
  // The waiter gets the lock only once the holder has been told it lost it. (Not necessarily
  // after the expiry the observer saw: an extension held back by the blackhole and delivered on
  // heal can land just before the expiry and renew it; the holder, having given up, then
  // deletes the lock at once rather than sit on it.)
  expect(context.last(b, "acquire", "ok").t).toBeGreaterThan(lost.t);
}

/** S17: 30 % of packets lost, each loss resetting its connection. */
export const resetStorm: Scenario = {
  id: "S17",
  title: "packet loss and reset storm",
  fault: "30 % of chunks and new connections reset; 3 processes × 3 sections",
  guarantee: "no double holder; every call settles in bounded time; no crash",
  iterations: 2,
  // ioredis re-sends commands whose replies were lost (autoResendUnfulfilledCommands), including
  // acquires the library already gave up on: in a reset storm, an abandoned lock can be renewed
  // for a while after its call failed. Bounded: the liveness probe still gets the lock.
  promises: { exclusive: true, lingeringOrphans: true },
  async run(context) {
    const timeout = 3_000;
    const handles = await Promise.all(
      [0, 1, 2].map((slot) =>
        context.start(slot, { iterations: 3, timeout, retryFor: 1_500, gap: [0, 20] }),
      ),
    );
    await context.nemesis("drop 30 %", () => context.stack.proxy.dropProbability(0.3));
    for (const handle of handles) handle.go();
    await context.finish();
    await context.nemesis("heal", () => context.stack.proxy.heal());
    expect(context.history.events.some((e) => e.op === "acquire" && e.type === "ok")).toBe(true);
    for (const handle of handles) {
      for (const call of durations(context.history.of(handle.pid))) {
        expect(call).toBeLessThan(timeout + 2_000);
      }
    }
  },
};

/** S18: 50 ± 20 ms of latency each way. */
export const latency: Scenario = {
  id: "S18",
  title: "latency 50 ± 20 ms",
  fault: "every chunk delayed 50 ± 20 ms each way (RTT ≈ 100 ms); a 1.2–1.5 s section, ttl 600 ms",
  guarantee: "extensions land in time: no lease lost; the waiter gets the lock afterwards",
  iterations: 2,
  promises: { exclusive: true },
  async run(context) {
    const ttl = 600;
    const a = await context.start(0, { ttl, work: [1_200, 1_500] });
    const b = await context.start(1, { ttl, timeout: 4_000 });
    await context.nemesis("latency 50 ± 20 ms", () => context.stack.proxy.latency(50, 20));
    a.go();
    await context.next(a, "read");
    b.go();
    await context.finish();
    await context.nemesis("heal", () => context.stack.proxy.heal());
    expect(context.history.events.filter((e) => e.op === "lost")).toEqual([]);
    expect(context.last(a, "hold").type).toBe("ok");
    expect(context.last(b, "hold").type).toBe("ok");
  },
};

/**
 * Either the client got the lock, and the only fence Redis showed while it held was its own, or
 * its acquire failed and the lock is gone within its ttl (while the client lingers). Then lets
 * the client finish.
 */
async function expectOneFenceOrNothing(context: RunContext, a: RunHandle, ttl: number) {
  const result = await context.outcome(a);
  if (result.type === "ok") {
    await context.next(a, "hold");
    const end = context.last(a, "release", "invoke").t;
    const seen = context.observer.samples.filter((s) => s.held && s.sent < end);
    expect(new Set(seen.map((s) => s.fence))).toEqual(new Set([result.fence]));
  } else {
    expect(result.code).toBe("LOCK_UNAVAILABLE");
    await context.untilFree(result.t + ttl + 1_000);
  }
  a.wrapUp();
  await context.finish();
}

/** How long each acquire of a process took, from invoke to outcome, ms. */
function durations(events: readonly HistoryEvent[]): number[] {
  const taken: number[] = [];
  let invoked: number | undefined;
  for (const event of events) {
    if (event.op !== "acquire") continue;
    if (event.type === "invoke") invoked = event.t;
    else if (invoked !== undefined) taken.push(event.t - invoked);
  }
  return taken;
}
