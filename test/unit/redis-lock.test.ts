/**
 * The RedisLock component on `memory://<name>` connections: lifecycle, the pip-services lock
 * behaviours, contention between instances, the retry interval and retries, argument checks and
 * pip-services 3 style callbacks.
 */

import {
  createLocker,
  type LockAdapter,
  type LockCallback,
  type LockContext,
  LockError,
  LockNotOpenedError,
  LockTimeoutError,
  type LockTransport,
  RedisLock,
} from "edgelock";
import { memoryAdapter } from "edgelock/memory";
import { afterEach, describe, expect, it } from "vitest";
import { delay, type Recording, record, rejection } from "./helpers.js";

let counter = 0;

/** A fresh in-process store name, so tests never share locks. */
function uniqueUri(): string {
  counter++;
  return `memory://redis-lock-${process.pid}-${counter}-${Date.now()}`;
}

/** Every lock opened by a test, closed after it. */
const opened: RedisLock[] = [];

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((lock) => lock.close("cleanup")));
});

/** An opened RedisLock on `uri` (a fresh store by default). */
async function openLock(uri = uniqueUri(), options?: Record<string, unknown>): Promise<RedisLock> {
  const lock = new RedisLock();
  lock.configure({ connection: { uri }, ...(options && { options }) });
  await lock.open("trace-open");
  opened.push(lock);
  return lock;
}

/** A transport serving `redis:` with `adapter`, counting connects and closes. */
function transportOf(adapter: LockAdapter) {
  const counts = { connect: 0, close: 0 };
  const transport: LockTransport = {
    protocols: ["redis:"],
    connect: async () => {
      counts.connect++;
      return {
        adapter,
        ping: async () => {},
        close: async () => {
          counts.close++;
        },
      };
    },
  };
  return { transport, counts };
}

/** An opened RedisLock whose every script call is recorded. */
async function recordedLock(
  options?: Record<string, unknown>,
  inner: LockAdapter = memoryAdapter(),
): Promise<{ lock: RedisLock; recording: Recording }> {
  const recording = record(inner);
  const lock = new RedisLock({ transports: [transportOf(recording.adapter).transport] });
  lock.configure({ connection: { host: "recorded" }, ...(options && { options }) });
  await lock.open("trace-open");
  opened.push(lock);
  return { lock, recording };
}

/** Runs a pip-services 3 style call and resolves with what its callback received. */
function viaCallback<T>(
  call: (callback: LockCallback<T>) => unknown,
): Promise<{ error: unknown; result: T | undefined; args: number }> {
  return new Promise((resolve) => {
    call((...args: [unknown, T?]) => {
      resolve({ error: args[0], result: args[1], args: args.length });
    });
  });
}

