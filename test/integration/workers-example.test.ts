/**
 * The Cloudflare Workers example, as deployed: `wrangler deploy --dry-run` bundles it, and the
 * bundle runs in workerd (Miniflare) with its Upstash bindings pointing at edgelock's REST
 * gateway in front of a real redis-server. Handler runs are counted in Redis by the Worker itself.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "@upstash/redis";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { type WorkerBundle, wranglerDryRun } from "../support/wrangler.js";

const ORIGIN = "http://example.test";

let outdir: string;
let bundle: WorkerBundle;
let gateway: TestGateway;
let redis: Redis;
let worker: Miniflare;

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), "edgelock-worker-"));
  [bundle, gateway] = await Promise.all([wranglerDryRun(outdir), startTestGateway()]);
  console.log(`workers example bundle (wrangler): ${bundle.summary}`);
  redis = gateway.client();
  worker = new Miniflare({
    modules: true,
    scriptPath: bundle.path,
    modulesRoot: outdir, // module names are relative to it; the default (cwd) is not an ancestor
    compatibilityDate: "2026-04-01",
    bindings: {
      UPSTASH_REDIS_REST_URL: gateway.url,
      UPSTASH_REDIS_REST_TOKEN: gateway.token,
    },
  });
  await worker.ready;
});

afterAll(async () => {
  await worker?.dispose();
  await gateway?.close();
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

let unique = 0;
const fresh = (name: string) => `${name}-${++unique}-${Date.now()}`;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until it returns true; fails after `timeout` ms. */
async function eventually(what: string, check: () => Promise<boolean>, timeout = 5_000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await delay(20);
  }
}

/** A response read whole, so nothing is left streaming when a test ends. */
interface Reply {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  json(): unknown;
}

async function post(path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await worker.dispatchFetch(`${ORIGIN}${path}`, { method: "POST", headers, body });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const reply: Reply = {
    status: res.status,
    headers: res.headers as unknown as Headers,
    bytes,
    json: () => JSON.parse(new TextDecoder().decode(bytes)),
  };
  return reply;
}

const count = async (key: string) => Number((await redis.get<number | string>(key)) ?? 0);

describe("the Workers example bundle", () => {
  it("is one ES module with no Node built-ins and no ioredis", () => {
    expect(bundle.code).toMatch(/export\s*\{[^}]*\bdefault\b/);
    expect(bundle.code).not.toMatch(/\bfrom\s*["'](node:|ioredis)/);
    expect(bundle.code).not.toMatch(/\b(require|import)\(\s*["'](node:|ioredis)/);
  });
});

describe("POST /reports/:name/rebuild (lock) in workerd", () => {
  it("runs one of several concurrent requests; the others get 409 with Retry-After", async () => {
    const name = fresh("concurrent");
    const responses = await Promise.all(
      Array.from({ length: 6 }, () => post(`/reports/${name}/rebuild`)),
    );
    const statuses = responses.map((res) => res.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409]);
    expect(await count(`example:reports:${name}:runs`)).toBe(1);
    for (const res of responses.filter((r) => r.status === 409)) {
      expect(res.headers.get("Content-Type")).toBe("application/problem+json");
      const retryAfter = Number(res.headers.get("Retry-After"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(10); // the lock's ttl is 10 s
      expect(res.json()).toMatchObject({ status: 409, code: "lock_held" });
    }
  });

  it("turns away a request while another holds the lock, and releases it through waitUntil", async () => {
    const name = fresh("held");
    const runs = `example:reports:${name}:runs`;
    const first = post(`/reports/${name}/rebuild`);
    await eventually("the first handler runs", async () => (await count(runs)) === 1);

    const contended = await post(`/reports/${name}/rebuild`);
    expect(contended.status).toBe(409);
    expect(Number(contended.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);

    const done = await first;
    expect(done.status).toBe(200);
    const { fence } = done.json() as { fence: number };
    // The release was handed to ctx.waitUntil: the lock key disappears shortly after the response.
    await eventually("the lock is released", async () => {
      return (await redis.exists(`example:{report:${name}}`)) === 0;
    });

    const again = await post(`/reports/${name}/rebuild`);
    expect(again.status).toBe(200);
    const latest = (again.json() as { fence: number }).fence;
    expect(latest).toBeGreaterThan(fence);
    expect(await count(runs)).toBe(2);
    expect(await redis.get(`example:reports:${name}`)).toEqual({ rebuiltBy: latest });
  });
});

describe("POST /orders (idempotency) in workerd", () => {
  const RUNS = "example:orders:runs";
  const order = JSON.stringify({ item: "espresso beans", quantity: 2 });
  const headers = (key: string, customer = "c-1") => ({
    "Content-Type": "application/json",
    "Idempotency-Key": key,
    "X-Customer-Id": customer,
  });

  it("runs one of several concurrent duplicates; the rest get 409 or a byte-identical replay", async () => {
    const key = fresh("order");
    const before = await count(RUNS);
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => post("/orders", headers(key), order)),
    );
    expect(await count(RUNS)).toBe(before + 1);

    const fresh201 = replies.filter(
      (r) => r.status === 201 && !r.headers.has("Idempotent-Replayed"),
    );
    expect(fresh201).toHaveLength(1);
    const [first] = fresh201 as [Reply];
    expect(first.json()).toMatchObject({ item: "espresso beans", quantity: 2, status: "placed" });
    for (const reply of replies) {
      if (reply === first) continue;
      if (reply.status === 409) {
        expect(Number(reply.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
        expect(reply.json()).toMatchObject({ code: "idempotency_request_in_progress" });
      } else {
        expect(reply.status).toBe(201);
        expect(reply.headers.get("Idempotent-Replayed")).toBe("true");
        expect(reply.bytes).toEqual(first.bytes);
      }
    }
    expect(replies.filter((r) => r.status === 409).length).toBeGreaterThan(0);

    // The response is stored through ctx.waitUntil after it went out; a retry then replays it.
    let replay: Reply | undefined;
    await eventually("the response is stored", async () => {
      replay = await post("/orders", headers(key), order);
      return replay.status !== 409;
    });
    expect(replay?.status).toBe(201);
    expect(replay?.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay?.headers.get("Location")).toBe(first.headers.get("Location"));
    expect(replay?.bytes).toEqual(first.bytes);
    expect(await count(RUNS)).toBe(before + 1);
  });

  it("refuses a reused key (422) and a missing key (400); scopes keys per customer", async () => {
    const key = fresh("order");
    const before = await count(RUNS);
    const first = await post("/orders", headers(key), order);
    expect(first.status).toBe(201);

    const other = JSON.stringify({ item: "decaf", quantity: 1 });
    await eventually("the first response is stored", async () => {
      const reused = await post("/orders", headers(key), other);
      if (reused.status === 409) return false;
      expect(reused.status).toBe(422);
      expect(reused.json()).toMatchObject({ code: "idempotency_key_reused" });
      return true;
    });

    const missing = await post("/orders", { "Content-Type": "application/json" }, order);
    expect(missing.status).toBe(400);
    expect(missing.json()).toMatchObject({ code: "idempotency_key_missing" });

    const elsewhere = await post("/orders", headers(key, "c-2"), order);
    expect(elsewhere.status).toBe(201);
    expect(elsewhere.headers.has("Idempotent-Replayed")).toBe(false);
    expect(elsewhere.json()).not.toEqual(first.json());
    expect(await count(RUNS)).toBe(before + 2);
  });
});
