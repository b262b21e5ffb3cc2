/**
 * The gateway's life around Redis and around its own server: Redis down or slow (503 JSON, then
 * recovery), shutdown that answers requests in flight, the safe ioredis settings, and the app
 * embedded in another Hono app without a server.
 */
import { Redis as Upstash } from "@upstash/redis";
import { createGatewayApp, gatewayRedis, startGateway } from "edgelock/gateway";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(url: string, token: string, body: unknown) {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("Redis down or slow", () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway({ commandTimeout: 150 });
  });
  afterAll(() => gateway?.close());

  it("answers 503 JSON while Redis is down, and serves again once it is back", async () => {
    expect((await post(gateway.url, gateway.token, ["set", "k", "v"])).status).toBe(200);
    await gateway.redis.kill();

    const down = await post(gateway.url, gateway.token, ["get", "k"]);
    expect(down.status).toBe(503);
    expect(down.body.error).toMatch(/^ERR redis is unavailable/);
    const pipeline = await post(`${gateway.url}/pipeline`, gateway.token, [["ping"], ["ping"]]);
    expect(pipeline.status).toBe(503);
    const transaction = await post(`${gateway.url}/multi-exec`, gateway.token, [["ping"]]);
    expect(transaction.status).toBe(503);
    const client = gateway.client({ enableAutoPipelining: false });
    await expect(client.get("k")).rejects.toThrow(/redis is unavailable/);

    await gateway.redis.restart();
    let status = 0;
    for (let attempt = 0; attempt < 60 && status !== 200; attempt++) {
      await sleep(50);
      status = (await post(gateway.url, gateway.token, ["ping"])).status;
    }
    expect(status).toBe(200);
    expect(await client.set("k", "back")).toBe("OK");
  });

  it("answers 503 when a command exceeds the command timeout, and keeps serving", async () => {
    const slow = await post(gateway.url, gateway.token, ["debug", "sleep", "0.4"]);
    expect(slow.status).toBe(503);
    expect(slow.body.error).toMatch(/timed out; it may or may not have been applied/);
    await sleep(400);
    expect((await post(gateway.url, gateway.token, ["ping"])).body).toEqual({ result: "PONG" });
  });
});

describe("shutdown", () => {
  it("answers requests in flight, closes idle connections, then refuses new ones", async () => {
    const gateway = await startTestGateway();
    const client = gateway.client({ enableAutoPipelining: false });
    expect(await client.set("before", "1")).toBe("OK"); // leaves an idle keep-alive socket

    const started = Date.now();
    const inFlight = post(gateway.url, gateway.token, ["debug", "sleep", "0.3"]);
    const script = client.eval(
      "local t = redis.call('time'); local deadline = t[1] * 1000000 + t[2] + 200000; " +
        "repeat t = redis.call('time') until t[1] * 1000000 + t[2] >= deadline; return 'done'",
      [],
      [],
    );
    await sleep(50);
    const closing = gateway.close();
    expect(await inFlight).toEqual({ status: 200, body: { result: "OK" } });
    expect(await script).toBe("done");
    await closing;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(3_000); // the idle keep-alive socket did not hold it for 65 s
    await expect(fetch(gateway.url, { method: "POST", body: "[]" })).rejects.toThrow();
  });

  it("quits only a Redis client it created", async () => {
    const server = await startRedisServer();
    try {
      const owned = await gatewayRedis(server.url);
      const gateway = await startGateway({ redis: owned, tokens: ["t"], port: 0 });
      await gateway.close();
      expect(owned.status).toBe("ready");
      expect(await owned.ping()).toBe("PONG");
      owned.disconnect();

      const byUrl = await startGateway({ redis: server.url, tokens: ["t"], port: 0 });
      const upstash = new Upstash({ url: byUrl.url, token: "t", retry: { retries: 0 } });
      expect(await upstash.set("by-url", "1")).toBe("OK");
      const observer = new Redis(server.url, { protocol: 2 });
      const before = (await observer.call("CLIENT", "LIST")) as string;
      expect(before).toMatch(/name=edgelock-gateway/);
      await byUrl.close();
      await sleep(50);
      const after = (await observer.call("CLIENT", "LIST")) as string;
      expect(after).not.toMatch(/name=edgelock-gateway/);
      observer.disconnect();
    } finally {
      await server.stop();
    }
  });
});

