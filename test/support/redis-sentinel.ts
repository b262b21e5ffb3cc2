/**
 * Spawns a throwaway Redis Sentinel setup on free loopback ports: a master, one replica and one
 * Sentinel monitoring them. Every process and temp dir goes away with `stop()`, or when the test
 * process exits (see redis-server.ts).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  findRedisServer,
  type RedisProcess,
  startRedisProcess,
  startRedisServer,
} from "./redis-server";

const HOST = "127.0.0.1";
const NAME = "edgelock";
const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
/** Start a full sync at once rather than after waiting 5 s for more replicas (the default). */
const SYNC_NOW = ["--repl-diskless-sync-delay", "0"];

/** A running Sentinel setup from {@link startRedisSentinel}. */
export interface RedisSentinelProcess {
  /** The Sentinel's address (one), usable as ioredis `sentinels`. */
  readonly sentinels: { host: string; port: number }[];
  /** The monitored master's name, for ioredis `name` and `SENTINEL` commands. */
  readonly name: string;
  /** The master at start; after a failover, the Sentinel turns it into a replica. */
  readonly master: RedisProcess;
  /** The replica at start; the one a failover promotes. */
  readonly replica: RedisProcess;
  /** Stops the Sentinel, then the servers, and removes their temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a master, a replica of it and a Sentinel monitoring the master as `name` with `quorum`
 * (default 1), and resolves once the replica's link is up and the Sentinel reports the master's
 * address and a healthy replica, so that `SENTINEL FAILOVER` can promote it right away (10 s max
 * per step). Nothing is left running if it fails.
 */
export async function startRedisSentinel(
  options: { quorum?: number } = {},
): Promise<RedisSentinelProcess> {
  const quorum = options.quorum ?? 1;
  if (!Number.isInteger(quorum) || quorum < 1) throw new RangeError(`quorum: ${quorum}`);
  findRedisServer(); // says how to install redis-server before anything starts

  let sentinel: RedisProcess | undefined;
  const servers: RedisProcess[] = [];
  const stop = async () => {
    await sentinel?.stop(); // first, so that it does not react to the master going away
    await Promise.all(servers.map((server) => server.stop()));
  };
  try {
    const master = await startRedisServer({ args: SYNC_NOW });
    servers.push(master);
    const replica = await startRedisServer({
      args: [...SYNC_NOW, "--replicaof", HOST, String(master.port)],
    });
    servers.push(replica);
    await waitForReplicaLink(replica);
    sentinel = await startRedisProcess(async (port, dir) => {
      const config = join(dir, "sentinel.conf");
      await writeFile(config, sentinelConfig(port, dir, master.port, quorum));
      return [config, "--sentinel"];
    });
    await waitForSentinel(sentinel.port, master, replica);
    return { sentinels: [{ host: HOST, port: sentinel.port }], name: NAME, master, replica, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function sentinelConfig(port: number, dir: string, masterPort: number, quorum: number): string {
  return [
    `port ${port}`,
    `bind ${HOST}`,
    `dir ${JSON.stringify(dir)}`,
    `sentinel monitor ${NAME} ${HOST} ${masterPort} ${quorum}`,
    `sentinel down-after-milliseconds ${NAME} 1000`,
    `sentinel failover-timeout ${NAME} 5000`,
    "",
  ].join("\n");
}

async function waitForReplicaLink(replica: RedisProcess): Promise<void> {
  await poll(
    `replica on port ${replica.port} did not link to its master`,
    replica.port,
    async (c) => {
      const info = String(await c.call("INFO", "replication"));
      if (info.includes("master_link_status:up")) return undefined;
      return /master_link_status:\w+/.exec(info)?.[0] ?? "no master_link_status in INFO";
    },
  );
}

async function waitForSentinel(
  port: number,
  master: RedisProcess,
  replica: RedisProcess,
): Promise<void> {
  const what =
    `Sentinel on port ${port} did not report master ${HOST}:${master.port} ` +
    `and a healthy replica ${HOST}:${replica.port}`;
  await poll(what, port, async (client) => {
    const address = await client.call("SENTINEL", "get-master-addr-by-name", NAME);
    if (String(address) !== `${HOST},${master.port}`) {
      return `get-master-addr-by-name answered ${JSON.stringify(address)}`;
    }
    const replicas = (await client.call("SENTINEL", "replicas", NAME)) as string[][];
    const fields = replicas.map(toRecord).find((r) => r.port === String(replica.port));
    if (fields === undefined) return `replicas: ${JSON.stringify(replicas)}`;
    if (
      /disconnected|s_down|o_down/.test(fields.flags ?? "") ||
      fields["master-link-status"] !== "ok"
    ) {
      return `replica flags ${fields.flags}, master-link-status ${fields["master-link-status"]}`;
    }
    return undefined;
  });
}

/** `[k1, v1, k2, v2, …]` as a record. */
function toRecord(flat: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = String(flat[i + 1]);
  return record;
}

/**
 * Calls `problem` with a client of `port` until it answers `undefined`; throws `what` with the last
 * problem (or error) after {@link READY_TIMEOUT_MS}.
 */
async function poll(
  what: string,
  port: number,
  problem: (client: Redis) => Promise<string | undefined>,
): Promise<void> {
  const client = new Redis(port, HOST, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on("error", () => {}); // reported through the failing command below
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      let last: string | undefined;
      try {
        last = await problem(client);
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (last === undefined) return;
      if (Date.now() > deadline) throw new Error(`${what} within ${READY_TIMEOUT_MS} ms: ${last}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    client.disconnect();
  }
}