describe("lifecycle", () => {
  const lockMethods: [name: string, call: (lock: RedisLock, context: LockContext) => unknown][] = [
    ["tryAcquireLock", (lock, context) => lock.tryAcquireLock(context, "key", 1_000)],
    ["acquireLock", (lock, context) => lock.acquireLock(context, "key", 1_000, 100)],
    ["releaseLock", (lock, context) => lock.releaseLock(context, "key")],
  ];

  for (const [name, call] of lockMethods) {
    it(`${name} fails with NOT_OPENED before open`, async () => {
      const lock = new RedisLock();
      lock.configure({ connection: { uri: uniqueUri() } });
      const error = await rejection(Promise.resolve(call(lock, "trace-before")));
      expect(error).toBeInstanceOf(LockNotOpenedError);
      expect((error as LockError).code).toBe("NOT_OPENED");
      expect((error as LockError).traceId).toBe("trace-before");
    });

    it(`${name} fails with NOT_OPENED after close`, async () => {
      const lock = await openLock();
      expect(await lock.tryAcquireLock("t", "key", 1_000)).toBe(true);
      await lock.close("t");
      const error = await rejection(Promise.resolve(call(lock, { getTraceId: () => "after" })));
      expect(error).toBeInstanceOf(LockNotOpenedError);
      expect((error as LockError).code).toBe("NOT_OPENED");
      expect((error as LockError).traceId).toBe("after");
    });
  }

  it("fails with NOT_OPENED before open even when nothing is configured", async () => {
    const lock = new RedisLock();
    await expect(lock.tryAcquireLock(undefined, "key", 1_000)).rejects.toMatchObject({
      code: "NOT_OPENED",
    });
  });

  it("reports isOpen through open and close, and can be opened again", async () => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri: uniqueUri() } });
    expect(lock.isOpen()).toBe(false);
    await lock.open("t");
    expect(lock.isOpen()).toBe(true);
    await lock.close("t");
    expect(lock.isOpen()).toBe(false);
    await lock.close("t");
    expect(lock.isOpen()).toBe(false);
    await lock.open("t");
    expect(lock.isOpen()).toBe(true);
    expect(await lock.tryAcquireLock("t", "again", 1_000)).toBe(true);
    await lock.close("t");
  });

  it("connects once when opened twice, in sequence or concurrently, and closes once", async () => {
    const { transport, counts } = transportOf(memoryAdapter());
    const lock = new RedisLock({ transports: [transport] });
    lock.configure({ connection: { host: "h" } });
    await Promise.all([lock.open("a"), lock.open("b")]);
    await lock.open("c");
    expect(lock.isOpen()).toBe(true);
    expect(counts).toEqual({ connect: 1, close: 0 });
    expect(await lock.tryAcquireLock("t", "k", 1_000)).toBe(true);
    expect(await lock.tryAcquireLock("t", "k", 1_000)).toBe(false);
    await lock.close("t");
    await lock.close("t");
    expect(counts).toEqual({ connect: 1, close: 1 });
  });

  it("stays closed when the server does not answer the ping, and closes that connection", async () => {
    let closed = 0;
    const lock = new RedisLock({
      transports: [
        {
          protocols: ["redis:"],
          connect: async () => ({
            adapter: memoryAdapter(),
            ping: async () => {
              throw new Error("no PONG");
            },
            close: async () => {
              closed++;
            },
          }),
        },
      ],
    });
    lock.configure({ connection: { host: "h", port: 1 } });
    const error = await rejection(lock.open("trace-ping"));
    expect((error as LockError).code).toBe("LOCK_UNAVAILABLE");
    expect((error as LockError).traceId).toBe("trace-ping");
    expect(lock.isOpen()).toBe(false);
    expect(closed).toBe(1);
  });
});

