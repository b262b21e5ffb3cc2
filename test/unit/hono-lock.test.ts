/**
 * The Hono lock middleware over the in-memory backend, through `app.request()` with no server.
 */

import {
  createLocker,
  InvalidArgumentError,
  type Lease,
  type LockAdapter,
  LockError,
  type Locker,
  LockLostError,
  lockNames,
  releaseScript,
} from "edgelock";
import { type LockOptions, type LockVariables, lock } from "edgelock/hono";
import { memoryAdapter } from "edgelock/memory";
import { type Context, Hono } from "hono";
import { describe, expect, expectTypeOf, it } from "vitest";
import { fakeExecutionContext } from "../support/async.js";
import { activeTimers, delay, gate, record } from "./helpers.js";

const PROBLEM = "application/problem+json";

function newLocker(adapter: LockAdapter = memoryAdapter()): Locker {
  return createLocker({ adapter });
}

async function mustAcquire(locker: Locker, key: string, ttl: number): Promise<Lease> {
  const lease = await locker.tryAcquire(key, ttl);
  if (!lease) throw new Error(`expected to acquire ${key}`);
  return lease;
}

/** An app with one locked route, `/run`, counting how often its handler runs. */
function lockedApp(options: LockOptions) {
  const state = { runs: 0 };
  const app = new Hono<{ Variables: LockVariables }>();
  app.post("/run", lock(options), (c) => {
    state.runs++;
    return c.json({ fence: c.var.lease.fence });
  });
  return { app, state };
}

describe("contention", () => {
  it.each([
    [5_000, "5"],
    [1_200, "2"],
  ])("answers 409 problem+json with Retry-After from a %i ms holder", async (holderTtl, header) => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", holderTtl);
    const { app, state } = lockedApp({ locker, key: "job", ttl: 1_000 });

    const res = await app.request("/run", { method: "POST" });

    expect(res.status).toBe(409);
    expect(res.headers.get("Content-Type")).toBe(PROBLEM);
    expect(res.headers.get("Retry-After")).toBe(header);
    expect(await res.json()).toEqual({
      type: "about:blank",
      title: "Conflict",
      status: 409,
      detail: expect.stringContaining(`${header} s`),
      code: "lock_held",
    });
    expect(state.runs).toBe(0);
    // The holder still holds it: the middleware took nothing.
    expect(await locker.inspect("job", holder.token)).toMatchObject({ held: true, mine: true });
    await holder.release();
  });

  it("keeps headers set by earlier middleware", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const app = new Hono();
    app.use(async (c, next) => {
      c.header("X-Request-Id", "req-1");
      await next();
    });
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), (c) => c.text("ran"));
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(409);
    expect(res.headers.get("X-Request-Id")).toBe("req-1");
    await holder.release();
  });

  it("takes Retry-After from the retryAfter hook, rounded up to whole seconds", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const seen: { holderTtl: number; path: string }[] = [];
    const { app } = lockedApp({
      locker,
      key: "job",
      ttl: 1_000,
      retryAfter: (holderTtl, c) => {
        seen.push({ holderTtl, path: c.req.path });
        return holderTtl / 100 + 0.5; // ~50.49 s
      },
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(409);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.path).toBe("/run");
    expect(seen[0]?.holderTtl).toBeGreaterThan(4_000);
    expect(seen[0]?.holderTtl).toBeLessThanOrEqual(5_000);
    expect(res.headers.get("Retry-After")).toBe(
      String(Math.ceil((seen[0]?.holderTtl ?? 0) / 100 + 0.5)),
    );
    await holder.release();
  });

  it("answers what onContention returns, told the key, holderTtl and retryAfter", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const { app, state } = lockedApp({
      locker,
      key: "job",
      ttl: 1_000,
      onContention: (c, info) => c.json({ busy: info }, 423, { "Retry-After": "7" }),
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(423);
    expect(res.headers.get("Retry-After")).toBe("7");
    const body = (await res.json()) as {
      busy: { key: string; holderTtl: number; retryAfter: number };
    };
    expect(body.busy.key).toBe("job");
    expect(body.busy.holderTtl).toBeGreaterThan(4_000);
    expect(body.busy.retryAfter).toBe(5);
    expect(state.runs).toBe(0);
    await holder.release();
  });

  it("uses Retry-After: 1 when the holder's lease is unknown (a key without expiry)", async () => {
    const noExpiry = record(memoryAdapter(), async (call, run) =>
      call.script === "acquire" ? [0, 0, -1] : run(),
    );
    const told: number[] = [];
    const { app } = lockedApp({
      locker: newLocker(noExpiry.adapter),
      key: "job",
      ttl: 1_000,
      onContention: (c, info) => {
        told.push(info.holderTtl);
        return c.body(null, 409, { "Retry-After": String(info.retryAfter) });
      },
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(409);
    expect(told).toEqual([-1]);
    expect(res.headers.get("Retry-After")).toBe("1");
  });
});

describe("wait", () => {
  it("gets the lock when the holder releases it during the wait", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const { app, state } = lockedApp({ locker, key: "job", ttl: 1_000, wait: 2_000 });
    const started = performance.now();
    setTimeout(() => void holder.release(), 100);
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(200);
    expect(state.runs).toBe(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    const { fence } = (await res.json()) as { fence: number };
    expect(fence).toBeGreaterThan(holder.fence);
  });

  it("answers 409 once the wait runs out", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const { app, state } = lockedApp({ locker, key: "job", ttl: 1_000, wait: 150 });
    const started = performance.now();
    const res = await app.request("/run", { method: "POST" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    expect(res.status).toBe(409);
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThanOrEqual(4);
    expect(state.runs).toBe(0);
    await holder.release();
  });

  it("stops waiting when the request's signal aborts, and the handler never runs", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "job", 5_000);
    const { app, state } = lockedApp({ locker, key: "job", ttl: 1_000, wait: 4_000 });
    const errors: unknown[] = [];
    app.onError((error, c) => {
      errors.push(error);
      return c.text("aborted", 500);
    });
    const client = new AbortController();
    setTimeout(() => client.abort(), 50);
    const started = performance.now();
    const res = await app.request("/run", { method: "POST", signal: client.signal });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(res.status).toBe(500);
    expect((errors[0] as Error).name).toBe("AbortError");
    expect(state.runs).toBe(0);
    expect(await locker.inspect("job", holder.token)).toMatchObject({ held: true, mine: true });
    await holder.release();
    expect((await locker.inspect("job")).held).toBe(false);
  });
});

