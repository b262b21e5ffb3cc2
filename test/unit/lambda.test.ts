/// <reference types="node" />
import middy from "@middy/core";
import httpErrorHandler from "@middy/http-error-handler";
import type { Context } from "aws-lambda";
import {
  createLocker,
  IdempotencyConflictError,
  IdempotencyKeyReusedError,
  InvalidArgumentError,
  type Lease,
  type LockAdapter,
  LockLostError,
  LockTimeoutError,
  LockUnavailableError,
  lockNames,
  releaseScript,
} from "edgelock";
import {
  headerKey,
  idempotencyMiddleware,
  lambdaWithIdempotency,
  lambdaWithLock,
  leaseFor,
  lockMiddleware,
} from "edgelock/lambda";
import { memoryAdapter } from "edgelock/memory";
import { describe, expect, it, vi } from "vitest";
import { lambdaContext } from "../support/lambda-context.js";
import { activeTimers, delay, gate, type Recording, record, rejection } from "./helpers.js";

/** A context frozen at `remaining` ms, for exact arithmetic. */
const frozen = (remaining: number) => ({ getRemainingTimeInMillis: () => remaining });

/** A memory backend whose scripts named in `down` fail, as if Redis went away. */
function failing(down: ReadonlySet<string>): Recording {
  return record(memoryAdapter(), (call, run) =>
    down.has(call.script) ? Promise.reject(new Error("connection lost")) : run(),
  );
}

/** A memory backend that answers each script a few ms later, as a network would. */
const slow = () =>
  record(memoryAdapter(), async (_call, run) => {
    await delay(5);
    return run();
  });

const inFlight = (recording: Recording) => recording.calls.filter((call) => !call.settled).length;

/** A minimal `@middy/http-error-handler`: maps `statusCode`, `expose` and `headers`. */
const httpErrors = {
  onError: async (request: middy.Request) => {
    const error = request.error as Error & { statusCode?: number; headers?: object };
    if (error.statusCode === undefined || error.statusCode >= 500) return;
    request.response = {
      statusCode: error.statusCode,
      headers: { ...error.headers },
      body: error.message,
    };
  },
};

/** Frees a lease's key behind its back and lets someone else take it (Redis lost the lock). */
async function takeOver(adapter: LockAdapter, lease: Lease): Promise<Lease | null> {
  const names = lockNames("edgelock", lease.key);
  const keys = [names.lock, names.fence, names.queue, names.waiters];
  await adapter.evalScript(releaseScript, keys, [lease.token, "1000"]);
  return createLocker({ adapter }).tryAcquire(lease.key, 60_000);
}

describe("leaseFor", () => {
  it("is the remaining time plus one second", () => {
    expect(leaseFor(frozen(5_000))).toBe(6_000);
    expect(leaseFor(frozen(5_000), { safety: 1_500 })).toBe(6_500);
    expect(leaseFor(frozen(5_000), { safety: 0 })).toBe(5_000);
  });

  it("is capped by max and never below 10 ms", () => {
    expect(leaseFor(frozen(900_000), { max: 30_000 })).toBe(30_000);
    expect(leaseFor(frozen(0))).toBe(1_000);
    expect(leaseFor(frozen(-20), { safety: 0 })).toBe(10);
    expect(leaseFor(frozen(12.2), { safety: 0 })).toBe(13);
  });

  it("counts down with a real-shaped context", async () => {
    const context = lambdaContext(3_000);
    const first = leaseFor(context);
    expect(first).toBeLessThanOrEqual(4_000);
    expect(first).toBeGreaterThan(3_900);
    await delay(120);
    expect(leaseFor(context)).toBeLessThanOrEqual(first - 100);
  });

  it("rejects what is not a context, and bad options, showing the value", () => {
    expect(() => leaseFor({} as never)).toThrow(InvalidArgumentError);
    expect(() => leaseFor(undefined as never)).toThrow(/getRemainingTimeInMillis/);
    expect(() => leaseFor({ getRemainingTimeInMillis: () => Number.NaN })).toThrow(/got NaN/);
    expect(() => leaseFor(frozen(1_000), { max: 5 })).toThrow(/max .* got 5/);
    expect(() => leaseFor(frozen(1_000), { safety: 1.5 })).toThrow(/safety .* got 1.5/);
  });
});

