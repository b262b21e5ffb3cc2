/**
 * The idempotency store's conformance suite on real Redis, over both transports: ioredis, and the
 * real `@upstash/redis` client (both response encodings) through the gateway.
 */

import { startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import { upstashAdapter } from "edgelock/upstash";
import { Redis } from "ioredis";
import { describeIdempotencyContract } from "../contract/idempotency-contract.js";
import { startRedisServer } from "../support/redis-server.js";
import { upstashClient } from "../support/upstash-client.js";

describeIdempotencyContract("ioredis → redis-server", async () => {
  const server = await startRedisServer();
  const client = new Redis(server.url);
  await client.script("FLUSH");
  return {
    adapter: ioredisAdapter(client),
    close: async () => {
      client.disconnect();
      await server.stop();
    },
  };
});

for (const encoding of ["base64", false] as const) {
  describeIdempotencyContract(
    `upstash (encoding ${encoding}) → gateway → redis-server`,
    async () => {
      const server = await startRedisServer();
      const gateway = await startGateway({ redis: server.url, tokens: ["idem"], port: 0 });
      const client = upstashClient(gateway.url, "idem", { responseEncoding: encoding });
      return {
        adapter: upstashAdapter(client),
        close: async () => {
          await gateway.close();
          await server.stop();
        },
      };
    },
  );
}
