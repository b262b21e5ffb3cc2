/**
 * The fencing counter's retention on a real redis-server, read with PTTL: the default, the
 * option through acquire, extend, release and hand-off, Redlock's raised counters, and fences
 * across a counter that expired (they keep rising by the clock floor, as long as the server
 * clock lags no fence by the retention or more).
 */

import {
  createLocker,
  FENCE_RETENTION,
  type Lease,
  type Locker,
  lockNames,
  MIN_FENCE_RETENTION,
} from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { redlockAdapter } from "edgelock/redlock";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const RETENTION = 60_000;
/** How far a PTTL read may trail what was set: the round trips in between. */
const SLACK = 1_000;

let server: RedisProcess;
let client: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url);
});

afterAll(async () => {
  client.disconnect();
  await server.stop();
});

/** A locker on its own prefix, so tests never share keys. */
function lockerOn(prefix: string, fenceRetention?: number): Locker {
  return createLocker({ adapter: ioredisAdapter(client), prefix, fenceRetention });
}

async function mustAcquire(lease: Promise<Lease | null>): Promise<Lease> {
  const got = await lease;
  if (!got) throw new Error("expected to acquire the lock");
  return got;
}

/** The PTTL of `key`'s fencing counter under `prefix`. */
function counterTtl(prefix: string, key: string): Promise<number> {
  return client.pttl(lockNames(prefix, key).fence);
}

/** Expects `ttl` to be what was set (`kept` ms), less the time since. */
function expectKept(ttl: number, kept: number): void {
  expect(ttl).toBeLessThanOrEqual(kept);
  expect(ttl).toBeGreaterThan(kept - SLACK);
}

describe("the fencing counter's PTTL on redis-server", () => {
  it("is 24 hours by default", async () => {
    const lease = await mustAcquire(lockerOn("default").tryAcquire("job", 5_000));
    expectKept(await counterTtl("default", "job"), 24 * 60 * 60 * 1000);
    expect(FENCE_RETENTION).toBe(24 * 60 * 60 * 1000);
    await lease.release();
  });

  it("follows fenceRetention through acquire, extend and release", async () => {
    const locker = lockerOn("option", RETENTION);
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    expectKept(await counterTtl("option", "job"), RETENTION);
    await client.pexpire(lockNames("option", "job").fence, 10_000); // so the extend shows
    await lease.extend(5_000);
    expectKept(await counterTtl("option", "job"), RETENTION);
    await lease.release();
    expect(await client.exists(lockNames("option", "job").lock)).toBe(0);
    expectKept(await counterTtl("option", "job"), RETENTION); // the release leaves it as it was
  });

  it("is the lease instead, when the lease is longer", async () => {
    const locker = lockerOn("long", RETENTION);
    const lease = await mustAcquire(locker.tryAcquire("job", 90_000));
    expectKept(await counterTtl("long", "job"), 90_000);
    await lease.extend(120_000);
    expectKept(await counterTtl("long", "job"), 120_000);
    await lease.release();
  });

  it("is the waiter's lease when a release hands the lock to a waiter with a longer one", async () => {
    const holder = lockerOn("handoff", RETENTION);
    const waiter = lockerOn("handoff", RETENTION);
    const held = await mustAcquire(holder.tryAcquire("job", 5_000));
    const waiting = waiter.acquire("job", 120_000, { timeout: 5_000 });
    await expect.poll(() => client.llen(lockNames("handoff", "job").queue)).toBe(1);
    await held.release();
    const handed = await waiting;
    expect(handed.fence).toBeGreaterThan(held.fence);
    expectKept(await counterTtl("handoff", "job"), 120_000);
    await handed.release();
  });

  it("follows fenceRetention on Redlock's raised counters", async () => {
    const locker = createLocker({
      adapter: redlockAdapter([ioredisAdapter(client, { notifications: false })]),
      prefix: "redlock",
      fenceRetention: RETENTION,
    });
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    expectKept(await counterTtl("redlock", "job"), RETENTION);
    await lease.release();
  });
});

describe("fences across a counter that expired, on redis-server", () => {
  it("keep increasing: the next fence is at least the expiry time, past the last fence", async () => {
    const locker = lockerOn("expired", MIN_FENCE_RETENTION);
    const fence = lockNames("expired", "job").fence;
    let last = 0;
    for (let round = 0; round < 2; round++) {
      const lease = await mustAcquire(locker.tryAcquire("job", 100));
      expect(lease.fence).toBeGreaterThan(last);
      // The counter was written at about the last fence's time and expires a retention later.
      if (last > 0) expect(lease.fence).toBeGreaterThan(last + (MIN_FENCE_RETENTION - 1) * 1000);
      last = lease.fence;
      await lease.release();
      await expect.poll(() => client.exists(fence), { timeout: 3_000, interval: 50 }).toBe(0);
    }
  });

  it("go back only if the clock lags the counter by more than the retention (the documented limit)", async () => {
    // A counter a minute ahead of the server clock, as after the clock was stepped back a minute.
    const locker = lockerOn("lagging", MIN_FENCE_RETENTION);
    const [seconds = "0", micros = "0"] = (await client.time()).map(String);
    const ahead = Number(seconds) * 1e6 + Number(micros) + 60e6;
    await client.set(lockNames("lagging", "job").fence, String(ahead), "PX", MIN_FENCE_RETENTION);
    const first = await mustAcquire(locker.tryAcquire("job", 100));
    expect(first.fence).toBe(ahead + 1); // the counter protects while it lives
    await first.release();
    await expect
      .poll(() => client.exists(lockNames("lagging", "job").fence), { timeout: 3_000 })
      .toBe(0);
    const second = await mustAcquire(locker.tryAcquire("job", 100));
    expect(second.fence).toBeLessThan(first.fence); // a 60 s lag outlived a 1 s retention
    await second.release();
  });
});
