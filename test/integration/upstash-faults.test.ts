/**
 * What the REST transport must get right beyond the shared contract: lost responses, error
 * pages, timeouts and bad credentials classified as "unavailable" (never as "held"), one HTTP
 * request per operation, no NOSCRIPT confusion, tokens kept out of errors, and bounded load from
 * waiters. A fault proxy sits between the real `@upstash/redis` client and the gateway.
 */

import { createLocker, type Locker, LockUnavailableError } from "edgelock";
import { type RunningGateway, startGateway } from "edgelock/gateway";
import { upstashAdapter } from "edgelock/upstash";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type HttpFaultProxy, startHttpFaultProxy } from "../support/http-fault-proxy.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { type UpstashSettings, upstashClient } from "../support/upstash-client.js";

const TOKEN = "faults-token";

let server: RedisProcess;
let direct: IORedis;
let gateway: RunningGateway;
let proxy: HttpFaultProxy;
let prefix = "";

/** A locker whose client talks to the gateway through the fault proxy. */
function lockerVia(settings: UpstashSettings = {}, retries = 2) {
  const client = upstashClient(proxy.url, TOKEN, settings);
  return createLocker({
    adapter: upstashAdapter(client, { requestTimeout: 300 }),
    prefix,
    retries,
  });
}

/** Takes and releases a lock once, so the scripts are cached and EVALSHA succeeds. */
async function warmUp(locker: Locker): Promise<void> {
  const lease = await locker.tryAcquire("warm-up", 1_000);
  await lease?.extend(1_000);
  await lease?.release();
  await locker.inspect("warm-up");
  proxy.requests.length = 0;
}

/**
 * Waits until the proxy has seen `count` requests and finished with them (the cleanup after a
 * failure runs behind; a request still on its way to Redis could meet what the test does next).
 */
