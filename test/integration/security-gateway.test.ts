/**
 * The gateway as an attacker meets it: the real `edgelock gateway` command (a child process, so a
 * crash would show) over real HTTP in front of a real redis-server.
 *
 * - Authentication comes first on every path, known or not, for every method.
 * - A read-only token cannot run any write the lock uses: EVAL/EVALSHA of every lock and
 *   idempotency script, SCRIPT LOAD, plain writes; alone, in a pipeline, in a transaction, in any
 *   letter case, and not through EVAL_RO / EVALSHA_RO either.
 * - Look-alike command names (`ſelect`, whose Unicode upper case is `SELECT`) cannot slip past
 *   the list of refused commands.
 * - Body limits hold at the exact byte, for multi-byte text too.
 * - Fuzzed bodies, headers, paths, methods and raw bytes only ever get 400/401/404/405/413 (or
 *   200), never 500, never a token in the answer; the process survives, prints nothing, and
 *   still serves locks afterwards.
 */
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { Redis as Upstash } from "@upstash/redis";
import {
  acquireScript,
  createLocker,
  extendScript,
  inspectScript,
  type LockScript,
  releaseScript,
} from "edgelock";
import { WRONGPASS } from "edgelock/gateway";
import { upstashAdapter } from "edgelock/upstash";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { abandonScript } from "../../src/idempotency/scripts/abandon.js";
import { beginScript } from "../../src/idempotency/scripts/begin.js";
import { finishScript } from "../../src/idempotency/scripts/finish.js";
import { renewScript } from "../../src/idempotency/scripts/renew.js";
import { type GatewayCli, startGatewayCli } from "../support/gateway-cli.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { expectNoSecret } from "../support/secrets.js";

const TOKEN = "gw-rw-Jf83kd-secret";
const READ_ONLY = "gw-ro-Qm27xp-secret";
const LIMIT = 64 * 1024;

let redis: RedisProcess;
let direct: Redis;
let gateway: GatewayCli;

beforeAll(async () => {
  redis = await startRedisServer();
  direct = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  gateway = await startGatewayCli(["--redis", redis.url, "--max-body-bytes", String(LIMIT)], {
    EDGELOCK_GATEWAY_TOKENS: TOKEN,
    EDGELOCK_GATEWAY_READONLY_TOKENS: READ_ONLY,
  });
});

afterAll(async () => {
  if (gateway?.alive()) expect(await gateway.stop()).toBe(0);
  direct?.disconnect();
  await redis?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** Sends a request to the gateway; `token` goes into a Bearer header unless null. */
async function send(
  path: string,
  init: { method?: string; token?: string | null; body?: BodyInit; headers?: HeadersInit } = {},
): Promise<Answer> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const method = init.method ?? "POST";
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers,
    duplex: "half",
    ...(method === "GET" || method === "HEAD" ? {} : { body: init.body ?? '["ping"]' }),
  } as RequestInit);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const json = (value: unknown) => JSON.stringify(value);
const errorOf = (answer: Answer) => (JSON.parse(answer.text) as { error?: unknown }).error;

describe("authentication", () => {
  const paths = ["", "/", "/pipeline", "/multi-exec", "/unknown", "/pipeline/x", "//", "/%2e%2e/"];
  const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
  const wrong: { token?: string | null; headers?: Record<string, string>; query?: string }[] = [
    { token: null },
    { token: "nope" },
    { token: `${TOKEN}x` },
    { token: TOKEN.slice(0, -1) },
    { token: TOKEN.toUpperCase() },
    { token: null, headers: { authorization: `Basic ${TOKEN}` } },
    { token: null, headers: { authorization: "Bearer" } },
    { token: null, query: "?_token=nope" },
    // The header wins over the query: a wrong header with a right ?_token= is refused.
    { token: "nope", query: `?_token=${TOKEN}` },
  ];

  it("answers 401 JSON before anything else, on every path and for every method", async () => {
    const perPath = paths.map(async (path) => {
      for (const method of methods) {
        for (const { token, headers, query = "" } of wrong) {
          const answer = await send(`${path}${query}`, {
            method,
            token: token ?? null,
            ...(headers ? { headers } : {}),
          });
          const where = `${method} ${path}${query} ${JSON.stringify(headers ?? token)}`;
          expect(answer.status, where).toBe(401);
          if (method !== "HEAD")
            expect(JSON.parse(answer.text), where).toEqual({ error: WRONGPASS });
          expect(answer.text).not.toContain(TOKEN);
        }
      }
    });
    await Promise.all(perPath);
  });

  it("with a valid token the same requests get 404 / 405 / 200: authentication really came first", async () => {
    expect((await send("/unknown", { method: "POST" })).status).toBe(404);
    expect((await send("/pipeline", { method: "GET" })).status).toBe(405);
    expect((await send("/", { method: "DELETE", token: READ_ONLY })).status).toBe(405);
    expect((await send(`/?_token=${TOKEN}`, { token: null })).status).toBe(200);
  });
});

