import { createLocker, FENCE_RETENTION, lockNames } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeLockContract } from "../contract/lock-contract.js";
import { type RedisSentinelProcess, startRedisSentinel } from "../support/redis-sentinel.js";

const FAILOVER_TIMEOUT_MS = 20_000;

describeLockContract("ioredis Sentinel", async () => {
  const setup = await startRedisSentinel();
  const client = new Redis({ sentinels: setup.sentinels, name: setup.name });
  return {
    adapter: ioredisAdapter(client),
    close: async () => {
      await client.quit();
      await setup.stop();
    },
  };
});

describe("ioredis Sentinel failover", () => {
  let setup: RedisSentinelProcess;
  let client: Redis;
  let sentinel: Redis;

  beforeAll(async () => {
    setup = await startRedisSentinel();
    // failoverDetector: drop the connection on +switch-master instead of waiting for the old
    // master to be demoted (which disconnects its clients only some 10 s later).
    client = new Redis({ sentinels: setup.sentinels, name: setup.name, failoverDetector: true });
    client.on("error", () => {}); // connections drop during the failover; ioredis reconnects
    sentinel = new Redis({ ...setup.sentinels[0], maxRetriesPerRequest: 0 });
  });
  afterAll(async () => {
    client?.disconnect();
    sentinel?.disconnect();
    await setup?.stop();
  });

  /** The port of the server `client` is talking to, and its role. */
  async function serverOf(redis: Redis): Promise<{ port: number; role: string }> {
    const info = await redis.info();
    return {
      port: Number(/tcp_port:(\d+)/.exec(info)?.[1]),
      role: /role:(\w+)/.exec(info)?.[1] ?? "unknown",
    };
  }

  it("keeps the lock, and fences increasing, across a failover", async () => {
    const locker = createLocker({ adapter: ioredisAdapter(client), prefix: "failover" });
    expect(await serverOf(client)).toEqual({ port: setup.master.port, role: "master" });

    // Put the fence counter an hour ahead of the clock: fences then come from the counter, so
    // only the replicated counter (not the new master's clock) can keep the next one above it.
    const ahead = Date.now() * 1_000 + 3_600_000_000;
    await client.set(lockNames("failover", "job").fence, String(ahead), "PX", FENCE_RETENTION);
    const before = await locker.tryAcquire("job", 30_000);
    expect(before?.fence).toBe(ahead + 1);
    // Replication is asynchronous: a write the replica has not seen is lost by any failover, which
    // no single-master lock can prevent. Make sure it got there, so the test is not a race.
    expect(await client.wait(1, 2_000)).toBe(1);

    expect(await sentinel.call("SENTINEL", "FAILOVER", setup.name)).toBe("OK");
    const deadline = Date.now() + FAILOVER_TIMEOUT_MS;
    let reached: { port: number; role: string } | undefined;
    while (reached?.port !== setup.replica.port || reached.role !== "master") {
      if (Date.now() > deadline) {
        throw new Error(
          `client still on ${JSON.stringify(reached)} after ${FAILOVER_TIMEOUT_MS} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      reached = await serverOf(client).catch(() => undefined);
    }
    const promoted = await sentinel.call("SENTINEL", "get-master-addr-by-name", setup.name);
    expect(promoted).toEqual(["127.0.0.1", String(setup.replica.port)]);

    expect(await locker.tryAcquire("job", 30_000)).toBeNull();
    expect(await before?.release()).toBe(true);
    const after = await locker.tryAcquire("job", 30_000);
    expect(after).not.toBeNull();
    expect(after?.fence).toBeGreaterThan(before?.fence ?? Number.POSITIVE_INFINITY);
    const other = await locker.tryAcquire("another-job", 5_000);
    expect(other?.held).toBe(true);
    await Promise.all([after?.release(), other?.release()]);
  });
});