describe("lambdaWithLock", () => {
  it("runs the handler under a lease of the remaining time, released before it resolves", async () => {
    const recording = slow();
    const locker = createLocker({ adapter: recording.adapter });
    const other = createLocker({ adapter: recording.adapter });
    const timersBefore = activeTimers();
    let seen: Lease | undefined;
    const handler = lambdaWithLock(
      locker,
      (event: { id: string }) => `order:${event.id}`,
      async (event, _context: Context, lease) => {
        seen = lease;
        expect(await other.tryAcquire("order:7", 1_000)).toBeNull();
        return { ok: event.id, fence: lease.fence };
      },
    );

    const result = await handler({ id: "7" }, lambdaContext(4_000));

    expect(result).toEqual({ ok: "7", fence: seen?.fence });
    expect(seen?.ttl).toBeGreaterThan(4_900);
    expect(seen?.ttl).toBeLessThanOrEqual(5_000);
    expect(recording.of("acquire")[0]?.args[2]).toBe(String(seen?.ttl));
    // Awaited: the release ran and settled, no timer is left for a frozen sandbox to find.
    expect(recording.of("release")).toHaveLength(1);
    expect(inFlight(recording)).toBe(0);
    expect(recording.of("extend")).toHaveLength(0);
    expect(activeTimers()).toBe(timersBefore);
    expect((await other.inspect("order:7")).held).toBe(false);
  });

  it("throws LockTimeoutError with a 409 and Retry-After under contention", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const holder = await locker.acquire("order:1", 4_500);
    const work = vi.fn(async () => "ran");
    const handler = lambdaWithLock(locker, () => "order:1", work);

    const error = await rejection(handler({}, lambdaContext(10_000)));

    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ statusCode: 409, expose: true, headers: { "Retry-After": "5" } });
    expect(work).not.toHaveBeenCalled();
    expect(await holder.release()).toBe(true);
  });

  it("returns onContention's result instead, when given", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const holder = await locker.acquire("k", 2_000);
    const handler = lambdaWithLock(
      locker,
      () => "k",
      async () => ({ statusCode: 200 }),
      {
        onContention: (error) => ({ statusCode: error.statusCode, headers: error.headers }),
      },
    );
    expect(await handler({}, lambdaContext(5_000))).toEqual({
      statusCode: 409,
      headers: { "Retry-After": "2" },
    });
    await holder.release();
  });

  it("waits at most half the remaining time", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const holder = await locker.acquire("slow", 10_000);
    const handler = lambdaWithLock(
      locker,
      () => "slow",
      async () => "ran",
      { wait: 60_000 },
    );
    const started = performance.now();
    const error = await rejection(handler({}, lambdaContext(400)));
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as LockTimeoutError).timeout).toBeLessThanOrEqual(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    await holder.release();
  });

  it("trims a lease sized before a long wait to the time left when it is granted", async () => {
    const recording = record(memoryAdapter());
    const locker = createLocker({ adapter: recording.adapter, retryDelay: 10 });
    const holder = await locker.acquire("queue", 5_000);
    setTimeout(() => void holder.release(), 400);
    const context = lambdaContext(3_000);
    const handler = lambdaWithLock(
      locker,
      () => "queue",
      async (_e, _c, lease) => lease.ttl,
      {
        wait: 1_400,
      },
    );
    const ttl = await handler({}, context);
    expect(recording.of("extend")).toHaveLength(1);
    expect(ttl).toBeLessThanOrEqual(3_000 - 400 + 1_000);
  });

  it("rethrows the handler's error unchanged after releasing, even if the release fails", async () => {
    const down = new Set<string>();
    const recording = failing(down);
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const boom = new Error("boom");
    const releaseErrors: unknown[] = [];
    const handler = lambdaWithLock(
      locker,
      () => "k",
      async () => {
        down.add("release");
        throw boom;
      },
      { onReleaseError: (error) => releaseErrors.push(error) },
    );

    expect(await rejection(handler({}, lambdaContext(5_000)))).toBe(boom);
    expect(recording.of("release")).toHaveLength(1);
    expect(releaseErrors).toHaveLength(1);

    down.clear();
    const released = lambdaWithLock(
      locker,
      () => "j",
      async () => Promise.reject(boom),
    );
    expect(await rejection(released({}, lambdaContext(5_000)))).toBe(boom);
    expect((await locker.inspect("j")).held).toBe(false);
  });

  it("frees the lock just after the deadline of an invocation that never returned", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const frozenWork = gate();
    const handler = lambdaWithLock(
      locker,
      () => "k",
      async () => {
        await frozenWork.promise; // a timed-out invocation: it never gets to release
        return "late";
      },
      { margin: 20 }, // a 100 ms invocation: leave it time for Redis
    );
    const timedOut = handler({}, lambdaContext(100)).catch((error: unknown) => error);
    await delay(20);

    const retry = lambdaWithLock(
      locker,
      () => "k",
      async () => "retried",
    );
    expect(await rejection(retry({}, lambdaContext(5_000)))).toBeInstanceOf(LockTimeoutError);
    await delay(100 + 1_000 + 50); // remaining time + safety: no heartbeat kept it alive
    expect(await retry({}, lambdaContext(5_000))).toBe("retried");

    // Should the old invocation ever resume, it learns that it lost the lock.
    frozenWork.open();
    expect(await timedOut).toBeInstanceOf(LockLostError);
  });

  it("rejects with LockLostError, not the handler's result, when the lock was taken over", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    let thief: Lease | null = null;
    const handler = lambdaWithLock(
      locker,
      () => "order:1",
      async (_event: unknown, _context, lease) => {
        thief = await takeOver(adapter, lease);
        return { statusCode: 200 };
      },
    );
    const error = await rejection(handler({}, lambdaContext(3_000)));
    expect(error).toBeInstanceOf(LockLostError);
    expect(await locker.inspect("order:1", (thief as Lease | null)?.token)).toMatchObject({
      mine: true,
    });
  });

  it("checks its arguments up front", () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const ok = async () => 1;
    expect(() => lambdaWithLock({} as never, () => "k", ok)).toThrow(/locker must be a Locker/);
    expect(() => lambdaWithLock(locker, "k" as never, ok)).toThrow(/key must be a function/);
    expect(() => lambdaWithLock(locker, () => "k", ok, { wait: -1 })).toThrow(/wait/);
    expect(() => lambdaWithLock(locker, () => "k", ok, { lease: { max: 0 } })).toThrow(/max/);
  });
});

