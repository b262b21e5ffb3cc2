/**
 * The gateway's HTTP surface with plain `fetch`: authentication on every path, statuses and JSON
 * error bodies, body validation and limits, reply shapes in both encodings, refused commands,
 * transactions that never interleave, and no token in any log.
 */
import { Redis as Upstash } from "@upstash/redis";
import { SYNC_TOKEN, WRONGPASS } from "edgelock/gateway";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { captureOutput, expectNoSecret } from "../support/secrets.js";

const TOKEN = "token-a-0123456789";
const SECOND = "token-b-9876543210";
const READ_ONLY = "token-r-5555555555";

let gateway: TestGateway;
let direct: Redis;

beforeAll(async () => {
  gateway = await startTestGateway({
    tokens: [TOKEN, SECOND, { token: READ_ONLY, readOnly: true }],
    maxBodyBytes: 64 * 1024,
  });
  direct = new Redis(gateway.redisUrl, { protocol: 2, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  direct?.disconnect();
  await gateway?.close();
});

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

interface PostOptions {
  /** The Bearer token; `null` for no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
  method?: string;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: BodyInit;
}

/** Sends a request and parses the answer as JSON (every answer of the gateway must be JSON). */
async function send(path: string, body: unknown, options: PostOptions = {}): Promise<Answer> {
  const token = options.token === undefined ? TOKEN : options.token;
  const headers: Record<string, string> = { ...options.headers };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const method = options.method ?? "POST";
  const init: RequestInit & { duplex: "half" } = {
    method,
    headers,
    duplex: "half",
    ...(method === "GET" || method === "HEAD" ? {} : { body: options.raw ?? JSON.stringify(body) }),
  };
  const response = await fetch(`${gateway.url}${path}`, init);
  const text = await response.text();
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  return { status: response.status, body: JSON.parse(text), headers: response.headers };
}

const errorOf = (answer: Answer) => (answer.body as { error?: unknown }).error;

describe("authentication", () => {
  const bodies: Record<string, unknown> = {
    "": ["ping"],
    "/": ["ping"],
    "/pipeline": [["ping"]],
    "/multi-exec": [["ping"]],
  };

  it.each(["", "/", "/pipeline", "/multi-exec", "/unknown", "/pipeline/extra"])(
    "refuses a missing or wrong token on '%s' with 401 JSON",
    async (path) => {
      for (const options of [
        { token: null },
        { token: "wrong" },
        { token: `${TOKEN}x` },
        { token: TOKEN.slice(0, -1) },
        { token: null, headers: { authorization: `Basic ${TOKEN}` } },
      ]) {
        const answer = await send(path, bodies[path] ?? ["ping"], options);
        expect(answer.status).toBe(401);
        expect(answer.body).toEqual({ error: WRONGPASS });
      }
      const viaQuery = await fetch(`${gateway.url}${path}?_token=wrong`, {
        method: "POST",
        body: "[]",
      });
      expect(viaQuery.status).toBe(401);
      expect(await viaQuery.json()).toEqual({ error: WRONGPASS });
    },
  );

  it.each(["", "/", "/pipeline", "/multi-exec"])(
    "accepts a Bearer header or ?_token= on '%s'",
    async (path) => {
      const bearer = await send(path, bodies[path]);
      expect(bearer.status).toBe(200);
      const lower = await send(path, bodies[path], {
        token: null,
        headers: { authorization: `bearer ${SECOND}` },
      });
      expect(lower.status).toBe(200);
      const query = await fetch(`${gateway.url}${path}?_token=${SECOND}`, {
        method: "POST",
        body: JSON.stringify(bodies[path]),
      });
      expect(query.status).toBe(200);
      const expected = path === "" || path === "/" ? { result: "PONG" } : [{ result: "PONG" }];
      expect(await query.json()).toEqual(expected);
    },
  );

  it("accepts each of several tokens, and the real client with any of them", async () => {
    for (const token of [TOKEN, SECOND]) {
      const client = new Upstash({ url: gateway.url, token, retry: { retries: 0 } });
      expect(await client.set(`auth:${token}`, "v")).toBe("OK");
      expect(await direct.get(`auth:${token}`)).toBe("v");
    }
    const wrong = new Upstash({ url: gateway.url, token: "nope", retry: { retries: 0 } });
    await expect(wrong.get("k")).rejects.toThrow(/WRONGPASS/);
  });

  it("lets a read-only token read but not write: 400 NOPERM, per item in a pipeline", async () => {
    await direct.set("ro:k", "value");
    const read = await send("/", ["get", "ro:k"], { token: READ_ONLY });
    expect(read).toMatchObject({ status: 200, body: { result: "value" } });

    for (const command of [
      ["set", "ro:k", "changed"],
      ["del", "ro:k"],
      ["eval", "return redis.call('del', KEYS[1])", 1, "ro:k"],
      ["flushall"],
    ]) {
      const write = await send("/", command, { token: READ_ONLY });
      expect(write.status).toBe(400);
      expect(errorOf(write)).toMatch(/^NOPERM /);
    }
    const pipeline = await send(
      "/pipeline",
      [
        ["get", "ro:k"],
        ["set", "ro:k", "x"],
      ],
      {
        token: READ_ONLY,
      },
    );
    expect(pipeline.status).toBe(200);
    expect(pipeline.body).toEqual([
      { result: "value" },
      { error: expect.stringMatching(/^NOPERM /) },
    ]);
    const transaction = await send(
      "/multi-exec",
      [
        ["get", "ro:k"],
        ["set", "ro:k", "x"],
      ],
      {
        token: READ_ONLY,
      },
    );
    expect(transaction.status).toBe(400);
    expect(errorOf(transaction)).toMatch(/^NOPERM /);
    const readOnlyScript = await send(
      "/",
      ["eval_ro", "return redis.call('get', KEYS[1])", 1, "ro:k"],
      {
        token: READ_ONLY,
      },
    );
    expect(readOnlyScript.body).toEqual({ result: "value" });
    expect(await direct.get("ro:k")).toBe("value");

    const client = new Upstash({ url: gateway.url, token: READ_ONLY, retry: { retries: 0 } });
    expect(await client.get("ro:k")).toBe("value");
    await expect(client.set("ro:k", "x")).rejects.toThrow(/NOPERM/);
  });
});

describe("statuses and JSON error bodies", () => {
  it("404 for an unknown path, 405 with Allow: POST for another method", async () => {
    for (const path of ["/unknown", "/pipeline/", "/multi-exec/x", "/get/key"]) {
      const answer = await send(path, ["ping"]);
      expect(answer.status).toBe(404);
      expect(errorOf(answer)).toMatch(/^ERR not found/);
    }
    for (const [path, method] of [
      ["/", "GET"],
      ["/", "PUT"],
      ["/pipeline", "GET"],
      ["/multi-exec", "DELETE"],
      ["/pipeline", "PATCH"],
    ] as const) {
      const answer = await send(path, ["ping"], { method });
      expect(answer.status).toBe(405);
      expect(answer.headers.get("allow")).toBe("POST");
      expect(errorOf(answer)).toMatch(/^ERR method not allowed/);
    }
  });

  it("413 for a body over the limit, declared or streamed, and then serves again", async () => {
    const huge = JSON.stringify(["set", "big", "x".repeat(200 * 1024)]);
    const declared = await send("/", null, { raw: huge });
    expect(declared.status).toBe(413);
    expect(errorOf(declared)).toMatch(/too large.*65536 bytes/);

    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    const streamed = await send("/pipeline", null, {
      raw: new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 32; i++) controller.enqueue(chunk);
          controller.close();
        },
      }),
    });
    expect(streamed.status).toBe(413);
    expect(await direct.exists("big")).toBe(0);
    expect((await send("/", ["ping"])).body).toEqual({ result: "PONG" });
  });

  it("400 with Redis's text verbatim for a Redis error", async () => {
    await direct.set("err:str", "text");
    const wrongType = await send("/", ["lpush", "err:str", "x"]);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body).toEqual({
      error: "WRONGTYPE Operation against a key holding the wrong kind of value",
    });
    const noScript = await send("/", ["evalsha", "f".repeat(40), 0]);
    expect(noScript).toMatchObject({
      status: 400,
      body: { error: "NOSCRIPT No matching script. Please use EVAL." },
    });
    const unknown = await send("/", ["nosuchcommand", "x"]);
    expect(unknown.status).toBe(400);
    expect(errorOf(unknown)).toMatch(/^ERR unknown command/);
  });

  it("sends upstash-sync-token on successes and errors alike", async () => {
    for (const [path, options] of [
      ["/", {}],
      ["/", { token: null }],
      ["/nope", {}],
    ] as const) {
      const answer = await send(path, ["ping"], options);
      expect(answer.headers.get("upstash-sync-token")).toBe(SYNC_TOKEN);
    }
  });

  it("keeps idle connections open well beyond the client's 4 s", async () => {
    const answer = await send("/", ["ping"]);
    const timeout = Number(/timeout=(\d+)/.exec(answer.headers.get("keep-alive") ?? "")?.[1]);
    expect(timeout).toBeGreaterThanOrEqual(30);
  });

  it("refuses Upstash-Response-Format other than json", async () => {
    const resp2 = await send("/", ["ping"], { headers: { "upstash-response-format": "resp2" } });
    expect(resp2.status).toBe(400);
    const json = await send("/", ["ping"], { headers: { "upstash-response-format": "json" } });
    expect(json.body).toEqual({ result: "PONG" });
  });
});