describe("a read-only token", () => {
  const scripts: [LockScript, number][] = [
    [acquireScript, 4],
    [releaseScript, 4],
    [extendScript, 2],
    [inspectScript, 2],
    [beginScript, 1],
    [renewScript, 1],
    [finishScript, 1],
    [abandonScript, 1],
  ];
  const argv = ["el1.AAAAAAAAAAAAAAAAAAAAAAAAAAA", "5000", "604800000", "x", "x", "x", "x", "5000"];
  const writes: string[][] = [
    ...scripts.flatMap(([script, keys]) => {
      const names = ["ro:{k}", "ro:{k}:fence", "ro:{k}:queue", "ro:{k}:waiters"].slice(0, keys);
      const tail = [String(keys), ...names, ...argv];
      return [
        ["evalsha", script.sha1, ...tail],
        ["EVALSHA", script.sha1, ...tail],
        ["EvalSha", script.sha1, ...tail],
        ["eval", script.lua, ...tail],
        ["Eval", script.lua, ...tail],
      ];
    }),
    ["script", "load", "return redis.call('set', 'ro:{k}', 'loaded')"],
    ["SCRIPT", "FLUSH"],
    ["set", "ro:{k}", "v"],
    ["del", "ro:{k}"],
    ["pexpire", "ro:{k}", "1000"],
    ["incr", "ro:{k}:fence"],
    ["hset", "ro:{k}", "f", "v"],
    ["publish", "ro:inbox:k", "1"],
    ["function", "load", "#!lua name=ro\nredis.register_function('w', function() end)"],
    ["fcall", "w", "0"],
    ["evalſha", acquireScript.sha1, "0"],
  ];

  beforeAll(async () => {
    await direct.set("ro:{k}", "held-by-someone");
    for (const [script] of scripts) await direct.script("LOAD", script.lua);
  });

  it.each(["/", "/multi-exec"])("cannot run one of the lock's writes through %s", async (path) => {
    for (const command of writes) {
      const body = json(path === "/" ? command : [["get", "ro:{k}"], command]);
      const answer = await send(path, { token: READ_ONLY, body });
      expect(answer.status, command.join(" ").slice(0, 60)).toBe(400);
      expect(errorOf(answer)).toMatch(/^NOPERM /);
    }
  });

  it("cannot run them in a pipeline either: each write is refused, the reads run", async () => {
    const body = json(writes.flatMap((command) => [["get", "ro:{k}"], command]));
    const answer = await send("/pipeline", { token: READ_ONLY, body });
    expect(answer.status).toBe(200);
    const items = JSON.parse(answer.text) as { result?: unknown; error?: string }[];
    expect(items).toHaveLength(writes.length * 2);
    items.forEach((item, index) => {
      if (index % 2 === 0) expect(item).toEqual({ result: "held-by-someone" });
      else expect(item.error).toMatch(/^NOPERM /);
    });
  });

  it("cannot write through EVAL_RO / EVALSHA_RO of the lock's scripts: Redis refuses", async () => {
    for (const [name, body] of [
      ["evalsha_ro", acquireScript.sha1],
      ["eval_ro", acquireScript.lua],
    ] as const) {
      const keys = ["ro:{free}", "ro:{free}:fence", "ro:{free}:queue", "ro:{free}:waiters"];
      const args = [argv[0] ?? "", "604800000", "5000", "0"];
      const command = [name, body, "4", ...keys, ...args];
      const answer = await send("/", { token: READ_ONLY, body: json(command) });
      expect(answer.status, name).toBe(400);
      expect(errorOf(answer)).toMatch(/Write commands are not allowed from read-only scripts/);
    }
  });

  it("changed nothing, loaded nothing, and cannot take a lock through the real client", async () => {
    const client = new Upstash({ url: gateway.url, token: READ_ONLY, retry: { retries: 0 } });
    const locker = createLocker({ adapter: upstashAdapter(client), retries: 0 });
    await expect(locker.tryAcquire("ro-real", 5_000)).rejects.toMatchObject({
      code: "LOCK_UNAVAILABLE",
      message: expect.stringMatching(/NOPERM/),
    });
    expect((await direct.keys("ro:*")).sort()).toEqual(["ro:{k}"]);
    expect(await direct.get("ro:{k}")).toBe("held-by-someone");
    expect(await direct.keys("*ro-real*")).toEqual([]);
    const loaded = "return redis.call('set', 'ro:{k}', 'loaded')";
    expect(await direct.script("EXISTS", sha1(loaded))).toEqual([0]);
    expect(await direct.script("EXISTS", acquireScript.sha1)).toEqual([1]); // not flushed
    expect(await direct.call("FUNCTION", "LIST")).toEqual([]);
  });
});