describe("the lease variable", () => {
  it("is typed, carries fence and signal, and fences increase across requests", async () => {
    const locker = newLocker();
    const app = new Hono<{ Variables: LockVariables }>();
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), (c) => {
      expectTypeOf(c.var.lease).toEqualTypeOf<Lease>();
      expectTypeOf(c.get("lease")).toEqualTypeOf<Lease>();
      const lease = c.get("lease");
      return c.json({
        same: lease === c.var.lease,
        key: lease.key,
        fence: lease.fence,
        aborted: lease.signal.aborted,
        isSignal: lease.signal instanceof AbortSignal,
        held: lease.held,
      });
    });
    const first = await (await app.request("/run", { method: "POST" })).json();
    const second = await (await app.request("/run", { method: "POST" })).json();
    expect(first).toMatchObject({
      same: true,
      key: "job",
      aborted: false,
      isSignal: true,
      held: true,
    });
    expect(second.fence).toBeGreaterThan(first.fence);
  });

  it("is typed on an inline route without declaring the app's Variables", async () => {
    const locker = newLocker();
    const app = new Hono().post("/run", lock({ locker, key: "job", ttl: 1_000 }), (c) => {
      expectTypeOf(c.var.lease).toEqualTypeOf<Lease>();
      return c.text(String(c.var.lease.fence));
    });
    const res = await app.request("/run", { method: "POST" });
    expect(Number(await res.text())).toBeGreaterThan(0);
  });
});

