/**
 * Serving the gateway on `node:http`.
 *
 * - Keep-alive connections stay open 65 s when idle, well above the 4 s after which undici (the
 *   `fetch` of Node, used by `@upstash/redis`) drops idle sockets: the client closes first, so it
 *   never sends a request on a socket the server is closing, which it would retry, applying the
 *   command twice.
 * - Every request is answered, including malformed HTTP (400 JSON).
 * - With `tls`, it serves HTTPS (`node:https`) instead, so tokens never cross the network in clear.
 * - `close()` stops accepting connections, answers the requests in flight (with
 *   `Connection: close`), closes idle connections, then quits Redis if it created the client.
 *
 * @module
 */

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Socket } from "node:net";
import type { Redis } from "ioredis";
import { createGatewayApp } from "./app";
import { createAuthenticator, type GatewayToken } from "./auth";
import { answer, type FetchHandler } from "./node-bridge";
import { assertGatewayClient, DEFAULT_COMMAND_TIMEOUT, gatewayRedis, waitForReady } from "./redis";

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  /**
   * A Redis URL, for a client the gateway creates (with {@link gatewayRedis}) and quits on
   * `close()`; or an ioredis client with `protocol: 2` that the caller owns and closes.
   */
  redis: string | Redis;
  /** The tokens accepted: strings are read-write; `{ token, readOnly: true }` may only read. */
  tokens: readonly GatewayToken[];
  /**
   * The TCP port; `0` picks a free one (read it from the result).
   * @default 8079
   */
  port?: number;
  /**
   * The address to listen on; `0.0.0.0` or `::` to accept connections from other hosts.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * The largest request body accepted, in bytes.
   * @default 1048576 (1 MiB)
   */
  maxBodyBytes?: number;
  /**
   * How long a Redis command may take before its request fails with 503, in milliseconds. Used
   * only when the gateway creates the client from a URL.
   * @default 5000
   */
  commandTimeout?: number;
  /**
   * Serve HTTPS with this certificate (chain) and private key, both PEM; plain HTTP without.
   * Use it whenever clients reach the gateway over a network: tokens travel in every request.
   */
  tls?: GatewayTlsOptions;
}

/** The certificate of an HTTPS gateway. */
export interface GatewayTlsOptions {
  /** The server certificate, followed by any intermediates, in PEM. */
  cert: string | Buffer;
  /** The certificate's private key, in PEM. */
  key: string | Buffer;
}

/** A running gateway, from {@link startGateway}. */
export interface RunningGateway {
  /** The base URL to give `@upstash/redis`: `http://127.0.0.1:8079` (`https://` with `tls`). */
  readonly url: string;
  /** The port listened on (the one picked, when `port` was 0). */
  readonly port: number;
  /** Stops accepting, answers requests in flight, closes connections; idempotent. */
  close(): Promise<void>;
}

/** The default port of the gateway. */
export const DEFAULT_PORT = 8079;
/** How long an idle keep-alive connection stays open, in milliseconds. */
export const KEEP_ALIVE_TIMEOUT = 65_000;
const REQUEST_TIMEOUT = 120_000;
const READY_TIMEOUT = 10_000;

const BAD_REQUEST_BODY = '{"error":"ERR bad request"}';
const BAD_REQUEST =
  "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n" +
  `content-length: ${BAD_REQUEST_BODY.length}\r\n\r\n${BAD_REQUEST_BODY}`;

function originOf(scheme: "http" | "https", host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

/** Answers malformed HTTP with a JSON 400, as far as the socket still allows. */
function onClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(BAD_REQUEST);
}

/** Serves `app` on `node:http` (`node:https` with `tls`); `onClosed` runs once it has closed. */
async function serve(
  app: FetchHandler,
  port: number,
  host: string,
  tls: GatewayTlsOptions | undefined,
  onClosed: () => Promise<void>,
): Promise<RunningGateway> {
  const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }) : createServer();
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT + 1_000;
  server.requestTimeout = REQUEST_TIMEOUT;
  server.on("clientError", onClientError);

  let closing = false;
  let origin = "";
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    await answer(app, req, res, origin, closing);
    if (closing) server.closeIdleConnections();
  };
  server.on("request", (req, res) => {
    void handle(req, res);
  });

  const boundPort = await listen(server, port, host);
  origin = originOf(tls ? "https" : "http", host, boundPort);
  let closed: Promise<void> | undefined;
  return {
    url: origin,
    port: boundPort,
    close() {
      closed ??= (async () => {
        closing = true;
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await onClosed();
      })();
      return closed;
    },
  };
}

/**
 * Starts the gateway on `node:http`: connects to Redis (when given a URL) and waits until it is
 * ready, then listens. Resolves once it accepts connections.
 *
 * @example
 * ```ts
 * import { startGateway } from "edgelock/gateway";
 * import { Redis } from "@upstash/redis";
 *
 * const gateway = await startGateway({ redis: "redis://127.0.0.1:6379", tokens: ["s3cret"], port: 0 });
 * const client = new Redis({ url: gateway.url, token: "s3cret" });
 * await client.set("greeting", "hello");
 * await gateway.close();
 * ```
 */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const { port = DEFAULT_PORT, host = "127.0.0.1" } = options;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new TypeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
  createAuthenticator(options.tokens); // validate the tokens before connecting to anything
  const ownsRedis = typeof options.redis === "string";
  const redis =
    typeof options.redis === "string"
      ? await gatewayRedis(options.redis, {
          commandTimeout: options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
        })
      : options.redis;
  const quitRedis = async () => {
    if (ownsRedis) await redis.quit().catch(() => redis.disconnect());
  };
  try {
    assertGatewayClient(redis);
    await waitForReady(redis, READY_TIMEOUT);
    const app = createGatewayApp({
      redis,
      tokens: options.tokens,
      ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    });
    return await serve(app, port, host, options.tls, quitRedis);
  } catch (error) {
    await quitRedis();
    throw error;
  }
}