interface Message {
  messageId: string;
  receiptHandle: string;
  body: string;
}

const message = (messageId: string, body = "{}", receiptHandle = crypto.randomUUID()) => ({
  messageId,
  receiptHandle,
  body,
});

describe("the invocation's deadline", () => {
  /** A memory backend whose scripts named in `hung` never answer, as a blackholed Redis. */
  const hanging = (hung: ReadonlySet<string>) =>
    record(memoryAdapter(), (call, run) =>
      hung.has(call.script) ? new Promise<never>(() => {}) : run(),
    );

  it("bounds every request by the remaining time less the margin: LOCK_UNAVAILABLE, not Task timed out", async () => {
    const recording = hanging(new Set(["acquire", "idempotency-begin"]));
    const locker = createLocker({ adapter: recording.adapter });
    const work = vi.fn(async () => "ran");
    const locked = lambdaWithLock(locker, () => "account:1", work);
    const idempotent = lambdaWithIdempotency(work, {
      adapter: recording.adapter,
      key: () => "m-1",
      margin: 300,
    });
    const timersBefore = activeTimers();
    for (const [invoke, margin] of [
      [locked, 200],
      [idempotent, 300],
    ] as const) {
      const context = lambdaContext(1_000);
      const error = await rejection(invoke({}, context));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect((error as Error).message).toMatch(/no answer from Redis in time/);
      expect((error as Error).message).toContain(`${margin} ms before its deadline`);
      const left = context.getRemainingTimeInMillis();
      expect(left).toBeLessThanOrEqual(margin + 10);
      expect(left).toBeGreaterThan(margin - 60);
    }
    expect(work).not.toHaveBeenCalled();
    expect(activeTimers()).toBeLessThanOrEqual(timersBefore); // the deadlines' timers are cleared
  });

  it("sends nothing when no time is left, and gives up a release that would outlive the deadline", async () => {
    const hung = new Set<string>();
    const recording = hanging(hung);
    const locker = createLocker({ adapter: recording.adapter });
    const releaseErrors: unknown[] = [];
    const handler = lambdaWithLock(
      locker,
      () => "account:1",
      async () => {
        hung.add("release");
        return "done";
      },
      { onReleaseError: (error) => releaseErrors.push(error) },
    );
    const late = await rejection(handler({}, lambdaContext(150)));
    expect(late).toBeInstanceOf(LockUnavailableError);
    expect(recording.calls).toHaveLength(0);

    const context = lambdaContext(600);
    expect(await handler({}, context)).toBe("done");
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(150);
    expect(releaseErrors).toHaveLength(1);
    expect(releaseErrors[0]).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "release" });
  });

  it("turns an unreachable Redis into a 503 with Retry-After through onUnavailable or http-error-handler", async () => {
    const recording = hanging(new Set(["acquire"]));
    const locker = createLocker({ adapter: recording.adapter });
    const withdraw = lambdaWithLock(
      locker,
      () => "account:1",
      async () => ({ statusCode: 200 }),
      { onUnavailable: (error) => ({ statusCode: error.statusCode, headers: error.headers }) },
    );
    expect(await withdraw({}, lambdaContext(1_000))).toEqual({
      statusCode: 503,
      headers: { "Retry-After": "1" },
    });
    const handler = middy(async () => ({ statusCode: 200 }))
      .use(httpErrorHandler({ logger: false }))
      .use(lockMiddleware({ locker, key: () => "account:1" }));
    expect(await handler({}, lambdaContext(1_000))).toMatchObject({
      statusCode: 503,
      headers: { "Retry-After": "1" },
    });
  });
});

