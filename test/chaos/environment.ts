/// <reference types="node" />
/**
 * What the chaos suite keeps for all its scenarios: the client processes, a redis-server behind a
 * TCP fault proxy (and, when a scenario asks, one with AOF `always`), and the REST gateway behind
 * an HTTP fault proxy. Scenarios never share keys (each run has its own prefix), so they can
 * share the servers.
 */

import { createLocker, type LockAdapter, type Locker } from "edgelock";
import { type RunningGateway, startGateway } from "edgelock/gateway";
import { ioredisAdapter } from "edgelock/ioredis";
import { Redis } from "ioredis";
import { type HttpFaultProxy, startHttpFaultProxy } from "../support/http-fault-proxy.js";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { startTcpFaultProxy, type TcpFaultProxy } from "../support/tcp-fault-proxy.js";
import { masterSeed, Random } from "./random.js";
import { WorkerPool } from "./worker-pool.js";

/** How many client processes the scenarios may use at once. */
export const CLIENT_PROCESSES = 4;

const GATEWAY_TOKEN = "chaos-gateway-token";

/** The names of the Redis setups: `main` (no persistence), `aof` (appendfsync always). */
export type StackName = "main" | "aof";

/** A redis-server and the fault proxy in front of it. */
export interface Stack {
  readonly name: StackName;
  readonly redis: RedisProcess;
  readonly proxy: TcpFaultProxy;
  /** A harness-side adapter through the proxy, for liveness probes after faults heal. */
  readonly adapter: LockAdapter;
  close(): Promise<void>;
}

/** The REST path: `@upstash/redis` → HTTP fault proxy → gateway → the main redis-server. */
export interface RestPath {
  readonly url: string;
  readonly token: string;
  readonly proxy: HttpFaultProxy;
}

/** The shared servers and processes. */
export class ChaosEnvironment {
  /** Randomness of the proxies' jitter and drops; each run reseeds it. */
  random = new Random(0);
  readonly #stacks = new Map<StackName, Promise<Stack>>();
  #rest: Promise<{ path: RestPath; gateway: RunningGateway }> | undefined;

  private constructor(
    /** The master seed every run's seed derives from. */
    readonly seed: number,
    readonly pool: WorkerPool,
  ) {}

  /** Starts the client processes and the main stack. */
  static async start(): Promise<ChaosEnvironment> {
    const environment = new ChaosEnvironment(
      masterSeed(),
      await WorkerPool.start(CLIENT_PROCESSES),
    );
    await environment.stack("main");
    return environment;
  }

  /** The stack `name`, started on first use. */
  stack(name: StackName): Promise<Stack> {
    let stack = this.#stacks.get(name);
    if (!stack) {
      stack = this.#startStack(name);
      this.#stacks.set(name, stack);
    }
    return stack;
  }

  /** The REST path over the main stack's redis-server, started on first use. */
  async rest(): Promise<RestPath> {
    this.#rest ??= (async () => {
      const main = await this.stack("main");
      const gateway = await startGateway({
        redis: main.redis.url,
        tokens: [GATEWAY_TOKEN],
        port: 0,
      });
      const proxy = await startHttpFaultProxy(gateway.url);
      return { path: { url: proxy.url, token: GATEWAY_TOKEN, proxy }, gateway };
    })();
    return (await this.#rest).path;
  }

  /** A locker for the harness's own probes, through a stack's proxy. */
  async prober(name: StackName, prefix: string): Promise<Locker> {
    const { adapter } = await this.stack(name);
    return createLocker({ adapter, prefix, maxRetryDelay: 200 });
  }

  async close(): Promise<void> {
    await this.pool.close();
    if (this.#rest) {
      const { path, gateway } = await this.#rest;
      await path.proxy.close();
      await gateway.close();
    }
    for (const stack of this.#stacks.values()) await (await stack).close();
  }

  async #startStack(name: StackName): Promise<Stack> {
    const args = name === "aof" ? ["--appendonly", "yes", "--appendfsync", "always"] : [];
    const redis = await startRedisServer({ args });
    const proxy = await startTcpFaultProxy(redis.port, { random: () => this.random.next() });
    const client = new Redis(proxy.url, { retryStrategy: () => 50, maxRetriesPerRequest: 2 });
    client.on("error", () => {});
    return {
      name,
      redis,
      proxy,
      adapter: ioredisAdapter(client, { commandTimeout: 500 }),
      async close() {
        client.disconnect();
        await proxy.close();
        await redis.stop();
      },
    };
  }
}
