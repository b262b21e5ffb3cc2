import { ioredisAdapter } from "edgelock/ioredis";
import { Cluster } from "ioredis";
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