describe("release", () => {
  it("holds the lock while the handler runs and frees it once the response is done", async () => {
    const locker = newLocker();
    const seen: { held: boolean; mine: boolean }[] = [];
    const app = new Hono<{ Variables: LockVariables }>();
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), async (c) => {
      seen.push(await locker.inspect("job", c.var.lease.token));
      return c.text("ok");
    });
    const timers = activeTimers();
    const res = await app.request("/run", { method: "POST" });
    expect(await res.text()).toBe("ok");
    expect(seen).toEqual([expect.objectContaining({ held: true, mine: true })]);
    expect((await locker.inspect("job")).held).toBe(false);
    expect(activeTimers()).toBe(timers); // keep-alive and expiry timers are cleared
  });

  it("without an ExecutionContext, awaits the release before answering", async () => {
    const releasing = gate();
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "release") await releasing.promise;
      return run();
    });
    const locker = newLocker(recording.adapter);
    const { app } = lockedApp({ locker, key: "job", ttl: 1_000 });
    let answered = false;
    const response = Promise.resolve(app.request("/run", { method: "POST" })).then((res) => {
      answered = true;
      return res;
    });
    await delay(50);
    expect(recording.of("release")).toHaveLength(1);
    expect(answered).toBe(false);
    releasing.open();
    expect((await response).status).toBe(200);
    expect((await locker.inspect("job")).held).toBe(false);
  });

  it("with an ExecutionContext too, releases before answering: a takeover must be told", async () => {
    const releasing = gate();
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "release") await releasing.promise;
      return run();
    });
    const locker = newLocker(recording.adapter);
    const { app } = lockedApp({ locker, key: "job", ttl: 1_000 });
    const { ctx, pending } = fakeExecutionContext();
    let answered = false;
    const response = Promise.resolve(app.request("/run", { method: "POST" }, undefined, ctx)).then(
      (res) => {
        answered = true;
        return res;
      },
    );
    await delay(50);
    expect(recording.of("release")).toHaveLength(1);
    expect(answered).toBe(false);
    releasing.open();
    expect((await response).status).toBe(200);
    expect(pending).toHaveLength(0);
    expect((await locker.inspect("job")).held).toBe(false);
  });

  it("never lets a failed release change the response", async () => {
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === "release") throw new Error("connection reset");
      return run();
    });
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const { app } = lockedApp({ locker, key: "job", ttl: 1_000 });
    const { ctx } = fakeExecutionContext();
    const res = await app.request("/run", { method: "POST" }, undefined, ctx);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ fence: expect.any(Number) });
    expect(recording.of("release").map((call) => call.error !== undefined)).toEqual([true]);
  });

  it("replaces the response with LockLostError when the release finds another holder", async () => {
    const adapter = memoryAdapter();
    const locker = newLocker(adapter);
    const seen: unknown[] = [];
    const app = new Hono<{ Variables: LockVariables }>();
    app.onError((error, c) => {
      seen.push(error);
      return c.json({ code: (error as LockError).code }, 409);
    });
    let thief: Lease | null = null;
    app.post("/run", lock({ locker, key: "job", ttl: 3_000 }), async (c) => {
      // Redis forgets the lock (a restart without persistence) and someone else takes it.
      const names = lockNames("edgelock", "job");
      const keys = [names.lock, names.fence, names.queue, names.waiters];
      await adapter.evalScript(releaseScript, keys, [c.var.lease.token, "1000"]);
      thief = await newLocker(adapter).tryAcquire("job", 60_000);
      return c.text("charged the card");
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ code: "LOCK_LOST" });
    expect(seen).toEqual([expect.any(LockLostError)]);
    expect(await locker.inspect("job", (thief as Lease | null)?.token)).toMatchObject({
      mine: true,
    });
  });

  it("releases after a thrown handler error, which still reaches app.onError", async () => {
    const locker = newLocker();
    const boom = new Error("boom");
    const seen: unknown[] = [];
    const app = new Hono();
    app.onError((error, c) => {
      seen.push(error);
      return c.json({ message: error.message }, 418);
    });
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), () => {
      throw boom;
    });
    const { ctx, pending } = fakeExecutionContext();

    const res = await app.request("/run", { method: "POST" }, undefined, ctx);

    expect(res.status).toBe(418);
    expect(await res.json()).toEqual({ message: "boom" });
    expect(seen).toEqual([boom]);
    expect(pending).toHaveLength(0);
    expect((await locker.inspect("job")).held).toBe(false);
  });

  it("releases after a thrown non-Error too, which Hono rethrows", async () => {
    const locker = newLocker();
    const app = new Hono();
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), () => {
      throw "not an Error";
    });
    await expect(app.request("/run", { method: "POST" })).rejects.toBe("not an Error");
    expect((await locker.inspect("job")).held).toBe(false);
  });
});

