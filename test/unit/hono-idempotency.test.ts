/**
 * The Hono Idempotency-Key middleware over the in-memory backend, through `app.request()` with no
 * server: the test matrix of idempotency.md §6.15, and the options around it.
 */

import { InvalidArgumentError, type LockAdapter } from "edgelock";
import {
  type IdempotencyMiddlewareOptions,
  type IdempotencyVariables,
  idempotency,
} from "edgelock/hono";
import { memoryAdapter } from "edgelock/memory";
import { type Context, type ExecutionContext, Hono } from "hono";
import { stream, streamSSE } from "hono/streaming";
import { timeout } from "hono/timeout";
import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import { blocker, fakeExecutionContext } from "../support/async.js";
import { activeTimers, delay, gate, record } from "./helpers.js";

type AppEnv = { Variables: IdempotencyVariables };
type Handler = (c: Context<AppEnv>) => Response | Promise<Response>;
type Options = Partial<IdempotencyMiddlewareOptions<AppEnv>>;

const PROBLEM = "application/problem+json";
const BEGIN = "idempotency-begin";
const RENEW = "idempotency-renew";
const FINISH = "idempotency-finish";
const ABANDON = "idempotency-abandon";

/**
 * An app with the middleware on POST/PATCH/PUT/GET `/orders` and `/other`, counting handler runs
 * and collecting what reaches `app.onError`.
 */
function setup(handler: Handler = (c) => c.json({ ok: true }), options: Options = {}) {
  const state = { runs: 0, errors: [] as unknown[] };
  const app = new Hono<AppEnv>();
  app.onError((error, c) => {
    state.errors.push(error);
    return c.text(`onError: ${error.message}`, 500);
  });
  const middleware = idempotency<AppEnv>({
    allowGlobalKeys: true,
    ...options,
    adapter: options.adapter ?? memoryAdapter(),
  });
  app.on(["POST", "PATCH", "PUT", "GET"], ["/orders", "/other"], middleware, async (c) => {
    state.runs++;
    return handler(c);
  });
  return { app, state };
}

interface Send {
  key?: string;
  method?: string;
  path?: string;
  body?: BodyInit | null;
  headers?: Record<string, string>;
  ctx?: ExecutionContext;
  /** Return the response as it comes, its body unread (for streams the test reads itself). */
  raw?: boolean;
}

async function send(app: Hono<AppEnv>, request: Send = {}): Promise<Response> {
  const method = request.method ?? "POST";
  const headers = new Headers({ "Content-Type": "application/json", ...request.headers });
  if (request.key !== undefined) headers.set("Idempotency-Key", request.key);
  const body = method === "GET" ? null : (request.body ?? '{"item":"book"}');
  const init = { method, headers, body };
  const res = await app.request(request.path ?? "/orders", init, undefined, request.ctx);
  return request.raw ? res : readWhole(res);
}

/**
 * The response with its body read to the end, as an HTTP client reads it: without `waitUntil`,
 * what the middleware does once the body is out has then happened.
 */