describe("locking", () => {
  it("answers false to a second tryAcquireLock on a held key", async () => {
    const lock = await openLock();
    expect(await lock.tryAcquireLock("t", "key1", 3_000)).toBe(true);
    expect(await lock.tryAcquireLock("t", "key1", 3_000)).toBe(false);
    expect(await lock.tryAcquireLock("t", "key2", 3_000)).toBe(true);
  });

  it("acquires again after releaseLock", async () => {
    const lock = await openLock();
    expect(await lock.tryAcquireLock("t", "key1", 3_000)).toBe(true);
    await lock.releaseLock("t", "key1");
    expect(await lock.tryAcquireLock("t", "key1", 3_000)).toBe(true);
    await lock.releaseLock("t", "key1");
    await lock.acquireLock("t", "key1", 3_000, 0);
    expect(await lock.tryAcquireLock("t", "key1", 3_000)).toBe(false);
  });

  it("makes two instances on the same uri contend", async () => {
    const uri = uniqueUri();
    const a = await openLock(uri);
    const b = await openLock(uri);
    expect(await a.tryAcquireLock("t", "shared", 3_000)).toBe(true);
    expect(await b.tryAcquireLock("t", "shared", 3_000)).toBe(false);
    await a.releaseLock("t", "shared");
    expect(await b.tryAcquireLock("t", "shared", 3_000)).toBe(true);
    expect(await a.tryAcquireLock("t", "shared", 3_000)).toBe(false);
  });

  it("keeps instances on different uris apart", async () => {
    const a = await openLock();
    const b = await openLock();
    expect(await a.tryAcquireLock("t", "shared", 3_000)).toBe(true);
    expect(await b.tryAcquireLock("t", "shared", 3_000)).toBe(true);
  });

  it("makes releaseLock by the non-owner instance a no-op: the owner's lock survives", async () => {
    const uri = uniqueUri();
    const owner = await openLock(uri);
    const other = await openLock(uri);
    expect(await owner.tryAcquireLock("t", "owned", 5_000)).toBe(true);
    await other.releaseLock("t", "owned");
    expect(await other.tryAcquireLock("t", "owned", 5_000)).toBe(false);
    expect(await owner.tryAcquireLock("t", "owned", 5_000)).toBe(false);
    // The non-owner's failed attempt left it nothing to release either.
    await other.releaseLock("t", "owned");
    expect(await other.tryAcquireLock("t", "owned", 5_000)).toBe(false);
    await owner.releaseLock("t", "owned");
    expect(await other.tryAcquireLock("t", "owned", 5_000)).toBe(true);
  });

  it("makes releaseLock of an unknown key a no-op without a request", async () => {
    const { lock, recording } = await recordedLock();
    await expect(lock.releaseLock("t", "never-acquired")).resolves.toBeUndefined();
    expect(recording.calls).toEqual([]);
  });

  it("does not release a lock reacquired by another instance after this one's expired", async () => {
    const uri = uniqueUri();
    const a = await openLock(uri);
    const b = await openLock(uri);
    expect(await a.tryAcquireLock("t", "expiring", 30)).toBe(true);
    await delay(60);
    expect(await b.tryAcquireLock("t", "expiring", 5_000)).toBe(true);
    await a.releaseLock("t", "expiring");
    expect(await a.tryAcquireLock("t", "expiring", 5_000)).toBe(false);
  });

  it("lets a lock expire after its ttl", async () => {
    const uri = uniqueUri();
    const a = await openLock(uri);
    const b = await openLock(uri);
    expect(await a.tryAcquireLock("t", "ttl", 80)).toBe(true);
    await delay(20);
    expect(await b.tryAcquireLock("t", "ttl", 1_000)).toBe(false);
    await delay(100);
    expect(await b.tryAcquireLock("t", "ttl", 1_000)).toBe(true);
  });

  it("makes acquireLock wait for a lock that another instance releases", async () => {
    const uri = uniqueUri();
    const holder = await openLock(uri);
    const waiter = await openLock(uri, { retry_timeout: 20 });
    expect(await holder.tryAcquireLock("t", "wait", 10_000)).toBe(true);
    const started = performance.now();
    const waiting = waiter.acquireLock("t", "wait", 10_000, 5_000);
    await delay(120);
    await holder.releaseLock("t", "wait");
    await waiting;
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(110);
    expect(waited).toBeLessThan(1_000);
    expect(await holder.tryAcquireLock("t", "wait", 10_000)).toBe(false);
  });

  it("makes acquireLock wait for a lock that expires", async () => {
    const uri = uniqueUri();
    const holder = await openLock(uri);
    const waiter = await openLock(uri, { retry_timeout: 20 });
    expect(await holder.tryAcquireLock("t", "expire-wait", 100)).toBe(true);
    await waiter.acquireLock("t", "expire-wait", 5_000, 2_000);
    expect(await holder.tryAcquireLock("t", "expire-wait", 100)).toBe(false);
  });

  const contexts: [name: string, context: LockContext][] = [
    ["a string context", "trace-timeout"],
    ["a { getTraceId() } context", { getTraceId: () => "trace-timeout" }],
  ];
  for (const [name, context] of contexts) {
    it(`fails acquireLock with LOCK_TIMEOUT, the key and the trace id from ${name}`, async () => {
      const uri = uniqueUri();
      const holder = await openLock(uri);
      const waiter = await openLock(uri, { retry_timeout: 30 });
      expect(await holder.tryAcquireLock("t", "contended", 10_000)).toBe(true);
      const started = performance.now();
      const error = await rejection(waiter.acquireLock(context, "contended", 1_000, 150));
      const waited = performance.now() - started;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error).toBeInstanceOf(LockError);
      expect((error as LockError).code).toBe("LOCK_TIMEOUT");
      expect((error as LockError).details.key).toBe("contended");
      expect((error as LockError).traceId).toBe("trace-timeout");
      expect(waited).toBeGreaterThanOrEqual(145);
      expect(waited).toBeLessThan(1_000);
      // The holder still holds it and the waiter got nothing.
      expect(await holder.tryAcquireLock("t", "contended", 1_000)).toBe(false);
    });
  }

  it("makes close release every lock the instance holds", async () => {
    const uri = uniqueUri();
    const a = await openLock(uri);
    const b = await openLock(uri);
    for (const key of ["c1", "c2", "c3"]) {
      expect(await a.tryAcquireLock("t", key, 60_000)).toBe(true);
    }
    await a.releaseLock("t", "c3");
    expect(await b.tryAcquireLock("t", "c3", 60_000)).toBe(true);
    await a.close("t");
    expect(await b.tryAcquireLock("t", "c1", 60_000)).toBe(true);
    expect(await b.tryAcquireLock("t", "c2", 60_000)).toBe(true);
  });

  it("makes close leave other instances' locks alone", async () => {
    const uri = uniqueUri();
    const a = await openLock(uri);
    const b = await openLock(uri);
    expect(await b.tryAcquireLock("t", "b-owned", 60_000)).toBe(true);
    await a.close("t");
    const c = await openLock(uri);
    expect(await c.tryAcquireLock("t", "b-owned", 60_000)).toBe(false);
  });
});

