import { createLocker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Cluster } from "ioredis";
import { describe, expect, it } from "vitest";
import { describeLockContract } from "../contract/lock-contract.js";
import { startRedisCluster } from "../support/redis-cluster.js";

describeLockContract("ioredis Cluster (3 masters)", async () => {
  const cluster = await startRedisCluster({ masters: 3 });
  const client = new Cluster(cluster.nodes);
  return {
    adapter: ioredisAdapter(client),
    close: async () => {
      await client.quit();
      await cluster.stop();
    },
  };
});

describe("ioredis Cluster without sharded pub/sub (as before Redis 7)", () => {
  it("falls back to plain pub/sub: waiters are still handed the lock, uncounted", async () => {
    const cluster = await startRedisCluster({
      masters: 3,
      args: ["--rename-command", "SSUBSCRIBE", ""],
    });
    const client = new Cluster(cluster.nodes);
    try {
      const adapter = ioredisAdapter(client);
      expect(adapter.subscriptions).toBe("sharded"); // until the server says otherwise
      // Two lockers: the waiter hears of the hand-off through pub/sub, not from the releaser.
      const holder = await createLocker({ adapter }).tryAcquire("job", 60_000);
      const locker = createLocker({ adapter, maxRetryDelay: 60_000 });
      const waiting = locker.acquire("job", 5_000, { timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(adapter.subscriptions).toBeUndefined();
      const released = performance.now();
      await holder?.release();
      const lease = await waiting;
      expect(performance.now() - released).toBeLessThan(1_000); // handed over, not polled
      expect(lease.fence).toBeGreaterThan(holder?.fence ?? Number.POSITIVE_INFINITY);
      await lease.release();
    } finally {
      await client.quit();
      await cluster.stop();
    }
  });
});