async function readWhole(res: Response): Promise<Response> {
  const body = res.body === null ? null : await res.arrayBuffer();
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/** A memory backend on a clock the test moves. */
function manualClock() {
  const clock = { now: 0 };
  return { clock, adapter: memoryAdapter({ clock: () => clock.now }) };
}

async function problemOf(res: Response): Promise<{ code: string; status: number }> {
  expect(res.headers.get("Content-Type")).toBe(PROBLEM);
  return (await res.json()) as { code: string; status: number };
}

/** A body of every byte value, then some random ones: survives no text round trip. */
function binaryBody(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(256 + 4096);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  crypto.getRandomValues(bytes.subarray(256));
  return bytes;
}

/** Asserts equal bytes (vitest's deep equality takes ~0.5 s per 64 KiB array). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("which requests take part", () => {
  it("passes other methods through untouched, PUT and GET included by default", async () => {
    const { app, state } = setup();
    for (const method of ["GET", "PUT", "GET", "PUT"]) {
      const res = await send(app, { method, key: "k1" });
      expect(res.status).toBe(200);
      expect(res.headers.get("Idempotency-Key")).toBeNull();
    }
    expect(state.runs).toBe(4);
  });

  it("covers the configured methods", async () => {
    const { app, state } = setup(undefined, { methods: ["put"] });
    await send(app, { method: "PUT", key: "k1" });
    const again = await send(app, { method: "PUT", key: "k1" });
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    await send(app, { method: "POST", key: "k1" });
    await send(app, { method: "POST", key: "k1" });
    expect(state.runs).toBe(3);
  });

  it("runs requests without a key as usual, with key undefined", async () => {
    const seen: unknown[] = [];
    const { app, state } = setup((c) => {
      seen.push(c.var.idempotency);
      return c.text("ran");
    });
    expect((await send(app)).status).toBe(200);
    expect((await send(app)).status).toBe(200);
    expect(state.runs).toBe(2);
    expect(seen).toEqual([
      { key: undefined, replayed: false, fence: undefined },
      { key: undefined, replayed: false, fence: undefined },
    ]);
  });

  it("refuses a request without a key with 400 when required", async () => {
    const { app, state } = setup(undefined, { required: true });
    const res = await send(app);
    expect(res.status).toBe(400);
    expect(await problemOf(res)).toEqual({
      type: "about:blank",
      title: "Bad Request",
      status: 400,
      detail: expect.stringContaining("Idempotency-Key"),
      code: "idempotency_key_missing",
    });
    expect(state.runs).toBe(0);
  });

  it("lets skip(c) pass requests through", async () => {
    const { app, state } = setup(undefined, { skip: (c) => c.req.header("X-Internal") === "1" });
    await send(app, { key: "k1", headers: { "X-Internal": "1" } });
    await send(app, { key: "k1", headers: { "X-Internal": "1" } });
    expect(state.runs).toBe(2);
    await send(app, { key: "k1" });
    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(3);
  });

  it("reads the key from the configured header", async () => {
    const { app, state } = setup(undefined, { header: "X-Request-Key" });
    await send(app, { headers: { "X-Request-Key": "k1" } });
    const replay = await send(app, { headers: { "X-Request-Key": "k1" } });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.headers.get("X-Request-Key")).toBe("k1");
    expect(state.runs).toBe(1);
  });
});

describe("keys", () => {
  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["too long", "k".repeat(256)],
    ["non-ASCII", "clé-1"],
    ["a control character", "a\tb"],
    ["an unterminated string", '"abc'],
    ["text after the string", '"abc"def'],
    ["parameters", '"abc";p=1'],
    ["a bad escape", '"a\\nb"'],
    ["an empty string", '""'],
  ])("refuses %s with 400 idempotency_key_invalid", async (_what, key) => {
    const { app, state } = setup();
    const res = await send(app, { key });
    expect(res.status).toBe(400);
    expect((await problemOf(res)).code).toBe("idempotency_key_invalid");
    expect(state.runs).toBe(0);
  });

  it("accepts a key of 255 printable characters, spaces included", async () => {
    const { app, state } = setup();
    const key = "a b".padEnd(255, "~");
    expect((await send(app, { key })).status).toBe(200);
    expect((await send(app, { key })).headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it("treats a quoted (Structured Field) key and the bare key as the same key", async () => {
    const { app, state } = setup();
    const first = await send(app, { key: '"order-1"' });
    expect(first.headers.get("Idempotency-Key")).toBe('"order-1"');
    const bare = await send(app, { key: "order-1" });
    expect(bare.headers.get("Idempotent-Replayed")).toBe("true");
    expect(bare.headers.get("Idempotency-Key")).toBe("order-1");
    const escaped = await send(app, { key: '"a\\"b\\\\c"' });
    expect(escaped.status).toBe(200);
    const same = await send(app, { key: 'a"b\\c' });
    expect(same.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(2);
  });

  it("applies minLength and validate", async () => {
    const { app, state } = setup(undefined, {
      minLength: 8,
      validate: (key) => /^[0-9a-f-]+$/.test(key),
    });
    expect((await send(app, { key: "abc" })).status).toBe(400);
    expect((await send(app, { key: "not-hex-key" })).status).toBe(400);
    expect((await send(app, { key: "0123abcd" })).status).toBe(200);
    expect(state.runs).toBe(1);
  });
});

describe("replay", () => {
  it("replays the first response byte for byte, marked, without running the handler", async () => {
    const { app, state } = setup((c) =>
      c.json({ id: 42, runs: state.runs, fence: c.var.idempotency.fence }, 201, {
        Location: "/orders/42",
        ETag: '"v1"',
        "X-Trace": "abc",
      }),
    );
    const first = await send(app, { key: "k1" });
    const firstBody = new Uint8Array(await first.arrayBuffer());
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    expect(first.headers.get("Idempotency-Key")).toBe("k1");

    for (let i = 0; i < 2; i++) {
      const replay = await send(app, { key: "k1" });
      expect(replay.status).toBe(201);
      expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
      expect(replay.headers.get("Idempotency-Key")).toBe("k1");
      expect(replay.headers.get("Location")).toBe("/orders/42");
      expect(replay.headers.get("ETag")).toBe('"v1"');
      expect(replay.headers.get("Content-Type")).toBe(first.headers.get("Content-Type"));
      expect(replay.headers.get("X-Trace")).toBeNull(); // not allow-listed
      expectSameBytes(new Uint8Array(await replay.arrayBuffer()), firstBody);
    }
    expect(state.runs).toBe(1);
  });

  it("replays a binary body byte for byte", async () => {
    const bytes = binaryBody();
    const { app, state } = setup((c) =>
      c.body(bytes, 200, { "Content-Type": "application/octet-stream" }),
    );
    const first = new Uint8Array(await (await send(app, { key: "bin" })).arrayBuffer());
    expectSameBytes(first, bytes);
    const replay = await send(app, { key: "bin" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.headers.get("Content-Type")).toBe("application/octet-stream");
    expectSameBytes(new Uint8Array(await replay.arrayBuffer()), bytes);
    expect(state.runs).toBe(1);
  });

  it("never replays Set-Cookie, and replays listed headers", async () => {
    const { app } = setup(
      (c) => {
        c.header("Set-Cookie", "session=secret; HttpOnly");
        c.header("X-Order-Version", "7");
        return c.text("created", 201);
      },
      { replayHeaders: ["X-Order-Version"] },
    );
    const first = await send(app, { key: "k1" });
    expect(first.headers.get("Set-Cookie")).toContain("session=secret");
    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.headers.get("Set-Cookie")).toBeNull();
    expect(replay.headers.get("X-Order-Version")).toBe("7");
    expect(await replay.text()).toBe("created");
  });

  it("refuses to list Set-Cookie as a replayed header", () => {
    expect(() =>
      idempotency({
        adapter: memoryAdapter(),
        allowGlobalKeys: true,
        replayHeaders: ["Set-Cookie"],
      }),
    ).toThrow(InvalidArgumentError);
  });

  it("replays a response without a body", async () => {
    const { app, state } = setup((c) => c.body(null, 204));
    expect((await send(app, { key: "k1" })).status).toBe(204);
    const replay = await send(app, { key: "k1" });
    expect(replay.status).toBe(204);
    expect(replay.body).toBeNull();
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it("marks replays with the configured header name", async () => {
    const { app } = setup(undefined, { replayedHeader: "Idempotency-Replayed" });
    await send(app, { key: "k1" });
    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotency-Replayed")).toBe("true");
    expect(replay.headers.get("Idempotent-Replayed")).toBeNull();
  });

  it("tells onExecute and onReplay, and outer middleware sees c.var.idempotency", async () => {
    const executed: unknown[] = [];
    const replayed: unknown[] = [];
    const outer: unknown[] = [];
    const app = new Hono<AppEnv>();
    app.use(async (c, next) => {
      await next();
      outer.push(c.var.idempotency);
    });
    app.post(
      "/orders",
      idempotency<AppEnv>({
        adapter: memoryAdapter(),
        allowGlobalKeys: true,
        onExecute: (c, info) => executed.push({ path: c.req.path, ...info }),
        onReplay: (_c, info) => replayed.push(info),
      }),
      (c) => c.text("ok", 202),
    );
    await send(app, { key: "k1" });
    await send(app, { key: "k1" });
    expect(executed).toEqual([{ path: "/orders", key: "k1", fence: expect.any(Number) }]);
    expect(replayed).toEqual([{ key: "k1", status: 202 }]);
    expect(outer).toEqual([
      { key: "k1", replayed: false, fence: expect.any(Number) },
      { key: "k1", replayed: true, fence: undefined },
    ]);
  });
});

describe("fingerprint", () => {
  it("refuses the same key with a different body: 422, and keeps the first record", async () => {
    const { app, state } = setup((c) => c.text("first"));
    await send(app, { key: "k1", body: '{"item":"book"}' });
    const reused = await send(app, { key: "k1", body: '{"item":"lamp"}' });
    expect(reused.status).toBe(422);
    expect(await problemOf(reused)).toMatchObject({
      title: "Unprocessable Content",
      code: "idempotency_key_reused",
    });
    // The fingerprint survived completion, and the refusal disturbed nothing.
    const replay = await send(app, { key: "k1", body: '{"item":"book"}' });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it.each([
    ["a different query", "/orders?x=1", "/orders?x=2"],
    ["a different content type", "/orders", "/orders"],
  ])("refuses %s with 422", async (what, path1, path2) => {
    const { app } = setup();
    await send(app, { key: "k1", path: path1 });
    const headers =
      what === "a different content type" ? { "Content-Type": "text/plain" } : undefined;
    const res = await send(app, { key: "k1", path: path2, ...(headers && { headers }) });
    expect(res.status).toBe(422);
  });

  it("ignores the order of query parameters", async () => {
    const { app, state } = setup();
    await send(app, { key: "k1", path: "/orders?a=1&b=2" });
    const replay = await send(app, { key: "k1", path: "/orders?b=2&a=1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it("scopes keys by method and path: the same key elsewhere is a new request", async () => {
    const { app, state } = setup((c) => c.text(`${c.req.method} ${c.req.path}`));
    await send(app, { key: "k1" });
    const patch = await send(app, { key: "k1", method: "PATCH", body: "{}" });
    const other = await send(app, { key: "k1", path: "/other", body: "{}" });
    expect(patch.status).toBe(200);
    expect(await patch.text()).toBe("PATCH /orders");
    expect(other.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await other.text()).toBe("POST /other");
    expect(state.runs).toBe(3);
  });

  it("checks keys only with fingerprint: false", async () => {
    const { app, state } = setup(undefined, { fingerprint: false });
    await send(app, { key: "k1", body: "a" });
    const replay = await send(app, { key: "k1", body: "b" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it("hashes a custom fingerprint as canonical JSON", async () => {
    const { app, state } = setup(undefined, {
      fingerprint: async (c) => ({ body: await c.req.json(), path: c.req.path }),
    });
    await send(app, { key: "k1", body: '{"a":1,"b":[1,2]}' });
    const sameMeaning = await send(app, { key: "k1", body: '{ "b": [1, 2], "a": 1 }' });
    expect(sameMeaning.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await send(app, { key: "k1", body: '{"a":2,"b":[1,2]}' })).status).toBe(422);
    expect(state.runs).toBe(1);
  });

  it("adds fingerprintHeaders to the fingerprint", async () => {
    const { app } = setup(undefined, { fingerprintHeaders: ["Api-Version"] });
    await send(app, { key: "k1", headers: { "Api-Version": "2024-01-01" } });
    const other = await send(app, { key: "k1", headers: { "Api-Version": "2025-01-01" } });
    expect(other.status).toBe(422);
  });

  it("checks the fingerprint before the in-progress state: 422 while the first runs", async () => {
    const first = blocker();
    const { app, state } = setup(async (c) => {
      await first.block();
      return c.text("done");
    });
    const running = send(app, { key: "k1", body: "a" });
    await first.started;
    const reused = await send(app, { key: "k1", body: "b" });
    expect(reused.status).toBe(422);
    first.release();
    expect((await running).status).toBe(200);
    expect(state.runs).toBe(1);
  });

  it("refuses a body too large to fingerprint with 413, streamed or declared", async () => {
    const { app, state } = setup(undefined, { maxBodyBytes: 16 });
    const streamed = await send(app, { key: "k1", body: "x".repeat(17) });
    expect(streamed.status).toBe(413);
    expect(await problemOf(streamed)).toMatchObject({
      title: "Content Too Large",
      code: "idempotency_body_too_large",
    });
    const declared = await send(app, {
      key: "k2",
      body: "x".repeat(17),
      headers: { "Content-Length": "17" },
    });
    expect(declared.status).toBe(413);
    expect(state.runs).toBe(0);
    expect((await send(app, { key: "k3", body: "x".repeat(16) })).status).toBe(200);
  });

  it("leaves the body readable by the handler, as text, JSON or from c.req.raw", async () => {
    const { app } = setup(async (c) => {
      const raw = await c.req.raw.clone().text();
      const json = await c.req.json();
      return c.json({ raw, json });
    });
    const res = await send(app, { key: "k1", body: '{"n":1}' });
    expect(await res.json()).toEqual({ raw: '{"n":1}', json: { n: 1 } });
    const declared = await send(app, {
      key: "k2",
      body: '{"n":2}',
      headers: { "Content-Length": "7" },
    });
    expect(await declared.json()).toEqual({ raw: '{"n":2}', json: { n: 2 } });
  });

  it("fingerprints a body an earlier middleware already read", async () => {
    const app = new Hono<AppEnv>();
    const parsed: unknown[] = [];
    app.use(async (c, next) => {
      parsed.push(await c.req.json());
      await next();
    });
    app.post(
      "/orders",
      idempotency<AppEnv>({ adapter: memoryAdapter(), allowGlobalKeys: true }),
      async (c) => c.json(await c.req.json()),
    );
    expect(await (await send(app, { key: "k1", body: '{"n":1}' })).json()).toEqual({ n: 1 });
    expect((await send(app, { key: "k1", body: '{"n":2}' })).status).toBe(422);
    const replay = await send(app, { key: "k1", body: '{"n":1}' });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(parsed).toEqual([{ n: 1 }, { n: 2 }, { n: 1 }]);
  });
});

describe("concurrent duplicates", () => {
  it("runs the handler once: the duplicate gets 409 with Retry-After, then the replay", async () => {
    const owner = blocker();
    const { app, state } = setup(
      async (c) => {
        await owner.block();
        return c.text("done");
      },
      { lease: 5_000 },
    );
    const first = send(app, { key: "k1" });
    await owner.started;
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    // Not the 5 s lease: the first has just started, and no run was seen to take longer.
    expect(duplicate.headers.get("Retry-After")).toBe("1");
    expect(await problemOf(duplicate)).toMatchObject({
      title: "Conflict",
      code: "idempotency_request_in_progress",
    });
    owner.release();
    expect(await (await first).text()).toBe("done");
    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("done");
    expect(state.runs).toBe(1);
  });

  it("runs once among many simultaneous duplicates", async () => {
    const { app, state } = setup(async (c) => {
      await delay(20);
      return c.text("done");
    });
    const responses = await Promise.all(Array.from({ length: 8 }, () => send(app, { key: "k1" })));
    const statuses = responses.map((res) => res.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    expect(state.runs).toBe(1);
  });

  it("never lets a rejected duplicate touch the owner's record", async () => {
    const recording = record(memoryAdapter());
    const owner = blocker();
    const { app, state } = setup(
      async (c) => {
        await owner.block();
        return c.text("owner");
      },
      { adapter: recording.adapter },
    );
    const first = send(app, { key: "k1", body: "a" });
    await owner.started;
    expect((await send(app, { key: "k1", body: "a" })).status).toBe(409);
    expect((await send(app, { key: "k1", body: "b" })).status).toBe(422);
    expect(recording.of(ABANDON)).toHaveLength(0);
    expect(recording.of(FINISH)).toHaveLength(0);
    owner.release();
    await (await first).text();
    expect(await (await send(app, { key: "k1", body: "a" })).text()).toBe("owner");
    expect(state.runs).toBe(1);
  });

  it("waits for the first request in wait mode and replays its response", async () => {
    const started = gate();
    const { app, state } = setup(
      async (c) => {
        started.open();
        await delay(60);
        return c.text(`run ${state.runs}`, 201);
      },
      { wait: 2_000 },
    );
    const running = send(app, { key: "k1" });
    await started.promise;
    const second = await send(app, { key: "k1" });
    const first = await running;
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await second.text()).toBe(await first.text());
    expect(state.runs).toBe(1);
  });

  it("gives up waiting after wait ms with 409", async () => {
    const owner = blocker();
    const { app, state } = setup(
      async (c) => {
        await owner.block();
        return c.text("late");
      },
      { wait: 40 },
    );
    const first = send(app, { key: "k1" });
    await owner.started;
    const started = performance.now();
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    owner.release();
    await first;
    expect(state.runs).toBe(1);
  });

  it("runs the waiting duplicate itself if the first one's outcome was not stored", async () => {
    const started = gate();
    const { app, state } = setup(
      async (c) => {
        const run = state.runs;
        started.open();
        await delay(30);
        return run === 1 ? c.text("unavailable", 503) : c.text("ok");
      },
      { wait: 2_000 },
    );
    const running = send(app, { key: "k1" });
    await started.promise;
    const second = await send(app, { key: "k1" });
    const first = await running;
    expect(first.status).toBe(503);
    expect(second.status).toBe(200);
    expect(second.headers.get("Idempotent-Replayed")).toBeNull();
    expect(state.runs).toBe(2);
  });
});

describe("the lease", () => {
  it("lets a retry run after a crashed owner's lease lapses; the stale owner stores nothing", async () => {
    const { clock, adapter } = manualClock();
    // The first owner "crashes": it never renews, and its handler hangs.
    const recording = record(adapter, (call, run) =>
      call.script === RENEW ? Promise.reject(new Error("crashed")) : run(),
    );
    const hang = blocker();
    const lost: string[] = [];
    const fences: number[] = [];
    const { app, state } = setup(
      async (c) => {
        fences.push(c.var.idempotency.fence ?? -1);
        if (state.runs === 1) await hang.block();
        return c.text(`run ${state.runs}`);
      },
      { adapter: recording.adapter, lease: 1_000, onLeaseLost: (_c, info) => lost.push(info.key) },
    );
    const stale = send(app, { key: "k1" });
    await hang.started;
    expect((await send(app, { key: "k1" })).status).toBe(409);

    clock.now += 1_001; // the lease lapses
    const retry = await send(app, { key: "k1" });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe("run 2");
    expect(fences[1]).toBeGreaterThan(fences[0] ?? Number.POSITIVE_INFINITY);

    hang.release(); // the stale owner finishes late: its client gets its response, nothing stored
    const staleRes = await stale;
    expect(await staleRes.text()).toBe("run 2"); // runs was 2 by then
    expect(lost).toEqual(["k1"]);
    expect(recording.of(FINISH).map((call) => call.reply)).toEqual([1, 0]);

    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("run 2");
    expect(state.runs).toBe(2);
  });

  it("renews the lease while a slow handler runs, so duplicates stay refused", async () => {
    const recording = record(memoryAdapter());
    const { app, state } = setup(
      async (c) => {
        await delay(250);
        return c.text("slow");
      },
      { adapter: recording.adapter, lease: 90 },
    );
    const first = send(app, { key: "k1" });
    await delay(180); // two leases
    expect((await send(app, { key: "k1" })).status).toBe(409);
    await first;
    expect(recording.of(RENEW).length).toBeGreaterThanOrEqual(2);
    expect(recording.of(RENEW).every((call) => call.reply === 1)).toBe(true);
    expect(state.runs).toBe(1);
  });

  it("leaves no timer behind", async () => {
    const before = activeTimers();
    const { app } = setup(undefined, { lease: 60 });
    await (await send(app, { key: "k1" })).text();
    await send(app, { key: "k1" });
    expect(activeTimers()).toBe(before);
  });
});

describe("outcome policy", () => {
  it("frees the key when the handler throws, and app.onError gets the original error", async () => {
    const boom = new Error("boom");
    const { app, state } = setup(() => {
      if (state.runs === 1) throw boom;
      return new Response("second try");
    });
    const failed = await send(app, { key: "k1" });
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe("onError: boom");
    expect(state.errors).toEqual([boom]);
    const retry = await send(app, { key: "k1" });
    expect(await retry.text()).toBe("second try");
    expect(state.runs).toBe(2);
  });

  it("does not let a store failure during the release mask the handler's error", async () => {
    const recording = record(memoryAdapter(), (call, run) =>
      call.script === ABANDON ? Promise.reject(new Error("store down")) : run(),
    );
    const boom = new Error("boom");
    const { app, state } = setup(
      () => {
        throw boom;
      },
      { adapter: recording.adapter },
    );
    const res = await send(app, { key: "k1" });
    expect(res.status).toBe(500);
    expect(await res.text()).toBe("onError: boom");
    expect(state.errors).toEqual([boom]);
    expect(recording.of(ABANDON).length).toBeGreaterThan(0);
  });

  it("frees the key and rethrows when the handler throws a non-Error", async () => {
    const { app, state } = setup(() => {
      throw "not an error";
    });
    await expect(send(app, { key: "k1" })).rejects.toBe("not an error");
    await expect(send(app, { key: "k1" })).rejects.toBe("not an error");
    expect(state.runs).toBe(2);
  });

  it("stores and replays 4xx responses", async () => {
    const { app, state } = setup((c) => c.json({ error: "insufficient funds" }, 402));
    await send(app, { key: "k1" });
    const replay = await send(app, { key: "k1" });
    expect(replay.status).toBe(402);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.json()).toEqual({ error: "insufficient funds" });
    expect(state.runs).toBe(1);
  });

  it.each([408, 409, 425, 429, 500, 503])("frees the key on a %i by default", async (status) => {
    const { app, state } = setup((c) => c.text("transient", status as 500));
    expect((await send(app, { key: "k1" })).status).toBe(status);
    const retry = await send(app, { key: "k1" });
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    expect(retry.headers.get("Idempotency-Key")).toBe("k1");
    expect(state.runs).toBe(2);
  });

  it('replays a 500 with storeResponses: "all"', async () => {
    const { app, state } = setup((c) => c.text("failed for good", 500), { storeResponses: "all" });
    await send(app, { key: "k1" });
    const replay = await send(app, { key: "k1" });
    expect(replay.status).toBe(500);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("failed for good");
    expect(state.runs).toBe(1);
  });

  it('stores only 2xx and 3xx with storeResponses: "success"', async () => {
    const { app, state } = setup(
      (c) => (state.runs === 1 ? c.text("bad", 400) : c.redirect("/orders/1", 303)),
      { storeResponses: "success" },
    );
    expect((await send(app, { key: "k1" })).status).toBe(400);
    expect((await send(app, { key: "k1" })).status).toBe(303);
    const replay = await send(app, { key: "k1" });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("Location")).toBe("/orders/1");
    expect(state.runs).toBe(2);
  });

  it('holds the key for one lease with onThrow: "hold": duplicates get outcome_unknown', async () => {
    const { clock, adapter } = manualClock();
    const { app, state } = setup(
      () => {
        throw new Error("half done");
      },
      { adapter, lease: 1_000, onThrow: "hold" },
    );
    expect((await send(app, { key: "k1" })).status).toBe(500);
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    expect((await problemOf(duplicate)).code).toBe("idempotency_outcome_unknown");
    expect(state.runs).toBe(1);
    clock.now += 1_001;
    await send(app, { key: "k1" });
    expect(state.runs).toBe(2);
  });

  it('replays the error response with onThrow: "store-500"', async () => {
    const boom = new Error("charged, then crashed");
    const { app, state } = setup(
      () => {
        throw boom;
      },
      { onThrow: "store-500" },
    );
    await send(app, { key: "k1" });
    const replay = await send(app, { key: "k1" });
    expect(replay.status).toBe(500);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("onError: charged, then crashed");
    expect(state.errors).toEqual([boom]);
    expect(state.runs).toBe(1);
  });
});

describe("hono/timeout", () => {
  it("keeps the key claimed after a 504 from a timeout inside it, until the lease lapses", async () => {
    const { clock, adapter } = manualClock();
    const recording = record(adapter);
    const release = gate();
    const app = new Hono<AppEnv>();
    let runs = 0;
    let finished = false;
    app.post(
      "/orders",
      idempotency<AppEnv>({ adapter: recording.adapter, allowGlobalKeys: true, lease: 1_000 }),
      timeout(20),
      async (c) => {
        runs++;
        await release.promise;
        finished = true;
        return c.text("finally");
      },
    );
    const res = await send(app as Hono<AppEnv>, { key: "k1" });
    expect(res.status).toBe(504);
    expect(finished).toBe(false);
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    expect((await problemOf(duplicate)).code).toBe("idempotency_request_in_progress");
    release.open();
    await delay(20); // the handler, then what the middleware does after it
    expect(finished).toBe(true);
    expect((await send(app, { key: "k1" })).status).toBe(409);
    expect(recording.of(ABANDON)).toHaveLength(0);
    expect(recording.of(FINISH)).toHaveLength(0);
    clock.now += 1_001;
    expect(await (await send(app, { key: "k1" })).text()).toBe("finally"); // runs again
    expect(runs).toBe(2);
  });

  it("keeps the key claimed after a 504 from a timeout outside it", async () => {
    const { clock, adapter } = manualClock();
    const recording = record(adapter);
    const release = gate();
    const app = new Hono<AppEnv>();
    let runs = 0;
    let finished = false;
    app.use(timeout(20));
    app.post(
      "/orders",
      idempotency<AppEnv>({ adapter: recording.adapter, allowGlobalKeys: true, lease: 1_000 }),
      async (c) => {
        runs++;
        if (runs === 1) await release.promise;
        finished = true;
        return c.text("finally");
      },
    );
    expect((await send(app, { key: "k1" })).status).toBe(504);
    expect((await send(app, { key: "k1" })).status).toBe(409);
    release.open();
    await delay(20); // the handler, then what the middleware does after it
    expect(finished).toBe(true);
    expect((await send(app, { key: "k1" })).status).toBe(409); // not released, not stored
    expect(recording.of(ABANDON)).toHaveLength(0);
    expect(recording.of(FINISH)).toHaveLength(0);
    clock.now += 1_001;
    expect(await (await send(app, { key: "k1" })).text()).toBe("finally");
    expect(runs).toBe(2);
  });
});

describe("streamed bodies", () => {
  const encoder = new TextEncoder();

  it("stores a streamed body under the cap from a tee, and replays it", async () => {
    const { app, state } = setup((c) =>
      stream(c, async (s) => {
        for (const part of ["alpha,", "beta,", "gamma"]) {
          await s.write(part);
          await delay(2);
        }
      }),
    );
    const first = await send(app, { key: "k1" });
    expect(await first.text()).toBe("alpha,beta,gamma");
    const replay = await send(app, { key: "k1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await replay.text()).toBe("alpha,beta,gamma");
    expect(state.runs).toBe(1);
  });

  it("streams a body over the cap whole, and records it as not replayable", async () => {
    const { app, state } = setup(
      (c) =>
        stream(c, async (s) => {
          for (let i = 0; i < 4; i++) await s.write(encoder.encode(`chunk-${i};`));
        }),
      { maxStoredBodyBytes: 10 },
    );
    const first = await send(app, { key: "k1" });
    expect(await first.text()).toBe("chunk-0;chunk-1;chunk-2;chunk-3;");
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    expect((await problemOf(duplicate)).code).toBe("idempotency_outcome_unknown");
    expect(state.runs).toBe(1);
  });

  it("frees the key when the body stream errors", async () => {
    const { app, state } = setup(() => {
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) controller.error(new Error("upstream broke"));
          else controller.enqueue(encoder.encode("partial"));
          sent = true;
        },
      });
      return new Response(body);
    });
    const first = await send(app, { key: "k1", raw: true });
    await expect(first.text()).rejects.toThrow();
    await delay(5);
    const retry = await send(app, { key: "k1", raw: true });
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    await expect(retry.text()).rejects.toThrow();
    expect(state.runs).toBe(2);
  });

  it("passes event streams through: the key is held while they flow, then freed", async () => {
    const flowing = gate();
    const { app, state } = setup((c) =>
      streamSSE(c, async (s) => {
        await s.writeSSE({ data: "one" });
        await flowing.promise;
        await s.writeSSE({ data: "two" });
      }),
    );
    const first = await send(app, { key: "k1", raw: true });
    expect(first.headers.get("Content-Type")).toBe("text/event-stream");
    const text = first.text();
    await delay(5);
    expect((await send(app, { key: "k1" })).status).toBe(409);
    flowing.open();
    expect(await text).toBe("data: one\n\ndata: two\n\n");
    const again = await send(app, { key: "k1" });
    expect(again.status).toBe(200);
    expect(again.headers.get("Idempotent-Replayed")).toBeNull();
    await again.text();
    expect(state.runs).toBe(2);
  });

  it("stores after the response through the runtime's waitUntil", async () => {
    const recording = record(memoryAdapter());
    const { app, state } = setup((c) => c.text("ok"), { adapter: recording.adapter });
    const { ctx, pending } = fakeExecutionContext();
    const res = await send(app, { key: "k1", ctx, raw: true });
    expect(pending).toHaveLength(1);
    expect(await res.text()).toBe("ok");
    await Promise.all(pending);
    expect(recording.of(FINISH).map((call) => call.reply)).toEqual([1]);
    const replay = await send(app, { key: "k1", ctx });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(state.runs).toBe(1);
  });

  it("without waitUntil, has stored the record by the time the body ends", async () => {
    const recording = record(memoryAdapter(), async (call, run) => {
      if (call.script === FINISH) await delay(20);
      return run();
    });
    const { app } = setup((c) => c.text("ok"), { adapter: recording.adapter });
    const res = await send(app, { key: "k1", raw: true });
    expect(recording.of(FINISH)).toHaveLength(0); // the body's end is held back until it is stored
    expect(await res.text()).toBe("ok");
    expect(recording.of(FINISH)[0]?.settled).toBe(true);
  });
});

describe("an unreachable store", () => {
  const down = (): LockAdapter => ({
    name: "down",
    evalScript: async () => {
      throw new Error("ECONNREFUSED");
    },
  });

  it("fails closed with 503 and Retry-After; the handler does not run", async () => {
    const { app, state } = setup(undefined, { adapter: down() });
    const res = await send(app, { key: "k1" });
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(await problemOf(res)).toMatchObject({
      title: "Service Unavailable",
      code: "idempotency_store_unavailable",
    });
    expect(state.runs).toBe(0);
  });

  it("passes through with failOpen", async () => {
    const seen: unknown[] = [];
    const { app, state } = setup(
      (c) => {
        seen.push(c.var.idempotency);
        return c.text("ran");
      },
      { adapter: down(), failOpen: true },
    );
    expect((await send(app, { key: "k1" })).status).toBe(200);
    expect((await send(app, { key: "k1" })).status).toBe(200);
    expect(state.runs).toBe(2);
    expect(seen[0]).toEqual({ key: "k1", replayed: false, fence: undefined });
  });

  it("never reports a conflict as 503, even after a retried store call", async () => {
    let failNext = false;
    const recording = record(memoryAdapter(), (call, run) => {
      if (call.script === BEGIN && failNext) {
        failNext = false;
        return Promise.reject(new Error("socket hang up"));
      }
      return run();
    });
    const owner = blocker();
    const { app } = setup(
      async (c) => {
        await owner.block();
        return c.text("ok");
      },
      { adapter: recording.adapter },
    );
    const first = send(app, { key: "k1", body: "a" });
    await owner.started;
    failNext = true;
    expect((await send(app, { key: "k1", body: "a" })).status).toBe(409);
    failNext = true;
    expect((await send(app, { key: "k1", body: "b" })).status).toBe(422);
    expect(recording.of(BEGIN).filter((call) => call.error !== undefined)).toHaveLength(2);
    owner.release();
    await first;
  });

  it("records the outcome as not replayable when the response cannot be stored", async () => {
    // A transport that refuses large requests (Upstash's request size limit, say).
    const recording = record(memoryAdapter(), (call, run) =>
      call.script === FINISH && (call.args[4]?.length ?? 0) > 100
        ? Promise.reject(new Error("ERR max request size exceeded"))
        : run(),
    );
    const { app, state } = setup((c) => c.text("x".repeat(1_000)), {
      adapter: recording.adapter,
    });
    expect(await (await send(app, { key: "k1" })).text()).toHaveLength(1_000);
    const duplicate = await send(app, { key: "k1" });
    expect(duplicate.status).toBe(409);
    expect((await problemOf(duplicate)).code).toBe("idempotency_outcome_unknown");
    expect(state.runs).toBe(1);
  });

  it("still answers when storing the outcome fails; a retry then runs after the lease", async () => {
    const { clock, adapter } = manualClock();
    const recording = record(adapter, (call, run) =>
      call.script === FINISH ? Promise.reject(new Error("store down")) : run(),
    );
    const { app, state } = setup((c) => c.text("ok"), { adapter: recording.adapter, lease: 1_000 });
    expect(await (await send(app, { key: "k1" })).text()).toBe("ok");
    clock.now += 1_001;
    expect(await (await send(app, { key: "k1" })).text()).toBe("ok");
    expect(state.runs).toBe(2);
  });
});

describe("scopes", () => {
  it("never replays one principal's response to another", async () => {
    const { app, state } = setup((c) => c.text(`for ${c.req.header("X-User")}`), {
      getScope: (c) => c.req.header("X-User"),
    });
    const alice = await send(app, { key: "k1", headers: { "X-User": "alice" } });
    const bob = await send(app, { key: "k1", headers: { "X-User": "bob" } });
    expect(await alice.text()).toBe("for alice");
    expect(await bob.text()).toBe("for bob");
    expect(bob.headers.get("Idempotent-Replayed")).toBeNull();
    const aliceAgain = await send(app, { key: "k1", headers: { "X-User": "alice" } });
    expect(aliceAgain.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await aliceAgain.text()).toBe("for alice");
    expect(state.runs).toBe(2);
  });

  it("warns once, at construction, when keys are global", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    idempotency({ adapter: memoryAdapter() });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toContain("getScope");
    idempotency({ adapter: memoryAdapter(), getScope: () => "tenant" });
    idempotency({ adapter: memoryAdapter(), allowGlobalKeys: true });
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

describe("problems", () => {
  it("renders refusals with onProblem (Stripe's 400 for a reused key, say)", async () => {
    const { app } = setup(undefined, {
      onProblem: (c, problem) =>
        c.json(
          { error: { type: "idempotency_error", code: problem.code } },
          problem.status === 422 ? 400 : problem.status,
        ),
    });
    await send(app, { key: "k1", body: "a" });
    const res = await send(app, { key: "k1", body: "b" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { type: "idempotency_error", code: "idempotency_key_reused" },
    });
  });

  it("keeps headers set by earlier middleware on a refusal", async () => {
    const app = new Hono();
    app.use(async (c, next) => {
      c.header("X-Request-Id", "req-1");
      await next();
    });
    app.post("/orders", idempotency({ adapter: memoryAdapter(), allowGlobalKeys: true }), (c) =>
      c.text("ok"),
    );
    const res = await app.request("/orders", {
      method: "POST",
      headers: { "Idempotency-Key": "" },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("X-Request-Id")).toBe("req-1");
  });
});

describe("options", () => {
  it.each([
    ["options", null, /options must be an object/],
    ["adapter", { adapter: {} }, /LockAdapter/],
    ["lease", { lease: 1.5 }, /lease must be an integer number of milliseconds, got 1.5/],
    ["retention", { retention: 0 }, /retention must be between 10/],
    ["wait", { wait: -1 }, /wait must be between 0/],
    ["storeResponses", { storeResponses: "2xx" }, /storeResponses must be one of/],
    ["onThrow", { onThrow: "ignore" }, /onThrow must be one of/],
    ["methods", { methods: "POST" }, /methods must be an array/],
    ["header", { header: "Idempotency Key" }, /header must be a header name/],
    ["minLength", { minLength: 0 }, /minLength must be an integer from 1 to 255, got 0/],
    ["maxStoredBodyBytes", { maxStoredBodyBytes: -1 }, /non-negative integer number of bytes/],
    ["fingerprint", { fingerprint: true }, /fingerprint must be false or a function/],
    ["getScope", { getScope: "tenant" }, /getScope must be a function, got "tenant"/],
  ])("rejects a bad %s", (_name, options, message) => {
    const base = { adapter: memoryAdapter(), allowGlobalKeys: true };
    const given = options === null ? null : { ...base, ...options };
    expect(() => idempotency(given as unknown as IdempotencyMiddlewareOptions)).toThrow(message);
  });

  it("types c.var.idempotency", () => {
    const app = new Hono<AppEnv>();
    app.post("/", idempotency({ adapter: memoryAdapter(), allowGlobalKeys: true }), (c) => {
      expectTypeOf(c.var.idempotency.key).toEqualTypeOf<string | undefined>();
      expectTypeOf(c.var.idempotency.replayed).toEqualTypeOf<boolean>();
      expectTypeOf(c.var.idempotency.fence).toEqualTypeOf<number | undefined>();
      return c.text("ok");
    });
  });
});