describe("options.retry_timeout", () => {
  /** Acquire attempts a waiter makes on a held key within `timeout` ms. */
  async function attempts(retryTimeout: number, timeout: number): Promise<number> {
    const inner = memoryAdapter();
    const holder = await createLocker({ adapter: inner }).tryAcquire("busy", 10_000);
    expect(holder).not.toBeNull();
    const { lock, recording } = await recordedLock({ retry_timeout: retryTimeout }, inner);
    const error = await rejection(lock.acquireLock("t", "busy", 1_000, timeout));
    expect((error as LockError).code).toBe("LOCK_TIMEOUT");
    expect((error as LockTimeoutError).attempts).toBe(recording.of("acquire").length);
    await holder?.release();
    return recording.of("acquire").length;
  }

  it("drives the retry interval", async () => {
    const [fast, slow] = await Promise.all([attempts(50, 300), attempts(150, 300)]);
    // 1 + 300/50 = 7 attempts at most; 1 + 300/150 = 3.
    expect(fast).toBeGreaterThanOrEqual(5);
    expect(fast).toBeLessThanOrEqual(8);
    expect(slow).toBeGreaterThanOrEqual(2);
    expect(slow).toBeLessThanOrEqual(3);
  });

  it("accepts a ConfigParams-style string value", async () => {
    expect(await attempts(Number("40"), 200)).toBeGreaterThanOrEqual(4);
  });
});

