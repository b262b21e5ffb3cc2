/**
 * The Hono Idempotency-Key middleware on real Redis, over both transports: ioredis → a
 * redis-server, and the real `@upstash/redis` client → edgelock's gateway → a redis-server, in
 * both response encodings. Each transport starts with an empty script cache, so the NOSCRIPT
 * fallback runs too.
 */

import { randomUUID } from "node:crypto";
import type { LockAdapter } from "edgelock";
import {
  type IdempotencyMiddlewareOptions,
  type IdempotencyVariables,
  idempotency,
} from "edgelock/hono";
import { ioredisAdapter } from "edgelock/ioredis";
import { upstashAdapter } from "edgelock/upstash";
import { type Context, Hono } from "hono";
import { stream } from "hono/streaming";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blocker, delay, gate } from "../support/async.js";
import { startTestGateway } from "../support/gateway.js";
import { startRedisServer } from "../support/redis-server.js";
import { failingScript } from "../support/script-faults.js";

type AppEnv = { Variables: IdempotencyVariables };
type Handler = (c: Context<AppEnv>) => Response | Promise<Response>;

interface Transport {
  adapter: LockAdapter;
  close(): Promise<void>;
}

const transports: [string, () => Promise<Transport>][] = [
  [
    "ioredis → redis-server",
    async () => {
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
    },
  ],
  [
    "upstash (base64 encoding, automatic deserialization) → gateway → redis-server",
    async () => {
      const gateway = await startTestGateway({ encoding: "base64" });
      return { adapter: upstashAdapter(gateway.client()), close: () => gateway.close() };
    },
  ],
  [
    "upstash (plain JSON encoding, no deserialization) → gateway → redis-server",
    async () => {
      const gateway = await startTestGateway({ encoding: false });
      const client = gateway.client({ automaticDeserialization: false });
      return { adapter: upstashAdapter(client), close: () => gateway.close() };
    },
  ],
  [
    "upstash (plain JSON encoding, automatic deserialization) → gateway → redis-server",
    async () => {
      const gateway = await startTestGateway({ encoding: false });
      return { adapter: upstashAdapter(gateway.client()), close: () => gateway.close() };
    },
  ],
];

