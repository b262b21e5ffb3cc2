/**
 * The idempotency store's conformance suite, and the acceptance matrix of every front end, on
 * real Redis over both transports: ioredis, and the real `@upstash/redis` client (both response
 * encodings) through the gateway.
 */

import { startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import { upstashAdapter } from "edgelock/upstash";
import { Redis } from "ioredis";
import { describeIdempotencyContract } from "../contract/idempotency-contract.js";
import { describeIdempotencyMatrix } from "../contract/idempotency-matrix.js";
import type { ContractTarget } from "../contract/lock-contract.js";
import { startRedisServer } from "../support/redis-server.js";
import { upstashClient } from "../support/upstash-client.js";

/** A redis-server of its own, reached over ioredis. */
async function overTcp(): Promise<ContractTarget> {
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
}

/** A redis-server of its own, reached with the real `@upstash/redis` client through the gateway. */
async function overRest(encoding: "base64" | false): Promise<ContractTarget> {
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
}

describeIdempotencyContract("ioredis → redis-server", overTcp);
describeIdempotencyMatrix("ioredis → redis-server", overTcp);

for (const encoding of ["base64", false] as const) {
  const name = `upstash (encoding ${encoding}) → gateway → redis-server`;
  describeIdempotencyContract(name, () => overRest(encoding));
}
describeIdempotencyMatrix("upstash → gateway → redis-server", () => overRest(false));