describe("request bodies", () => {
  const bad: [path: string, body: string, error: RegExp][] = [
    ["/", "not json", /not valid JSON/],
    ["/", "", /not valid JSON/],
    ["/", '{"0":"get"}', /non-empty array, got an object/],
    ["/", '"get"', /non-empty array, got a string/],
    ["/", "42", /non-empty array, got a number/],
    ["/", "null", /non-empty array, got null/],
    ["/", "[]", /non-empty array, got an empty array/],
    ["/", '[{"a":1}]', /argument 0 .* got an object/],
    ["/", '["get",null]', /argument 1 .* got null/],
    ["/", '[["get","k"]]', /argument 0 .* got an array/],
    ["/", '["set","k",["v"]]', /argument 2 .* got an array/],
    ["/pipeline", "[]", /non-empty array of commands, got an empty array/],
    ["/pipeline", '["get","k"]', /command 0 must be a non-empty array, got a string/],
    ["/pipeline", "[[]]", /command 0 must be a non-empty array, got an empty array/],
    ["/pipeline", '[["ping"],null]', /command 1 must be a non-empty array, got null/],
    ["/pipeline", '[["get",{"a":1}]]', /command 0: argument 1 .* got an object/],
    ["/pipeline", '{"commands":[]}', /got an object/],
    ["/multi-exec", "[]", /non-empty array of commands/],
    ["/multi-exec", '[["set","k",["v"]]]', /command 0: argument 2 .* got an array/],
    ["/multi-exec", "[[1,2],", /not valid JSON/],
  ];

  it.each(bad)("%s %s → 400 JSON", async (path, body, error) => {
    const answer = await send(path, null, { raw: body });
    expect(answer.status).toBe(400);
    expect(errorOf(answer)).toMatch(error);
  });

  it("keeps serving after bad bodies", async () => {
    const answers = await Promise.all(bad.map(([path, body]) => send(path, null, { raw: body })));
    expect(answers.every((answer) => answer.status === 400)).toBe(true);
    expect((await send("/pipeline", [["ping"], ["echo", "still here"]])).body).toEqual([
      { result: "PONG" },
      { result: "still here" },
    ]);
  });

  it("parses JSON whatever the Content-Type; numbers and booleans become strings", async () => {
    const answer = await send("/pipeline", null, {
      raw: JSON.stringify([
        ["set", "body:num", 12.5],
        ["set", "body:bool", true],
        ["get", "body:num"],
        ["get", "body:bool"],
        ["incrby", "body:ctr", 7],
      ]),
      headers: { "content-type": "text/plain" },
    });
    expect(answer.body).toEqual([
      { result: "OK" },
      { result: "OK" },
      { result: "12.5" },
      { result: "true" },
      { result: 7 },
    ]);
  });
});

