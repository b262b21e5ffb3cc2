/// <reference types="node" />
/**
 * A throwaway edgelock gateway in front of a throwaway redis-server, both on free loopback ports,
 * for tests that talk HTTP to Redis with `@upstash/redis`.
 *
 * @example
 * ```ts
 * const gateway = await startTestGateway();
 * const client = gateway.client({ enableAutoPipelining: false });
 * await client.set("k", "v");
 * await gateway.close();
 * ```
 */
import { randomBytes } from "node:crypto";
import { type RedisConfigNodejs, Redis as UpstashRedis } from "@upstash/redis";
import { type GatewayToken, startGateway } from "edgelock/gateway";
import { type RedisProcess, startRedisServer } from "./redis-server.js";

/** The `@upstash/redis` constructor's options, without the url and token the helper fills in. */
export type UpstashClientOptions = Omit<RedisConfigNodejs, "url" | "token">;

/** Options of {@link startTestGateway}. */
export interface TestGatewayOptions {
  /** The tokens the gateway accepts. Default: one random read-write token. */
  tokens?: readonly GatewayToken[];
  /**
   * The `responseEncoding` of the clients made by {@link TestGateway.client} unless they say
   * otherwise: `"base64"` (the default of @upstash/redis up to 1.39) or `false` (plain JSON).
   * The gateway itself serves both, per request.
   */
  encoding?: "base64" | false;
  /** The gateway's body limit, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** The gateway's Redis command timeout, in milliseconds (default 5000). */
  commandTimeout?: number;
}

/** A running gateway and its Redis, from {@link startTestGateway}. */
export interface TestGateway {
  /** The gateway's base URL, for `new Redis({ url, token })` of `@upstash/redis`. */
  url: string;
  /** The first read-write token (or the first token, if all are read-only). */
  token: string;
  /** `redis://127.0.0.1:<port>` of the redis-server behind the gateway. */
  redisUrl: string;
  /** The redis-server process: stop, kill, restart, pause it to make faults. */
  redis: RedisProcess;
  /** A new `@upstash/redis` client for this gateway and {@link token}, with no retries. */
  client(options?: UpstashClientOptions): UpstashRedis;
  /** Closes the gateway (draining requests in flight), then stops redis-server. Idempotent. */
  close(): Promise<void>;
}

const tokenOf = (entry: GatewayToken) => (typeof entry === "string" ? entry : entry.token);

/**
 * Starts a redis-server and an edgelock gateway in front of it, on free loopback ports.
 * The clients from `client()` have `retry: { retries: 0 }` (a failed test should fail, not
 * retry for 4 s), unless `options` override it.
 */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const tokens = options.tokens ?? [`test-${randomBytes(12).toString("hex")}`];
  const first = tokens.find((entry) => typeof entry === "string" || !entry.readOnly) ?? tokens[0];
  if (first === undefined) throw new TypeError("startTestGateway needs at least one token");
  const token = tokenOf(first);

  const redis = await startRedisServer();
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway({
      redis: redis.url,
      tokens,
      port: 0,
      ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
      ...(options.commandTimeout === undefined ? {} : { commandTimeout: options.commandTimeout }),
    });
  } catch (error) {
    await redis.stop();
    throw error;
  }

  let closed: Promise<void> | undefined;
  return {
    url: gateway.url,
    token,
    redisUrl: redis.url,
    redis,
    client: (clientOptions = {}) =>
      new UpstashRedis({
        url: gateway.url,
        token,
        retry: { retries: 0 },
        ...(options.encoding === undefined ? {} : { responseEncoding: options.encoding }),
        ...clientOptions,
      }),
    close() {
      closed ??= gateway.close().finally(() => redis.stop());
      return closed;
    },
  };
}
