/**
 * The Vercel example (a Next.js Edge route handler), bundled with esbuild for the `edge-light`
 * condition and run in Vercel's Edge Runtime sandbox with its Upstash environment pointing at
 * edgelock's REST gateway in front of a real redis-server. Handler runs are counted in Redis by
 * the route itself; the lock and the stored responses are read back from Redis.
 */

import type { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EdgeBundle } from "../support/esbuild.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import {
  bundleRoute,
  type EdgeResponse,
  type EdgeRoute,
  startRoute,
} from "../support/vercel-edge.js";

const ENTRY = "examples/vercel/app/api/orders/route.ts";
const URL = "https://shop.example/api/orders";
const RUNS = "shop:orders:runs";
const WORK_MS = 300; // the route's simulated work

let bundle: EdgeBundle;
let gateway: TestGateway;
let redis: Redis;
let route: EdgeRoute;

beforeAll(async () => {
  [bundle, gateway] = await Promise.all([bundleRoute(ENTRY), startTestGateway()]);
  redis = gateway.client();
  route = startRoute({ bundle, env: envFor(gateway) });
});

afterAll(async () => {
  await gateway?.close();
});

const envFor = (gateway: TestGateway) => ({
  UPSTASH_REDIS_REST_URL: gateway.url,
  UPSTASH_REDIS_REST_TOKEN: gateway.token,
});

let unique = 0;
const fresh = (name: string) => `${name}-${++unique}-${Date.now()}`;

/** A response read whole, and the `waitUntil` work of its request. */
interface Reply {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  json(): Record<string, unknown>;
  /** Settles when everything the request handed to `waitUntil` has. */
  settled: Promise<unknown>;
}

async function read(response: Promise<EdgeResponse>): Promise<Reply> {
  const res = await response;
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    bytes,
    json: () => JSON.parse(new TextDecoder().decode(bytes)),
    settled: res.waitUntil(),
  };
}

const order = (item: string) => JSON.stringify({ item, quantity: 1 });

const place = (key: string, customer: string, body = order("tea"), on = route) =>
  read(
    on.dispatch(URL, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Customer-Id": customer,
      },
      body,
    }),
  );

const runs = async () => Number((await redis.get<number | string>(RUNS)) ?? 0);
const lockHeld = async (customer: string) =>
  (await redis.exists(`shop:{customer:${customer}}`)) === 1;

describe("the Vercel example in the Edge Runtime", () => {
  it("bundles for edge-light with no Node built-ins and no ioredis", () => {
    expect(bundle.forbidden).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs).toContain("adapters/hono/idempotency.ts");
    expect(inputs.some((path) => path.includes("node_modules/ioredis/"))).toBe(false);
    // @upstash/redis's Web Crypto build, not its node:crypto one
    expect(inputs.some((path) => path.includes("uncrypto/dist/crypto.web"))).toBe(true);
  });

  it("runs one of several concurrent duplicates, then replays it once waitUntil is done", async () => {
    const key = fresh("order");
    const customer = fresh("customer");
    const before = await runs();
    const callsBefore = route.waitUntilCalls;

    const replies = await Promise.all(Array.from({ length: 5 }, () => place(key, customer)));
    expect(await runs()).toBe(before + 1);
    const created = replies.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    const [first] = created as [Reply];
    expect(first.json()).toMatchObject({ item: "tea", customer, sequence: expect.any(Number) });
    for (const reply of replies.filter((r) => r !== first)) {
      expect(reply.status).toBe(409);
      expect(Number(reply.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
      expect(reply.json()).toMatchObject({ code: "idempotency_request_in_progress" });
    }
    // The lock's release and the response's storage went to Vercel's waitUntil...
    expect(route.waitUntilCalls).toBeGreaterThan(callsBefore);
    await Promise.all(replies.map((reply) => reply.settled));

    // ...and once that work is done, the lock is free and the response stored: no polling.
    expect(await lockHeld(customer)).toBe(false);
    const replay = await place(key, customer);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.headers.get("Location")).toBe(first.headers.get("Location"));
    expect(replay.bytes).toEqual(first.bytes);
    expect(await runs()).toBe(before + 1);

    const reused = await place(key, customer, order("coffee"));
    expect(reused.status).toBe(422);
    expect(reused.json()).toMatchObject({ code: "idempotency_key_reused" });
  });

  it("places one customer's different orders one at a time, in fence order", async () => {
    const customer = fresh("customer");
    const before = await runs();
    const started = performance.now();
    const [a, b] = await Promise.all([
      place(fresh("order"), customer, order("tea")),
      place(fresh("order"), customer, order("cake")),
    ]);
    const elapsed = performance.now() - started;
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(await runs()).toBe(before + 2);
    // The second waited for the first's lock: the two runs did not overlap.
    expect(elapsed).toBeGreaterThanOrEqual(2 * WORK_MS - 20);
    const sequences = [a.json().sequence, b.json().sequence] as number[];
    expect(new Set(sequences).size).toBe(2);
    await Promise.all([a.settled, b.settled]);
    expect(await lockHeld(customer)).toBe(false);
  });

  it("without a Vercel request context (next dev), finishes its work before answering", async () => {
    const local = startRoute({ bundle, env: envFor(gateway), requestContext: false });
    const key = fresh("order");
    const customer = fresh("customer");
    const first = await place(key, customer, order("tea"), local);
    expect(first.status).toBe(201);
    expect(local.waitUntilCalls).toBe(0);
    // Nothing was left for later: the lock is already free and the response already stored.
    expect(await lockHeld(customer)).toBe(false);
    const replay = await place(key, customer, order("tea"), local);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.bytes).toEqual(first.bytes);
  });
});