describe("options.retries", () => {
  /** A lock whose adapter fails the first `failures` acquire requests, then works. */
  async function flaky(failures: number, retries: number | undefined) {
    const inner = memoryAdapter();
    let acquires = 0;
    const adapter: LockAdapter = {
      name: "flaky",
      evalScript: async (script, keys, args) => {
        if (script.name === "acquire" && ++acquires <= failures) {
          throw new Error(`transient failure ${acquires}`);
        }
        return inner.evalScript(script, keys, args);
      },
    };
    const lock = new RedisLock({ transports: [transportOf(adapter).transport] });
    lock.configure({
      connection: { host: "flaky" },
      ...(retries !== undefined && { options: { retries } }),
    });
    await lock.open("t");
    opened.push(lock);
    return { lock, acquires: () => acquires };
  }

  const cases: [failures: number, retries: number][] = [
    [1, 1],
    [2, 2],
    [2, 5],
    [0, 0],
  ];
  for (const [failures, retries] of cases) {
    it(`succeeds after ${failures} failures with retries ${retries}`, async () => {
      const { lock, acquires } = await flaky(failures, retries);
      expect(await lock.tryAcquireLock("t", "k", 1_000)).toBe(true);
      expect(acquires()).toBe(failures + 1);
    });
  }

  const failing: [failures: number, retries: number][] = [
    [1, 0],
    [2, 1],
    [3, 2],
  ];
  for (const [failures, retries] of failing) {
    it(`fails with LOCK_UNAVAILABLE after ${failures} failures with retries ${retries}`, async () => {
      const { lock, acquires } = await flaky(failures, retries);
      const error = await rejection(lock.tryAcquireLock("trace-flaky", "k", 1_000));
      expect((error as LockError).code).toBe("LOCK_UNAVAILABLE");
      expect((error as LockError).traceId).toBe("trace-flaky");
      expect(acquires()).toBe(retries + 1);
    });
  }

  it("retries 3 times by default", async () => {
    const ok = await flaky(3, undefined);
    expect(await ok.lock.tryAcquireLock("t", "k", 1_000)).toBe(true);
    const failed = await flaky(4, undefined);
    await expect(failed.lock.tryAcquireLock("t", "k", 1_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    expect(failed.acquires()).toBe(4);
  });
});

describe("arguments", () => {
  const bad: [name: string, call: (lock: RedisLock) => Promise<unknown>][] = [
    ["an empty key", (lock) => lock.tryAcquireLock("t", "", 1_000)],
    ["a non-string key", (lock) => lock.tryAcquireLock("t", 42 as unknown as string, 1_000)],
    ["a key that is too long", (lock) => lock.tryAcquireLock("t", "k".repeat(1_025), 1_000)],
    ["a ttl of 0", (lock) => lock.tryAcquireLock("t", "k", 0)],
    ["a negative ttl", (lock) => lock.tryAcquireLock("t", "k", -5)],
    ["a fractional ttl", (lock) => lock.tryAcquireLock("t", "k", 1.5)],
    ["a NaN ttl", (lock) => lock.tryAcquireLock("t", "k", Number.NaN)],
    ["a string ttl", (lock) => lock.tryAcquireLock("t", "k", "1000" as unknown as number)],
    ["a key with a lone surrogate", (lock) => lock.tryAcquireLock("t", "key1\uD800", 1_000)],
    ["acquireLock with an empty key", (lock) => lock.acquireLock("t", "", 1_000, 100)],
    [
      "acquireLock with a key with a lone surrogate",
      (lock) => lock.acquireLock("t", "\uDC00key1", 1_000, 100),
    ],
    ["acquireLock with a ttl of 0", (lock) => lock.acquireLock("t", "k", 0, 100)],
    ["acquireLock with a negative timeout", (lock) => lock.acquireLock("t", "k", 1_000, -1)],
    ["acquireLock with a fractional timeout", (lock) => lock.acquireLock("t", "k", 1_000, 1.5)],
    [
      "acquireLock with a missing timeout",
      (lock) => lock.acquireLock("t", "k", 1_000, undefined as unknown as number),
    ],
  ];
  for (const [name, call] of bad) {
    it(`rejects ${name} with INVALID_ARGUMENT before any request`, async () => {
      const { lock, recording } = await recordedLock();
      const error = await rejection(call(lock));
      expect(error).toBeInstanceOf(LockError);
      expect((error as LockError).code).toBe("INVALID_ARGUMENT");
      expect((error as LockError).traceId).toBe("t");
      expect(recording.calls).toEqual([]);
    });
  }
});

describe("pip-services 3 style callbacks", () => {
  it("report (err, result) for open, tryAcquireLock, acquireLock, releaseLock and close", async () => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri: uniqueUri() } });
    opened.push(lock);

    const open = await viaCallback<void>((cb) => lock.open("t", cb));
    expect(open.error).toBeNull();
    expect(open.result).toBeUndefined();
    expect(lock.isOpen()).toBe(true);

    const openAgain = await viaCallback<void>((cb) => lock.open("t", cb));
    expect(openAgain.error).toBeNull();

    const first = await viaCallback<boolean>((cb) => lock.tryAcquireLock("t", "cb", 1_000, cb));
    expect(first).toMatchObject({ error: null, result: true });
    const second = await viaCallback<boolean>((cb) => lock.tryAcquireLock("t", "cb", 1_000, cb));
    expect(second).toMatchObject({ error: null, result: false });

    const release = await viaCallback<void>((cb) => lock.releaseLock("t", "cb", cb));
    expect(release.error).toBeNull();
    expect(release.result).toBeUndefined();

    const acquire = await viaCallback<void>((cb) => lock.acquireLock("t", "cb", 1_000, 100, cb));
    expect(acquire.error).toBeNull();
    expect(acquire.result).toBeUndefined();

    const timedOut = await viaCallback<void>((cb) => lock.acquireLock("t", "cb", 1_000, 50, cb));
    expect(timedOut.error).toBeInstanceOf(LockTimeoutError);
    expect((timedOut.error as LockError).code).toBe("LOCK_TIMEOUT");
    expect((timedOut.error as LockError).traceId).toBe("t");
    expect(timedOut.result).toBeUndefined();

    const close = await viaCallback<void>((cb) => lock.close("t", cb));
    expect(close.error).toBeNull();
    expect(lock.isOpen()).toBe(false);
  });

  it("report errors to the callback without an unhandled rejection of the returned promise", async () => {
    const lock = new RedisLock();
    const notOpened = await viaCallback<boolean>((cb) => {
      // pip-services 3 callers ignore the returned promise.
      lock.tryAcquireLock("trace-cb", "k", 1_000, cb);
    });
    expect((notOpened.error as LockError).code).toBe("NOT_OPENED");
    expect((notOpened.error as LockError).traceId).toBe("trace-cb");
    expect(notOpened.result).toBeUndefined();

    const badConfig = await viaCallback<void>((cb) => {
      lock.open("trace-cb", cb);
    });
    expect((badConfig.error as LockError).code).toBe("INVALID_CONFIG");

    const badArgument = new RedisLock();
    badArgument.configure({ connection: { uri: uniqueUri() } });
    await badArgument.open("t");
    opened.push(badArgument);
    const invalid = await viaCallback<void>((cb) => {
      badArgument.acquireLock("t", "k", 1_000, -1, cb);
    });
    expect((invalid.error as LockError).code).toBe("INVALID_ARGUMENT");
    // Give a stray unhandled rejection the chance to surface in this test.
    await delay(10);
  });
});
