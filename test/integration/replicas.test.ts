/**
 * Replica safety (S21): with `waitReplicas`, a lock counts as acquired only once replicas have
 * it. Against a real primary and replica: while replication works, locks are granted; when it is
 * cut (the replica paused), the acquisition fails as unavailable and leaves nothing locked.
 */

import { createLocker, InvalidArgumentError, LockUnavailableError } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

let primary: RedisProcess;
let replica: RedisProcess;
let client: Redis;

beforeAll(async () => {
  primary = await startRedisServer({ args: ["--repl-diskless-sync-delay", "0"] });
  replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
  const probe = new Redis(replica.url);
  for (let i = 0; i < 200; i++) {
    if ((await probe.info("replication")).includes("master_link_status:up")) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  probe.disconnect();
  client = new Redis(primary.url);
});
afterEach(() => {
  replica.resume();
});
afterAll(async () => {
  client?.disconnect();
  await replica?.stop();
  await primary?.stop();
});

describe("waitReplicas", () => {
  it("grants a lock once a replica has acknowledged it", async () => {
    const locker = createLocker({
      // WAIT answers as soon as the replica has it
      adapter: ioredisAdapter(client, { waitReplicas: { replicas: 1, timeout: 2_000 } }),
    });
    const lease = await locker.tryAcquire("replicated", 5_000);
    expect(lease).not.toBeNull();
    const copy = new Redis(replica.url);
    expect(await copy.get("edgelock:{replicated}")).toBe(lease?.token);
    copy.disconnect();
    await lease?.release();
  });

  it("fails as unavailable, and releases, when replication is cut", async () => {
    const locker = createLocker({
      adapter: ioredisAdapter(client, { waitReplicas: { replicas: 1, timeout: 150 } }),
      retries: 0,
    });
    replica.pause();
    const error = await locker.tryAcquire("cut", 5_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect((error as Error).message).toContain("0 of 1 replicas acknowledged");
    expect(await client.exists("edgelock:{cut}")).toBe(0); // released on the primary
    replica.resume();
  });

  it("asks for more replicas than exist: never grants", async () => {
    const locker = createLocker({
      adapter: ioredisAdapter(client, { waitReplicas: { replicas: 2, timeout: 100 } }),
      retries: 0,
    });
    await expect(locker.tryAcquire("too-many", 5_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
    });
    expect(await client.exists("edgelock:{too-many}")).toBe(0);
  });

  it("is refused up front on a Cluster client, whose writes are not on one connection", () => {
    const cluster = {
      evalsha: client.evalsha.bind(client),
      eval: client.eval.bind(client),
      duplicate: () => client.duplicate(),
      call: client.call.bind(client),
      isCluster: true,
    };
    expect(() => ioredisAdapter(cluster, { waitReplicas: { replicas: 1, timeout: 100 } })).toThrow(
      InvalidArgumentError,
    );
    expect(() => ioredisAdapter(client, { waitReplicas: { replicas: 0, timeout: 100 } })).toThrow(
      InvalidArgumentError,
    );
  });
});
