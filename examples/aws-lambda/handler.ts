/**
 * Two Lambda functions over one Redis (ioredis, `REDIS_URL`):
 *
 * - `withdraw`, behind an API Gateway HTTP API (`POST /accounts/{id}/withdrawals`): a
 *   read-modify-write of an account balance that must not interleave with another one on the
 *   same account, so it runs under a lock. A concurrent withdrawal gets a 409 with `Retry-After`.
 * - `sendReceipts`, on an SQS queue of paid orders: sends one receipt per order. SQS delivers at
 *   least once, so each record is processed idempotently (key: its `messageId`); a duplicate
 *   replays the first outcome, and a duplicate still in progress is reported back to SQS as a
 *   batch item failure, to be retried later.
 *
 * Both leases are bounded by the invocation's remaining time: no heartbeat, and a retry after a
 * timeout proceeds about a second after the deadline. Every Redis request ends 200 ms before
 * the deadline at the latest, so an unreachable Redis gives a 503 (withdraw) or a batch item
 * failure (sendReceipts), never Lambda's "Task timed out". See README.md to deploy it.
 */

import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from "aws-lambda";
import { createLocker, IdempotencyConflictError, IdempotencyOutcomeUnknownError } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { lambdaWithIdempotency, lambdaWithLock } from "edgelock/lambda";
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
