/**
 * The Hono lock middleware against a real redis-server, over both transports: `@upstash/redis`
 * → edgelock's REST gateway → redis-server, and ioredis over TCP. Requests go through
 * `app.request()`; only the lock store is real.
 */

import { createLocker, type Lease, type Locker } from "edgelock";
import { type LockVariables, lock } from "edgelock/hono";
import { ioredisAdapter } from "edgelock/ioredis";
import { upstashAdapter } from "edgelock/upstash";
import { type ExecutionContext, Hono } from "hono";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { delay, gate } from "../support/async.js";
import { startTestGateway } from "../support/gateway.js";
import { startRedisServer } from "../support/redis-server.js";

/** A locker over a real Redis, and how to tear it down. */
interface Backend {
  locker: Locker;
  close(): Promise<void>;
}

const transports: [string, () => Promise<Backend>][] = [
  [
    "upstash → gateway → redis-server",
    async () => {
      const gateway = await startTestGateway();
      const direct = new IORedis(gateway.redisUrl);
      await direct.script("FLUSH"); // exercise the NOSCRIPT fallback on the first request
      direct.disconnect();
      return {
        locker: createLocker({ adapter: upstashAdapter(gateway.client()) }),
        close: () => gateway.close(),
      };
    },
  ],
  [
    "ioredis → redis-server",
    async () => {
      const server = await startRedisServer();
      const client = new IORedis(server.url);
      await client.script("FLUSH");
      return {
        locker: createLocker({ adapter: ioredisAdapter(client) }),
        close: async () => {
          await client.quit();
          await server.stop();
        },
      };
    },
  ],
];

let unique = 0;
/** A fresh key per test, so tests never see each other's locks. */
const freshKey = (name: string) => `hono:${name}:${++unique}:${Date.now()}`;

async function mustAcquire(locker: Locker, key: string, ttl: number): Promise<Lease> {
  const lease = await locker.tryAcquire(key, ttl);
  if (!lease) throw new Error(`expected to acquire ${key}`);
  return lease;
}

for (const [name, start] of transports) {
  describe(`hono lock() over ${name}`, () => {
    let backend: Backend;
    beforeAll(async () => {
      backend = await start();
    });
    afterAll(async () => {
      await backend?.close();
    });

    it("answers 409 problem+json with Retry-After from the holder's PTTL", async () => {
      const { locker } = backend;
      const key = freshKey("contention");
      const holder = await mustAcquire(locker, key, 5_000);
      let runs = 0;
      const app = new Hono();
      app.post("/run", lock({ locker, key, ttl: 2_000 }), (c) => {
        runs++;
        return c.text("ran");
      });

      const res = await app.request("/run", { method: "POST" });

      expect(res.status).toBe(409);
      expect(res.headers.get("Content-Type")).toBe("application/problem+json");
      expect(res.headers.get("Retry-After")).toBe("5");
      expect(await res.json()).toMatchObject({ status: 409, code: "lock_held" });
      expect(runs).toBe(0);
      expect(await locker.inspect(key, holder.token)).toMatchObject({ held: true, mine: true });
      await holder.release();
    });

    it("holds the lock during the handler and releases it before the response", async () => {
      const { locker } = backend;
      const key = freshKey("release");
      const during: boolean[] = [];
      const app = new Hono<{ Variables: LockVariables }>();
      app.post("/run", lock({ locker, key, ttl: 2_000 }), async (c) => {
        during.push((await locker.inspect(key, c.var.lease.token)).mine);
        return c.json({ fence: c.var.lease.fence });
      });

      const first = await app.request("/run", { method: "POST" });
      expect(first.status).toBe(200);
      expect(during).toEqual([true]);
      expect((await locker.inspect(key)).held).toBe(false);

      // With a runtime's waitUntil too: the release is awaited before answering, so a takeover
      // it finds can still replace the response.
      const pending: Promise<unknown>[] = [];
      const ctx: ExecutionContext = {
        waitUntil: (promise) => void pending.push(promise),
        passThroughOnException() {},
        props: {},
      };
      const second = await app.request("/run", { method: "POST" }, undefined, ctx);
      expect(second.status).toBe(200);
      expect(pending).toHaveLength(0);
      expect((await locker.inspect(key)).held).toBe(false);
      const fences = [(await first.json()).fence, (await second.json()).fence];
      expect(fences[1]).toBeGreaterThan(fences[0]);
    });

    it("releases after a handler error, which reaches app.onError", async () => {
      const { locker } = backend;
      const key = freshKey("error");
      const seen: string[] = [];
      const app = new Hono();
      app.onError((error, c) => {
        seen.push(error.message);
        return c.text("failed", 500);
      });
      app.post("/run", lock({ locker, key, ttl: 2_000 }), () => {
        throw new Error("handler failed");
      });
      const res = await app.request("/run", { method: "POST" });
      expect(res.status).toBe(500);
      expect(seen).toEqual(["handler failed"]);
      expect((await locker.inspect(key)).held).toBe(false);
    });

    it("runs exactly one handler among concurrent duplicate requests", async () => {
      const { locker } = backend;
      const key = freshKey("duplicates");
      const proceed = gate();
      let runs = 0;
      const app = new Hono();
      app.post(
        "/orders/:id",
        lock({ locker, key: (c) => `${key}:${c.req.param("id")}`, ttl: 2_000 }),
        async (c) => {
          runs++;
          await proceed.promise;
          return c.text("created", 201);
        },
      );

      const requests = Array.from({ length: 8 }, () =>
        Promise.resolve(app.request("/orders/7", { method: "POST" })),
      );
      const answered: Response[] = [];
      for (const request of requests) void request.then((res) => answered.push(res));
      const deadline = Date.now() + 10_000;
      while (answered.length < 7 && Date.now() < deadline) await delay(10);
      expect(runs).toBe(1); // the other seven were turned away while the first still ran
      proceed.open();

      const statuses = (await Promise.all(requests)).map((res) => res.status).sort();
      expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
      expect(runs).toBe(1);
      expect((await locker.inspect(`${key}:7`)).held).toBe(false);
    });

    it("in wait mode, serves concurrent requests one at a time", async () => {
      const { locker } = backend;
      const key = freshKey("wait");
      let running = 0;
      let most = 0;
      const app = new Hono();
      app.post("/run", lock({ locker, key, ttl: 2_000, wait: 10_000 }), async (c) => {
        most = Math.max(most, ++running);
        await delay(30);
        running--;
        return c.text("ran");
      });
      const responses = await Promise.all(
        Array.from({ length: 4 }, () => app.request("/run", { method: "POST" })),
      );
      expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 200]);
      expect(most).toBe(1);
    });
  });
}