describe("lambdaWithIdempotency", () => {
  it("runs once per key, stores before resolving, and replays to duplicates", async () => {
    const recording = slow();
    const work = vi.fn(async (m: Message, context: Context) => ({
      id: m.messageId,
      by: context.awsRequestId,
    }));
    const handler = lambdaWithIdempotency(work, {
      adapter: recording.adapter,
      key: (m) => m.messageId,
    });
    const timersBefore = activeTimers();

    const first = await handler(message("m-1"), lambdaContext(5_000));

    expect(recording.of("idempotency-finish")).toHaveLength(1);
    expect(inFlight(recording)).toBe(0);
    expect(activeTimers()).toBe(timersBefore);
    // A redelivery: new receipt handle, new request id; the stored result comes back.
    expect(await handler(message("m-1"), lambdaContext(5_000))).toEqual(first);
    expect(work).toHaveBeenCalledTimes(1);
    expect(await handler(message("m-2"), lambdaContext(5_000))).toMatchObject({ id: "m-2" });
    expect(work).toHaveBeenCalledTimes(2);
  });

  it("claims with a lease of the remaining time, and never renews it", async () => {
    const recording = record(memoryAdapter());
    const handler = lambdaWithIdempotency(
      async function sendReceipt() {
        await delay(150);
      },
      {
        adapter: recording.adapter,
        key: () => "k",
      },
    );
    await handler({}, lambdaContext(2_000));
    const lease = Number(recording.of("idempotency-begin")[0]?.args[2]);
    expect(lease).toBeGreaterThan(2_900);
    expect(lease).toBeLessThanOrEqual(3_000);
    expect(recording.of("idempotency-renew")).toHaveLength(0);

    const capped = lambdaWithIdempotency(
      async function chargeCard() {
        return 1;
      },
      {
        adapter: recording.adapter,
        key: () => "c",
        lease: { max: 1_234 },
      },
    );
    await capped({}, lambdaContext(60_000));
    expect(recording.of("idempotency-begin")[1]?.args[2]).toBe("1234");
  });

  it("rejects a concurrent duplicate with a 409 and Retry-After, without running it", async () => {
    const adapter = memoryAdapter();
    const running = gate();
    const work = vi.fn(async () => {
      await running.promise;
      return "done";
    });
    const handler = lambdaWithIdempotency(work, { adapter, key: (m: Message) => m.messageId });
    const first = handler(message("m"), lambdaContext(5_000));
    await delay(10);

    const error = await rejection(handler(message("m"), lambdaContext(5_000)));
    expect(error).toBeInstanceOf(IdempotencyConflictError);
    // Not the whole lease: the first has just started, and no run was seen to take longer.
    expect(error).toMatchObject({ statusCode: 409, headers: { "Retry-After": "1" } });
    // The rejected duplicate left the first one's claim alone.
    expect(await rejection(handler(message("m"), lambdaContext(5_000)))).toBeInstanceOf(
      IdempotencyConflictError,
    );

    running.open();
    expect(await first).toBe("done");
    expect(await handler(message("m"), lambdaContext(5_000))).toBe("done");
    expect(work).toHaveBeenCalledTimes(1);
  });

  it("in wait mode, replays the duplicate in progress once it finishes", async () => {
    const adapter = memoryAdapter();
    const work = vi.fn(async () => {
      await delay(150);
      return { sent: true };
    });
    const handler = lambdaWithIdempotency(work, { adapter, key: () => "k", wait: 2_000 });
    const [a, b] = await Promise.all([
      handler({}, lambdaContext(10_000)),
      delay(10).then(() => handler({}, lambdaContext(10_000))),
    ]);
    expect(a).toEqual({ sent: true });
    expect(b).toEqual({ sent: true });
    expect(work).toHaveBeenCalledTimes(1);
  });

  it("lets a retry run just after the deadline of an invocation that never returned", async () => {
    const adapter = memoryAdapter();
    const frozenWork = gate();
    const work = vi.fn(async () => {
      await frozenWork.promise;
      return "late";
    });
    const handler = lambdaWithIdempotency(work, {
      adapter,
      key: () => "k",
      lease: { safety: 50 },
      margin: 20, // a 100 ms invocation: leave it time for Redis
    });
    const timedOut = handler({}, lambdaContext(100));
    await delay(20);
    expect(await rejection(handler({}, lambdaContext(5_000)))).toBeInstanceOf(
      IdempotencyConflictError,
    );

    await delay(200); // remaining time + safety, and no heartbeat renewed the claim
    frozenWork.open();
    expect(await handler({}, lambdaContext(5_000))).toBe("late");
    expect(work).toHaveBeenCalledTimes(2);
    await timedOut;
  });

  it("frees the key when the handler throws, rethrowing its error unchanged", async () => {
    const down = new Set<string>();
    const recording = failing(down);
    const storeErrors: unknown[] = [];
    const boom = new Error("boom");
    let calls = 0;
    const handler = lambdaWithIdempotency(
      async function sendReceipt() {
        calls++;
        if (calls === 1) throw boom;
        if (calls === 2) {
          down.add("idempotency-abandon");
          throw boom;
        }
        return "third time";
      },
      {
        adapter: recording.adapter,
        key: () => "k",
        onStoreError: (e) => storeErrors.push(e),
        margin: 20, // the 200 ms invocation below has time for Redis
      },
    );

    expect(await rejection(handler({}, lambdaContext(5_000)))).toBe(boom);
    // Released: the retry runs. Its release fails, which does not mask the error either.
    expect(await rejection(handler({}, lambdaContext(200)))).toBe(boom);
    expect(storeErrors).toHaveLength(1);
    down.clear();
    // The failed release left the claim, which ends with its lease just after the deadline.
    expect(await rejection(handler({}, lambdaContext(5_000)))).toBeInstanceOf(
      IdempotencyConflictError,
    );
    await delay(1_300);
    expect(await handler({}, lambdaContext(5_000))).toBe("third time");
  });

  it('keeps the key after a throw with onThrow: "hold"', async () => {
    const handler = lambdaWithIdempotency(
      async function chargeCard() {
        throw new Error("unknown outcome");
      },
      { adapter: memoryAdapter(), key: () => "k", onThrow: "hold" },
    );
    await rejection(handler({}, lambdaContext(5_000)));
    expect(await rejection(handler({}, lambdaContext(5_000)))).toBeInstanceOf(
      IdempotencyConflictError,
    );
  });

  it("checks keys only by default, and the payload with a fingerprint", async () => {
    const adapter = memoryAdapter();
    const plain = lambdaWithIdempotency(async (m: Message) => m.body, {
      adapter,
      key: (m) => m.messageId,
      scope: "plain",
    });
    await plain(message("m", "a"), lambdaContext(5_000));
    expect(await plain(message("m", "b"), lambdaContext(5_000))).toBe("a");

    const checked = lambdaWithIdempotency(async (m: Message) => m.body, {
      adapter,
      key: (m) => m.messageId,
      fingerprint: (m) => m.body,
      scope: "checked",
    });
    await checked(message("m", "a"), lambdaContext(5_000));
    expect(await checked(message("m", "a"), lambdaContext(5_000))).toBe("a");
    const error = await rejection(checked(message("m", "b"), lambdaContext(5_000)));
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError);
    expect(error).toMatchObject({ statusCode: 422 });
  });

  it("scopes keys by function name, and runs without a key", async () => {
    const adapter = memoryAdapter();
    const work = vi.fn(async () => "ran");
    const handler = lambdaWithIdempotency(work, {
      adapter,
      key: (event: { id?: string }) => event.id,
    });
    await handler({ id: "1" }, lambdaContext(5_000, "billing"));
    await handler({ id: "1" }, lambdaContext(5_000, "shipping"));
    await handler({ id: "1" }, lambdaContext(5_000, "shipping"));
    await handler({}, lambdaContext(5_000));
    await handler({}, lambdaContext(5_000));
    expect(work).toHaveBeenCalledTimes(4);
  });

  it("replays HTTP results with Idempotent-Replayed and without cookies; 5xx is not kept", async () => {
    const adapter = memoryAdapter();
    let status = 503;
    const work = vi.fn(async () => ({
      statusCode: status,
      headers: { "content-type": "application/json", "Set-Cookie": "session=secret" },
      cookies: ["session=secret"],
      body: `{"status":${status}}`,
    }));
    const handler = lambdaWithIdempotency(work, { adapter, key: () => "k" });

    expect(await handler({}, lambdaContext(5_000))).toMatchObject({ statusCode: 503 });
    status = 201;
    const first = await handler({}, lambdaContext(5_000));
    expect(first.headers["Set-Cookie"]).toBe("session=secret");
    const replay = await handler({}, lambdaContext(5_000));

    expect(work).toHaveBeenCalledTimes(2);
    expect(replay).toEqual({
      statusCode: 201,
      headers: { "content-type": "application/json", "Idempotent-Replayed": "true" },
      body: '{"status":201}',
    });
  });

  it("checks its options up front", () => {
    const adapter = memoryAdapter();
    const ok = async () => 1;
    expect(() => lambdaWithIdempotency(ok, { adapter, key: "k" as never })).toThrow(/key/);
    expect(() => lambdaWithIdempotency(ok, { adapter: {} as LockAdapter, key: () => "k" })).toThrow(
      /adapter/,
    );
    expect(() =>
      lambdaWithIdempotency(ok, { adapter, key: () => "k", onThrow: "store" as never }),
    ).toThrow(/onThrow/);
    expect(() =>
      lambdaWithIdempotency(ok, { adapter, key: () => "k", fingerprint: true as never }),
    ).toThrow(/fingerprint/);
  });
});

