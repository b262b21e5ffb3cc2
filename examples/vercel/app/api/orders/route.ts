/**
 * `POST /api/orders` as a Next.js App Router route handler on Vercel's Edge runtime, over Upstash
 * Redis: a Hono app with edgelock's idempotency and lock middleware, whose release and response
 * storage run in Vercel's `waitUntil`, after the response has gone out.
 *
 * - Each order carries an `Idempotency-Key` (required): a retry gets the first response back,
 *   byte for byte, with `Idempotent-Replayed: true`; a retry while the first still runs gets 409
 *   with `Retry-After`; the same key with a different order gets 422.
 * - A customer's orders are placed one at a time (the stock and credit checks must not
 *   interleave): a second order waits for the first, up to 5 s, then gets 409.
 *
 * Environment: `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN` (or the `KV_REST_API_*`
 * pair Vercel's Upstash integration sets). See ../../../README.md.
 */

import { Redis } from "@upstash/redis";
import { createLocker } from "edgelock";
import { type IdempotencyVariables, idempotency, type LockVariables, lock } from "edgelock/hono";
import { upstashAdapter } from "edgelock/upstash";
import { type Context, Hono } from "hono";
import { vercelExecutionContext } from "../../../lib/execution-context";

export const runtime = "edge";

// One client per isolate, reused by every request it serves.
const redis = Redis.fromEnv();
const adapter = upstashAdapter(redis);
const locker = createLocker({ adapter, prefix: "shop" });

/** The customer placing the order: in a real app, from the session or the API key. */
const customerOf = (c: Context) => c.req.header("X-Customer-Id") ?? "guest";

/** Stands in for the slow part of placing an order (payment, stock reservation), in ms. */
const WORK_MS = 300;

const app = new Hono<{ Variables: IdempotencyVariables & LockVariables }>().basePath("/api");

app.post(
  "/orders",
  idempotency({ adapter, prefix: "shop:idem", required: true, getScope: customerOf }),
  lock({ locker, key: (c) => `customer:${customerOf(c)}`, ttl: 10_000, wait: 5_000 }),
  async (c) => {
    const order = await c.req.json<{ item: string; quantity: number }>();
    await redis.incr("shop:orders:runs"); // counts real executions: replays never get here
    await new Promise((resolve) => setTimeout(resolve, WORK_MS));
    const id = crypto.randomUUID();
    // The lock's fencing token increases with every grant: the customer's order sequence.
    const body = { id, ...order, customer: customerOf(c), sequence: c.var.lease.fence };
    return c.json(body, 201, { Location: `/api/orders/${id}` });
  },
);

/** The route handler Next.js calls; Vercel's `waitUntil` goes in as Hono's execution context. */
export async function POST(request: Request): Promise<Response> {
  return app.fetch(request, undefined, vercelExecutionContext());
}
