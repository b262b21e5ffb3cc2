/// <reference types="node" />
/**
 * The AWS Lambda example (examples/aws-lambda/handler.ts) invoked as Lambda invokes it: full API
 * Gateway HTTP API (payload v2) and SQS events, a context whose remaining time counts down, and a
 * real redis-server. Every lease the example sends to Redis is checked against the remaining
 * time of the invocation that sent it.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomUUID } from "node:crypto";
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
  SQSEvent,
  SQSRecord,
} from "aws-lambda";
import { acquireScript, createLocker, extendScript, type LockScript } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { DEFAULT_LEASE_SAFETY } from "edgelock/lambda";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { beginScript } from "../../src/idempotency/scripts/begin.js";
import { lambdaContext } from "../support/lambda-context.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

type Example = typeof import("../../examples/aws-lambda/handler.js");

let server: RedisProcess;
let example: Example;
let redis: Redis; // the test's own connection, to seed and inspect

// --- Lambda, as the Node.js runtime presents it ----------------------------------------------

const FUNCTION = {
  withdraw: "bank-withdraw",
  orders: "bank-create-order",
  receipts: "bank-send-receipts",
};

/** The context of the invocation in progress, for the lease checks below. */
const invocation = new AsyncLocalStorage<Context>();

/** Invokes a handler as the runtime does: one event, one fresh context. */
function invoke<E, R>(
  handler: (event: E, context: Context) => Promise<R>,
  event: E,
  context: Context,
): Promise<R> {
  return invocation.run(context, () => handler(event, context));
}

// --- Events, shaped as AWS sends them ---------------------------------------------------------