/** The SHA-1 of `text`, as Redis names scripts. */
const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

describe("look-alike command names", () => {
  // "ſ" (long s) and "ı" (dotless i) upper-case to "S" and "I": folded with toUpperCase, these
  // would run SELECT, SUBSCRIBE, CLIENT ..., MULTI and MONITOR on the connection every request
  // shares. Redis folds ASCII only, so they must stay unknown commands.
  const lookAlikes = [
    ["ſelect", "1"],
    ["ſubſcribe", "ch"],
    ["clıent", "setname", "hijacked"],
    ["multı"],
    ["monıtor"],
    ["ſhutdown", "nosave"],
  ];

  it("are refused as unknown, alone, in a pipeline and in a transaction", async () => {
    await direct.set("db0-marker", "db0");
    for (const command of lookAlikes) {
      const single = await send("/", { body: json(command) });
      expect(single.status, command[0]).toBe(400);
      expect(errorOf(single)).toMatch(/^ERR unknown command/);
      const pipeline = await send("/pipeline", { body: json([command, ["get", "db0-marker"]]) });
      expect(JSON.parse(pipeline.text)).toEqual([
        { error: expect.stringMatching(/^ERR unknown command/) },
        { result: "db0" },
      ]);
      expect((await send("/multi-exec", { body: json([command]) })).status).toBe(400);
    }
  });

  it("left the shared connection as it was: database 0, not subscribed, its own name", async () => {
    expect(JSON.parse((await send("/", { body: json(["get", "db0-marker"]) })).text)).toEqual({
      result: "db0",
    });
    const name = await send("/", { body: json(["client", "getname"]) });
    expect(JSON.parse(name.text)).toEqual({ result: "edgelock-gateway" });
    expect(await direct.ping()).toBe("PONG"); // not shut down
  });
});

