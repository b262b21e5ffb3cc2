/// <reference types="node" />
/**
 * How a lease and the line of waiters behave under the failures serverless callers meet, on a real
 * redis-server: Redis forgetting a lock while its holder works, a lease that arrives late (a
 * stalled server, a slow link), waiter processes killed in line, and waiters that give up again
 * and again while the lock stays held.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createLocker, type Lease, LockLostError, lockNames } from "edgelock";
import { ioredisAdapter } from "edgelock/ioredis";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisCluster } from "../support/redis-cluster.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { startTcpFaultProxy, type TcpFaultProxy } from "../support/tcp-fault-proxy.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisProcess;
let admin: Redis;
const clients: Redis[] = [];
const children: ChildProcess[] = [];
const proxies: TcpFaultProxy[] = [];

/** A client of `url` that reconnects quickly after a restart. */
function connect(url = server.url): Redis {
  const client = new Redis(url, { retryStrategy: () => 50 });
  client.on("error", () => {});
  clients.push(client);
  return client;
}

/**
 * Starts a process whose `count` waiters wait for `key` on `target` (a URL, or `cluster:` and the
 * nodes; see `waiter-process.ts`); resolves once they have been sent.
 */
async function waiterProcess(
  prefix: string,
  key: string,
  count: number,
  target = server.url,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/support/waiter-process.ts", target, prefix, key, String(count)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the waiter process exited (${code})`)));
  });
  return child;
}

/** Kills a process with SIGKILL and waits until it is gone. */
async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  server = await startRedisServer();
  admin = connect();
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const proxy of proxies) await proxy.close();
  for (const client of clients) client.disconnect();
  await server?.stop();
});

describe("a takeover is always told", () => {
  it("using and withLock reject with LockLostError after Redis restarted without persistence", async () => {
    const locker = createLocker({ adapter: ioredisAdapter(connect()), prefix: "restart" });
    const other = createLocker({ adapter: ioredisAdapter(connect()), prefix: "restart" });
    let thief: Lease | undefined;
    const work = async (lease: Lease) => {
      await server.restart(); // the lock is gone with the data
      thief = await other.acquire(lease.key, 60_000, { timeout: 5_000 });
      return "written while someone else held the lock";
    };
    const usingError = await locker.using("job", 10_000, work).catch((e: unknown) => e);
    expect(usingError).toBeInstanceOf(LockLostError);
    expect(usingError).toMatchObject({ code: "LOCK_LOST", key: "job" });
    expect(await other.inspect("job", thief?.token)).toMatchObject({ mine: true });
    await thief?.release();

    const wrapped = locker.withLock("job-2", 10_000, work);
    await expect(wrapped()).rejects.toMatchObject({ code: "LOCK_LOST", key: "job-2" });
    await thief?.release();
  });
});

describe("the first extension comes in time", () => {
  /** Runs a 2 s task under a 1 s lease taken by `locker`; resolves with what an observer saw. */
  async function longTask(locker: ReturnType<typeof createLocker>, key: string) {
    const observer = createLocker({ adapter: ioredisAdapter(connect()), prefix: "late" });
    const mine: boolean[] = [];
    const aborted = await locker.using(key, 1_000, async (lease) => {
      for (let i = 0; i < 8; i++) {
        await sleep(250);
        mine.push((await observer.inspect(key, lease.token)).mine);
      }
      return lease.signal.aborted;
    });
    return { aborted, mine };
  }

  it("keeps a lease whose acquisition Redis stalled for 700 ms of its 1 s ttl", async () => {
    const locker = createLocker({ adapter: ioredisAdapter(connect()), prefix: "late" });
    await locker.inspect("stalled"); // connected, scripts loaded
    await admin.call("CLIENT", "PAUSE", "700", "ALL");
    expect(await longTask(locker, "stalled")).toEqual({
      aborted: false,
      mine: Array(8).fill(true),
    });
  });

  it("keeps a 1 s lease through a 2 s task over a link with 100 ms each way", async () => {
    const proxy = await startTcpFaultProxy(server.port);
    proxies.push(proxy);
    const locker = createLocker({ adapter: ioredisAdapter(connect(proxy.url)), prefix: "late" });
    await locker.inspect("slow-link");
    proxy.latency(100);
    expect(await longTask(locker, "slow-link")).toEqual({
      aborted: false,
      mine: Array(8).fill(true),
    });
  });
});

