/**
 * The TCP transport, over an ioredis client the user owns: standalone, Cluster or Sentinel.
 *
 * - Scripts run with `EVALSHA`, and with `EVAL` only after a real `NOSCRIPT` reply.
 * - Every command has a deadline (`commandTimeout`), so a dead connection fails the operation
 *   instead of hanging it; the core then retries with the same token, which is safe.
 * - A client that cannot connect fails commands at once, with the reason (see
 *   `connection-watch.ts`): a refused connection, an unknown host, a wrong password or a TLS
 *   error is reported in milliseconds, not after the deadline.
 * - Errors are stripped of the command's arguments, so a lock token never appears in them.
 * - While requests are in flight, the commands issued in one turn of the event loop leave in
 *   one write (see `coalesce.ts`).
 * - Waiters hear of hand-offs through one subscriber connection per client, shared by every
 *   waiter, with one SUBSCRIBE per channel (the core uses one, its locker's inbox), closed when
 *   the last listener stops listening.
 *
 * The adapter never closes the client it is given.
 *
 * @module
 */

import {
  acquireScript,
  checkDuration,
  evalWithFallback,
  InvalidArgumentError,
  type LockAdapter,
  type LockTransport,
  releaseScript,
} from "edgelock";
import { type Corkable, coalescer } from "./coalesce.js";
import { type ConnectionWatch, type WatchedClient, watchConnection } from "./connection-watch.js";
import { Deadlines } from "./deadlines.js";
import { type IoredisSubscriber, SubscriptionHub } from "./subscription-hub.js";

export type { IoredisSubscriber } from "./subscription-hub.js";

import { withoutArguments } from "./without-arguments.js";

/**
 * The part of an ioredis `Redis` or `Cluster` client the adapter uses. The connection's events
 * and `status` are optional: without them, a client that cannot connect fails at the deadline.
 */