describe("headerKey: keys clients choose, on HTTP events", () => {
  const v2 = (headers: Record<string, string>, path = "/orders", caller = "alice") => ({
    rawPath: path,
    headers,
    requestContext: {
      http: { method: "POST", path },
      authorizer: { jwt: { claims: { sub: caller } } },
    },
  });
  type V2 = ReturnType<typeof v2>;
  const callerOf = (event: V2) => event.requestContext.authorizer.jwt.claims.sub;

  it("reads the header, quoted or bare, in any case; none runs without idempotency", () => {
    const key = headerKey();
    expect(key(v2({ "idempotency-key": '"order-1"' }))).toBe("order-1");
    expect(key(v2({ "Idempotency-Key": "order-1" }))).toBe("order-1");
    expect(key({ multiValueHeaders: { "idempotency-key": ["order-1"] } })).toBe("order-1");
    expect(key(v2({}))).toBeUndefined();
    expect(headerKey("X-Request-Key")(v2({ "x-request-key": "r" }))).toBe("r");
  });

  it("refuses an invalid or repeated key with a 400 error, before any request", () => {
    const key = headerKey();
    for (const headers of [
      { "idempotency-key": "k".repeat(256) },
      { "idempotency-key": "clé" },
      { "idempotency-key": '"unterminated' },
      { "idempotency-key": "a,b" }, // API Gateway (payload 2.0) joins repeated headers
    ]) {
      const error = (() => {
        try {
          key(v2(headers));
        } catch (thrown) {
          return thrown;
        }
      })();
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ statusCode: 400, expose: true, code: "INVALID_ARGUMENT" });
    }
    expect(() => key({ multiValueHeaders: { "Idempotency-Key": ["a", "b"] } })).toThrow(
      /one Idempotency-Key header, not several/,
    );
    expect(() => headerKey("not a header")).toThrow(InvalidArgumentError);
  });

  it("scopes records by caller, method and path; without a scope function it warns once", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const adapter = memoryAdapter();
    const work = vi.fn(async (event: V2) => ({ statusCode: 201, body: callerOf(event) }));
    const handler = lambdaWithIdempotency(work, { adapter, key: headerKey(), scope: callerOf });
    expect(warn).not.toHaveBeenCalled();
    const headers = { "idempotency-key": "order-1" };
    expect(await handler(v2(headers), lambdaContext(3_000))).toMatchObject({ body: "alice" });
    // Another caller presenting the same key gets its own response, not alice's.
    expect(await handler(v2(headers, "/orders", "mallory"), lambdaContext(3_000))).toMatchObject({
      body: "mallory",
    });
    await handler(v2(headers, "/refunds"), lambdaContext(3_000));
    expect(await handler(v2(headers), lambdaContext(3_000))).toMatchObject({
      body: "alice",
      headers: { "Idempotent-Replayed": "true" },
    });
    expect(work).toHaveBeenCalledTimes(3);

    lambdaWithIdempotency(work, { adapter, key: headerKey() });
    idempotencyMiddleware({ adapter, key: headerKey(), scope: "orders" });
    expect(warn).toHaveBeenCalledTimes(2);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/callers share keys; pass scope/);
    lambdaWithIdempotency(work, { adapter, key: headerKey(), allowGlobalKeys: true });
    lambdaWithIdempotency(work, { adapter, key: (event: V2) => event.rawPath });
    expect(warn).toHaveBeenCalledTimes(2);
  });
});

