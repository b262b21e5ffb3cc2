import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisClusterProcess, startRedisCluster } from "../support/redis-cluster";
import {
  findRedisServer,
  type RedisProcess,
  startRedisServer,
  useStandaloneRedis,
} from "../support/redis-server";

/** Clients opened by the tests; all disconnected in afterAll. */
const clients: (Redis | Cluster)[] = [];

/** A client that never reconnects, so a killed server fails fast instead of retrying. */
function connect(url: string): Redis {
  const client = new Redis(url, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on("error", () => {}); // expected while the server is killed or paused
  clients.push(client);
  return client;
}

afterAll(() => {
  for (const client of clients) client.disconnect();
});

describe("findRedisServer", () => {
  it("finds redis-server on PATH, and says how to install it when missing", () => {
    expect(findRedisServer()).toMatch(/redis-server$/);
    const path = process.env.PATH;
    process.env.PATH = "";
    try {
      expect(() => findRedisServer()).toThrow(/sudo apt-get install -y redis-server/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe("startRedisServer", () => {
  let server: RedisProcess;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  it("serves SET/GET on a loopback port", async () => {
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const client = connect(server.url);
    await client.set("greeting", "hello");
    expect(await client.get("greeting")).toBe("hello");
  });

  it("loses data on kill() + restart() and answers again on the same port", async () => {
    const before = connect(server.url);
    await before.set("doomed", "1");
    const oldPid = server.pid;

    await server.kill();
    expect(server.pid).toBeUndefined();
    await expect(before.ping()).rejects.toThrow();

    await server.restart();
    expect(server.pid).toEqual(expect.any(Number));
    expect(server.pid).not.toBe(oldPid);
    const after = connect(server.url);
    expect(await after.ping()).toBe("PONG");
    expect(await after.get("doomed")).toBeNull();
  });

  it("answers nothing while paused and catches up on resume()", async () => {
    const client = connect(server.url);
    await client.ping();
    server.pause();
    try {
      const reply = client.ping();
      const timeout = new Promise((resolve) => setTimeout(resolve, 300, "timed out"));
      expect(await Promise.race([reply, timeout])).toBe("timed out");
      server.resume();
      expect(await reply).toBe("PONG");
    } finally {
      server.resume();
    }
  });

  it("stop() leaves no process behind", async () => {
    const other = await startRedisServer();
    const pid = other.pid as number;
    expect(() => process.kill(pid, 0)).not.toThrow();
    await other.stop();
    expect(other.pid).toBeUndefined();
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });
});

describe("useStandaloneRedis", () => {
  it("yields a Redis that answers PING", async () => {
    const target = await useStandaloneRedis();
    try {
      expect(await connect(target.url).ping()).toBe("PONG");
    } finally {
      await target.stop();
    }
  });
});

describe("startRedisCluster", () => {
  let cluster: RedisClusterProcess;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = new Cluster(cluster.nodes);
    clients.push(client);
  });
  afterAll(async () => {
    await client?.quit();
    await cluster?.stop();
  });

  it("spreads SET/GET over every master", async () => {
    expect(cluster.nodes).toHaveLength(3);
    const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);
    for (const key of keys) await client.set(key, `value of ${key}`);
    for (const key of keys) expect(await client.get(key)).toBe(`value of ${key}`);

    const sizes = await Promise.all(client.nodes("master").map((node) => node.dbsize()));
    expect(sizes).toHaveLength(3);
    expect(sizes.every((size) => size > 0)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
  });

  it("runs EVAL on two keys sharing a hash tag, and rejects keys across slots", async () => {
    const script =
      "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]); return redis.call('MGET', KEYS[1], KEYS[2])";
    expect(await client.eval(script, 2, "{t}a", "{t}b", "x", "y")).toEqual(["x", "y"]);
    expect(await client.mget("{t}a", "{t}b")).toEqual(["x", "y"]);
    await expect(client.eval(script, 2, "a", "b", "x", "y")).rejects.toThrow(/CROSSSLOT|slot/i);
  });
});
