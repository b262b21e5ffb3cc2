/// <reference types="node" />
/**
 * The Lambda wrappers and middy middlewares on real Redis, over ioredis and over the real
 * `@upstash/redis` client through the gateway, with contexts whose remaining time counts down:
 * middy's early timeout in either order of `@middy/http-error-handler`.
 */

import middy from "@middy/core";
import httpErrorHandler from "@middy/http-error-handler";
import { createLocker, type LockAdapter } from "edgelock";
import { startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import { lockMiddleware } from "edgelock/lambda";
import { upstashAdapter } from "edgelock/upstash";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delay, gate } from "../support/async.js";
import { lambdaContext } from "../support/lambda-context.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { upstashClient } from "../support/upstash-client.js";

let server: RedisProcess;
let tcp: Redis;
let gateway: Awaited<ReturnType<typeof startGateway>>;
const transports: Record<string, () => LockAdapter> = {
  ioredis: () => ioredisAdapter(tcp),
  "upstash → gateway": () => upstashAdapter(upstashClient(gateway.url, "lambda")),
};

beforeAll(async () => {
  server = await startRedisServer();
  tcp = new Redis(server.url);
  gateway = await startGateway({ redis: server.url, tokens: ["lambda"], port: 0 });
});

afterAll(async () => {
  await gateway?.close();
  tcp?.disconnect();
  await server?.stop();
});

describe.each(Object.keys(transports))("over %s", (transport) => {
  const adapter = () => (transports[transport] as () => LockAdapter)();

  describe.each(["before", "after"] as const)(
    "http-error-handler %s the lock middleware",
    (order) => {
      it("keeps the lock while a handler middy timed out still runs; the next invocation gets 409", async () => {
        const locker = createLocker({ adapter: adapter(), prefix: `t-${transport}-${order}` });
        const lock = lockMiddleware({ locker, key: () => "account:1" });
        const errors = httpErrorHandler({ logger: false });
        const stillRunning = gate();
        let concurrent = 0;
        let most = 0;
        const handler = middy(
          async () => {
            most = Math.max(most, ++concurrent);
            await stillRunning.promise;
            concurrent--;
            return { statusCode: 200 };
          },
          { timeoutEarlyInMillis: 100 },
        ).use(order === "before" ? [errors, lock] : [lock, errors]);

        const timedOut = await handler({}, lambdaContext(400));
        expect(timedOut).toMatchObject({ statusCode: 500 });
        expect((await locker.inspect("account:1")).held).toBe(true);
        expect(await handler({}, lambdaContext(3_000))).toMatchObject({ statusCode: 409 });
        expect(most).toBe(1);
        stillRunning.open();
        await delay(1_400); // the lease: the 400 ms invocation plus the 1 s safety margin
        expect((await locker.inspect("account:1")).held).toBe(false);
      });
    },
  );
});
