/**
 * Ill-formed keys on a real Redis: a key with a lone surrogate is refused before any request,
 * since on the wire (UTF-8) it would be its U+FFFD twin, which works as any other key.
 */

import { createLocker, type Locker } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

let server: RedisProcess;
let client: Redis;
let locker: Locker;

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url);
  locker = createLocker({ adapter: ioredisAdapter(client) });
});

afterAll(async () => {
  client.disconnect();
  await server.stop();
});

/** Script calls Redis has received so far (INFO commandstats). */
async function scriptCalls(): Promise<number> {
  const info = await client.info("commandstats");
  const calls = [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)];
  return calls.reduce((sum, match) => sum + Number(match[1]), 0);
}

describe("keys with a lone surrogate, on redis-server", () => {
  it("are the same Redis name as their U+FFFD twin on the wire", async () => {
    await client.set("twin:a\uD800", "lone");
    expect(await client.get("twin:a\uFFFD")).toBe("lone");
    await client.del("twin:a\uFFFD");
  });

  it('"a\\uD800" is refused with INVALID_ARGUMENT before any request; "a\\uFFFD" locks', async () => {
    const before = await scriptCalls();
    await expect(locker.tryAcquire("a\uD800", 5_000)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      argument: "key",
    });
    await expect(locker.using("a\uD800", 5_000, async () => "ran")).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(await scriptCalls()).toBe(before);

    const lease = await locker.tryAcquire("a\uFFFD", 5_000);
    expect(lease).not.toBeNull();
    expect(await client.get("edgelock:{a\uFFFD}")).toBe(lease?.token);
    expect(await locker.tryAcquire("a\uFFFD", 5_000)).toBeNull();
    expect(await lease?.release()).toBe(true);
    expect(await client.exists("edgelock:{a\uFFFD}")).toBe(0);
  });
});