describe("lockMiddleware with middy", () => {
  type Event = { id: string };

  it("holds the lock while the handler runs and releases it in after", async () => {
    const recording = slow();
    const locker = createLocker({ adapter: recording.adapter });
    const timersBefore = activeTimers();
    let held: boolean | undefined;
    let lease: Lease | undefined;
    const handler = middy(async (event: Event, context: Context & { lease?: Lease }) => {
      lease = context.lease;
      held = (await locker.inspect(`order:${event.id}`)).held;
      return "ok";
    }).use(
      lockMiddleware({ locker, key: (event: Event) => `order:${event.id}`, setToContext: true }),
    );

    expect(await handler({ id: "1" }, lambdaContext(3_000))).toBe("ok");
    expect(held).toBe(true);
    expect(lease?.ttl).toBeGreaterThan(3_900);
    expect(lease?.ttl).toBeLessThanOrEqual(4_000);
    expect(recording.of("release")).toHaveLength(1);
    expect(inFlight(recording)).toBe(0);
    expect(activeTimers()).toBe(timersBefore);
    expect((await locker.inspect("order:1")).held).toBe(false);
  });

  it("throws the contention error for http-error-handler: 409 with Retry-After", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const holder = await locker.acquire("order:1", 2_500);
    const work = vi.fn(async () => "ok");
    const lock = lockMiddleware({ locker, key: (event: Event) => `order:${event.id}` });

    const bare = middy(work).use(lock);
    const error = await rejection(bare({ id: "1" }, lambdaContext(3_000)));
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ statusCode: 409, expose: true, headers: { "Retry-After": "3" } });

    const mapped = middy(work).use(httpErrors).use(lock);
    expect(await mapped({ id: "1" }, lambdaContext(3_000))).toMatchObject({
      statusCode: 409,
      headers: { "Retry-After": "3" },
    });
    expect(work).not.toHaveBeenCalled();
    // The failed invocation did not release the holder's lock.
    expect(await holder.release()).toBe(true);
  });

  it("releases on error, preserving the original error even when the release fails", async () => {
    const down = new Set<string>();
    const recording = failing(down);
    const locker = createLocker({ adapter: recording.adapter, retries: 0 });
    const boom = new Error("boom");
    const releaseErrors: unknown[] = [];
    const seen: unknown[] = [];
    const handler = middy(async () => {
      throw boom;
    })
      .onError(async (request) => void seen.push(request.error))
      .use(
        lockMiddleware({ locker, key: () => "k", onReleaseError: (e) => releaseErrors.push(e) }),
      );

    expect(await rejection(handler({}, lambdaContext(3_000)))).toBe(boom);
    expect((await locker.inspect("k")).held).toBe(false);

    down.add("release");
    expect(await rejection(handler({}, lambdaContext(3_000)))).toBe(boom);
    expect(releaseErrors).toHaveLength(1);
    expect(seen).toEqual([boom, boom]);
  });

  it("throws LockLostError from after when the lock was taken over, for the error handlers", async () => {
    const adapter = memoryAdapter();
    const locker = createLocker({ adapter });
    const seen: unknown[] = [];
    const handler = middy(async (_event: unknown, context: Context & { lease?: Lease }) => {
      if (context.lease) await takeOver(adapter, context.lease);
      return "charged";
    })
      .onError(async (request) => void seen.push(request.error))
      .use(lockMiddleware({ locker, key: () => "k", setToContext: true }));
    const error = await rejection(handler({}, lambdaContext(3_000)));
    expect(error).toBeInstanceOf(LockLostError);
    expect(seen).toEqual([error]);
  });

  it("keeps the lock when middy times the handler out: it may still be running", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const stillRunning = gate();
    const handler = middy(async () => stillRunning.promise, { timeoutEarlyInMillis: 50 }).use(
      lockMiddleware({ locker, key: () => "k", lease: { safety: 100 }, margin: 20 }),
    );
    const error = await rejection(handler({}, lambdaContext(150)));
    expect(error).toMatchObject({ name: "TimeoutError" });
    expect((await locker.inspect("k")).held).toBe(true);
    // The lease (150 ms left + 100 ms of safety) ends about 150 ms after middy's timeout at 100.
    await delay(250);
    expect((await locker.inspect("k")).held).toBe(false);
    stillRunning.open();
  });
});

