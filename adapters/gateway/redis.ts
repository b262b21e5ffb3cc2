/**
 * The ioredis client behind the gateway, and the settings that keep it from applying a command
 * twice or hanging a request:
 *
 * - `protocol: 2`: RESP2 replies are the shapes the Upstash protocol returns (ioredis 6 defaults
 *   to RESP3, where `ZRANGE ... WITHSCORES` comes back as pairs);
 * - `autoResendUnfulfilledCommands: false` and `maxRetriesPerRequest: 0`: a command that was in
 *   flight when the connection dropped is failed (503), never sent again after the reconnect;
 * - `enableOfflineQueue: false`: while Redis is down, requests fail at once with 503 instead of
 *   queueing; so the client must be `ready` before the gateway serves;
 * - `commandTimeout`: a request never waits on Redis forever.
 *
 * @module
 */

import { Redis } from "ioredis";

/** Options of {@link gatewayRedis}. */
export interface GatewayRedisOptions {
  /**
   * How long one command may take before its request fails with 503, in milliseconds.
   * @default 5000
   */
  commandTimeout?: number;
  /**
   * How long to wait for the connection to become ready before giving up, in milliseconds.
   * @default 10000
   */
  readyTimeout?: number;
}

/** The default {@link GatewayRedisOptions.commandTimeout}: 5 s. */
export const DEFAULT_COMMAND_TIMEOUT = 5_000;
const DEFAULT_READY_TIMEOUT = 10_000;

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer (milliseconds), got ${value}`);
  }
  return value;
}

/**
 * Throws a TypeError when `redis` would return other reply shapes than the gateway needs:
 * RESP3 (`protocol: 3`, the ioredis 6 default) or `stringNumbers`.
 */
export function assertGatewayClient(redis: Redis): void {
  const { protocol, stringNumbers } = redis.options;
  if ((protocol ?? 2) !== 2) {
    throw new TypeError(
      `the gateway needs an ioredis client with protocol: 2 (RESP2), got protocol: ${protocol}; ` +
        "create it with gatewayRedis(url)",
    );
  }
  if (stringNumbers === true) {
    throw new TypeError("the gateway needs an ioredis client without stringNumbers");
  }
}

/**
 * Resolves once `redis` is ready to take commands; connects it if it was created with
 * `lazyConnect`. Rejects when it is not ready within `timeout` ms, or ends first.
 */
export function waitForReady(redis: Redis, timeout: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const onError = (error: Error) => {
      lastError = error;
    };
    const finish = (error?: Error) => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("error", onError);
      redis.off("end", onEnd);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => finish();
    const onEnd = () => finish(new Error(`redis connection ended: ${lastError?.message ?? ""}`));
    const timer = setTimeout(() => {
      const detail = lastError ? `: ${lastError.message}` : "";
      finish(new Error(`redis was not ready within ${timeout} ms${detail}`));
    }, timeout);
    redis.on("ready", onReady);
    redis.on("error", onError);
    redis.on("end", onEnd);
    if (redis.status === "wait") redis.connect().catch(() => {});
  });
}

/**
 * Creates an ioredis client with the settings the gateway needs (see the module comment) and
 * resolves it once it is ready. On failure to get ready, the client is disconnected and the
 * promise rejects. Connection errors are also emitted as `error` events; listen to them to log.
 *
 * @param url `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
 * @example
 * ```ts
 * const redis = await gatewayRedis("redis://127.0.0.1:6379", { commandTimeout: 2000 });
 * const app = createGatewayApp({ redis, tokens: [process.env.GATEWAY_TOKEN!] });
 * ```
 */
export async function gatewayRedis(url: string, options: GatewayRedisOptions = {}): Promise<Redis> {
  const commandTimeout = positiveInteger(
    "commandTimeout",
    options.commandTimeout,
    DEFAULT_COMMAND_TIMEOUT,
  );
  const readyTimeout = positiveInteger("readyTimeout", options.readyTimeout, DEFAULT_READY_TIMEOUT);
  const redis = new Redis(url, {
    protocol: 2,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    commandTimeout,
    connectionName: "edgelock-gateway",
  });
  redis.on("error", () => {}); // reported through status and 503s; callers may add a listener
  try {
    await waitForReady(redis, readyTimeout);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return redis;
}