describe("reply shapes", () => {
  beforeAll(async () => {
    await direct.del("shape:h", "shape:z");
    await direct.hset("shape:h", "f1", "v1", "f2", "v2");
    await direct.zadd("shape:z", 1.5, "a", 2, "b");
    await direct.set("shape:s", "bar");
    await direct.set("shape:ok", "OK");
    await direct.set("shape:bin", Buffer.from([0xff, 0x00, 0xfe]));
  });

  const base64 = { headers: { "upstash-encoding": "base64" } };
  const b64 = (text: string) => Buffer.from(text).toString("base64");

  it("base64: every string encoded at any depth except a top-level OK; numbers and nil stay", async () => {
    expect((await send("/", ["get", "shape:s"], base64)).body).toEqual({ result: b64("bar") });
    expect((await send("/", ["set", "shape:t", "x"], base64)).body).toEqual({ result: "OK" });
    expect((await send("/", ["get", "shape:bin"], base64)).body).toEqual({
      result: Buffer.from([0xff, 0x00, 0xfe]).toString("base64"),
    });
    const script =
      "return {'a', 1, false, {'nested', redis.status_reply('OK')}, redis.call('set', KEYS[1], 'y')}";
    expect((await send("/", ["eval", script, 1, "shape:t"], base64)).body).toEqual({
      result: [b64("a"), 1, null, [b64("nested"), b64("OK")], b64("OK")],
    });
    const pipeline = await send(
      "/pipeline",
      [
        ["set", "shape:t", "z"],
        ["get", "shape:t"],
        ["incr", "shape:n"],
      ],
      {
        headers: { "Upstash-Encoding": "BASE64" },
      },
    );
    expect(pipeline.body).toEqual([{ result: "OK" }, { result: b64("z") }, { result: 1 }]);
  });

  it("plain: strings as UTF-8, invalid bytes as U+FFFD", async () => {
    expect((await send("/", ["get", "shape:s"])).body).toEqual({ result: "bar" });
    expect((await send("/", ["get", "shape:bin"])).body).toEqual({ result: "\ufffd\u0000\ufffd" });
    expect((await send("/", ["get", "nope:missing"])).body).toEqual({ result: null });
  });

  it("RESP2 shapes: hgetall and zrange withscores flat, booleans never JSON booleans", async () => {
    expect((await send("/", ["hgetall", "shape:h"])).body).toEqual({
      result: ["f1", "v1", "f2", "v2"],
    });
    expect((await send("/", ["zrange", "shape:z", 0, -1, "withscores"])).body).toEqual({
      result: ["a", "1.5", "b", "2"],
    });
    expect((await send("/", ["zpopmin", "shape:z"])).body).toEqual({ result: ["a", "1.5"] });
    expect((await send("/", ["eval", "return {true, false, 3}", 0])).body).toEqual({
      result: [1, null, 3],
    });
    expect((await send("/", ["eval", "return true", 0])).body).toEqual({ result: 1 });
    expect((await send("/", ["eval", "return false", 0])).body).toEqual({ result: null });
    const nestedError = await send("/", ["eval", "return {1, redis.error_reply('MY failure')}", 0]);
    expect(nestedError.body).toEqual({ result: [1, "MY failure"] });
  });

  it("a pipeline answers exactly one item per command", async () => {
    const commands = Array.from({ length: 50 }, (_, i) =>
      i % 7 === 3 ? ["incr", "shape:s"] : ["echo", `m${i}`],
    );
    const answer = await send("/pipeline", commands);
    expect(answer.status).toBe(200);
    const items = answer.body as { result?: unknown; error?: string }[];
    expect(items).toHaveLength(50);
    items.forEach((item, i) => {
      if (i % 7 === 3) expect(item.error).toMatch(/not an integer/);
      else expect(item).toEqual({ result: `m${i}` });
    });
  });
});