async function requestsSeen(count: number): Promise<void> {
  const finished = () => proxy.requests.length >= count && proxy.requests.every((r) => r.done);
  for (let i = 0; i < 100 && !finished(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(proxy.requests.length).toBe(count);
  expect(proxy.requests.every((request) => request.done)).toBe(true);
}

/** The commands the proxy forwarded (one entry per HTTP request). */
const sent = () => proxy.requests.map(({ path, body }) => ({ path, command: firstWord(body) }));
const firstWord = (body: unknown) => (Array.isArray(body) ? String(body[0]) : typeof body);

beforeAll(async () => {
  server = await startRedisServer();
  direct = new IORedis(server.url);
  gateway = await startGateway({ redis: server.url, tokens: [TOKEN], port: 0 });
  proxy = await startHttpFaultProxy(gateway.url);
});
afterAll(async () => {
  await proxy?.close();
  await gateway?.close();
  direct?.disconnect();
  await server?.stop();
});
beforeEach(() => {
  prefix = `f${Math.floor(Math.random() * 1e9)}`;
  proxy.requests.length = 0;
});

describe("upstash adapter under faults", () => {
  it("sends exactly one HTTP request per tryAcquire, extend and release", async () => {
    const locker = lockerVia(); // the client's defaults: auto-pipelining on
    await warmUp(locker);
    const lease = await locker.tryAcquire("count", 5_000);
    expect(sent()).toEqual([{ path: "/", command: "evalsha" }]);
    await lease?.extend(6_000);
    await lease?.release();
    expect(sent()).toHaveLength(3);
    expect(sent().every(({ path, command }) => path === "/" && command === "evalsha")).toBe(true);
  });

  it("ends up holding the lock, with one fence, when an acquire's response is lost", async () => {
    for (const settings of [{}, { retry: { retries: 0 } }]) {
      const locker = lockerVia(settings);
      await warmUp(locker);
      const key = `lost-${JSON.stringify(settings)}`;
      proxy.inject({ kind: "drop-response" });
      const lease = await locker.tryAcquire(key, 10_000);
      expect(lease).not.toBeNull();
      // The dropped request did acquire; the retry with the same token confirmed it.
      expect(sent().filter(({ command }) => command === "evalsha").length).toBe(2);
      const state = await locker.inspect(key, lease?.token);
      expect(state).toMatchObject({ held: true, mine: true, fence: lease?.fence });
      expect(await lockerVia().tryAcquire(key, 10_000)).toBeNull(); // exactly one holder
      expect(await lease?.release()).toBe(true);
    }
  });

  it("sends a failed request once, leaving the client's own retries to the application", async () => {
    const client = upstashClient(proxy.url, TOKEN); // the client's defaults: 5 retries
    const locker = createLocker({ adapter: upstashAdapter(client), prefix, retries: 0 });
    await warmUp(locker);
    proxy.inject({ kind: "drop-response" }); // applied, but the client never hears back
    await expect(locker.tryAcquire("once", 5_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    await requestsSeen(2); // the acquire, sent once, and the release that undoes it
    expect(await locker.inspect("once")).toMatchObject({ held: false });
    proxy.requests.length = 0;
    proxy.inject({ kind: "drop-response" });
    expect(await client.set(`${prefix}:app`, "v")).toBe("OK"); // the client retried it itself
    expect(proxy.requests).toHaveLength(2);
  });

  it("classifies 5xx, HTML error pages and empty bodies as unavailable, never as held", async () => {
    const locker = lockerVia({ retry: { retries: 0 } });
    await warmUp(locker);
    const pages = [
      { status: 500, body: "<html><body>Internal Server Error</body></html>" },
      { status: 502, body: "" },
      { status: 503, body: '{"error":"backend down"}', contentType: "application/json" },
      { status: 200, body: "<html>captive portal</html>" },
    ];
    for (const page of pages) {
      proxy.requests.length = 0;
      proxy.inject({ kind: "respond", ...page }, 6); // 3 attempts, then 3 of the cleanup release
      const error = await locker.tryAcquire("pages", 5_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "acquire" });
      await requestsSeen(6);
    }
    const after = await locker.tryAcquire("pages", 5_000);
    expect(after).not.toBeNull(); // nothing was left locked by the failed attempts
    await after?.release();
  });

  it("times out a hanging request and reports it as unavailable", async () => {
    const locker = lockerVia({}, 1);
    await warmUp(locker);
    proxy.inject({ kind: "hang" }, 2);
    const started = performance.now();
    const error = await locker.tryAcquire("hang", 5_000).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE" });
    expect(performance.now() - started).toBeLessThan(3_000);
    expect((error as Error).message).toMatch(/timeout|aborted/i);
  });

  it("reports a bad REST token clearly", async () => {
    const client = upstashClient(gateway.url, "wrong-token");
    const locker = createLocker({ adapter: upstashAdapter(client), prefix, retries: 0 });
    const error = await locker.tryAcquire("auth", 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect((error as Error).message).toContain("WRONGPASS");
    expect((error as Error).message).not.toContain("wrong-token");
  });

  it("keeps the lock token out of error messages, even when the client quotes the command", async () => {
    const locker = lockerVia({ retry: { retries: 0 } }, 0);
    await warmUp(locker);
    proxy.inject({
      kind: "respond",
      status: 400,
      body: '{"error":"ERR something broke"}',
      contentType: "application/json",
    });
    const error = await locker.tryAcquire("secret", 5_000).catch((e: unknown) => e);
    const body = proxy.requests[0]?.body as string[];
    const token = body[7] ?? "";
    expect(token).toMatch(/^el1\./);
    expect((error as Error).message).toContain("ERR something broke");
    expect((error as Error).message).not.toContain(token);
    expect(String((error as Error).cause)).not.toContain(token);
  });

  it("falls back to EVAL only on a real NOSCRIPT reply", async () => {
    const locker = lockerVia({ retry: { retries: 0 } }, 0);
    await warmUp(locker);
    const busy = { kind: "respond", status: 400, contentType: "application/json" } as const;
    proxy.inject({ ...busy, body: '{"error":"BUSY Redis is busy; NOSCRIPT mentioned here"}' });
    await expect(locker.tryAcquire("noscript-key", 5_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    await requestsSeen(2);
    expect(sent().map(({ command }) => command)).toEqual(["evalsha", "evalsha"]); // + cleanup
    await direct.script("FLUSH");
    proxy.requests.length = 0;
    const lease = await locker.tryAcquire("noscript-key", 5_000);
    expect(sent().map(({ command }) => command)).toEqual(["evalsha", "eval"]);
    await lease?.release();
  });

  it("keeps many waiters from flooding the endpoint", async () => {
    const locker = lockerVia();
    await warmUp(locker);
    const holder = await locker.tryAcquire("crowd", 1_000);
    const waiters = Array.from({ length: 20 }, () =>
      locker.using("crowd", 2_000, async () => {}, { timeout: 10_000 }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const duringHold = proxy.requests.length;
    await holder?.release();
    await Promise.all(waiters);
    // Full-jitter backoff: about log2(500 / 50) + 1 attempts per waiter in half a second,
    // where 10 ms polling would have sent about 1000 requests.
    expect(duringHold).toBeLessThan(20 * 8);
    expect(duringHold).toBeGreaterThanOrEqual(20);
  });
});