describe("store unavailable", () => {
  const down: LockAdapter = {
    name: "down",
    evalScript: () => Promise.reject(new Error("ECONNREFUSED")),
  };

  it("fails closed with 503 problem+json and Retry-After: 1; the handler does not run", async () => {
    const { app, state } = lockedApp({ locker: newLocker(down), key: "job", ttl: 1_000 });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(503);
    expect(res.headers.get("Content-Type")).toBe(PROBLEM);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(await res.json()).toMatchObject({
      type: "about:blank",
      title: "Service Unavailable",
      status: 503,
      code: "lock_unavailable",
    });
    expect(state.runs).toBe(0);
  });

  it("answers what onUnavailable returns, told the key and the error", async () => {
    const told: { key: string; error: unknown }[] = [];
    const { app, state } = lockedApp({
      locker: newLocker(down),
      key: "job",
      ttl: 1_000,
      onUnavailable: (c, info) => {
        told.push(info);
        return c.text("try later", 502);
      },
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(502);
    expect(told).toHaveLength(1);
    expect(told[0]?.key).toBe("job");
    const error = told[0]?.error;
    expect(error).toBeInstanceOf(LockError);
    expect(error instanceof LockError && error.code).toBe("LOCK_UNAVAILABLE");
    expect(state.runs).toBe(0);
  });
});

describe("key", () => {
  it("is computed from the request context (a route param), sync or async", async () => {
    const locker = newLocker();
    const holder = await mustAcquire(locker, "order:1", 5_000);
    const keys: string[] = [];
    const app = new Hono<{ Variables: LockVariables }>();
    const handler = (c: Context<{ Variables: LockVariables }>) => {
      keys.push(c.var.lease.key);
      return c.text("ok");
    };
    app.post(
      "/orders/:id",
      lock({ locker, key: (c) => `order:${c.req.param("id")}`, ttl: 1_000 }),
      handler,
    );
    app.post(
      "/async/:id",
      lock({ locker, key: async (c) => `order:${c.req.param("id")}`, ttl: 1_000 }),
      handler,
    );

    expect((await app.request("/orders/1", { method: "POST" })).status).toBe(409);
    expect((await app.request("/orders/2", { method: "POST" })).status).toBe(200);
    expect((await app.request("/async/1", { method: "POST" })).status).toBe(409);
    expect((await app.request("/async/3", { method: "POST" })).status).toBe(200);
    expect(keys).toEqual(["order:2", "order:3"]);
    await holder.release();
  });

  it.each([
    ["an empty key", ""],
    ["a key with a lone surrogate", "report:\uDC00"],
  ])("hands a bad computed key (%s) to app.onError, before any request", async (_name, key) => {
    const recording = record(memoryAdapter());
    const locker = newLocker(recording.adapter);
    const seen: unknown[] = [];
    const app = new Hono();
    app.onError((error, c) => {
      seen.push(error);
      return c.text("bad", 500);
    });
    let runs = 0;
    app.post("/run", lock({ locker, key: () => key, ttl: 1_000 }), (c) => {
      runs++;
      return c.text("ok");
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(500);
    expect(seen[0]).toBeInstanceOf(InvalidArgumentError);
    expect(seen[0]).toMatchObject({ code: "INVALID_ARGUMENT", argument: "key" });
    expect(runs).toBe(0);
    expect(recording.calls).toEqual([]);
  });
});

describe("mutual exclusion", () => {
  it("runs one handler among concurrent requests; the others get 409", async () => {
    const locker = newLocker();
    const proceed = gate();
    let running = 0;
    let most = 0;
    let runs = 0;
    const app = new Hono();
    app.post("/run", lock({ locker, key: "job", ttl: 1_000 }), async (c) => {
      runs++;
      most = Math.max(most, ++running);
      await proceed.promise;
      running--;
      return c.text("ran");
    });
    const requests = Array.from({ length: 10 }, () => app.request("/run", { method: "POST" }));
    const settled: Response[] = [];
    for (const request of requests) void Promise.resolve(request).then((res) => settled.push(res));
    while (settled.length < 9) await delay(5);
    proceed.open();
    const statuses = (await Promise.all(requests)).map((res) => res.status).sort();
    expect(statuses).toEqual([200, ...Array(9).fill(409)]);
    expect(runs).toBe(1);
    expect(most).toBe(1);
  });

  it("in wait mode, runs every request, one at a time", async () => {
    const locker = newLocker();
    let running = 0;
    let most = 0;
    const fences: number[] = [];
    const app = new Hono<{ Variables: LockVariables }>();
    app.post("/run", lock({ locker, key: "job", ttl: 1_000, wait: 5_000 }), async (c) => {
      most = Math.max(most, ++running);
      fences.push(c.var.lease.fence);
      await delay(20);
      running--;
      return c.text("ran");
    });
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => app.request("/run", { method: "POST" })),
    );
    expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 200, 200]);
    expect(most).toBe(1);
    expect(new Set(fences).size).toBe(5);
  });
});

