import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { describeLockContract } from "../contract/lock-contract.js";
import { useStandaloneRedis } from "../support/redis-server.js";

describeLockContract("ioredis standalone", async () => {
  const redis = await useStandaloneRedis();
  const client = new Redis(redis.url, { lazyConnect: false });
  // Start without cached scripts, so the NOSCRIPT fallback is exercised.
  await client.script("FLUSH");
  return {
    adapter: ioredisAdapter(client),
    close: async () => {
      await client.quit();
      await redis.stop();
    },
  };
});
