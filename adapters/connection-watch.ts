/**
 * What an ioredis client's events say about its connection: whether its last attempt to connect
 * failed, and why. While a client cannot connect, ioredis keeps commands in its offline queue
 * and retries the connection for many seconds (20 reconnections by default) before failing them
 * with a message that no longer names the cause. The adapter instead fails them as soon as an
 * attempt fails, with that attempt's error (`connect ECONNREFUSED 127.0.0.1:6379`,
 * `getaddrinfo ENOTFOUND …`, `WRONGPASS …`, a certificate error), and fails later requests at once
 * until the client is ready again.
 *
 * Only a failed attempt counts (an error while the client is `connecting`, or in its handshake),
 * and not one whose connection was cut (reset, broken pipe, timed out): that is what a flaky
 * network or proxy does, and the next attempt may well connect, so requests keep waiting for it,
 * up to their deadline, whose message then gives the last error. A connection that drops while
 * `ready` is likewise left to reconnect. A server that is restarting does fail requests meanwhile.
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
import { withoutArguments } from "./without-arguments.js";

/** The part of an ioredis `Redis` or `Cluster` client watched (an EventEmitter with a status). */
export interface WatchedClient {
  /** `"wait"`, `"connecting"`, `"connect"`, `"ready"`, `"reconnecting"`, `"close"`, `"end"`… */
  readonly status: string;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  listenerCount(event: "error"): number;
}

/** What the watch reads of a standalone client's socket (a TLS socket is `encrypted`). */
interface SocketState {
  readonly connecting?: boolean;
  readonly encrypted?: boolean;
}

/** The codes of a connection cut short, which the next attempt may not meet. */
const CUT = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT"]);

/** The connection of one client, as its events tell it. */
export class ConnectionWatch implements DeadlineGroup {
  /** The deadlines with requests pending on this client: a failed attempt abandons them. */
  readonly busy = new Set<Deadlines>();
  readonly #client: WatchedClient;
  #last: Error | undefined;
  /** The last failed attempt's error, if it was not a cut connection. */
  #failure: Error | undefined;

  constructor(client: WatchedClient) {
    this.#client = client;
    client.on("error", (error) => this.#failed(error));
    client.on("ready", () => {
      this.#last = undefined;
      this.#failure = undefined;
    });
  }

  /**
   * The error of the last attempt to connect, while the client is not ready and that attempt
   * failed for a reason other than a cut connection; else undefined.
   */
  get failure(): Error | undefined {
    return this.#client.status === "ready" ? undefined : this.#failure;
  }

  /** The last error the client reported since it was last ready, without secrets. */
  get last(): Error | undefined {
    return this.#last;
  }

  /**
   * While the client is not ready, that it is not connected, and the last error (a server that
   * never completes the TLS handshake, say, fails nothing, so the deadline is all there is to
   * tell it by).
   */
  get unready(): string | undefined {
    const { status } = this.#client;
    const stream = (this.#client as { stream?: SocketState }).stream;
    if (status === "ready") return undefined;
    const last = this.#last ? `; last error: ${this.#last.message}` : "";
    // Connected over TCP, still "connecting": the TLS handshake is what never finished.
    const stalled = status === "connecting" && stream?.encrypted === true && !stream.connecting;
    const tls = stalled ? "; the TLS handshake never completed: does the server speak TLS?" : "";
    return `not connected (ioredis status "${status}"${last}${tls})`;
  }

  #failed(error: Error): void {
    const client = this.#client;
    // ioredis prints the errors nobody listens to; listening here must not silence that.
    if (client.listenerCount("error") === 1) {
      console.error("[ioredis] Unhandled error event:", error.stack);
    }
    const clean = withoutArguments(error);
    this.#last = clean;
    if (client.status !== "connecting" && client.status !== "connect") return;
    if (CUT.has((error as { code?: string }).code ?? "")) return;
    this.#failure = clean;
    for (const deadlines of [...this.busy]) deadlines.abandon(clean);
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
