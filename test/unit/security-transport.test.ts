/**
 * Plain `http://` to a REST endpoint sends the REST token (and lock tokens) in clear, so the
 * upstash adapter and RedisLock accept it only for loopback hosts, before any request: the
 * adapter unless `allowHttp` is set, RedisLock not at all (`INVALID_CONFIG`).
 */
import { Redis } from "@upstash/redis";
import { RedisLock } from "edgelock";
import { upstashAdapter } from "edgelock/upstash";
import { afterEach, describe, expect, it, vi } from "vitest";

const TOKEN = "rest-token-never-in-messages";

const client = (url: string) =>
  new Redis({ url, token: TOKEN, retry: { retries: 0 }, enableTelemetry: false });

const REMOTE = [
  "http://redis.example.com",
  "http://Redis.Example.COM:8079/base",
  "http://10.0.0.5:8079",
  "http://0.0.0.0:8079",
  "http://127.0.0.1.nip.io",
  "http://localhost.evil.example",
  "http://[::ffff:7f00:1]:8079",
  "http://[2001:db8::1]",
];

const LOOPBACK = [
  "http://127.0.0.1:8079",
  "http://127.8.9.10",
  "http://localhost:8079/redis",
  "http://LOCALHOST",
  "http://gateway.localhost",
  "http://[::1]:8079",
];

afterEach(() => {
  vi.restoreAllMocks();
});

describe("upstashAdapter", () => {
  it.each(REMOTE)("refuses %s, naming the host and the way out, never the token", (url) => {
    let error: unknown;
    try {
      upstashAdapter(client(url));
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", argument: "redis" });
    const { message } = error as Error;
    expect(message).toContain(`http://${new URL(url).host}`);
    expect(message).toMatch(/https:\/\/.*allowHttp/);
    expect(message).not.toContain(TOKEN);
  });

  it.each(REMOTE)("accepts %s with allowHttp: true", (url) => {
    expect(upstashAdapter(client(url), { allowHttp: true }).name).toBe("upstash");
  });

  it.each([...LOOPBACK, "https://redis.example.com", "https://10.0.0.5:8443/base"])(
    "accepts %s",
    (url) => {
      expect(upstashAdapter(client(url)).name).toBe("upstash");
    },
  );
});

describe("RedisLock over http://", () => {
  it.each(REMOTE)("refuses %s at open with INVALID_CONFIG, sending nothing", async (url) => {
    const fetch = vi.spyOn(globalThis, "fetch");
    const lock = new RedisLock();
    lock.configure({ connection: { uri: url }, credential: { password: TOKEN } });
    const error = await lock.open("trace").catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "INVALID_CONFIG", configKey: "connection.uri" });
    expect((error as Error).message).toMatch(/https:\/\//);
    expect((error as Error).message).not.toContain(TOKEN);
    expect(fetch).not.toHaveBeenCalled();
  });

  it.each(LOOPBACK)("goes ahead for %s (here: to a fetch that fails)", async (url) => {
    const fetch = vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("fetch failed"));
    const lock = new RedisLock();
    lock.configure({ connection: { uri: url }, credential: { password: TOKEN } });
    await expect(lock.open("trace")).rejects.toMatchObject({ code: "LOCK_UNAVAILABLE" });
    expect(fetch).toHaveBeenCalledOnce();
  });
});