describe("refused commands", () => {
  const refused: (string | number)[][] = [
    ["select", 1],
    ["multi"],
    ["exec"],
    ["discard"],
    ["watch", "k"],
    ["unwatch"],
    ["subscribe", "ch"],
    ["psubscribe", "ch*"],
    ["ssubscribe", "ch"],
    ["unsubscribe"],
    ["monitor"],
    ["hello", 3],
    ["auth", "password"],
    ["reset"],
    ["quit"],
    ["shutdown", "nosave"],
    ["client", "setname", "x"],
    ["client", "kill", "id", 1],
    ["client", "reply", "off"],
    ["client", "pause", 1000],
    ["client", "tracking", "on"],
    ["blpop", "q", 0],
    ["brpop", "q", 0],
    ["brpoplpush", "a", "b", 0],
    ["blmove", "a", "b", "left", "right", 0],
    ["blmpop", 0, 1, "q", "left"],
    ["bzpopmin", "z", 0],
    ["bzpopmax", "z", 0],
    ["bzmpop", 0, 1, "z", "min"],
    ["xread", "BLOCK", 0, "STREAMS", "s", "$"],
    ["xread", "count", 1, "block", 10, "streams", "s", "$"],
    ["xreadgroup", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">"],
    ["wait", 1, 0],
    ["waitaof", 1, 0, 0],
  ];

  it.each(refused.map((command) => [command.join(" "), command] as const))(
    "%s → 400 JSON, nothing sent",
    async (_, command) => {
      const answer = await send("/", command);
      expect(answer.status).toBe(400);
      expect(errorOf(answer)).toMatch(/^ERR '\w+' is not allowed through this gateway/);
    },
  );

  it("refuses them per item in a pipeline and as a whole in a transaction", async () => {
    await direct.del("refused:a", "refused:b");
    const pipeline = await send("/pipeline", [
      ["set", "refused:a", "1"],
      ["blpop", "q", 0],
      ["select", 2],
      ["get", "refused:a"],
    ]);
    expect(pipeline.status).toBe(200);
    expect(pipeline.body).toEqual([
      { result: "OK" },
      { error: expect.stringMatching(/'blpop' is not allowed/) },
      { error: expect.stringMatching(/'select' is not allowed/) },
      { result: "1" },
    ]);
    const transaction = await send("/multi-exec", [
      ["set", "refused:b", "1"],
      ["watch", "x"],
    ]);
    expect(transaction.status).toBe(400);
    expect(errorOf(transaction)).toMatch(/'watch' is not allowed/);
    expect(await direct.exists("refused:b")).toBe(0);
  });

  it("still serves harmless lookalikes and the same connection afterwards", async () => {
    await direct.del("refused:s");
    await direct.xadd("refused:s", "1-1", "f", "v");
    expect((await send("/", ["client", "id"])).status).toBe(200);
    expect((await send("/", ["xread", "count", 1, "streams", "refused:s", 0])).body).toEqual({
      result: [["refused:s", [["1-1", ["f", "v"]]]]],
    });
    // The shared connection is still on database 0, not subscribed, not in MULTI.
    await direct.set("refused:db0", "here");
    expect((await send("/", ["get", "refused:db0"])).body).toEqual({ result: "here" });
  });
});

