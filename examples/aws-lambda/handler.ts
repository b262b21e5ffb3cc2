/**
 * Three Lambda functions over one Redis (ioredis, `REDIS_URL`):
 *
 * - `withdraw`, behind an API Gateway HTTP API (`POST /accounts/{id}/withdrawals`): a
 *   read-modify-write of an account balance that must not interleave with another one on the
 *   same account, so it runs under a lock. A concurrent withdrawal gets a 409 with `Retry-After`.
 * - `createOrder`, behind the same API (`POST /orders`, with a JWT authorizer): a client retries
 *   with the same `Idempotency-Key` header and gets the first response back, marked
 *   `Idempotent-Replayed: true`. Keys belong to the customer the token names: another customer
 *   presenting the same key gets an order of their own. An invalid or repeated key is a 400.
 * - `sendReceipts`, on an SQS queue of paid orders: sends one receipt per order. SQS delivers at
 *   least once, so each record is processed idempotently (key: its `messageId`); a duplicate
 *   replays the first outcome, and a duplicate still in progress is reported back to SQS as a
 *   batch item failure, to be retried later.
 *
 * Every lease is bounded by the invocation's remaining time: no heartbeat, and a retry after a
 * timeout proceeds about a second after the deadline. Every Redis request ends 200 ms before
 * the deadline at the latest, so an unreachable Redis gives a 503 (withdraw, createOrder) or a
 * batch item failure (sendReceipts), never Lambda's "Task timed out". See README.md to deploy it.
 */

import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyEventV2WithJWTAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from "aws-lambda";
import { createLocker, IdempotencyConflictError, IdempotencyOutcomeUnknownError } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { headerKey, lambdaWithIdempotency, lambdaWithLock } from "edgelock/lambda";
import { Redis } from "ioredis";

/**
 * One client per execution environment, created outside the handlers and reused by every warm
 * invocation. Few retries: a Lambda invocation is better failed fast than frozen mid-retry.
 */
export const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
  maxRetriesPerRequest: 2,
});
const adapter = ioredisAdapter(redis);
const locker = createLocker({ adapter, prefix: "bank" });

// ---------------------------------------------------------------------------------------------
// API Gateway: a withdrawal under a per-account lock
// ---------------------------------------------------------------------------------------------

type HttpResult = APIGatewayProxyStructuredResultV2;

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}) =>
  ({
    statusCode,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  }) satisfies HttpResult;

/** The account's Redis key, which is also its lock's name (the route guarantees the id). */
const accountOf = (event: APIGatewayProxyEventV2) => `account:${event.pathParameters?.id}`;

/** `POST /accounts/{id}/withdrawals` with `{ "amount": 25 }`: debits the account. */
export const withdraw = lambdaWithLock(
  locker,
  accountOf,
  async (event, _context: Context, lease): Promise<HttpResult> => {
    const account = accountOf(event);
    const amount = parseAmount(event);
    if (amount === undefined) return json(400, { error: "amount must be a positive integer" });

    // Nobody else changes this balance between the read and the write: we hold the lock.
    const balance = Number((await redis.hget(account, "balance")) ?? 0);
    if (amount > balance) return json(422, { error: "insufficient funds", balance });
    await redis
      .multi()
      .hset(account, { balance: balance - amount, fence: lease.fence })
      .rpush(`${account}:ledger`, JSON.stringify({ amount: -amount, fence: lease.fence }))
      .exec();
    return json(200, { balance: balance - amount, fence: lease.fence });
  },
  {
    // The lock stayed held: another withdrawal on this account is running. No waiting (wait: 0
    // is the default); the client retries after Retry-After, derived from the holder's lease.
    onContention: (error) =>
      json(409, { error: "another operation on this account is in progress" }, error.headers),
    // Redis could not be reached, or not in the invocation's time: nothing was debited. The
    // error names the cause for the logs; the client is told to retry.
    onUnavailable: (error) => {
      console.error("withdrawal refused:", error.message);
      return json(503, { error: "try again shortly" }, error.headers);
    },
  },
);

