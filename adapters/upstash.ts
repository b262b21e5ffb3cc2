/**
 * The HTTP transport, over an `@upstash/redis` client the user owns: Upstash itself, or any
 * server speaking its REST protocol (such as `edgelock/gateway`). Web-standard APIs only, so it
 * runs on Node, Cloudflare Workers, Vercel Edge and Deno.
 *
 * - One HTTP request per operation: scripts go straight to the client's requester, never into
 *   its auto-pipeline, so they are not batched with (or failed together with) application traffic.
 * - `EVALSHA`, and `EVAL` only after a real `NOSCRIPT` reply.
 * - Every request is sent once: the client's own retries (5, with backoff, by default) are not
 *   used, since the lock core retries with the same token itself, which is safe because every
 *   operation is idempotent. A refused connection fails in milliseconds.
 * - Every request has its own deadline (`requestTimeout`), which aborts it for real; a request
 *   that runs out of it (a `TimeoutError`) is not sent again.
 * - Error messages are stripped of the echoed command, so a lock token never appears in them,
 *   and name the reason a `fetch` failed (`fetch failed: connect ECONNREFUSED …`).
 * - No pub/sub over REST: waiters back off with full jitter, bounded by the holder's lease.
 *
 * @module
 */

import {
  checkDuration,
  describeValue,
  evalWithFallback,
  InvalidArgumentError,
  type LockAdapter,
  LockConfigError,
  type LockTransport,
} from "edgelock";

/** One request as the `@upstash/redis` requester takes it. */
interface UpstashRequest {
  body: unknown;
  signal?: () => AbortSignal;
}

/** The requester inside an `@upstash/redis` client: it sends one request and decodes the reply. */
interface UpstashRequester {
  request(request: UpstashRequest): Promise<{ result?: unknown; error?: string }>;
}

/** The requester's retry setting that sends each request once (`attempts` counts the retries). */
const ONCE = { attempts: 0, backoff: () => 0 };

/** Options of {@link upstashAdapter}. */
export interface UpstashAdapterOptions {
  /**
   * How long one HTTP request may take before it is aborted and counts as failed, in ms.
   * @default 5000
   */
  requestTimeout?: number;
}

/**
 * Creates the HTTP transport over an `@upstash/redis` `Redis` client. Any client settings work
 * (auto-pipelining, either response encoding, automatic deserialization on or off); see the
 * README for the recommended ones. The client's `retry` setting applies to the application's
 * commands only: the adapter sends each of its requests once (see {@link sendingOnce}), without
 * changing the client.
 *
 * @example
 * ```ts
 * import { Redis } from "@upstash/redis";
 * import { createLocker } from "edgelock";
 * import { upstashAdapter } from "edgelock/upstash";
 *
 * const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
 * const locker = createLocker({ adapter: upstashAdapter(redis) });
 * ```
 *
 * @throws {InvalidArgumentError} if `redis` is not an `@upstash/redis` client, `options` not an
 *   object, or `requestTimeout` not a duration.
 */
export function upstashAdapter(redis: object, options: UpstashAdapterOptions = {}): LockAdapter {
  const send = sender(redis, options);
  return {
    name: "upstash",
    evalScript: (script, keys, args) =>
      evalWithFallback(
        script,
        (sha1) => send(["evalsha", sha1, String(keys.length), ...keys, ...args]),
        (lua) => send(["eval", lua, String(keys.length), ...keys, ...args]),
      ),
  };
}

/**
 * Sends one command through the client's requester with its own deadline, resolving the reply
 * or rejecting with the (redacted) error.
 */