function withdrawalEvent(
  accountId: string,
  body: string,
  options: { base64?: boolean } = {},
): APIGatewayProxyEventV2 {
  const now = new Date();
  const sent = options.base64 ? Buffer.from(body).toString("base64") : body;
  const routeKey = "POST /accounts/{id}/withdrawals";
  const path = `/accounts/${accountId}/withdrawals`;
  return {
    version: "2.0",
    routeKey,
    rawPath: path,
    rawQueryString: "",
    headers: {
      accept: "*/*",
      "content-length": String(Buffer.byteLength(body)),
      "content-type": options.base64 ? "application/octet-stream" : "application/json",
      host: "r3pmxmplak.execute-api.eu-west-1.amazonaws.com",
      "user-agent": "curl/8.5.0",
      "x-amzn-trace-id": `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomUUID().replaceAll("-", "").slice(0, 24)}`,
      "x-forwarded-for": "203.0.113.7",
      "x-forwarded-port": "443",
      "x-forwarded-proto": "https",
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "r3pmxmplak",
      domainName: "r3pmxmplak.execute-api.eu-west-1.amazonaws.com",
      domainPrefix: "r3pmxmplak",
      http: {
        method: "POST",
        path,
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.7",
        userAgent: "curl/8.5.0",
      },
      requestId: `${randomUUID().slice(0, 14)}=`,
      routeKey,
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    pathParameters: { id: accountId },
    body: sent,
    isBase64Encoded: options.base64 === true,
  };
}

/** `POST /orders`, from the customer the JWT authorizer vouched for, with its `Idempotency-Key`. */
function orderEvent(
  customer: string,
  body: string,
  keys: readonly string[],
): APIGatewayProxyEventV2WithJWTAuthorizer {
  const base = withdrawalEvent("0", body);
  const headers: Record<string, string | undefined> = { ...base.headers };
  // API Gateway joins the values of a repeated header with commas.
  if (keys.length > 0) headers["idempotency-key"] = keys.join(",");
  return {
    ...base,
    routeKey: "POST /orders",
    rawPath: "/orders",
    headers,
    pathParameters: {},
    requestContext: {
      ...base.requestContext,
      routeKey: "POST /orders",
      http: { ...base.requestContext.http, path: "/orders" },
      authorizer: {
        principalId: "",
        integrationLatency: 0,
        jwt: { claims: { sub: customer, scope: "orders" }, scopes: ["orders"] },
      },
    },
  };
}

interface Delivery {
  receiveCount: number;
  firstReceived: number;
}

/** One SQS message, as delivered for the `receiveCount`-th time. */
function sqsRecord(messageId: string, body: string, delivery: Delivery): SQSRecord {
  return {
    messageId,
    receiptHandle: `AQEB${Buffer.from(randomUUID() + randomUUID()).toString("base64")}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(delivery.receiveCount),
      SentTimestamp: String(delivery.firstReceived - 3),
      SenderId: "AROAIWPX5BD2BHG722MW4:sender",
      ApproximateFirstReceiveTimestamp: String(delivery.firstReceived),
    },
    messageAttributes: {},
    md5OfBody: createHash("md5").update(body).digest("hex"),
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:paid-orders",
    awsRegion: "eu-west-1",
  };
}

const sqsEvent = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

const paidOrder = (orderId: string) =>
  JSON.stringify({ orderId, email: "ada@example.com", total: 4_200 });

// --- Lease checks on every script call the example makes ---------------------------------------

interface LeaseSent {
  script: string;
  lease: number;
  /** The invocation's remaining time when the call was made. */
  remaining: number;
}

const leases: LeaseSent[] = [];

/** Where each lease-bearing script carries its lease, counted after the keys. */
const LEASE_ARG = new Map<LockScript, number>([
  [acquireScript, 2],
  [extendScript, 1],
  [beginScript, 2],
]);

/** Wraps the example's client so every EVALSHA / EVAL that sets a lease is recorded. */
function watchLeases(client: Redis): void {
  const watch = (command: "evalsha" | "eval", identify: (script: LockScript) => string) => {
    const original = client[command].bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as Record<string, unknown>)[command] = (...args: unknown[]) => {
      const [scriptOrSha, numKeys, ...rest] = args as [string, number, ...string[]];
      for (const [script, index] of LEASE_ARG) {
        if (identify(script) !== scriptOrSha) continue;
        const context = invocation.getStore();
        if (!context) throw new Error(`${script.name} sent outside an invocation`);
        leases.push({
          script: script.name,
          lease: Number(rest[numKeys + index]),
          remaining: context.getRemainingTimeInMillis(),
        });
      }
      return original(...args);
    };
  };
  watch("evalsha", (script) => script.sha1);
  watch("eval", (script) => script.lua);
}

/**
 * Makes Redis hold every command for `ms` while `fire` sends them: a slow network, so all
 * concurrent invocations reach Redis before the first one finishes.
 */
async function whileRedisPaused<T>(ms: number, fire: () => Promise<T>): Promise<T> {
  await redis.call("CLIENT", "PAUSE", String(ms), "ALL");
  return fire();
}

beforeAll(async () => {
  server = await startRedisServer();
  process.env.REDIS_URL = server.url;
  redis = new Redis(server.url);
  await redis.script("FLUSH"); // start without cached scripts: the NOSCRIPT fallback runs too
  example = await import("../../examples/aws-lambda/handler.js");
  watchLeases(example.redis);
});

afterAll(async () => {
  // Disconnected rather than quit: the last test stops the server.
  example?.redis.disconnect();
  redis?.disconnect();
  await server?.stop();
});

// --- API Gateway: withdrawals under a lock -----------------------------------------------------

describe("withdraw (API Gateway HTTP API)", () => {
  const withdraw = (accountId: string, body: string, options: { base64?: boolean } = {}) =>
    invoke(
      example.withdraw,
      withdrawalEvent(accountId, body, options),
      lambdaContext(6_000, FUNCTION.withdraw),
    );
  const parse = (result: APIGatewayProxyStructuredResultV2) => JSON.parse(result.body ?? "null");
  const locker = () => createLocker({ adapter: ioredisAdapter(redis), prefix: "bank" });

  it("debits the account under a lock, with a fence, and releases it before returning", async () => {
    await redis.hset("account:42", { balance: 100 });

    const first = await withdraw("42", '{"amount":25}');
    expect(first.statusCode).toBe(200);
    expect(first.headers).toMatchObject({ "content-type": "application/json" });
    const { balance, fence } = parse(first);
    expect(balance).toBe(75);
    // Released before the handler's promise settled: nothing left for a frozen sandbox to do.
    expect((await locker().inspect("account:42")).held).toBe(false);

    const second = await withdraw("42", '{"amount":10}', { base64: true });
    expect(second.statusCode).toBe(200);
    expect(parse(second).balance).toBe(65);
    expect(parse(second).fence).toBeGreaterThan(fence);
    expect(await redis.hget("account:42", "balance")).toBe("65");
    expect(await redis.lrange("account:42:ledger", 0, -1)).toEqual([
      JSON.stringify({ amount: -25, fence }),
      JSON.stringify({ amount: -10, fence: parse(second).fence }),
    ]);
  });

  it("answers 400 and 422 without debiting", async () => {
    await redis.hset("account:7", { balance: 5 });
    expect((await withdraw("7", '{"amount":-3}')).statusCode).toBe(400);
    expect((await withdraw("7", "not json")).statusCode).toBe(400);
    const poor = await withdraw("7", '{"amount":6}');
    expect(poor.statusCode).toBe(422);
    expect(parse(poor)).toEqual({ error: "insufficient funds", balance: 5 });
    expect(await redis.hget("account:7", "balance")).toBe("5");
    expect((await locker().inspect("account:7")).held).toBe(false);
  });

  it("runs one of concurrent withdrawals on an account; the others get 409 + Retry-After", async () => {
    await redis.hset("account:9", { balance: 100 });
    await redis.hset("account:10", { balance: 100 });

    const results = await whileRedisPaused(150, () =>
      Promise.all([
        withdraw("9", '{"amount":30}'),
        withdraw("9", '{"amount":30}'),
        withdraw("9", '{"amount":30}'),
        withdraw("10", '{"amount":30}'), // another account: not blocked
      ]),
    );

    const onNine = results.slice(0, 3);
    expect(onNine.filter((r) => r.statusCode === 200)).toHaveLength(1);
    const conflicts = onNine.filter((r) => r.statusCode === 409);
    expect(conflicts).toHaveLength(2);
    for (const conflict of conflicts) {
      // The holder's lease is at most the remaining 6 s plus the 1 s margin.
      const retryAfter = Number(conflict.headers?.["Retry-After"]);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(7);
      expect(parse(conflict)).toEqual({
        error: "another operation on this account is in progress",
      });
    }
    expect(results[3]?.statusCode).toBe(200);
    expect(await redis.hget("account:9", "balance")).toBe("70");
    expect(await redis.llen("account:9:ledger")).toBe(1);
    expect(await redis.hget("account:10", "balance")).toBe("70");
    expect((await locker().inspect("account:9")).held).toBe(false);
  });

  it("takes a lease of the remaining time plus one second", async () => {
    await redis.hset("account:11", { balance: 100 });
    const sent = leases.length;
    const result = await invoke(
      example.withdraw,
      withdrawalEvent("11", '{"amount":1}'),
      lambdaContext(2_500, FUNCTION.withdraw),
    );
    expect(result.statusCode).toBe(200);
    const [acquire] = leases.slice(sent);
    expect(acquire?.script).toBe("acquire");
    expect(acquire?.lease).toBeGreaterThan(3_400);
    expect(acquire?.lease).toBeLessThanOrEqual(3_500);
  });
});

// --- API Gateway: orders once per key and customer --------------------------------------------

describe("createOrder (API Gateway HTTP API, JWT authorizer)", () => {
  const order = (customer: string, body: string, ...keys: string[]) =>
    invoke(
      example.createOrder,
      orderEvent(customer, body, keys),
      lambdaContext(6_000, FUNCTION.orders),
    );
  const placed = async (customer: string) => redis.llen(`orders:${customer}`);
  const book = '{"item":"book","quantity":1}';

  it("places one order per key; a retry gets the first response back, marked replayed", async () => {
    const key = randomUUID();
    const first = await order("ada", book, key);
    expect(first).toMatchObject({ statusCode: 201 });
    const retry = await order("ada", book, `"${key}"`); // the same key as an RFC 8941 String
    expect(retry).toEqual({
      ...first,
      headers: { ...first.headers, "Idempotent-Replayed": "true" },
    });
    expect(await placed("ada")).toBe(1);
    expect((await order("ada", '{"item":"pen","quantity":1}', key)).statusCode).toBe(422);
  });

  it("keeps each customer's keys to them: another customer's same key places their own order", async () => {
    const key = randomUUID();
    const ada = await order("ada-2", book, key);
    const grace = await order("grace", book, key);
    expect(grace.statusCode).toBe(201);
    expect(grace.headers?.["Idempotent-Replayed"]).toBeUndefined();
    expect(JSON.parse(grace.body ?? "{}").id).not.toBe(JSON.parse(ada.body ?? "{}").id);
    expect(await placed("grace")).toBe(1);
  });

  it("answers 400 for a key over 255 characters, not ASCII, or sent twice, placing nothing", async () => {
    for (const keys of [["k".repeat(256)], ["clé-1"], [randomUUID(), randomUUID()]]) {
      const refused = await order("lin", book, ...keys);
      expect(refused.statusCode).toBe(400);
      expect(JSON.parse(refused.body ?? "{}").error).toMatch(/Idempotency-Key|idempotency key/);
    }
    expect(await placed("lin")).toBe(0);
  });
});

// --- SQS: one receipt per message --------------------------------------------------------------

describe("sendReceipts (SQS)", () => {
  const receipts = async () =>
    (await redis.lrange("outbox:receipts", 0, -1)).map(
      (entry) => JSON.parse(entry) as { receiptId: string; orderId: string },
    );
  const deliver = (...records: SQSRecord[]) =>
    invoke(example.sendReceipts, sqsEvent(...records), lambdaContext(30_000, FUNCTION.receipts));

  it("sends one receipt per message, and replays a duplicate delivery", async () => {
    const firstReceived = Date.now();
    const body = paidOrder("o-100");
    const messageId = randomUUID();

    const first = await deliver(
      sqsRecord(messageId, body, { receiveCount: 1, firstReceived }),
      sqsRecord(randomUUID(), paidOrder("o-101"), { receiveCount: 1, firstReceived }),
    );
    expect(first).toEqual({ batchItemFailures: [] });
    const sent = await receipts();
    expect(sent.map((r) => r.orderId).sort()).toEqual(["o-100", "o-101"]);

    // SQS delivers the first message again: new receipt handle, receive count 2, new invocation.
    const again = await deliver(sqsRecord(messageId, body, { receiveCount: 2, firstReceived }));
    expect(again).toEqual({ batchItemFailures: [] });
    expect(await receipts()).toEqual(sent);
  });

  it("reports a duplicate still in progress as a batch item failure, then replays it", async () => {
    const firstReceived = Date.now();
    const body = paidOrder("o-200");
    const messageId = randomUUID();
    const before = (await receipts()).length;

    const [a, b] = await whileRedisPaused(150, () =>
      Promise.all([
        deliver(sqsRecord(messageId, body, { receiveCount: 1, firstReceived })),
        deliver(sqsRecord(messageId, body, { receiveCount: 2, firstReceived })),
      ]),
    );

    const failures = [...(a?.batchItemFailures ?? []), ...(b?.batchItemFailures ?? [])];
    expect(failures).toEqual([{ itemIdentifier: messageId }]);
    expect((await receipts()).slice(before).map((r) => r.orderId)).toEqual(["o-200"]);

    // SQS redelivers the failed one after the visibility timeout: it replays.
    const retried = await deliver(sqsRecord(messageId, body, { receiveCount: 3, firstReceived }));
    expect(retried).toEqual({ batchItemFailures: [] });
    expect((await receipts()).length).toBe(before + 1);
  });

  it("claims each message with a lease of the remaining time plus one second", async () => {
    const sent = leases.length;
    await invoke(
      example.sendReceipts,
      sqsEvent(sqsRecord(randomUUID(), paidOrder("o-300"), { receiveCount: 1, firstReceived: 1 })),
      lambdaContext(4_000, FUNCTION.receipts),
    );
    const [begin] = leases.slice(sent);
    expect(begin?.script).toBe("idempotency-begin");
    expect(begin?.lease).toBeGreaterThan(4_900);
    expect(begin?.lease).toBeLessThanOrEqual(5_000);
  });
});

describe("every lease the example sent", () => {
  it("was bounded by its invocation's remaining time plus the safety margin", () => {
    expect(leases.filter((l) => l.script === "acquire").length).toBeGreaterThanOrEqual(8);
    expect(leases.filter((l) => l.script === "idempotency-begin").length).toBeGreaterThanOrEqual(6);
    for (const sent of leases) {
      // A few ms pass between sizing the lease and sending it: the remaining time shrank by them.
      expect(sent.lease).toBeLessThanOrEqual(sent.remaining + DEFAULT_LEASE_SAFETY + 25);
      expect(sent.lease).toBeGreaterThan(sent.remaining + DEFAULT_LEASE_SAFETY - 100);
    }
  });
});

describe("with Redis down", () => {
  it("answers 503 over HTTP and reports every record as a batch item failure, before the deadline", async () => {
    redis.on("error", () => {}); // the test's own connection: its reconnections are expected
    await server.stop();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const withdrawing = lambdaContext(1_000, FUNCTION.withdraw);
      const refused = await invoke(
        example.withdraw,
        withdrawalEvent("42", '{"amount":1}'),
        withdrawing,
      );
      expect(refused).toMatchObject({ statusCode: 503, headers: { "Retry-After": "1" } });
      expect(withdrawing.getRemainingTimeInMillis()).toBeGreaterThan(100);

      const ordering = lambdaContext(1_000, FUNCTION.orders);
      const event = orderEvent("ada", '{"item":"book"}', [randomUUID()]);
      const unordered = await invoke(example.createOrder, event, ordering);
      expect(unordered).toMatchObject({ statusCode: 503, headers: { "Retry-After": "1" } });
      expect(ordering.getRemainingTimeInMillis()).toBeGreaterThan(100);

      const receiving = lambdaContext(1_000, FUNCTION.receipts);
      const ids = [randomUUID(), randomUUID()];
      const failed = await invoke(
        example.sendReceipts,
        sqsEvent(
          ...ids.map((id) => sqsRecord(id, paidOrder(id), { receiveCount: 1, firstReceived: 1 })),
        ),
        receiving,
      );
      expect(failed).toEqual({
        batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })),
      });
      expect(receiving.getRemainingTimeInMillis()).toBeGreaterThan(100);
      // The logs name the cause.
      expect(errors.mock.calls.flat().join("\n")).toMatch(/ECONNREFUSED/);
    } finally {
      errors.mockRestore();
    }
  });
});