describe("auto-extension", () => {
  it("keeps the lock through a handler that outlasts the ttl", async () => {
    const locker = newLocker();
    const probes: (Lease | null)[] = [];
    let aborted: boolean | undefined;
    const app = new Hono<{ Variables: LockVariables }>();
    app.post("/run", lock({ locker, key: "job", ttl: 200 }), async (c) => {
      await delay(300);
      probes.push(await locker.tryAcquire("job", 1_000));
      await delay(300);
      probes.push(await locker.tryAcquire("job", 1_000));
      aborted = c.var.lease.signal.aborted;
      return c.text("done");
    });
    const res = await app.request("/run", { method: "POST" });
    expect(res.status).toBe(200);
    expect(probes).toEqual([null, null]);
    expect(aborted).toBe(false);
    expect((await locker.inspect("job")).held).toBe(false);
  });

  it("stops extending at maxHold: the lease lapses and its signal aborts", async () => {
    const locker = newLocker();
    let taken: Lease | null = null;
    let reason: unknown;
    const app = new Hono<{ Variables: LockVariables }>();
    app.post("/run", lock({ locker, key: "job", ttl: 100, maxHold: 150 }), async (c) => {
      await delay(400);
      taken = await locker.tryAcquire("job", 1_000);
      reason = c.var.lease.signal.reason;
      return c.text("done");
    });
    const seen: unknown[] = [];
    app.onError((error, c) => {
      seen.push(error);
      return c.text("lost", 503);
    });
    expect((await app.request("/run", { method: "POST" })).status).toBe(503);
    expect(taken).not.toBeNull();
    expect((reason as LockError).code).toBe("LOCK_LOST");
    expect(seen).toEqual([reason]); // the handler's "done" did not stand
    // The middleware's late release did not free the new holder's lock.
    expect(await locker.inspect("job", (taken as Lease | null)?.token)).toMatchObject({
      held: true,
      mine: true,
    });
    await (taken as Lease | null)?.release();
  });
});

describe("options", () => {
  const locker = newLocker();
  const fine = { locker, key: "job", ttl: 1_000 };

  it.each([
    ["options", null],
    ["locker", { ...fine, locker: undefined }],
    ["locker", { ...fine, locker: {} }],
    ["key", { ...fine, key: "" }],
    ["key", { ...fine, key: 42 }],
    ["key", { ...fine, key: "k".repeat(1_025) }],
    ["key", { ...fine, key: "job\uD800" }],
    ["ttl", { ...fine, ttl: undefined }],
    ["ttl", { ...fine, ttl: 5 }],
    ["ttl", { ...fine, ttl: 1.5 }],
    ["wait", { ...fine, wait: -1 }],
    ["wait", { ...fine, wait: Number.POSITIVE_INFINITY }],
    ["maxHold", { ...fine, maxHold: 1 }],
    ["retryAfter", { ...fine, retryAfter: 5 }],
    ["onContention", { ...fine, onContention: "409" }],
    ["onUnavailable", { ...fine, onUnavailable: {} }],
  ])("rejects a bad %s at construction with InvalidArgumentError", (argument, options) => {
    let thrown: unknown;
    try {
      lock(options as unknown as LockOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as InvalidArgumentError).argument).toBe(argument);
  });

  it("accepts valid options and returns a named handler", () => {
    const middleware = lock({ ...fine, wait: 0, maxHold: 10_000, retryAfter: () => 1 });
    expect(middleware.name).toBe("lockMiddleware");
  });

  it("hands a bad retryAfter result to app.onError", async () => {
    const holder = await mustAcquire(locker, "job", 5_000);
    const seen: unknown[] = [];
    const { app } = lockedApp({ ...fine, retryAfter: () => Number.NaN });
    app.onError((error, c) => {
      seen.push(error);
      return c.text("bad", 500);
    });
    expect((await app.request("/run", { method: "POST" })).status).toBe(500);
    expect((seen[0] as InvalidArgumentError).argument).toBe("retryAfter");
    await holder.release();
  });
});
