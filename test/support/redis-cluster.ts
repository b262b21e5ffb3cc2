/**
 * Spawns a throwaway Redis Cluster (masters only) on free loopback ports and forms it in code:
 * slots are split evenly, every node MEETs the first, then we wait for the cluster to converge.
 */
import { Redis } from "ioredis";
import { type RedisProcess, startRedisServer } from "./redis-server";

const SLOTS = 16_384;
const FORM_TIMEOUT_MS = 15_000;
const CLUSTER_ARGS = [
  ...["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
  ...["--cluster-node-timeout", "5000"],
];

/** A running cluster from {@link startRedisCluster}. */
export interface RedisClusterProcess {
  /** One address per master, usable as ioredis `Cluster` startup nodes. */
  readonly nodes: { host: string; port: number }[];
  /** Stops every node and removes their temp dirs. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` (default 3) cluster-enabled redis-server processes (with `args` besides),
 * assigns each an even share of the 16384 slots, joins them, and resolves once every node reports
 * `cluster_state:ok` and sees all masters (15 s max). Nothing is left running if it fails.
 */
export async function startRedisCluster(
  options: { masters?: number; args?: string[] } = {},
): Promise<RedisClusterProcess> {
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 1) throw new RangeError(`masters: ${masters}`);
  const args = [...CLUSTER_ARGS, ...(options.args ?? [])];

  const started = await Promise.allSettled(
    Array.from({ length: masters }, () => startRedisServer({ args })),
  );
  const servers = started.flatMap((result) =>
    result.status === "fulfilled" ? [result.value] : [],
  );
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  try {
    const failed = started.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
    await formCluster(servers);
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: servers.map(({ host, port }) => ({ host, port })), stop };
}

async function formCluster(servers: RedisProcess[]): Promise<void> {
  const clients = servers.map(
    ({ host, port }) => new Redis(port, host, { retryStrategy: () => null }),
  );
  try {
    const count = clients.length;
    await Promise.all(
      clients.map(async (client, i) => {
        const first = Math.floor((i * SLOTS) / count);
        const last = Math.floor(((i + 1) * SLOTS) / count) - 1;
        await client.call("CLUSTER", "ADDSLOTSRANGE", first, last);
        // Distinct epochs up front spare the cluster a round of epoch-collision resolution.
        await client.call("CLUSTER", "SET-CONFIG-EPOCH", i + 1);
      }),
    );
    const [seed, ...others] = clients;
    const [seedServer] = servers;
    if (seed === undefined || seedServer === undefined) return;
    // The bus port is not always port + 10000 (see startRedisServer), so MEET must name it.
    const [, busPort] = (await seed.config("GET", "cluster-port")) as string[];
    await Promise.all(
      others.map((client) =>
        client.call("CLUSTER", "MEET", seedServer.host, seedServer.port, String(busPort)),
      ),
    );
    await waitUntilFormed(clients);
  } finally {
    await Promise.allSettled(clients.map((client) => client.quit()));
  }
}

/** Polls until every node is `cluster_state:ok` and sees all masters as healthy. */
async function waitUntilFormed(clients: Redis[]): Promise<void> {
  const deadline = Date.now() + FORM_TIMEOUT_MS;
  for (;;) {
    const problems = (await Promise.all(clients.map((client) => problemOf(client, clients.length))))
      .filter((problem) => problem !== undefined)
      .join("; ");
    if (problems === "") return;
    if (Date.now() > deadline) {
      throw new Error(`Redis cluster did not form within ${FORM_TIMEOUT_MS} ms: ${problems}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Why this node does not consider the cluster formed yet, or `undefined` if it does. */
async function problemOf(client: Redis, masters: number): Promise<string | undefined> {
  const name = `node ${client.options.port}`;
  const info = String(await client.call("CLUSTER", "INFO"));
  if (!info.includes("cluster_state:ok")) {
    return `${name} reports ${/cluster_state:\w+/.exec(info)?.[0] ?? "no cluster_state"}`;
  }
  const healthy = String(await client.call("CLUSTER", "NODES"))
    .split("\n")
    .map((line) => line.split(" ")[2]?.split(",") ?? [])
    .filter(
      (flags) => flags.includes("master") && !flags.some((f) => /fail|handshake|noaddr/.test(f)),
    );
  if (healthy.length !== masters) return `${name} sees ${healthy.length}/${masters} masters`;
  return undefined;
}
