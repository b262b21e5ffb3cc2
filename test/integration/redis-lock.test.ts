/**
 * The seed component on real transports: the pip-services lock behaviours over ioredis (TCP) and
 * over REST (`@upstash/redis` → the gateway → redis-server), plus what only a real server shows:
 * `db_num`, connection failures, and locks released on close.
 */

import { LockError, RedisLock } from "edgelock";
import { type RunningGateway, startGateway } from "edgelock/gateway";
import { Redis } from "ioredis";
import { ConfigParams } from "pip-services3-commons-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";

const TOKEN = "redis-lock-token";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisProcess;
let gateway: RunningGateway;
let direct: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startGateway({ redis: server.url, tokens: [TOKEN], port: 0 });
  direct = new Redis(server.url);
});
afterAll(async () => {
  direct?.disconnect();
  await gateway?.close();
  await server?.stop();
});

/** Configurations of the same Redis through each transport, as pip-services users write them. */
const transports: [string, () => ConfigParams][] = [
  [
    "TCP (host and port)",
    () => ConfigParams.fromTuples("connection.host", "127.0.0.1", "connection.port", server.port),
  ],
  ["TCP (uri)", () => ConfigParams.fromTuples("connection.uri", server.url)],
  [
    "REST (gateway)",
    () => ConfigParams.fromTuples("connection.uri", gateway.url, "credential.password", TOKEN),
  ],
];

for (const [name, config] of transports) {
  describe(`RedisLock over ${name}`, () => {
    const opened: RedisLock[] = [];
    const open = async (retryTimeout = 50) => {
      const lock = new RedisLock();
      const tuples = config();
      tuples.setAsObject("options.retry_timeout", retryTimeout);
      lock.configure(tuples);
      await lock.open("trace-1");
      opened.push(lock);
      return lock;
    };
    const key = () => `seed-${Math.floor(Math.random() * 1e9)}`;
    afterAll(async () => {
      await Promise.all(opened.map((lock) => lock.close("trace-1")));
    });

    it("refuses a second tryAcquireLock on a held key, and grants it after release", async () => {
      const lock = await open();
      const k = key();
      expect(await lock.tryAcquireLock("trace-1", k, 5_000)).toBe(true);
      expect(await lock.tryAcquireLock("trace-1", k, 5_000)).toBe(false);
      await lock.releaseLock("trace-1", k);
      expect(await lock.tryAcquireLock("trace-1", k, 5_000)).toBe(true);
      await lock.releaseLock("trace-1", k);
    });

    it("waits in acquireLock, then fails with LOCK_TIMEOUT", async () => {
      const [owner, waiter] = [await open(), await open()];
      const k = key();
      await owner.tryAcquireLock("trace-1", k, 5_000);
      const error = await waiter.acquireLock("trace-2", k, 5_000, 200).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockError);
      expect(error).toMatchObject({
        code: "LOCK_TIMEOUT",
        traceId: "trace-2",
        details: { key: k },
      });
      await owner.releaseLock("trace-1", k);
      await waiter.acquireLock("trace-2", k, 5_000, 1_000);
      await waiter.releaseLock("trace-2", k);
    });

    it("lets a lock expire after its ttl", async () => {
      const [first, second] = [await open(), await open()];
      const k = key();
      expect(await first.tryAcquireLock("trace-1", k, 100)).toBe(true);
      expect(await second.tryAcquireLock("trace-1", k, 5_000)).toBe(false);
      await sleep(150);
      expect(await second.tryAcquireLock("trace-1", k, 5_000)).toBe(true);
      await second.releaseLock("trace-1", k);
    });

    it("ignores a release by an instance that does not hold the lock", async () => {
      const [owner, other] = [await open(), await open()];
      const k = key();
      await owner.tryAcquireLock("trace-1", k, 5_000);
      await other.releaseLock("trace-1", k);
      expect(await other.tryAcquireLock("trace-1", k, 5_000)).toBe(false);
      await owner.releaseLock("trace-1", k);
      expect(await other.tryAcquireLock("trace-1", k, 5_000)).toBe(true);
      await other.releaseLock("trace-1", k);
    });

    it("releases every lock it holds on close", async () => {
      const [closing, other] = [await open(), await open()];
      const keys = [key(), key(), key()];
      for (const k of keys) await closing.tryAcquireLock("trace-1", k, 60_000);
      await closing.close("trace-1");
      expect(closing.isOpen()).toBe(false);
      for (const k of keys) expect(await other.tryAcquireLock("trace-1", k, 5_000)).toBe(true);
      await expect(closing.tryAcquireLock("trace-1", key(), 1_000)).rejects.toMatchObject({
        code: "NOT_OPENED",
      });
    });
  });
}

describe("RedisLock on a real server", () => {
  it("selects the database given by options.db_num over TCP", async () => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri: server.url }, options: { db_num: 3 } });
    await lock.open("db");
    expect(await lock.tryAcquireLock("db", "in-db-3", 5_000)).toBe(true);
    const db3 = new Redis(server.url, { db: 3 });
    expect(await db3.exists("edgelock:{in-db-3}")).toBe(1);
    expect(await direct.exists("edgelock:{in-db-3}")).toBe(0);
    db3.disconnect();
    await lock.close("db");
  });

  it("fails to open with LOCK_UNAVAILABLE when nothing listens", async () => {
    const lock = new RedisLock();
    lock.configure({ connection: { host: "127.0.0.1", port: await freePort() } });
    await expect(lock.open("down")).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
      traceId: "down",
    });
    expect(lock.isOpen()).toBe(false);
  });

  it("fails to open over REST with a wrong token, without showing it", async () => {
    const lock = new RedisLock();
    lock.configure({ connection: { uri: gateway.url }, credential: { password: "not-the-token" } });
    const error = await lock.open("auth").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE" });
    expect((error as Error).message).toContain("WRONGPASS");
    expect((error as Error).message).not.toContain("not-the-token");
    expect(lock.isOpen()).toBe(false);
  });

  it("rejects a non-zero db_num over REST before connecting", () => {
    const lock = new RedisLock();
    expect(() =>
      lock.configure({
        connection: { uri: gateway.url },
        credential: { password: TOKEN },
        options: { db_num: 2 },
      }),
    ).toThrow(expect.objectContaining({ code: "INVALID_CONFIG", configKey: "options.db_num" }));
  });
});