describe("body limits", () => {
  /** A JSON command of exactly `bytes` bytes, padded with `filler` (1 to 4 bytes each). */
  const bodyOf = (bytes: number, filler: string) => {
    const frame = json(["echo", ""]);
    const size = new TextEncoder().encode(filler).length;
    const room = bytes - frame.length;
    return json(["echo", filler.repeat(Math.floor(room / size)) + "x".repeat(room % size)]);
  };

  it.each(["x", "é", "€", "🔒"])(
    "takes exactly the limit and refuses one byte more (%s)",
    async (filler) => {
      const exact = bodyOf(LIMIT, filler);
      expect(new TextEncoder().encode(exact).length).toBe(LIMIT);
      expect((await send("/", { body: exact })).status).toBe(200);
      const over = bodyOf(LIMIT + 1, filler);
      const refused = await send("/", { body: over });
      expect(refused.status).toBe(413);
      expect(errorOf(refused)).toMatch(/too large/);
      const streamed = await send("/", {
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            const bytes = new TextEncoder().encode(over);
            for (let at = 0; at < bytes.length; at += 1_000)
              controller.enqueue(bytes.slice(at, at + 1_000));
            controller.close();
          },
        }),
      });
      expect(streamed.status).toBe(413);
    },
  );

  it("refuses an oversized body before authentication is even useful to an attacker", async () => {
    const huge = "x".repeat(LIMIT * 4);
    expect((await send("/", { token: null, body: huge })).status).toBe(401);
    expect((await send("/", { token: READ_ONLY, body: huge })).status).toBe(413);
  });
});

/** The headers of a response, one `name: value` per line. */
function headerText(headers: Headers): string {
  const lines: string[] = [];
  headers.forEach((value, name) => {
    lines.push(`${name}: ${value}`);
  });
  return lines.join("\n");
}

/** Statuses the gateway may answer a request with while Redis is up. */
const ALLOWED = [200, 400, 401, 404, 405, 413];