export interface IoredisClient extends Partial<WatchedClient> {
  evalsha(sha1: string, numkeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  /**
   * A new connection with the same options, used for subscriptions; a `Cluster` is asked for
   * sharded subscribers (`duplicate([], { shardedSubscribers: true })`).
   */
  duplicate(...override: unknown[]): IoredisSubscriber;
  /** Any command; used for `WAIT` (replica acknowledgement). */
  call?(command: string, ...args: (string | number)[]): Promise<unknown>;
  /** True on an ioredis `Cluster`, whose commands are spread over many connections. */
  readonly isCluster?: boolean;
  /** The connection's socket (a standalone or Sentinel client's; a Cluster has none). */
  readonly stream?: Partial<Corkable>;
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
  /**
   * After each acquisition, wait until `replicas` replicas have the lock (Redis `WAIT` on the
   * connection that wrote it, up to `timeout` ms); if fewer acknowledge, the lock is released
   * and the attempt fails, so the caller gets `LOCK_UNAVAILABLE`. This narrows, but does not
   * close, the window in which a failover to a replica that missed the write grants the lock
   * twice: use fences for correctness. Standalone and Sentinel clients only (not Cluster).
   */
  waitReplicas?: { replicas: number; timeout: number };
}

/**
 * Creates the TCP transport over an ioredis client (`Redis` or `Cluster`).
 *
 * To learn why a connection fails, the adapter adds one `error` and one `ready` listener to the
 * client (once per client, however many adapters share it; they stay for the client's lifetime).
 * While no other `error` listener is attached, it prints what ioredis prints for errors nobody
 * listens to (`[ioredis] Unhandled error event: …`), so the console shows the same as before.
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
  const watch = watchConnection(client);
  const deadlines = new Deadlines(timeout, withoutArguments, watch);
  const coalesce = coalescer(
    () => client.stream,
    () => deadlines.pending,
  );
  const run: LockAdapter["evalScript"] = (script, keys, args) => {
    coalesce();
    return evalWithFallback(
      script,
      (sha1) => awaited(client.evalsha(sha1, keys.length, ...keys, ...args), deadlines, watch),
      (lua) => awaited(client.eval(lua, keys.length, ...keys, ...args), deadlines, watch),
    );
  };
  const replication = replicated(client, run, timeout, options.waitReplicas, watch);
  const adapter: LockAdapter = { name: "ioredis", evalScript: replication ?? run };
  if (options.notifications === false) return adapter;
  const cluster = client.isCluster === true;
  const duplicate = (sharded: boolean) =>
    sharded ? client.duplicate([], { shardedSubscribers: true }) : client.duplicate();
  const hub = new SubscriptionHub(duplicate, deadlines, cluster);
  return {
    ...adapter,
    subscribe: (channel, listener) => hub.subscribe(channel, listener),
    // One server runs the scripts and holds the subscriptions; a Cluster's live on the node of
    // each lock's slot with sharded pub/sub, and may be anywhere without it.
    get subscriptions() {
      if (!cluster) return "counted";
      return hub.sharded ? "sharded" : undefined;
    },
  };
}

/**
 * A command's reply within the deadline; or, if the client is known to be unable to connect, its
 * connection's error at once. The command was handed to ioredis all the same, so that it keeps
 * its place before the release the core sends after a failed acquire.
 */
function awaited<T>(
  command: Promise<T>,
  deadlines: Deadlines,
  watch: ConnectionWatch | undefined,
): Promise<T> {
  const failure = watch?.failure;
  if (failure === undefined) return deadlines.run(command);
  command.catch(() => {}); // its outcome is no longer awaited
  return Promise.reject(failure);
}

/**
 * `evalScript` that, after an acquire script grants the lock, sends `WAIT` for the configured
 * replicas on the same connection, and releases the lock and fails if too few acknowledge.
 * Undefined when `waitReplicas` is not set.
 */
function replicated(
  client: IoredisClient,
  run: LockAdapter["evalScript"],
  timeout: number,
  options: IoredisAdapterOptions["waitReplicas"],
  watch: ConnectionWatch | undefined,
): LockAdapter["evalScript"] | undefined {
  if (options === undefined) return undefined;
  const call = client.call?.bind(client);
  if (client.isCluster === true || !call) {
    throw new InvalidArgumentError(
      "waitReplicas",
      "waitReplicas needs a standalone or Sentinel client",
    );
  }
  const { replicas } = options;
  if (!Number.isSafeInteger(replicas) || replicas < 1) {
    throw new InvalidArgumentError(
      "waitReplicas.replicas",
      "waitReplicas.replicas must be 1 or more",
    );
  }
  const wait = checkDuration(options.timeout, "waitReplicas.timeout", 1);
  const deadlines = new Deadlines(timeout + wait, withoutArguments, watch);
  return async (script, keys, args) => {
    const reply = await run(script, keys, args);
    // Only a grant waits: a bare fence, or {1 or 2, fence, ttl}; {0, 0, pttl} is a refusal.
    const granted = typeof reply === "number" || (Array.isArray(reply) && reply[0] !== 0);
    if (script.sha1 !== acquireScript.sha1 || !granted) return reply;
    const acknowledged = Number(await awaited(call("WAIT", replicas, wait), deadlines, watch));
    if (acknowledged >= replicas) return reply;
    await run(releaseScript, keys, args.slice(0, 2)).catch(() => 0); // same keys, token, retention
    throw new Error(`${acknowledged} of ${replicas} replicas acknowledged within ${wait} ms`);
  };
}

/**
 * The `redis://` and `rediss://` transport of `RedisLock`: creates (and on close quits) its own
 * ioredis client for the resolved host, port, credentials and database; TLS for `rediss://`.
 * Connecting and `ping` have the adapter's deadline (2 s), and a failure to connect is reported
 * with its reason (a refused connection, a wrong password, a TLS error).
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
      maxRetriesPerRequest: 1,
    });
    client.on("error", () => {}); // failures surface through the commands that meet them
    const watch = watchConnection(client);
    const deadlines = new Deadlines(2000, withoutArguments, watch);
    try {
      await deadlines.run(client.connect());
    } catch (error) {
      client.disconnect();
      throw watch?.last ?? withoutArguments(error); // ioredis says only "Connection is closed."
    }
    return {
      adapter: ioredisAdapter(client),
      ping: () => awaited(client.ping(), deadlines, watch).then(() => undefined),
      close: async () => void (await client.quit().catch(() => client.disconnect())),
    };
  },
};