describe("gatewayRedis", () => {
  let server: RedisProcess;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server?.stop());

  it("creates a ready RESP2 client that never resends or queues commands", async () => {
    const redis = await gatewayRedis(server.url, { commandTimeout: 1234 });
    try {
      expect(redis.status).toBe("ready");
      expect(redis.options).toMatchObject({
        protocol: 2,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        commandTimeout: 1234,
      });
    } finally {
      redis.disconnect();
    }
  });

  it("rejects when Redis is not ready in time, and validates its options", async () => {
    const unused = await startRedisServer();
    const url = unused.url;
    await unused.stop();
    await expect(gatewayRedis(url, { readyTimeout: 300 })).rejects.toThrow(
      /not ready within 300 ms.*ECONNREFUSED/,
    );
    await expect(gatewayRedis(server.url, { commandTimeout: 1.5 })).rejects.toThrow(
      "commandTimeout must be a positive integer (milliseconds), got 1.5",
    );
  });
});

describe("createGatewayApp", () => {
  let server: RedisProcess;
  let redis: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    redis = await gatewayRedis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const request = (token: string, body: unknown) => ({
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });

  it("serves through app.request() without a server", async () => {
    const app = createGatewayApp({ redis, tokens: ["embedded"] });
    const response = await app.request("/", request("embedded", ["set", "embedded", "yes"]));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: "OK" });
    expect(await redis.get("embedded")).toBe("yes");
    const denied = await app.request("/pipeline", request("other", [["get", "embedded"]]));
    expect(denied.status).toBe(401);
  });

  it("mounts under a path prefix next to other routes, for the real client too", async () => {
    const parent = new Hono({ strict: false });
    parent.get("/health", (c) => c.text("ok"));
    parent.route("/redis", createGatewayApp({ redis, tokens: ["mounted"] }));
    for (const path of ["/redis", "/redis/"]) {
      const response = await parent.request(path, request("mounted", ["echo", path]));
      expect(await response.json()).toEqual({ result: path });
    }
    const pipeline = await parent.request("/redis/pipeline", request("mounted", [["ping"]]));
    expect(await pipeline.json()).toEqual([{ result: "PONG" }]);
    expect(await (await parent.request("/health")).text()).toBe("ok");

    const client = new Upstash({
      url: "http://embedded.test/redis/",
      token: "mounted",
      retry: { retries: 0 },
      enableTelemetry: false,
    });
    // Route the client's fetch into the app: no server involved.
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) => parent.request(new Request(input, init));
    try {
      expect(await client.set("mounted", "yes")).toBe("OK");
      expect(await client.get("mounted")).toBe("yes");
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("applies maxBodyBytes without a Content-Length", async () => {
    const app = createGatewayApp({ redis, tokens: ["t"], maxBodyBytes: 100 });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(["echo", "x".repeat(200)])));
        controller.close();
      },
    });
    const response = await app.request("/", {
      method: "POST",
      headers: { authorization: "Bearer t" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  it("refuses a RESP3 client and bad options with TypeErrors that show no token", async () => {
    const resp3 = new Redis(server.url, { lazyConnect: true });
    expect(() => createGatewayApp({ redis: resp3, tokens: ["t"] })).toThrow(/protocol: 2/);
    expect(() => createGatewayApp({ redis, tokens: [] })).toThrow(TypeError);
    expect(() => createGatewayApp({ redis, tokens: [" padded "] })).toThrow(/tokens\[0\]/);
    const clash = () =>
      createGatewayApp({ redis, tokens: ["s3cret", { token: "s3cret", readOnly: true }] });
    expect(clash).toThrow(/tokens\[0\] and tokens\[1\] are the same token/);
    expect(clash).not.toThrow(/s3cret/);
    expect(() => createGatewayApp({ redis, tokens: ["t"], maxBodyBytes: 0 })).toThrow(
      /maxBodyBytes must be a positive integer/,
    );
    resp3.disconnect();
  });
});
