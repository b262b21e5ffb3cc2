/**
 * Gateway conformance: the real `@upstash/redis` client → edgelock's gateway → a real
 * redis-server, each result checked against the same command run through ioredis directly
 * (RESP2, reply transformers bypassed), with the client's defaults and with auto-pipelining and
 * base64 encoding off.
 */
import { createHash } from "node:crypto";
import { Redis as Upstash } from "@upstash/redis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startTestGateway,
  type TestGateway,
  type UpstashClientOptions,
} from "../support/gateway.js";

let gateway: TestGateway;
/** A direct RESP2 connection to the same redis-server, for the expected values. */
let direct: Redis;

beforeAll(async () => {
  gateway = await startTestGateway();
  direct = new Redis(gateway.redisUrl, { protocol: 2, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  direct?.disconnect();
  await gateway?.close();
});

/** A command through ioredis, upper-cased so no reply transformer applies: Redis's raw shape. */
const raw = (name: string, ...args: (string | number)[]) =>
  direct.call(name.toUpperCase(), ...args);

/** What the client's `automaticDeserialization` makes of a raw string (upstash-rest.md §4.4). */
function deserialized(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === "number" && String(parsed) !== value ? value : parsed;
  } catch {
    return value;
  }
}

/** A flat RESP2 field/value array as the object the client's `hgetall` returns. */
function fieldsToObject(flat: unknown): Record<string, unknown> | null {
  const items = flat as string[];
  if (items.length === 0) return null;
  const object: Record<string, unknown> = {};
  for (let i = 0; i < items.length; i += 2) {
    object[items[i] as string] = deserialized(items[i + 1]);
  }
  return object;
}

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

const variants: [string, UpstashClientOptions][] = [
  ["defaults", {}],
  ["auto-pipelining off", { enableAutoPipelining: false }],
  ["responseEncoding off", { responseEncoding: false }],
];

describe.each(variants)("@upstash/redis (%s) → gateway → redis-server", (name, settings) => {
  let client: Upstash;
  const key = (suffix: string) => `{${name}}:${suffix}`;

  beforeAll(() => {
    // The client's own defaults apply (retries included), apart from the setting under test.
    client = new Upstash({ url: gateway.url, token: gateway.token, ...settings });
  });

  it("strings: set with options, get, mset/mget, append, getrange, setrange, getdel", async () => {
    const k = key("str");
    expect(await client.set(k, "hello")).toBe("OK");
    expect(await client.set(k, "other", { nx: true })).toBeNull();
    expect(await client.get(k)).toBe(await raw("get", k));
    expect(await client.set(k, "world", { get: true })).toBe("hello");
    expect(await client.append(k, "!")).toBe(await raw("strlen", k));
    expect(await client.getrange(k, 1, 3)).toBe(await raw("getrange", k, 1, 3));
    expect(await client.setrange(k, 0, "W")).toBe(6);
    expect(await client.set(key("px"), "v", { px: 30_000 })).toBe("OK");
    const pttl = (await raw("pttl", key("px"))) as number;
    expect(pttl).toBeGreaterThan(25_000);
    expect(await client.mset({ [key("m1")]: "a", [key("m2")]: "b c" })).toBe("OK");
    const mget = await client.mget(key("m1"), key("nope"), key("m2"));
    expect(mget).toEqual(await raw("mget", key("m1"), key("nope"), key("m2")));
    expect(mget).toEqual(["a", null, "b c"]);
    expect(await client.getdel(k)).toBe("World!");
    expect(await raw("exists", k)).toBe(0);
  });

  it("counters: incr, incrby, decr, decrby, incrbyfloat", async () => {
    const k = key("ctr");
    expect(await client.incr(k)).toBe(1);
    expect(await client.incrby(k, 41)).toBe(42);
    expect(await client.decr(k)).toBe(41);
    expect(await client.decrby(k, 40)).toBe(1);
    expect(await client.incrbyfloat(k, 2.25)).toBe(3.25);
    expect(await raw("get", k)).toBe("3.25");
    expect(await client.get(k)).toBe(Number(await raw("get", k)));
  });

  it("hashes: hset, hget, hmget, hgetall, hkeys, hvals, hincrby, hincrbyfloat, hdel", async () => {
    const k = key("hash");
    expect(await client.hset(k, { a: "1", b: "two", c: "x y" })).toBe(3);
    expect(await client.hget(k, "b")).toBe(await raw("hget", k, "b"));
    expect(await client.hmget(k, "a", "b", "nope")).toEqual({ a: 1, b: "two", nope: null });
    expect(await raw("hmget", k, "a", "b", "nope")).toEqual(["1", "two", null]);
    const all = await client.hgetall(k);
    expect(all).toEqual(fieldsToObject(await raw("hgetall", k)));
    expect(all).toEqual({ a: 1, b: "two", c: "x y" });
    expect((await client.hkeys(k)).sort()).toEqual(((await raw("hkeys", k)) as string[]).sort());
    expect(await client.hlen(k)).toBe(3);
    expect(await client.hexists(k, "c")).toBe(1);
    expect(await client.hincrby(k, "a", 9)).toBe(10);
    expect(await client.hincrbyfloat(k, "a", 0.5)).toBe(10.5);
    expect(await raw("hget", k, "a")).toBe("10.5");
    expect(await client.hdel(k, "a", "nope")).toBe(1);
    expect(await client.hvals(k)).toEqual(((await raw("hvals", k)) as string[]).map(deserialized));
  });

  it("lists: rpush, lpush, lrange, lindex, llen, lpop, rpop, lrem", async () => {
    const k = key("list");
    expect(await client.rpush(k, "b", "c", "b")).toBe(3);
    expect(await client.lpush(k, "a")).toBe(4);
    expect(await client.lrange(k, 0, -1)).toEqual(await raw("lrange", k, 0, -1));
    expect(await client.lrange(k, 0, -1)).toEqual(["a", "b", "c", "b"]);
    expect(await client.lindex(k, 2)).toBe("c");
    expect(await client.llen(k)).toBe(4);
    expect(await client.lrem(k, 0, "b")).toBe(2);
    expect(await client.lpop(k)).toBe("a");
    expect(await client.rpop(k)).toBe("c");
    expect(await raw("exists", k)).toBe(0);
  });

  it("sets: sadd, smembers, sismember, smismember, scard, srem", async () => {
    const k = key("set");
    expect(await client.sadd(k, "x", "y", "z")).toBe(3);
    const members = (await client.smembers(k)).sort();
    expect(members).toEqual(((await raw("smembers", k)) as string[]).sort());
    expect(members).toEqual(["x", "y", "z"]);
    expect(await client.sismember(k, "y")).toBe(1);
    expect(await client.smismember(k, ["x", "nope"])).toEqual(
      await raw("smismember", k, "x", "nope"),
    );
    expect(await client.scard(k)).toBe(3);
    expect(await client.srem(k, "x", "nope")).toBe(1);
  });

  it("sorted sets: zadd, zscore, zrange with scores, byScore and rev, zrank, zincrby", async () => {
    const k = key("zset");
    expect(
      await client.zadd(
        k,
        { score: 1.5, member: "a" },
        { score: 2, member: "b" },
        { score: -1, member: "c" },
      ),
    ).toBe(3);
    expect(await client.zscore(k, "a")).toBe(Number(await raw("zscore", k, "a")));
    expect(await client.zscore(k, "a")).toBe(1.5);
    const withScores = await client.zrange(k, 0, -1, { withScores: true });
    expect(withScores).toEqual(
      ((await raw("zrange", k, 0, -1, "WITHSCORES")) as string[]).map(deserialized),
    );
    expect(withScores).toEqual(["c", -1, "a", 1.5, "b", 2]);
    expect(await client.zrange(k, 0, 10, { byScore: true })).toEqual(["a", "b"]);
    expect(await client.zrange(k, 0, -1, { rev: true })).toEqual(["b", "a", "c"]);
    expect(await client.zrank(k, "b")).toBe(await raw("zrank", k, "b"));
    expect(await client.zincrby(k, 0.25, "c")).toBe(-0.75);
    expect(await client.zcard(k)).toBe(3);
  });

  it("scripts: eval with nested replies, evalsha NOSCRIPT, scriptLoad, createScript fallback", async () => {
    const k = key("script");
    const nested =
      "return {redis.call('set', KEYS[1], ARGV[1]), {1, 'two', {'OK'}}, redis.status_reply('PONG'), false, true}";
    const viaClient = await client.eval(nested, [k], ["v"]);
    expect(viaClient).toEqual(await raw("eval", nested, 1, k, "v"));
    expect(viaClient).toEqual(["OK", [1, "two", ["OK"]], "PONG", null, 1]);

    await expect(client.evalsha("0".repeat(40), [k], [])).rejects.toThrow(
      /NOSCRIPT No matching script/,
    );

    const source = `return 'loaded ' .. ARGV[1] -- ${name}`;
    expect(await client.scriptLoad(source)).toBe(sha1(source));
    expect(await raw("script", "exists", sha1(source))).toEqual([1]);

    await raw("script", "flush");
    const script = client.createScript<string>(`return KEYS[1] .. '=' .. ARGV[1] -- ${name}`);
    expect(await script.exec([k], ["first"])).toBe(`${k}=first`); // EVALSHA → NOSCRIPT → EVAL
    expect(await script.exec([k], ["second"])).toBe(`${k}=second`);
  });

  it("pipeline: one result per command, per-item errors with keepErrors", async () => {
    const k = key("pipe");
    const pipeline = client.pipeline();
    pipeline.set(k, "v");
    pipeline.incr(k);
    pipeline.get(k);
    const items = await pipeline.exec({ keepErrors: true });
    const expected = await direct
      .pipeline()
      .call("SET", k, "v")
      .call("INCR", k)
      .call("GET", k)
      .exec();
    expect(items).toHaveLength(3);
    expect(items[0]?.result).toBe(expected?.[0]?.[1]);
    expect(items[1]?.error).toBe(expected?.[1]?.[0]?.message);
    expect(items[1]?.error).toMatch(/^ERR value is not an integer/);
    expect(items[2]?.result).toBe("v");

    const failing = client.pipeline();
    failing.set(k, "v");
    failing.incr(k);
    await expect(failing.exec()).rejects.toThrow(/incr.*ERR value is not an integer/);
  });

  it("multi-exec: results in order, runtime errors per item, EXECABORT rejects", async () => {
    const k = key("tx");
    const tx = client.multi();
    tx.set(k, "1");
    tx.incr(k);
    tx.get(k);
    expect(await tx.exec()).toEqual(["OK", 2, 2]);

    const partial = client.multi();
    partial.set(k, "text");
    partial.incr(k);
    partial.get(k);
    const items = await partial.exec({ keepErrors: true });
    expect(items[1]?.error).toMatch(/^ERR value is not an integer/);
    expect(items[2]?.result).toBe("text");

    const aborted = client.multi();
    aborted.set(key("tx-aborted"), "1");
    aborted.del(); // DEL without keys: refused while queueing, so the transaction is discarded
    await expect(aborted.exec()).rejects.toThrow(/EXECABORT/);
    expect(await raw("exists", key("tx-aborted"))).toBe(0);
  });

  it("unicode and binary values", async () => {
    const text = 'héllo wörld — 日本語 🔒 \u0000\t"quoted" \\';
    expect(await client.set(key("uni"), text)).toBe("OK");
    expect(await raw("get", key("uni"))).toBe(text);
    expect(await client.get(key("uni"))).toBe(text);

    const bytes = Buffer.from([0xff, 0x00, 0x80, 0x41, 0xe2, 0x82]);
    await direct.set(key("bin"), bytes);
    // The client UTF-8-decodes every string: invalid bytes become U+FFFD either way.
    expect(await client.get(key("bin"))).toBe(bytes.toString("utf8"));
  });

  it("empty and nil replies", async () => {
    const missing = key("missing");
    expect(await client.get(missing)).toBe(await raw("get", missing));
    expect(await client.get(missing)).toBeNull();
    expect(await client.lrange(missing, 0, -1)).toEqual(await raw("lrange", missing, 0, -1));
    expect(await client.smembers(missing)).toEqual([]);
    expect(await raw("hgetall", missing)).toEqual([]);
    expect(await client.hgetall(missing)).toBeNull(); // the client's rendering of an empty hash
    expect(await client.hget(missing, "f")).toBeNull();
    expect(await client.zscore(missing, "m")).toBeNull();
    expect(await client.lpop(missing)).toBeNull();
    expect(await client.del(missing)).toBe(0);
    expect(await client.set(key("empty"), "")).toBe("OK");
    expect(await raw("get", key("empty"))).toBe("");
    expect(await client.get(key("empty"))).toBe("");
  });
});