describe("waiters whose process died", () => {
  it("are passed over: a live waiter behind them is served at the release", async () => {
    const names = lockNames("dead", "job");
    const locker = createLocker({ adapter: ioredisAdapter(connect()), prefix: "dead" });
    const holder = await locker.tryAcquire("job", 60_000);
    const dying = [];
    for (let i = 0; i < 4; i++) dying.push(await waiterProcess("dead", "job", 1));
    await expect.poll(() => admin.llen(names.queue), { timeout: 10_000 }).toBe(4);
    for (const child of dying) await killHard(child);
    // A live waiter that looks by itself only once a second (maxRetryDelay, the default).
    const live = createLocker({ adapter: ioredisAdapter(connect()), prefix: "dead" });
    const waiting = live.acquire("job", 1_500, { timeout: 20_000 });
    await expect.poll(() => admin.llen(names.queue)).toBe(5);
    const released = performance.now();
    await holder?.release();
    const lease = await waiting;
    const servedAfter = performance.now() - released;
    expect(servedAfter).toBeLessThan(1_000); // 4 dead waiters at 1.5 s took 6 s
    expect(await admin.exists(names.queue, names.waiters)).toBe(0);
    await lease.release();
  });

  it("are passed over on Redis Cluster too (sharded pub/sub counts them on the lock's node)", async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const client = new Cluster(cluster.nodes);
    try {
      const names = lockNames("dead", "job");
      const nodes = cluster.nodes.map((node) => `${node.host}:${node.port}`).join(",");
      const locker = createLocker({ adapter: ioredisAdapter(client), prefix: "dead" });
      const holder = await locker.tryAcquire("job", 60_000);
      const dying = [];
      for (let i = 0; i < 4; i++)
        dying.push(await waiterProcess("dead", "job", 1, `cluster:${nodes}`));
      await expect.poll(() => client.llen(names.queue), { timeout: 10_000 }).toBe(4);
      for (const child of dying) await killHard(child);
      const live = createLocker({ adapter: ioredisAdapter(client), prefix: "dead" });
      const waiting = live.acquire("job", 1_500, { timeout: 20_000 });
      await expect.poll(() => client.llen(names.queue)).toBe(5);
      const released = performance.now();
      await holder?.release();
      const lease = await waiting;
      expect(performance.now() - released).toBeLessThan(1_000);
      expect(await client.exists(names.queue)).toBe(0);
      await lease.release();
    } finally {
      await client.quit();
      await cluster.stop();
    }
  });
});

describe("the line is bounded by live waiters", () => {
  it("waiters that give up again and again leave no entries behind", async () => {
    const names = lockNames("bounded", "job");
    const adapter = ioredisAdapter(connect());
    const holder = await createLocker({ adapter, prefix: "bounded" }).tryAcquire("job", 60_000);
    const lockers = Array.from({ length: 20 }, () => createLocker({ adapter, prefix: "bounded" }));
    const longest: number[] = [];
    const until = performance.now() + 2_000;
    // 100 live waiters, each giving up after 20-120 ms and coming back at once.
    const waiters = Array.from({ length: 100 }, async (_, i) => {
      const locker = lockers[i % lockers.length];
      while (performance.now() < until) {
        await locker?.acquire("job", 5_000, { timeout: 20 + (i % 100) }).catch(() => {});
        if (i === 0) longest.push(await admin.llen(names.queue));
      }
    });
    await Promise.all(waiters);
    expect(Math.max(...longest)).toBeLessThanOrEqual(100);
    expect(await admin.exists(names.queue, names.waiters)).toBe(0); // nothing left once all settled
    expect(await holder?.release()).toBe(true);
  });
});
