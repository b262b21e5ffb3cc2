/**
 * Redlock over 3 and 5 real redis-servers (S24): the quorum survives a killed or paused minority,
 * fails fast without a majority and leaves nothing locked, keeps fences increasing through
 * crashes, never hands out an expired grant, and shows both sides of the Redis docs' restart
 * argument: an immediate restart without persistence lets two clients hold the lock, a restart
 * delayed by the ttl does not. The shared conformance suite runs over 3 instances too.
 */

import { createLocker, Lease, type LockAdapter, lockNames } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { redlockAdapter } from "edgelock/redlock";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describeLockContract } from "../contract/lock-contract.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One Redis of the quorum: its process, the client the adapter uses, and that adapter. */
interface Instance {
  readonly server: RedisProcess;
  readonly client: Redis;
  readonly adapter: LockAdapter;
}

/** Starts `count` independent redis-servers, each with a client that fails fast while it is down. */
async function startInstances(count: number): Promise<Instance[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => startRedisServer()));
  const instances = servers.map((server) => {
    const client = new Redis(server.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
    });
    client.on("error", () => {});
    return { server, client, adapter: ioredisAdapter(client, { notifications: false }) };
  });
  await Promise.all(instances.map(({ client }) => connected(client)));
  return instances;
}

/** Resolves once `client` is connected (it reconnects on its own after a restart). */
async function connected(client: Redis): Promise<void> {
  for (let waited = 0; client.status !== "ready"; waited += 10) {
    if (waited > 5_000) throw new Error(`client still ${client.status} after 5 s`);
    await sleep(10);
  }
}

/** Crashes an instance and brings it back at once, empty (no persistence). */
async function crashAndRestart(instance: Instance): Promise<void> {
  await instance.server.kill();
  await instance.server.restart();
  await connected(instance.client);
}

/** Resumes paused instances and restarts killed ones, so every test starts with all up. */
async function heal(instances: readonly Instance[]): Promise<void> {
  for (const { server, client } of instances) {
    if (server.pid === undefined) await server.restart();
    else server.resume();
    await connected(client);
  }
}

async function stopAll(instances: readonly Instance[]): Promise<void> {
  for (const { server, client } of instances) {
    client.disconnect();
    await server.stop();
  }
}

/**
 * A locker over the quorum (per-instance timeout 200 ms unless given) on a prefix of its own, and
 * `stored(key, "lock" | "fence")`: what each instance holds under that lock's key or fencing
 * counter (probe only instances that are up).
 */
function lockerOver(instances: readonly Instance[], { timeout = 200 } = {}) {
  const prefix = `r${Math.floor(Math.random() * 1e9)}`;
  const adapter = redlockAdapter(
    instances.map((instance) => instance.adapter),
    { timeout },
  );
  const locker = createLocker({ adapter, prefix }); // retries: 2
  const names = (key: string) => lockNames(prefix, key);
  const stored = (key: string, name: "lock" | "fence" = "lock", among = instances) =>
    Promise.all(among.map(({ client }) => client.get(names(key)[name])));
  return { locker, names, stored };
}

async function mustAcquire(lease: Promise<Lease | null>): Promise<Lease> {
  const got = await lease;
  if (!got) throw new Error("expected to acquire the lock");
  return got;
}

describeLockContract("redlock over 3 redis-servers", async () => {
  const instances = await startInstances(3);
  return {
    adapter: redlockAdapter(
      instances.map((instance) => instance.adapter),
      { timeout: 500 },
    ),
    close: () => stopAll(instances),
    queues: false,
  };
});