/** Asserts equal bytes (vitest's deep equality takes ~0.5 s per 64 KiB array). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

describe.each(transports)("idempotency middleware: %s", (_name, open) => {
  let transport: Transport;

  beforeAll(async () => {
    transport = await open();
  });
  afterAll(async () => {
    await transport?.close();
  });

  /** An app with the middleware on POST /orders, on a fresh prefix, counting handler runs. */
  function setup(
    handler: Handler,
    options: Partial<IdempotencyMiddlewareOptions<AppEnv>> = {},
    adapter: LockAdapter = transport.adapter,
  ) {
    const state = { runs: 0, errors: [] as unknown[] };
    const app = new Hono<AppEnv>();
    app.onError((error, c) => {
      state.errors.push(error);
      return c.text(`onError: ${error.message}`, 500);
    });
    app.post(
      "/orders",
      idempotency<AppEnv>({
        adapter,
        prefix: `it-${randomUUID()}`,
        allowGlobalKeys: true,
        ...options,
      }),
      async (c) => {
        state.runs++;
        return handler(c);
      },
    );
    /** Sends a request and reads the whole response, as an HTTP client does. */
    const send = async (key: string, body: BodyInit = '{"item":"book"}') => {
      const res = await app.request("/orders", {
        method: "POST",
        headers: { "Idempotency-Key": key, "Content-Type": "application/json" },
        body,
      });
      const bytes = res.body === null ? null : await res.arrayBuffer();
      return new Response(bytes, res);
    };
    return { app, state, send };
  }

  it("runs concurrent duplicates once: the others get 409 with Retry-After", async () => {
    const { state, send } = setup(
      async (c) => {
        await delay(100);
        return c.text("done", 201);
      },
      { lease: 5_000 },
    );
    const responses = await Promise.all(Array.from({ length: 6 }, () => send("k1")));
    const created = responses.filter((res) => res.status === 201);
    const conflicts = responses.filter((res) => res.status === 409);
    expect(created).toHaveLength(1);
    expect(conflicts).toHaveLength(5);
    for (const res of conflicts) {
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
      expect(Number(res.headers.get("Retry-After"))).toBeLessThanOrEqual(5);
      expect(((await res.json()) as { code: string }).code).toBe("idempotency_request_in_progress");
    }
    expect(state.runs).toBe(1);
  });

  it("replays the stored response byte for byte with Idempotent-Replayed", async () => {
    const { state, send } = setup((c) =>
      c.json({ id: "ord_1", note: "naïve café ☕", n: 12345 }, 201, {
        Location: "/orders/ord_1",
        "Set-Cookie": "session=secret",
      }),
    );
    const first = await send('"k-replay"');
    const firstBytes = new Uint8Array(await first.arrayBuffer());
    const replay = await send("k-replay");
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.headers.get("Location")).toBe("/orders/ord_1");
    expect(replay.headers.get("Content-Type")).toBe(first.headers.get("Content-Type"));
    expect(replay.headers.get("Set-Cookie")).toBeNull();
    expectSameBytes(new Uint8Array(await replay.arrayBuffer()), firstBytes);
    expect(state.runs).toBe(1);
  });

  it("replays a binary body byte for byte", async () => {
    const bytes = new Uint8Array(256 + 65_536);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    for (let i = 256; i < bytes.length; i += 65_536) {
      crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65_536)));
    }
    const { state, send } = setup((c) =>
      c.body(bytes, 200, { "Content-Type": "application/octet-stream" }),
    );
    expectSameBytes(new Uint8Array(await (await send("k-bin")).arrayBuffer()), bytes);
    const replay = await send("k-bin");
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expectSameBytes(new Uint8Array(await replay.arrayBuffer()), bytes);
    expect(state.runs).toBe(1);
  });

  it("replays a response without a body, and one whose body looks like JSON", async () => {
    const { send } = setup((c) =>
      c.req.header("Idempotency-Key") === "k-204" ? c.body(null, 204) : c.text("1234", 200),
    );
    await send("k-204");
    const empty = await send("k-204");
    expect(empty.status).toBe(204);
    expect(empty.headers.get("Idempotent-Replayed")).toBe("true");
    await send("k-num");
    const numeric = await send("k-num");
    expect(numeric.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await numeric.text()).toBe("1234");
  });

  it("refuses the same key with a different body: 422, checked before in-progress", async () => {
    const owner = blocker();
    const { state, send } = setup(async (c) => {
      await owner.block();
      return c.text("first");
    });
    const first = send("k-422", "a");
    await owner.started;
    const whileRunning = await send("k-422", "b");
    expect(whileRunning.status).toBe(422);
    expect(((await whileRunning.json()) as { code: string }).code).toBe("idempotency_key_reused");
    owner.release();
    await (await first).text();
    expect((await send("k-422", "b")).status).toBe(422);
    expect(await (await send("k-422", "a")).text()).toBe("first");
    expect(state.runs).toBe(1);
  });

  it("answers 409 while the first request runs, then replays its response", async () => {
    const owner = blocker();
    const { state, send } = setup(async (c) => {
      await owner.block();
      return c.text("finished");
    });
    const first = send("k-409");
    await owner.started;
    const duplicate = await send("k-409");
    expect(duplicate.status).toBe(409);
    // Not the 30 s lease: the first has just started, and no run was seen to take longer.
    expect(duplicate.headers.get("Retry-After")).toBe("1");
    owner.release();
    expect(await (await first).text()).toBe("finished");
    const replay = await send("k-409");
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("finished");
    expect(state.runs).toBe(1);
  });

  it("waits for the first request in wait mode and replays its response", async () => {
    const started = gate();
    const { state, send } = setup(
      async (c) => {
        started.open();
        await delay(100);
        return c.text("waited for");
      },
      { wait: 3_000 },
    );
    const running = send("k-wait");
    await started.promise;
    const second = await send("k-wait");
    const first = await running;
    expect(await first.text()).toBe("waited for");
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await second.text()).toBe("waited for");
    expect(state.runs).toBe(1);
  });

  it("frees the key when the handler throws, keeping the original error", async () => {
    const boom = new Error("boom");
    const { state, send } = setup((c) => {
      if (state.runs === 1) throw boom;
      return c.text("second try");
    });
    const failed = await send("k-throw");
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe("onError: boom");
    expect(state.errors).toEqual([boom]);
    expect(await (await send("k-throw")).text()).toBe("second try");
    expect(state.runs).toBe(2);
  });

  it("lets a retry run once a crashed owner's lease lapses; the stale owner stores nothing", async () => {
    // The first owner never renews (it "crashed"), so its 300 ms lease lapses on the server.
    const crashed = failingScript(transport.adapter, "idempotency-renew", "crashed");
    const hang = blocker();
    const lost: string[] = [];
    const { state, send } = setup(
      async (c) => {
        const run = state.runs;
        if (run === 1) await hang.block();
        return c.text(`run ${run}`);
      },
      { lease: 300, onLeaseLost: (_c, info) => lost.push(info.key) },
      crashed,
    );
    const stale = send("k-crash");
    await hang.started;
    expect((await send("k-crash")).status).toBe(409);
    await delay(350);
    expect(await (await send("k-crash")).text()).toBe("run 2");
    hang.release();
    expect(await (await stale).text()).toBe("run 1");
    expect(lost).toEqual(["k-crash"]);
    const replay = await send("k-crash");
    expect(await replay.text()).toBe("run 2");
    expect(state.runs).toBe(2);
  });

  it("records a streamed body over the cap as not replayable", async () => {
    const { state, send } = setup(
      (c) =>
        stream(c, async (s) => {
          for (let i = 0; i < 4; i++) await s.write(`chunk-${i};`);
        }),
      { maxStoredBodyBytes: 10 },
    );
    expect(await (await send("k-big")).text()).toBe("chunk-0;chunk-1;chunk-2;chunk-3;");
    const duplicate = await send("k-big");
    expect(duplicate.status).toBe(409);
    expect(((await duplicate.json()) as { code: string }).code).toBe("idempotency_outcome_unknown");
    expect(state.runs).toBe(1);
  });
});
