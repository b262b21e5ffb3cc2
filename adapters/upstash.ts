/**
 * The HTTP transport, over an `@upstash/redis` client the user owns: Upstash itself, or any
 * server speaking its REST protocol (such as `edgelock/gateway`). Web-standard APIs only, so it
 * runs on Node, Cloudflare Workers, Vercel Edge and Deno.
 *
 * - One HTTP request per operation: scripts go straight to the client's requester, never into
 *   its auto-pipeline, so they are not batched with (or failed together with) application traffic.
 * - `EVALSHA`, and `EVAL` only after a real `NOSCRIPT` reply.
 * - Every request has its own deadline (`requestTimeout`), which aborts it for real; the lock core
 *   then retries with the same token, which is safe because every operation is idempotent.
 * - Error messages are stripped of the echoed command, so a lock token never appears in them.
 * - Plain `http://` is refused except to loopback hosts: the REST token would cross the network in
 *   clear (opt in with `allowHttp`).
 * - No pub/sub over REST: waiters back off with full jitter, bounded by the holder's lease.
 *
 * @module
 */

import {
  checkDuration,
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
  /** The REST URL the client was created with. */
  baseUrl?: unknown;
}

/** Options of {@link upstashAdapter}. */
export interface UpstashAdapterOptions {
  /**
   * How long one HTTP request may take before it is aborted and counts as failed, in ms.
   * @default 5000
   */
  requestTimeout?: number;
  /**
   * Accept a plain `http://` URL to a host other than loopback, which sends the REST token and
   * the lock tokens over the network in clear (a gateway on a trusted private network, say).
   * @default false
   */
  allowHttp?: boolean;
}

/**
 * Creates the HTTP transport over an `@upstash/redis` `Redis` client. Any client settings work
 * (auto-pipelining, either response encoding, automatic deserialization on or off); see the
 * README for the recommended ones.
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
 */
export function upstashAdapter(redis: object, options: UpstashAdapterOptions = {}): LockAdapter {
  const send = sender(redis, options);
  const host = cleartextHost(requesterOf(redis).baseUrl);
  if (host !== undefined && options.allowHttp !== true) {
    throw new InvalidArgumentError(
      "redis",
      `upstashAdapter refuses http://${host}: the REST token would cross the network in clear; ` +
        "use https://, or pass { allowHttp: true } (http:// to a loopback host is always allowed)",
    );
  }
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
  const requester = requesterOf(redis);
  const timeout = checkDuration(options.requestTimeout ?? 5000, "requestTimeout", 1);
  return async (command: string[]): Promise<unknown> => {
    let reply: { result?: unknown; error?: string };
    try {
      reply = await requester.request({
        body: command,
        signal: () => AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw redact(error);
    }
    if (reply.error !== undefined) throw redact(new Error(reply.error));
    return reply.result;
  };
}

/**
 * The `http://` and `https://` transport of `RedisLock`: an `@upstash/redis` client for the
 * resolved URL, with `credential.password` as the REST token and no client-side retries
 * (edgelock retries with the same token).
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
function requesterOf(redis: object): UpstashRequester {
  const requester = (redis as { client?: Partial<UpstashRequester> }).client;
  if (typeof requester?.request !== "function") {
    throw new InvalidArgumentError(
      "redis",
      "upstashAdapter needs a Redis client from @upstash/redis (1.34 or newer)",
    );
  }
  return requester as UpstashRequester;
}

/**
 * The host of `url` when it is plain `http://` to a host that is not loopback; else undefined
 * (also for anything that is not a URL: the client itself checks those).
 */
function cleartextHost(url: unknown): string | undefined {
  if (typeof url !== "string") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const { protocol, hostname, host } = parsed;
  return protocol === "http:" && !isLoopback(hostname) ? host : undefined;
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

/** Where the echoes of a request in an error message begin; the text after them holds tokens. */
const ECHOES = [", command was:", ", with args beginning with:"];

/**
 * The error with the echoed request cut from its message: the client's ", command was: [...]"
 * and Redis's "unknown command '…', with args beginning with: …", both of which hold the lock
 * token. The original is not kept as the cause, since its message has the token.
 */
function redact(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const cuts = ECHOES.map((echo) => error.message.indexOf(echo)).filter((cut) => cut >= 0);
  if (cuts.length === 0) return error;
  const clean = new Error(error.message.slice(0, Math.min(...cuts)));
  clean.name = error.name;
  return clean;
}