describe("transactions under concurrency", () => {
  it("never interleave other requests' commands into a MULTI", async () => {
    await direct.del("tx:ctr", "tx:other");
    const transactions = Array.from({ length: 25 }, () =>
      send("/multi-exec", [
        ["incr", "tx:ctr"],
        ["incr", "tx:ctr"],
        ["get", "tx:ctr"],
      ]),
    );
    const singles = Array.from({ length: 25 }, (_, i) =>
      i % 2 === 0 ? send("/", ["incr", "tx:ctr"]) : send("/", ["set", "tx:other", `${i}`]),
    );
    const [txAnswers, singleAnswers] = await Promise.all([
      Promise.all(transactions),
      Promise.all(singles),
    ]);
    for (const answer of txAnswers) {
      expect(answer.status).toBe(200);
      const [first, second, read] = answer.body as { result: unknown }[];
      expect(second?.result).toBe((first?.result as number) + 1);
      expect(read?.result).toBe(String(second?.result));
    }
    for (const answer of singleAnswers) {
      expect(answer.status).toBe(200);
      expect((answer.body as { result: unknown }).result).not.toBe("QUEUED");
    }
    expect(await direct.get("tx:ctr")).toBe(String(25 * 2 + 13));
  });
});

describe("logging", () => {
  it("writes nothing with a token in it, whatever happens", async () => {
    const output = captureOutput();
    try {
      await send("/", ["get", "k"]);
      await send("/", ["get", "k"], { token: `${TOKEN}-wrong` });
      await fetch(`${gateway.url}/pipeline?_token=${READ_ONLY}`, { method: "POST", body: "oops" });
      await send("/", ["blpop", "q", 0]);
      await send("/nope", ["ping"]);
      expectNoSecret(output.text(), [TOKEN, SECOND, READ_ONLY], "the gateway's output");
    } finally {
      output.restore();
    }
  });
});