function parseAmount(event: APIGatewayProxyEventV2): number | undefined {
  try {
    const text = event.isBase64Encoded
      ? Buffer.from(event.body ?? "", "base64").toString("utf8")
      : (event.body ?? "");
    const { amount } = JSON.parse(text) as { amount?: unknown };
    return Number.isSafeInteger(amount) && (amount as number) > 0 ? (amount as number) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// API Gateway: orders placed once per Idempotency-Key and customer
// ---------------------------------------------------------------------------------------------

type OrderRequest = APIGatewayProxyEventV2WithJWTAuthorizer;

/** The customer the JWT authorizer vouched for: the owner of the request's keys. */
const customerOf = (event: OrderRequest) => String(event.requestContext.authorizer.jwt.claims.sub);

/** Places one order per key and customer (the key from the `Idempotency-Key` header). */
const placeOrderOnce = lambdaWithIdempotency(
  async function placeOrder(event: OrderRequest, context: Context): Promise<HttpResult> {
    const order = JSON.parse(event.body ?? "{}") as { item?: unknown; quantity?: unknown };
    if (typeof order.item !== "string") return json(400, { error: "item is required" });
    const id = `ord-${context.awsRequestId}`;
    // Stands for the order store: the side effect that must not happen twice.
    await redis.rpush(`orders:${customerOf(event)}`, JSON.stringify({ id, ...order }));
    return json(201, { id, ...order }, { location: `/orders/${id}` });
  },
  {
    adapter,
    key: headerKey(), // a 400 for a key over 255 characters, not ASCII, or sent twice
    scope: customerOf, // so another customer's same key never replays this customer's order
    fingerprint: (event) => event.body, // the same key with another order: 422
  },
);

/**
 * `POST /orders` with `{ "item": "book", "quantity": 1 }` and an `Idempotency-Key` header. The
 * idempotency errors carry their HTTP status (400, 409 with `Retry-After`, 422, 503): they
 * become responses here, as middy's http-error-handler would make them.
 */
export const createOrder = async (event: OrderRequest, context: Context): Promise<HttpResult> => {
  try {
    return await placeOrderOnce(event, context);
  } catch (error) {
    const { statusCode, headers, message } = error as Partial<IdempotencyConflictError>;
    if (typeof statusCode !== "number") throw error;
    if (statusCode >= 500) console.error("order refused:", message);
    return json(statusCode, { error: statusCode >= 500 ? "try again shortly" : message }, headers);
  }
};

// ---------------------------------------------------------------------------------------------
// SQS: one receipt per paid order, whatever SQS redelivers
// ---------------------------------------------------------------------------------------------

/** The message body: a paid order. */
interface OrderPaid {
  orderId: string;
  email: string;
  total: number;
}

/** What sending a receipt produced: stored, and replayed to duplicates. */
interface Receipt {
  receiptId: string;
  orderId: string;
}

/**
 * Sends one receipt; runs at most once per message within 24 hours. Its records are its own:
 * scoped by the Lambda function's name and this function's, `sendReceipt`.
 */
const sendReceiptOnce = lambdaWithIdempotency(
  async function sendReceipt(record: SQSRecord, context: Context): Promise<Receipt> {
    const order = JSON.parse(record.body) as OrderPaid;
    const receiptId = `rcpt-${context.awsRequestId}-${order.orderId}`;
    // Stands for the email provider: the side effect that must not happen twice.
    await redis.rpush("outbox:receipts", JSON.stringify({ receiptId, to: order.email, ...order }));
    return { receiptId, orderId: order.orderId };
  },
  {
    adapter,
    key: (record) => record.messageId,
    // A redelivery has a new receiptHandle and receive count: compare the payload only.
    fingerprint: (record) => record.body,
  },
);

/**
 * The queue's handler, with `ReportBatchItemFailures` enabled on the event source mapping:
 * records that failed, or whose duplicate is still in progress, go back to the queue; the others
 * are deleted. So is a duplicate of a message whose receipt was sent but could not be kept for
 * replay (`IdempotencyOutcomeUnknownError`): it ran, and must not run again.
 */
export const sendReceipts = async (
  event: SQSEvent,
  context: Context,
): Promise<SQSBatchResponse> => {
  const outcomes = await Promise.allSettled(
    event.Records.map((record) => sendReceiptOnce(record, context)),
  );
  const batchItemFailures = outcomes.flatMap((outcome, index) => {
    if (outcome.status === "fulfilled") return [];
    if (outcome.reason instanceof IdempotencyOutcomeUnknownError) return [];
    const { messageId } = event.Records[index] as SQSRecord;
    if (!(outcome.reason instanceof IdempotencyConflictError)) {
      console.error(`message ${messageId} failed`, outcome.reason);
    }
    return [{ itemIdentifier: messageId }];
  });
  return { batchItemFailures };
};
