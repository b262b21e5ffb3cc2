/**
 * The TCP transport, over an ioredis client the user owns: standalone, Cluster or Sentinel.
 *
 * - Scripts run with `EVALSHA`, and with `EVAL` only after a real `NOSCRIPT` reply.
 * - Every command has a deadline (`commandTimeout`), so a dead connection fails the operation
 *   instead of hanging it; the core then retries with the same token, which is safe.
 * - Waiters are woken by release announcements through one subscriber connection per client,
 *   shared by every waiter and closed when the last one stops listening.
 *
 * The adapter never closes the client it is given.
 *
 * @module
 */

import {
  checkDuration,
  evalWithFallback,
  InvalidArgumentError,
  type LockAdapter,
  type LockTransport,
  type Unsubscribe,
} from "edgelock";

/** The part of an ioredis `Redis` or `Cluster` client the adapter uses. */
export interface IoredisClient {
  evalsha(sha1: string, numkeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  /** A new connection with the same options, used for subscriptions. */
  duplicate(): IoredisSubscriber;
  /** Any command; used for `WAIT` (replica acknowledgement). */
  call?(command: string, ...args: (string | number)[]): Promise<unknown>;
  /** True on an ioredis `Cluster`, whose commands are spread over many connections. */
  readonly isCluster?: boolean;
}

/** The part of a duplicated ioredis connection the adapter uses for pub/sub. */
export interface IoredisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  disconnect(): void;
}

/** Options of {@link ioredisAdapter}. */
export interface IoredisAdapterOptions {
  /**
   * How long one command may take before it counts as failed, in milliseconds.
   * @default 2000
   */
  commandTimeout?: number;
  /**
   * Wake waiters through pub/sub when a lock is released; with `false`, waiters poll.
   * @default true
   */
  notifications?: boolean;
}

/**
 * Creates the TCP transport over an ioredis client (`Redis` or `Cluster`).
 *
 * @example
 * ```ts
 * import Redis from "ioredis";
 * import { createLocker } from "edgelock";
 * import { ioredisAdapter } from "edgelock/ioredis";
 *
 * const locker = createLocker({ adapter: ioredisAdapter(new Redis(process.env.REDIS_URL)) });
 * ```
 */
export function ioredisAdapter(
  client: IoredisClient,
  options: IoredisAdapterOptions = {},
): LockAdapter {
  if (typeof client?.evalsha !== "function" || typeof client.eval !== "function") {
    throw new InvalidArgumentError(
      "client",
      "ioredisAdapter needs an ioredis Redis or Cluster client",
    );
  }
  const timeout = checkDuration(options.commandTimeout ?? 2000, "commandTimeout", 1);
  const adapter: LockAdapter = {
    name: "ioredis",
    evalScript: (script, keys, args) =>
      evalWithFallback(
        script,
        (sha1) => deadline(client.evalsha(sha1, keys.length, ...keys, ...args), timeout),
        (lua) => deadline(client.eval(lua, keys.length, ...keys, ...args), timeout),
      ),
    ...replicaWaiter(client, timeout),
  };
  if (options.notifications === false) return adapter;
  const hub = new SubscriptionHub(client, timeout);
  return { ...adapter, subscribe: (channel, listener) => hub.subscribe(channel, listener) };
}

/**
 * `WAIT` for replicas, on a client with a single connection to the primary (not a Cluster). It is
 * sent on the connection that made the write, which it may block for up to its timeout.
 */
function replicaWaiter(
  client: IoredisClient,
  timeout: number,
): Pick<LockAdapter, "waitForReplicas"> {
  const call = client.call?.bind(client);
  if (client.isCluster === true || !call) return {};
  return {
    waitForReplicas: async (replicas, wait) =>
      Number(await deadline(call("WAIT", replicas, wait), timeout + wait)),
  };
}

/**
 * Shares one subscriber connection among all listeners of one client. The connection opens with
 * the first listener and closes when the last one leaves, so no idle socket keeps the process
 * alive.
 */
class SubscriptionHub {
  readonly #client: IoredisClient;
  readonly #timeout: number;
  readonly #listeners = new Map<string, Set<() => void>>();
  #connection: IoredisSubscriber | undefined;

  constructor(client: IoredisClient, timeout: number) {
    this.#client = client;
    this.#timeout = timeout;
  }

  async subscribe(channel: string, listener: () => void): Promise<Unsubscribe> {
    const connection = this.#connect();
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    const entry = () => listener();
    listeners.add(entry);
    const unsubscribe = () => this.#remove(channel, entry);
    try {
      await deadline(connection.subscribe(channel), this.#timeout);
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  #connect(): IoredisSubscriber {
    if (this.#connection) return this.#connection;
    const connection = this.#client.duplicate();
    connection.on("error", () => {}); // reconnects are ioredis's job; waiters fall back to polling
    connection.on("message", (channel) => {
      for (const listener of this.#listeners.get(channel) ?? []) listener();
    });
    this.#connection = connection;
    return connection;
  }

  #remove(channel: string, entry: () => void): void {
    const listeners = this.#listeners.get(channel);
    if (!listeners?.delete(entry) || listeners.size > 0) return;
    this.#listeners.delete(channel);
    const connection = this.#connection;
    if (this.#listeners.size === 0) {
      this.#connection = undefined;
      connection?.disconnect();
    } else {
      connection?.unsubscribe(channel).catch(() => {});
    }
  }
}

/** Rejects if `promise` has not settled within `ms` milliseconds; the timer is always cleared. */
function deadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * The `redis://` and `rediss://` transport of `RedisLock`: creates (and on close quits) its own
 * ioredis client for the resolved host, port, credentials and database; TLS for `rediss://`.
 *
 * @example
 * ```ts
 * const lock = new RedisLock({ transports: [ioredisTransport] }); // needed only in bundles
 * ```
 */
export const ioredisTransport: LockTransport = {
  protocols: ["redis:", "rediss:"],
  async connect(target) {
    const { Redis } = await import("ioredis");
    const client = new Redis({
      host: target.host,
      port: target.port ?? 6379,
      username: target.username,
      password: target.password,
      db: target.db,
      tls: target.protocol === "rediss:" ? {} : undefined,
      lazyConnect: true,
      commandTimeout: 2000,
      maxRetriesPerRequest: 1,
    });
    client.on("error", () => {}); // failures surface through the commands that meet them
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw error;
    }
    return {
      adapter: ioredisAdapter(client),
      ping: async () => void (await client.ping()),
      close: async () => void (await client.quit().catch(() => client.disconnect())),
    };
  },
};