describe("lockMiddleware with middy's early timeout and http-error-handler", () => {
  type Order = "before" | "after";
  /** A middy handler under the lock, with http-error-handler used before or after it. */
  function lockedHandler(
    locker: ReturnType<typeof createLocker>,
    order: Order,
    handler: () => Promise<unknown>,
  ) {
    const lock = lockMiddleware({ locker, key: () => "account:1", margin: 20 });
    const errors = httpErrorHandler({ logger: false });
    return middy(handler, { timeoutEarlyInMillis: 50 }).use(
      order === "before" ? [errors, lock] : [lock, errors],
    );
  }

  it.each<Order>(["before", "after"])(
    "keeps the lock while the timed-out handler still runs (http-error-handler %s)",
    async (order) => {
      const locker = createLocker({ adapter: memoryAdapter() });
      const stillRunning = gate();
      let running = 0;
      let overlapped = false;
      const handler = lockedHandler(locker, order, async () => {
        running++;
        if (running > 1) overlapped = true;
        await stillRunning.promise;
        running--;
        return { statusCode: 200 };
      });
      // middy answers 500 at the deadline; the handler goes on.
      expect(await handler({}, lambdaContext(150))).toMatchObject({ statusCode: 500 });
      expect((await locker.inspect("account:1")).held).toBe(true);
      expect(await handler({}, lambdaContext(3_000))).toMatchObject({ statusCode: 409 });
      expect(overlapped).toBe(false);
      stillRunning.open();
    },
  );

  it.each<Order>(["before", "after"])(
    "releases the lock on a TimeoutError of the handler's own (http-error-handler %s)",
    async (order) => {
      const locker = createLocker({ adapter: memoryAdapter() });
      const handler = lockedHandler(locker, order, async () => {
        const signal = AbortSignal.timeout(1);
        await delay(20);
        throw signal.reason; // what fetch rejects with when its AbortSignal.timeout fires
      });
      expect(await handler({}, lambdaContext(3_000))).toMatchObject({ statusCode: 500 });
      expect((await locker.inspect("account:1")).held).toBe(false);
    },
  );

  it("releases the lock when a handler's error only looks like middy's (no middy mark)", async () => {
    const locker = createLocker({ adapter: memoryAdapter() });
    const handler = middy(async () => {
      throw Object.assign(new Error("upstream timed out"), { name: "TimeoutError" });
    }).use(lockMiddleware({ locker, key: () => "account:1" }));
    expect(await rejection(handler({}, lambdaContext(3_000)))).toMatchObject({
      name: "TimeoutError",
    });
    expect((await locker.inspect("account:1")).held).toBe(false);
  });
});