describe.each([3, 5])("redlock over %i redis-servers", (count) => {
  const quorum = Math.floor(count / 2) + 1;
  const minority = count - quorum;
  let instances: Instance[];
  const kill = (some: readonly Instance[]) => Promise.all(some.map(({ server }) => server.kill()));

  beforeAll(async () => {
    instances = await startInstances(count);
  });
  afterEach(async () => {
    await heal(instances);
  });
  afterAll(async () => {
    await stopAll(instances);
  });

  it("acquires and releases on every instance, the quorum's counters at the fence", async () => {
    const { locker, stored } = lockerOver(instances);
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    await expect.poll(() => stored("job")).toEqual(Array(count).fill(lease.token));
    const fences = (await stored("job", "fence")).map(Number);
    expect(fences.filter((fence) => fence === lease.fence).length).toBeGreaterThanOrEqual(quorum);
    expect(await locker.tryAcquire("job", 5_000)).toBeNull();
    expect(await locker.inspect("job", lease.token)).toMatchObject({
      held: true,
      fence: Math.max(...fences),
      mine: true,
    });
    expect(await lease.release()).toBe(true);
    await expect.poll(() => stored("job")).toEqual(Array(count).fill(null));
  });

  it(`still acquires with a minority (${minority}) killed`, async () => {
    const live = instances.slice(minority);
    await kill(instances.slice(0, minority));
    const { locker, stored } = lockerOver(instances);
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    await expect.poll(() => stored("job", "lock", live)).toEqual(Array(quorum).fill(lease.token));
    expect(await lease.release()).toBe(true);
    await expect.poll(() => stored("job", "lock", live)).toEqual(Array(quorum).fill(null));
  });

  it(`fails fast with a majority (${quorum}) killed, leaving no partial lock`, async () => {
    const live = instances.slice(quorum);
    await kill(instances.slice(0, quorum));
    const { locker, stored } = lockerOver(instances);
    const started = performance.now();
    const error = await locker.tryAcquire("job", 5_000).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "acquire", key: "job" });
    expect(String(error)).toContain(`no quorum of ${quorum} among ${count} instances`);
    expect(performance.now() - started).toBeLessThan(1_000);
    // Every attempt released its partial grants before failing.
    expect(await stored("job", "lock", live)).toEqual(Array(minority).fill(null));
  });

  it("acquires within the timeout with a minority paused", async () => {
    const { locker, stored } = lockerOver(instances, { timeout: 300 });
    await (await locker.tryAcquire("warm-up", 1_000))?.release(); // every script cached
    const paused = instances.slice(0, minority);
    for (const { server } of paused) server.pause();
    const started = performance.now();
    const lease = await mustAcquire(locker.tryAcquire("job", 5_000));
    // It waited the timeout for the paused instances, then took the lock with the others.
    expect(performance.now() - started).toBeGreaterThanOrEqual(299);
    expect(performance.now() - started).toBeLessThan(300 + 200);
    expect(lease.remaining()).toBeLessThanOrEqual(5_000 - 102 - 300); // less drift and the wait
    expect(await lease.release()).toBe(true);
    for (const { server } of paused) server.resume();
    // The paused instances now run the acquire and then the release queued on their connections.
    await expect.poll(() => stored("job")).toEqual(Array(count).fill(null));
  });

  it("fails with a majority paused, and leaves nothing locked once they resume", async () => {
    const { locker, stored } = lockerOver(instances, { timeout: 150 });
    await (await locker.tryAcquire("warm-up", 1_000))?.release();
    const paused = instances.slice(0, quorum);
    for (const { server } of paused) server.pause();
    const started = performance.now();
    const error = await locker.tryAcquire("job", 5_000).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LOCK_UNAVAILABLE", operation: "acquire" });
    expect(String(error)).toContain("no answer within 150 ms");
    // 3 attempts (retries: 2), each waiting at most the timeout for the acquire and the release.
    expect(performance.now() - started).toBeLessThan(3 * 2 * 150 + 500);
    expect(await stored("job", "lock", instances.slice(quorum))).toEqual(
      Array(minority).fill(null),
    );
    for (const { server } of paused) server.resume();
    await expect.poll(() => stored("job")).toEqual(Array(count).fill(null));
  });

  it("lets two clients hold the lock after an immediate restart without persistence (documented)", async () => {
    // A holds a bare quorum: the minority is down while it acquires, then comes back empty.
    const down = instances.slice(0, minority);
    const held = instances.slice(minority);
    await kill(down);
    const { locker } = lockerOver(instances);
    const a = await mustAcquire(locker.tryAcquire("job", 10_000));
    await heal(down);
    // One of A's instances crashes and restarts at once, having forgotten A's lock.
    await crashAndRestart(held[0] as Instance);
    const b = await mustAcquire(locker.tryAcquire("job", 10_000));
    // The violation the Redis docs predict: both leases are valid at the same time...
    expect(a.held).toBe(true);
    expect(b.held).toBe(true);
    // ...but the fence still orders them, so a resource that checks fences refuses A from now on,
    // and A learns of the loss at its next extension.
    expect(b.fence).toBeGreaterThan(a.fence);
    await expect(a.extend()).rejects.toMatchObject({ code: "LOCK_LOST" });
    expect(await b.release()).toBe(true);
  });

  it("stays safe when a crashed instance rejoins only after the ttl (delayed restart)", async () => {
    const ttl = 1_000;
    const down = instances.slice(0, minority);
    const held = instances.slice(minority);
    await kill(down);
    const { locker } = lockerOver(instances);
    const a = await mustAcquire(locker.tryAcquire("job", ttl));
    await heal(down);
    const crashed = held[0] as Instance;
    await crashed.server.kill();
    const crashedAt = performance.now();
    let refused = 0;
    while (a.held) {
      const b = await locker.tryAcquire("job", ttl).catch((e: unknown) => e);
      if (b instanceof Lease) {
        expect(a.held).toBe(false); // only once A's lease has run out
        await b.release();
        break;
      }
      expect(b === null || (b as { code?: string }).code === "LOCK_UNAVAILABLE").toBe(true);
      refused += 1;
      await sleep(50);
    }
    expect(refused).toBeGreaterThan(0);
    await sleep(crashedAt + ttl - performance.now());
    await heal([crashed]);
    const b = await locker.acquire("job", ttl, { timeout: 3_000 });
    expect(a.held).toBe(false);
    expect(b.fence).toBeGreaterThan(a.fence);
    await b.release();
  });

  it("raises the quorum's counters, so a later quorum without the highest instance mints higher", async () => {
    // Instance 0's counter runs far ahead (as after many grants, or a clock that ran fast).
    const others = instances.slice(quorum);
    await kill(others);
    const { locker, names, stored } = lockerOver(instances);
    const ahead = Date.now() * 1000 + 1e12;
    await instances[0]?.client.set(names("job").fence, String(ahead), "PX", 60_000);
    const a = await mustAcquire(locker.tryAcquire("job", 5_000));
    expect(a.fence).toBe(ahead + 1);
    expect((await stored("job", "fence", instances.slice(0, quorum))).map(Number)).toEqual(
      Array(quorum).fill(a.fence),
    );
    expect(await a.release()).toBe(true);
    await heal(others);
    await kill(instances.slice(0, 1));
    // The next quorum lacks instance 0 but includes a raised counter.
    const b = await mustAcquire(locker.tryAcquire("job", 5_000));
    expect(b.fence).toBe(a.fence + 1);
    await b.release();
  });

  it("keeps fences strictly increasing through kills, restarts, pauses and expiries", async () => {
    const { locker } = lockerOver(instances);
    const fences: number[] = [];
    for (let round = 0; round < 15; round++) {
      const fault = round % 5;
      const victims = Array.from(
        { length: minority },
        (_, k) => instances[(round + k) % count] as Instance,
      );
      if (fault === 1) await kill(victims);
      if (fault === 2) await crashAndRestart(victims[0] as Instance);
      if (fault === 3) for (const { server } of victims) server.pause();
      const expiring = fault === 4;
      const lease = await locker.acquire("fenced", expiring ? 30 : 2_000, { timeout: 5_000 });
      fences.push(lease.fence);
      if (expiring) await sleep(60);
      else expect(await lease.release()).toBe(true);
      await heal(victims);
    }
    for (let i = 1; i < fences.length; i++) {
      expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
    }
  });

  it("subtracts the time a slow majority took from the lease, and never returns an expired grant", async () => {
    const { locker, names, stored } = lockerOver(instances, { timeout: 2_000 });
    await (await locker.tryAcquire("warm-up", 1_000))?.release();
    const slow = instances.slice(0, quorum).map(({ client }) => client.duplicate());
    await Promise.all(slow.map(connected));
    const stall = async (seconds: number) => {
      for (const client of slow) void client.call("DEBUG", "SLEEP", String(seconds));
      await sleep(20); // the servers are asleep before the acquire is sent
    };
    try {
      await stall(0.25);
      const lease = await mustAcquire(locker.tryAcquire("slow", 2_000));
      const pttls = await Promise.all(
        instances.map(({ client }) => client.pttl(names("slow").lock)),
      );
      const left = lease.remaining();
      // ttl − drift (2000 × 1 % + 2 ms + 50 ms) − the ≥ 230 ms the quorum took to answer
      expect(left).toBeLessThanOrEqual(2_000 - 72 - 200);
      expect(left).toBeGreaterThan(0);
      // Every instance's lock outlives the lease on this client's clock.
      const holding = pttls.filter((pttl) => pttl > 0);
      expect(holding.length).toBeGreaterThanOrEqual(quorum);
      for (const pttl of holding) expect(pttl).toBeGreaterThanOrEqual(left);
      await lease.release();

      await stall(0.3); // longer than the 200 ms ttl below
      expect(await locker.tryAcquire("late", 200)).toBeNull();
      await expect.poll(() => stored("late")).toEqual(Array(count).fill(null));
    } finally {
      for (const client of slow) client.disconnect();
    }
  });
});
