/// <reference types="node" />
/**
 * The Lambda wrappers and middy middlewares on real Redis, over ioredis and over the real
 * `@upstash/redis` client through the gateway, with contexts whose remaining time counts down:
 * middy's early timeout in either order of `@middy/http-error-handler`, and Redis out of reach
 * (refused, or silent) within a 1 s and a 3 s Lambda's deadline.
 */

import { createServer, type Server, type Socket } from "node:net";
import middy from "@middy/core";
import httpErrorHandler from "@middy/http-error-handler";
import type { Context, SQSRecord } from "aws-lambda";
import { createLocker, type LockAdapter, LockUnavailableError } from "edgelock";
import { startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import {
  idempotencyMiddleware,
  lambdaWithIdempotency,
  lambdaWithLock,
  lockMiddleware,
} from "edgelock/lambda";
import { upstashAdapter } from "edgelock/upstash";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delay, gate } from "../support/async.js";
import { lambdaContext } from "../support/lambda-context.js";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";
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

// --- Redis out of reach --------------------------------------------------------------------

/** A server that accepts connections and never answers (a hung proxy, a dead Redis's socket). */
let silent: Server;
let silentPort: number;
/** A port nothing listens on. */
let deadPort: number;
const unreachable: Redis[] = [];

const silentSockets = new Set<Socket>();

beforeAll(async () => {
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as { port: number }).port;
  deadPort = await freePort();
});

afterAll(async () => {
  for (const client of unreachable) client.disconnect();
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
});

/** The ways Redis is out of reach, each over each transport, and what the error must name. */
const OUT_OF_REACH: [name: string, adapter: () => LockAdapter, reason: RegExp][] = [
  [
    "refused over ioredis",
    () => ioredisAdapter(quiet(new Redis(`redis://127.0.0.1:${deadPort}`))),
    /ECONNREFUSED/,
  ],
  [
    "silent over ioredis",
    () => ioredisAdapter(quiet(new Redis(`redis://127.0.0.1:${silentPort}`))),
    /no answer from Redis in time|did not answer/,
  ],
  [
    "refused over REST",
    () => upstashAdapter(upstashClient(`http://127.0.0.1:${deadPort}`, "t")),
    /ECONNREFUSED/,
  ],
  [
    "silent over REST",
    () => upstashAdapter(upstashClient(`http://127.0.0.1:${silentPort}`, "t")),
    /no answer from Redis in time/,
  ],
];

/** A client whose failed attempts do not print (the test reads them from the error). */
function quiet(client: Redis): Redis {
  client.on("error", () => {});
  unreachable.push(client);
  return client;
}

/** An API Gateway request, as middy's http-error-handler answers it. */
const httpEvent = (key: string) => ({
  requestContext: { http: { method: "POST", path: "/orders" } },
  headers: { "idempotency-key": key },
  body: "{}",
});

/** An SQS record. */
const sqsRecord = (messageId: string) => ({ messageId, body: "{}" }) as SQSRecord;

/**
 * Each front end, invoked once with Redis out of reach, reports what the invocation answered:
 * the error for the plain wrappers (an SQS consumer turns it into a batch item failure), the
 * response middy's http-error-handler made of it for the middlewares.
 */
const FRONT_ENDS: [
  name: string,
  invoke: (adapter: LockAdapter, context: Context) => Promise<unknown>,
][] = [
  [
    "lambdaWithLock",
    (adapter, context) =>
      lambdaWithLock(
        createLocker({ adapter, retries: 0 }),
        () => "account:1",
        async () => "ran",
      )({}, context),
  ],
  [
    "lambdaWithIdempotency (an SQS record)",
    (adapter, context) =>
      lambdaWithIdempotency(
        async function sendReceipt() {
          return "ran";
        },
        { adapter, key: (record: SQSRecord) => record.messageId },
      )(sqsRecord("m-1"), context),
  ],
  [
    "lockMiddleware + http-error-handler",
    (adapter, context) =>
      middy(async () => ({ statusCode: 200 }))
        .use(httpErrorHandler({ logger: false }))
        .use(lockMiddleware({ locker: createLocker({ adapter }), key: () => "account:1" }))(
        httpEvent("k"),
        context,
      ),
  ],
  [
    "idempotencyMiddleware + http-error-handler",
    (adapter, context) =>
      middy(async () => ({ statusCode: 201 }))
        .use(httpErrorHandler({ logger: false }))
        .use(
          idempotencyMiddleware({
            adapter,
            key: (event: ReturnType<typeof httpEvent>) => event.headers["idempotency-key"],
            scope: "orders",
          }),
        )(httpEvent("k"), context),
  ],
];

describe.concurrent.each([1_000, 3_000])("a %i ms Lambda with Redis out of reach", (timeout) => {
  describe.each(OUT_OF_REACH)("%s", (_, adapter, reason) => {
    it.each(FRONT_ENDS)(
      "%s: LOCK_UNAVAILABLE naming the cause, before the deadline",
      async (name, invoke) => {
        const context = lambdaContext(timeout);
        let outcome: unknown;
        try {
          outcome = await invoke(adapter(), context);
        } catch (error) {
          outcome = error;
        }
        // Answered with time to spare: Lambda's own "Task timed out" never came.
        expect(context.getRemainingTimeInMillis()).toBeGreaterThan(100);
        if (name.includes("http-error-handler")) {
          expect(outcome).toMatchObject({ statusCode: 503, headers: { "Retry-After": "1" } });
          expect((outcome as { body: string }).body).toMatch(reason);
        } else {
          expect(outcome).toBeInstanceOf(LockUnavailableError);
          expect(outcome).toMatchObject({ code: "LOCK_UNAVAILABLE" });
          expect((outcome as Error).message).toMatch(reason);
        }
      },
    );
  });
});
