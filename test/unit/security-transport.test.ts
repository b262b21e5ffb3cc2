/**
 * Plain `http://` to a REST endpoint sends the REST token (and lock tokens) in clear, so
 * RedisLock accepts it only for loopback hosts, refusing any other with `INVALID_CONFIG` before
 * any request. (`upstashAdapter(client)` leaves that to whoever made the client: the check
 * would not fit the edge bundle's size budget.)
 */
import { RedisLock } from "edgelock";
import { afterEach, describe, expect, it, vi } from "vitest";

const TOKEN = "rest-token-never-in-messages";

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