function sender(redis: object, options: UpstashAdapterOptions) {
  const requester = sendingOnce(requesterOf(redis));
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "options",
      `options must be an object, got ${describeValue(options)}`,
    );
  }
  const timeout = checkDuration(options.requestTimeout ?? 5000, "requestTimeout", 1);
  return async (command: string[]): Promise<unknown> => {
    let reply: { result?: unknown; error?: string };
    try {
      reply = await requester.request({
        body: command,
        signal: () => AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw withReason(redact(error));
    }
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.result;
  };
}

/**
 * The client's requester, seen through a proxy that reads its `retry` setting as "send once".
 * `HttpClient.request` reads everything it needs from `this` (URL, headers, options, `retry`)
 * and writes only the read-your-writes token (`upstashSyncToken`) and a header on `this.headers`:
 * reads other than `retry`, and every write, reach the client's own requester, so the token
 * stays shared with the application's commands, and nothing of the client is changed. (An object
 * whose prototype is the requester would not do: the token written on it would stay its own, so
 * read-your-writes would no longer hold between the application's commands and the lock's.) A
 * client with middleware (`redis.use`) calls its requester itself, with its own retries.
 */
function sendingOnce(requester: UpstashRequester): UpstashRequester {
  return new Proxy(requester, {
    get: (target, name) => (name === "retry" ? ONCE : Reflect.get(target, name)),
  });
}

/**
 * The `http://` and `https://` transport of `RedisLock`: an `@upstash/redis` client for the
 * resolved URL, with `credential.password` as the REST token and no client-side retries
 * (edgelock retries with the same token). Plain `http://` is refused (`INVALID_CONFIG`) unless
 * the host is loopback: the token would cross the network in clear.
 *
 * @example
 * ```ts
 * const lock = new RedisLock({ transports: [upstashTransport] }); // needed only in bundles
 * ```
 */
export const upstashTransport: LockTransport = {
  protocols: ["http:", "https:"],
  async connect(target) {
    if (target.protocol === "http:" && !isLoopback(target.host)) {
      throw new LockConfigError(
        "connection.uri",
        `refuses http://${target.host}: the REST token would cross the network in clear; ` +
          "use https:// (http:// is accepted for loopback hosts only)",
      );
    }
    if (!target.password) {
      throw new LockConfigError(
        "credential.password",
        "a REST (HTTP) connection needs its token as the password",
      );
    }
    const { Redis } = await import("@upstash/redis");
    const port = target.port === undefined ? "" : `:${target.port}`;
    const client = new Redis({
      url: `${target.protocol}//${target.host}${port}${target.path}`,
      token: target.password,
      retry: { retries: 0 },
      enableTelemetry: false,
    });
    const send = sender(client, {});
    return {
      adapter: upstashAdapter(client),
      ping: async () => {
        const reply = await send(["ping"]);
        if (reply !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(reply)}`);
      },
      close: async () => {},
    };
  },
};

/** The requester of an `@upstash/redis` client, or a clear error if `redis` is not one. */
function requesterOf(redis: unknown): UpstashRequester {
  const client = typeof redis === "object" && redis !== null ? redis : undefined;
  const requester = (client as { client?: Partial<UpstashRequester> } | undefined)?.client;
  if (typeof requester?.request !== "function") {
    throw new InvalidArgumentError(
      "redis",
      "upstashAdapter needs a Redis client from @upstash/redis (1.34 or newer), got " +
        describeValue(redis),
    );
  }
  return requester as UpstashRequester;
}

/** True for `localhost` (and `*.localhost`), 127.0.0.0/8 and `::1`. */
function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    host === "::1" ||
    /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/**
 * The error with the echoed request cut from its message: the client's ", command was: [...]"
 * and Redis's "unknown command '…', with args beginning with: …", both of which hold the lock
 * token. The original is not kept as the cause, since its message has the token. (Terse: this
 * runs in every edge bundle.)
 */
function redact(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const kept = error.message.replace(/, (command was|with args).*/s, "");
  if (kept === error.message) return error;
  const clean = new Error(kept);
  clean.name = error.name;
  return clean;
}

/**
 * The error with the reason from its cause added to its message, when the message does not have
 * it: `fetch` rejects with "fetch failed" and the reason (`connect ECONNREFUSED …`, `getaddrinfo
 * ENOTFOUND …`, a certificate error) in its `cause`, which may have only a `code`. The original
 * is kept as the cause.
 */
function withReason(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const cause = error.cause as { message?: unknown; code?: unknown } | null | undefined;
  const reason = String(cause?.message || cause?.code || "").trim();
  if (reason === "" || error.message.includes(reason)) return error;
  const told = new Error(`${error.message}: ${reason}`, { cause: error });
  told.name = error.name;
  return told;
}