describe("idempotencyMiddleware with middy", () => {
  type Event = { headers: Record<string, string | undefined>; body: string };
  const request = (key: string | undefined, body = '{"amount":5}'): Event => ({
    headers: { "idempotency-key": key },
    body,
  });

  function app(options: { adapter?: LockAdapter; wait?: number } = {}) {
    const adapter = options.adapter ?? memoryAdapter();
    const work = vi.fn(async (event: Event) => ({
      statusCode: 201,
      headers: { "content-type": "application/json" },
      body: event.body,
    }));
    const outerAfter = vi.fn(async () => {});
    const handler = middy(work)
      .use(httpErrors)
      .after(outerAfter)
      .use(
        idempotencyMiddleware({
          adapter,
          key: (event: Event) => event.headers["idempotency-key"],
          fingerprint: (event: Event) => event.body,
          wait: options.wait,
        }),
      );
    return { handler, work, outerAfter };
  }

  it("short-circuits a replay from before: the handler and the other afters do not run", async () => {
    const recording = slow();
    const { handler, work, outerAfter } = app({ adapter: recording.adapter });
    const timersBefore = activeTimers();
    const first = await handler(request("k-1"), lambdaContext(3_000));
    expect(first).toMatchObject({ statusCode: 201, body: '{"amount":5}' });
    expect(outerAfter).toHaveBeenCalledTimes(1);
    // Stored, and the store awaited, before the invocation ended.
    expect(recording.of("idempotency-finish")).toHaveLength(1);
    expect(inFlight(recording)).toBe(0);
    expect(activeTimers()).toBe(timersBefore);

    const replay = await handler(request("k-1"), lambdaContext(3_000));
    expect(replay).toEqual({
      statusCode: 201,
      headers: { "content-type": "application/json", "Idempotent-Replayed": "true" },
      body: '{"amount":5}',
    });
    expect(work).toHaveBeenCalledTimes(1);
    expect(outerAfter).toHaveBeenCalledTimes(1);
  });

  it("replays a stored undefined response too (earlyResponse)", async () => {
    const work = vi.fn(async () => undefined);
    const handler = middy(work).use(
      idempotencyMiddleware({ adapter: memoryAdapter(), key: () => "k" }),
    );
    expect(await handler({}, lambdaContext(3_000))).toBeUndefined();
    expect(await handler({}, lambdaContext(3_000))).toBeUndefined();
    expect(work).toHaveBeenCalledTimes(1);
  });

  it("answers a duplicate in progress with 409 + Retry-After, leaving the owner's claim", async () => {
    const adapter = memoryAdapter();
    const running = gate();
    const work = vi.fn(async () => {
      await running.promise;
      return { statusCode: 200, body: "done" };
    });
    const handler = middy(work).use(idempotencyMiddleware({ adapter, key: () => "k" }));
    const first = handler({}, lambdaContext(4_000));
    await delay(10);

    const error = await rejection(handler({}, lambdaContext(4_000)));
    expect(error).toBeInstanceOf(IdempotencyConflictError);
    // Not the whole lease: the first has just started, and no run was seen to take longer.
    expect(error).toMatchObject({ statusCode: 409, expose: true, headers: { "Retry-After": "1" } });
    const mapped = middy(work)
      .use(httpErrors)
      .use(idempotencyMiddleware({ adapter, key: () => "k" }));
    expect(await mapped({}, lambdaContext(4_000))).toMatchObject({ statusCode: 409 });

    running.open();
    expect(await first).toEqual({ statusCode: 200, body: "done" });
    expect(await handler({}, lambdaContext(4_000))).toMatchObject({ body: "done" });
    expect(work).toHaveBeenCalledTimes(1);
  });

  it("answers a key reused for another request with 422", async () => {
    const { handler } = app();
    await handler(request("k"), lambdaContext(3_000));
    expect(await handler(request("k", '{"amount":6}'), lambdaContext(3_000))).toMatchObject({
      statusCode: 422,
    });
  });

  it("frees the key on error and preserves the error, even when freeing fails", async () => {
    const down = new Set<string>();
    const recording = failing(down);
    const boom = new Error("boom");
    const storeErrors: unknown[] = [];
    const work = vi.fn(async () => {
      throw boom;
    });
    const handler = middy(work).use(
      idempotencyMiddleware({
        adapter: recording.adapter,
        key: () => "k",
        onStoreError: (e) => storeErrors.push(e),
      }),
    );

    expect(await rejection(handler({}, lambdaContext(3_000)))).toBe(boom);
    expect(recording.of("idempotency-abandon")).toHaveLength(1);
    expect(await rejection(handler({}, lambdaContext(3_000)))).toBe(boom);
    expect(work).toHaveBeenCalledTimes(2);

    down.add("idempotency-abandon");
    expect(await rejection(handler({}, lambdaContext(3_000)))).toBe(boom);
    expect(storeErrors).toHaveLength(1);
    expect(inFlight(recording)).toBe(0);
  });

  it("keeps the claim when middy times the handler out", async () => {
    const adapter = memoryAdapter();
    const stillRunning = gate();
    const handler = middy(async () => stillRunning.promise, { timeoutEarlyInMillis: 50 }).use(
      idempotencyMiddleware({ adapter, key: () => "k", margin: 20 }),
    );
    expect(await rejection(handler({}, lambdaContext(150)))).toMatchObject({
      name: "TimeoutError",
    });
    const retry = middy(async () => "retried").use(
      idempotencyMiddleware({ adapter, key: () => "k" }),
    );
    expect(await rejection(retry({}, lambdaContext(3_000)))).toBeInstanceOf(
      IdempotencyConflictError,
    );
    stillRunning.open();
  });

  it("keeps each invocation's claim to itself when middy's internal is shared", async () => {
    const adapter = memoryAdapter();
    const internal = {};
    const running = gate();
    const handler = middy(
      async (event: { key: string }) => {
        if (event.key === "slow") await running.promise;
        return event.key;
      },
      { internal },
    ).use(idempotencyMiddleware({ adapter, key: (event: { key: string }) => event.key }));

    const slow = handler({ key: "slow" }, lambdaContext(3_000));
    await delay(10);
    expect(await handler({ key: "fast" }, lambdaContext(3_000))).toBe("fast");
    const duplicate = await rejection(handler({ key: "slow" }, lambdaContext(3_000)));
    expect(duplicate).toBeInstanceOf(IdempotencyConflictError);
    running.open();
    expect(await slow).toBe("slow");
  });
});