describe("fuzzing", () => {
  const auth = fc.constantFrom("read-write", "read-only", "none", "wrong", "query");
  const path = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("/", "", "/pipeline", "/multi-exec") },
    { weight: 1, arbitrary: fc.webPath() },
  );
  const method = fc.oneof(
    { weight: 8, arbitrary: fc.constant("POST") },
    { weight: 1, arbitrary: fc.constantFrom("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS") },
  );
  const header = fc.oneof(
    fc.constantFrom("json", "base64", "resp2", "", "text/plain"),
    fc.string({ unit: fc.constantFrom("a", "1", " ", "/", ";", "=") }),
  );
  const scalar = fc.oneof(
    fc.string(),
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
  );
  const anyJson = fc.jsonValue({ maxDepth: 5 });
  // Commands whose names are harmless whatever their arguments, plus random names.
  const name = fc.oneof(
    fc.constantFrom(
      "get",
      "set",
      "echo",
      "ping",
      "eval",
      "evalsha",
      "hset",
      "del",
      "EVAL_RO",
      "script",
    ),
    fc.string({ unit: "grapheme", minLength: 0, maxLength: 12 }),
  );
  const command = fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .tuple(name, fc.array(scalar, { maxLength: 6 }))
        .map(([n, rest]) => [n, ...rest]),
    },
    { weight: 1, arbitrary: fc.array(fc.oneof(scalar, anyJson), { maxLength: 5 }) },
    { weight: 1, arbitrary: anyJson },
  );
  const nested = fc
    .integer({ min: 1, max: 20_000 })
    .map((depth) => "[".repeat(depth) + "]".repeat(depth));
  // Well-formed commands, so that some requests get as far as Redis.
  const wellFormed = fc
    .tuple(name, fc.array(fc.string({ unit: "grapheme" }), { maxLength: 3 }))
    .map(([n, rest]) => [n, ...rest]);
  const body = fc.oneof(
    { weight: 3, arbitrary: wellFormed.map(json) },
    { weight: 2, arbitrary: fc.array(wellFormed, { minLength: 1, maxLength: 4 }).map(json) },
    fc.uint8Array({ maxLength: 2_000 }),
    command.map(json),
    fc.array(command, { maxLength: 8 }).map(json),
    anyJson.map(json),
    nested,
    nested.map((deep) => `["get", ${deep}]`),
    fc.string({ unit: "binary", maxLength: 500 }),
    fc
      .integer({ min: LIMIT - 10, max: LIMIT + 10 })
      .map((size) => `["echo","${"x".repeat(size)}"]`),
  );
  const headers = fc.record(
    {
      "content-type": header,
      "upstash-encoding": header,
      "upstash-response-format": header,
      "content-encoding": fc.constantFrom("gzip", "br", "identity"),
    },
    { requiredKeys: [] },
  );
  const request = fc.record({ auth, path, method, body, headers });
  type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;
  /** Requests that are always tried first, so every kind of answer is met whatever the seed. */
  const first: FuzzRequest[] = [
    { auth: "read-write", path: "/", method: "POST", body: '["ping"]', headers: {} },
    { auth: "read-only", path: "/pipeline", method: "POST", body: '[["get","k"]]', headers: {} },
    { auth: "read-write", path: "/", method: "POST", body: "x".repeat(LIMIT + 1), headers: {} },
    { auth: "none", path: "/", method: "POST", body: '["ping"]', headers: {} },
  ];
  const examples = first.map((example): [FuzzRequest] => [example]);

  it("answers every request with an allowed status and JSON, never a token, never a 500", async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let target = r.path;
        let token: string | null = null;
        if (r.auth === "read-write") token = TOKEN;
        if (r.auth === "read-only") token = READ_ONLY;
        if (r.auth === "wrong") token = `${TOKEN}-not`;
        if (r.auth === "query") target += `?_token=${READ_ONLY}`;
        const init = { method: r.method, token, headers: r.headers, body: r.body };
        const answer = await send(target, init);
        seen.add(answer.status);
        expect(ALLOWED).toContain(answer.status);
        if (r.auth === "none" || r.auth === "wrong") expect(answer.status).toBe(401);
        expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
        if (r.method !== "HEAD") {
          const parsed: unknown = JSON.parse(answer.text);
          if (answer.status !== 200) expect(parsed).toEqual({ error: expect.any(String) });
        }
        const shown = `${answer.text}\n${headerText(answer.headers)}`;
        expectNoSecret(shown, [TOKEN, READ_ONLY], "a response");
      }),
      { numRuns: 400, examples },
    );
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 400, 401, 413]));
  });

  it("answers or closes on raw bytes that are not HTTP, never hangs", async () => {
    const junk = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 3_000 }),
      fc
        .string({ unit: "binary", minLength: 1, maxLength: 300 })
        .map((text) => `POST / HTTP/1.1\r\nHost: x\r\n${text}\r\n\r\n`),
      fc
        .string({ minLength: 1, maxLength: 300 })
        .map(
          (text) =>
            `POST /${text} HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 5\r\n\r\n${text}`,
        ),
      fc.constantFrom(
        "GET / HTTP/9.9\r\n\r\n",
        `POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
        `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${TOKEN}\r\n\r\nzz\r\n`,
        `POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n${"X: y\r\n".repeat(5_000)}\r\n`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(junk, async (bytes) => {
        const reply = await rawExchange(bytes);
        expect(
          reply === "" || /^HTTP\/1\.1 (400|401|404|405|413|431|200) /.test(reply),
          reply.slice(0, 200),
        ).toBe(true);
        expectNoSecret(reply, [TOKEN, READ_ONLY], "a raw reply");
      }),
      { numRuns: 80 },
    );
  });

  it("left the process alive, silent and serving locks", async () => {
    expect(gateway.alive()).toBe(true);
    expect(gateway.output().trim().split("\n")).toEqual([
      expect.stringMatching(/^edgelock gateway listening on http:/),
    ]);
    const client = new Upstash({ url: gateway.url, token: TOKEN, retry: { retries: 0 } });
    const locker = createLocker({ adapter: upstashAdapter(client) });
    const first = await locker.tryAcquire("after-fuzz", 5_000);
    expect(first?.fence).toBeGreaterThan(0);
    expect(await locker.tryAcquire("after-fuzz", 5_000)).toBeNull();
    expect(await first?.release()).toBe(true);
  });
});

/**
 * Writes `bytes` on a fresh connection, half-closes it and resolves what came back before the
 * server closed (2 s at most: a hang fails the test).
 */
function rawExchange(bytes: Uint8Array | string): Promise<string> {
  const { hostname, port } = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("the gateway neither answered nor closed within 2 s"));
    }, 2_000);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", () => {}); // a reset counts as closing
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.end(bytes);
  });
}
