/**
 * What an ioredis client's events say about its connection: whether its last attempt to connect
 * failed, and why. While a client cannot connect, ioredis keeps commands in its offline queue
 * and retries the connection for many seconds (20 reconnections by default) before failing them
 * with a message that no longer names the cause. The adapter instead fails them as soon as an
 * attempt fails, with that attempt's error (`connect ECONNREFUSED 127.0.0.1:6379`,
 * `getaddrinfo ENOTFOUND …`, `WRONGPASS …`, a certificate error), and fails later requests at once
 * until the client is ready again.
 *
 * Only a failed attempt counts (an error while the client is `connecting`, or in its handshake):
 * a connection that drops while `ready` is left to reconnect, so a reset to a live server costs
 * nothing more than the reconnection. A server that is restarting does fail requests meanwhile.
 *
 * The commands stay in ioredis's queue, and may still be sent if it reconnects: that is safe, as
 * the lock core follows every failed acquire with a release of the same token, which ioredis
 * sends after it on the same connection.
 *
 * Node-only, like ioredis.
 *
 * @module
 */

import type { DeadlineGroup, Deadlines } from "./deadlines.js";

/** The part of an ioredis `Redis` or `Cluster` client watched (an EventEmitter with a status). */
export interface WatchedClient {
  /** `"wait"`, `"connecting"`, `"connect"`, `"ready"`, `"reconnecting"`, `"close"`, `"end"`… */
  readonly status: string;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  listenerCount(event: "error"): number;
}

/** The connection of one client, as its events tell it. */
export class ConnectionWatch implements DeadlineGroup {
  /** The deadlines with requests pending on this client: a failed attempt abandons them. */
  readonly busy = new Set<Deadlines>();
  readonly #client: WatchedClient;
  #failure: Error | undefined;

  constructor(client: WatchedClient) {
    this.#client = client;
    client.on("error", (error) => this.#failed(error));
    client.on("ready", () => {
      this.#failure = undefined;
    });
  }

  /** The error of the last attempt to connect, while the client is not ready; else undefined. */
  get failure(): Error | undefined {
    return this.#client.status === "ready" ? undefined : this.#failure;
  }

  /**
   * While the client is not ready, that it is not connected (a server that never completes the
   * TLS handshake, say, fails nothing, so the deadline is all there is to tell it by).
   */
  get unready(): string | undefined {
    const { status } = this.#client;
    return status === "ready" ? undefined : `not connected (ioredis status "${status}")`;
  }

  #failed(error: Error): void {
    const client = this.#client;
    // ioredis prints the errors nobody listens to; listening here must not silence that.
    if (client.listenerCount("error") === 1) {
      console.error("[ioredis] Unhandled error event:", error.stack);
    }
    if (client.status !== "connecting" && client.status !== "connect") return;
    this.#failure = error;
    for (const deadlines of [...this.busy]) deadlines.abandon(error);
  }
}

/** One watch per client, however many adapters share it. */
const watches = new WeakMap<object, ConnectionWatch>();

/**
 * The watch of `client`'s connection, made on first use: it adds one `error` and one `ready`
 * listener to the client, for the client's lifetime. Undefined for an object that is not an
 * event-emitting client with a `status` (a wrapper, say).
 *
 * @example
 * ```ts
 * const watch = watchConnection(client);
 * const deadlines = new Deadlines(2_000, undefined, watch);
 * if (watch?.failure) throw watch.failure; // the client cannot connect
 * ```
 */
export function watchConnection(client: object): ConnectionWatch | undefined {
  const candidate = client as Partial<WatchedClient>;
  if (
    typeof candidate.status !== "string" ||
    typeof candidate.on !== "function" ||
    typeof candidate.listenerCount !== "function"
  ) {
    return undefined;
  }
  let watch = watches.get(client);
  if (!watch) {
    watch = new ConnectionWatch(candidate as WatchedClient);
    watches.set(client, watch);
  }
  return watch;
}
