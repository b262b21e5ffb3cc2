/**
 * What the TCP transport must get right beyond the shared contract: the fence across a Redis that
 * lost its data, the NOSCRIPT fallback, dead connections, ambiguous replies, and one subscriber
 * connection per client.
 */

import { createLocker, LockUnavailableError } from "edgelock";
import { type IoredisClient, ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisProcess;
const clients: Redis[] = [];

/** A client that gives up quickly while the server is paused or gone. */
function connect(): Redis {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on("error", () => {});
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(() => {
  server.resume();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server.stop();
});

describe("ioredis adapter", () => {
  it("keeps fences increasing after Redis restarts without persistence", async () => {
    const locker = createLocker({ adapter: ioredisAdapter(connect()) });
    const before = await locker.tryAcquire("restart", 60_000);
    expect(before).not.toBeNull();
    await server.kill();
    await server.restart();
    const after = await locker.acquire("restart", 5_000, { timeout: 5_000 });
    expect(after.fence).toBeGreaterThan(before?.fence ?? Number.POSITIVE_INFINITY);
    await expect(before?.extend()).rejects.toMatchObject({ code: "LOCK_LOST" });
    await after.release();
  });

  it("sends the full script only after a real NOSCRIPT reply", async () => {
    const client = connect();
    const calls: string[] = [];
    const counted: IoredisClient = {
      evalsha: (...args) => {
        calls.push("evalsha");
        return client.evalsha(...args);
      },
      eval: (...args) => {
        calls.push("eval");
        return client.eval(...args);
      },
      duplicate: () => client.duplicate(),
    };
    await client.script("FLUSH");
    const locker = createLocker({ adapter: ioredisAdapter(counted) });
    const lease = await locker.tryAcquire("noscript", 5_000);
    expect(calls).toEqual(["evalsha", "eval"]);
    calls.length = 0;
    await lease?.release();
    await locker.inspect("noscript");
    expect(calls).toEqual(["evalsha", "eval", "evalsha", "eval"]);
    calls.length = 0;
    await (await locker.tryAcquire("noscript", 5_000))?.release();
    expect(calls).toEqual(["evalsha", "evalsha"]);
  });

  it("fails with LOCK_UNAVAILABLE instead of hanging on an unresponsive server", async () => {
    const locker = createLocker({
      adapter: ioredisAdapter(connect(), { commandTimeout: 150 }),
      retries: 1,
    });
    await locker.inspect("paused");
    server.pause();
    const error = await locker.tryAcquire("paused", 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", key: "paused", operation: "acquire" });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it("never leaves a lock held by a caller told that the acquire failed", async () => {
    const client = connect();
    const locker = createLocker({
      adapter: ioredisAdapter(client, { commandTimeout: 150 }),
      retries: 0,
    });
    await (await locker.tryAcquire("warm-up", 1_000))?.release(); // cache the scripts
    server.pause();
    // The request reaches the server's socket but no reply comes back in time.
    await expect(locker.tryAcquire("ambiguous", 60_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    server.resume();
    // The server now runs the queued acquire, then the compare-and-delete sent after it.
    await sleep(300);
    const observer = createLocker({ adapter: ioredisAdapter(connect()) });
    expect((await observer.inspect("ambiguous")).held).toBe(false);
  });

  it("sends concurrent requests in shared writes, and a lone request at once", async () => {
    const client = connect();
    await client.ping();
    const socket = client.stream as unknown as {
      _writev: (chunks: unknown[], callback: unknown) => unknown;
    };
    const original = socket._writev.bind(socket);
    const batches: number[] = [];
    socket._writev = (chunks: unknown[], callback: unknown) => {
      batches.push(chunks.length);
      return original(chunks, callback);
    };
    const locker = createLocker({ adapter: ioredisAdapter(client) });
    const lone = await locker.tryAcquire("lone", 5_000);
    await lone?.release();
    expect(batches).toEqual([]); // one request, nothing pending: written by itself
    const keys = Array.from({ length: 100 }, (_, i) => `many:${i}`);
    const leases = await Promise.all(keys.map((key) => locker.tryAcquire(key, 5_000)));
    expect(leases.every((lease) => lease !== null)).toBe(true);
    await Promise.all(leases.map((lease) => lease?.release()));
    // The first of each turn goes out alone; the rest of that turn follow in one write.
    expect(Math.max(...batches)).toBeGreaterThan(10);
    expect(batches.reduce((sum, n) => sum + n, 0)).toBeLessThan(200);
    for (const key of keys) expect(await client.exists(`edgelock:{${key}}`)).toBe(0);
  });

  it("shares one subscriber connection among all waiters and closes it afterwards", async () => {
    const client = connect();
    let duplicates = 0;
    const counting: IoredisClient = {
      evalsha: (...args) => client.evalsha(...args),
      eval: (...args) => client.eval(...args),
      duplicate: () => {
        duplicates++;
        return client.duplicate();
      },
    };
    const locker = createLocker({ adapter: ioredisAdapter(counting), maxRetryDelay: 60_000 });
    const subscribesBefore = await subscribeCalls(client);
    const holder = await locker.tryAcquire("crowd", 60_000);
    const waiters = Array.from({ length: 20 }, () =>
      locker.using("crowd", 5_000, async (lease) => lease.fence, { timeout: 10_000 }),
    );
    await sleep(200);
    expect(duplicates).toBe(1);
    expect(await pubsubClients(client)).toBe(1);
    expect((await subscribeCalls(client)) - subscribesBefore).toBe(1); // one SUBSCRIBE for all
    await holder?.release();
    const fences = await Promise.all(waiters);
    expect(new Set(fences).size).toBe(20);
    expect(duplicates).toBe(1);
    expect(await pubsubClients(client)).toBe(1); // lingering for the next waiter...
    await sleep(400);
    expect(await pubsubClients(client)).toBe(0); // ...for a quarter of a second only
  });
});

/** How many SUBSCRIBE commands the server has run so far. */
async function subscribeCalls(client: Redis): Promise<number> {
  const stats = (await client.info("commandstats")) as string;
  return Number(/cmdstat_subscribe:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** How many connections the server counts as pub/sub clients. */
async function pubsubClients(client: Redis): Promise<number> {
  const list = (await client.client("LIST", "TYPE", "PUBSUB")) as string;
  return list.split("\n").filter((line) => line.trim() !== "").length;
}
