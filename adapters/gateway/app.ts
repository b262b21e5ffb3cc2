/**
 * The gateway as a Hono app: the Upstash REST protocol (`POST /`, `/pipeline`, `/multi-exec`)
 * in front of one ioredis connection.
 *
 * Order of checks for every request: token (401, on every path, known or not), then path (404)
 * and method (405), then the `Upstash-Response-Format`, the body (413, 400) and the commands
 * (400), and only then Redis. Every response is JSON and carries an `upstash-sync-token` header.
 * Nothing is logged.
 *
 * @module
 */

import type { Context } from "hono";
import { Hono } from "hono";
import type { Redis } from "ioredis";
import { watchConnection } from "../connection-watch";
import { createAuthenticator, type GatewayToken } from "./auth";
import { DEFAULT_MAX_BODY_BYTES, parseCommand, parseCommands, readBody } from "./body";
import { type Access, commandRejection } from "./commands";
import { GatewayError, WRONGPASS } from "./errors";
import { runCommand, runPipeline, runTransaction } from "./execute";
import { assertGatewayClient } from "./redis";
import { encodeReply, type ReplyEncoding, type ReplyValue, replyEncodingOf } from "./reply";

/** Options of {@link createGatewayApp}. */
export interface GatewayAppOptions {
  /**
   * The Redis connection every request shares, with `protocol: 2`; {@link gatewayRedis} makes
   * one with the right settings. The caller owns it: the app never closes it. The app adds one
   * `error` and one `ready` listener to it, to say in its 503s why Redis cannot be reached.
   */
  redis: Redis;
  /** The tokens accepted: strings are read-write; `{ token, readOnly: true }` may only read. */
  tokens: readonly GatewayToken[];
  /**
   * The largest request body accepted, in bytes; larger ones get 413.
   * @default 1048576 (1 MiB)
   */
  maxBodyBytes?: number;
}

/** The Hono variables the gateway sets for its handlers. */
export interface GatewayVariables {
  /** What the request's token may do. */
  access: Access;
}

type GatewayEnv = { Variables: GatewayVariables };

/** The value of the `upstash-sync-token` response header. One Redis needs no read-your-writes. */
export const SYNC_TOKEN = "edgelock-gateway";

const errorResponse = (c: Context, error: GatewayError) => c.json(error.toJSON(), error.status);

/** The item of a batch response for one outcome. */
function item(
  outcome: { reply: unknown } | { error: string },
  encoding: ReplyEncoding,
): { result: ReplyValue } | { error: string } {
  return "error" in outcome ? outcome : { result: encodeReply(outcome.reply, encoding) };
}

/** Refuses `Upstash-Response-Format` values other than `json` (no raw RESP2 output here). */
function checkResponseFormat(request: Request): void {
  const format = request.headers.get("upstash-response-format");
  if (format !== null && format.trim().toLowerCase() !== "json") {
    throw new GatewayError(400, "ERR only Upstash-Response-Format: json is supported");
  }
}

/**
 * Creates the gateway app. Serve it with any server that speaks the Fetch API, mount it under a
 * path prefix with `app.route()`, or let {@link startGateway} serve it on `node:http`.
 *
 * Mounted with `parent.route("/redis", app)`, it serves `POST /redis`, `/redis/pipeline` and
 * `/redis/multi-exec` (the client strips a trailing slash from its URL); create the parent with
 * `new Hono({ strict: false })` to serve `POST /redis/` as well.
 *
 * @example
 * ```ts
 * import { createGatewayApp, gatewayRedis } from "edgelock/gateway";
 *
 * const redis = await gatewayRedis("redis://127.0.0.1:6379");
 * const app = createGatewayApp({ redis, tokens: ["s3cret", { token: "r3ad", readOnly: true }] });
 * const res = await app.request("/", {
 *   method: "POST",
 *   headers: { authorization: "Bearer s3cret" },
 *   body: JSON.stringify(["set", "greeting", "hello"]),
 * });
 * await res.json(); // { result: "OK" }
 * ```
 */
export function createGatewayApp(options: GatewayAppOptions): Hono<GatewayEnv> {
  const { redis } = options;
  assertGatewayClient(redis);
  watchConnection(redis); // from now on, a 503 says why Redis cannot be reached
  const authenticate = createAuthenticator(options.tokens);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TypeError(`maxBodyBytes must be a positive integer (bytes), got ${maxBodyBytes}`);
  }

  const app = new Hono<GatewayEnv>();

  app.use("*", async (c, next) => {
    c.header("upstash-sync-token", SYNC_TOKEN);
    const access = await authenticate(c.req.raw);
    if (access === undefined) return errorResponse(c, new GatewayError(401, WRONGPASS));
    c.set("access", access);
    await next();
  });

  /** Reads and parses the body; returns it with the reply encoding and the token's access. */
  const prepare = async <T>(c: Context<GatewayEnv>, parse: (text: string) => T) => {
    checkResponseFormat(c.req.raw);
    const parsed = parse(await readBody(c.req.raw, maxBodyBytes));
    return { parsed, encoding: replyEncodingOf(c.req.raw.headers), access: c.get("access") };
  };

  const single = async (c: Context<GatewayEnv>) => {
    const { parsed: command, encoding, access } = await prepare(c, parseCommand);
    const refusal = commandRejection(command, access);
    if (refusal !== undefined) throw new GatewayError(400, refusal);
    const outcome = await runCommand(redis, command);
    if ("error" in outcome) throw new GatewayError(400, outcome.error);
    return c.json({ result: encodeReply(outcome.reply, encoding) });
  };
  app.post("/", single);

  app.post("/pipeline", async (c) => {
    const { parsed: commands, encoding, access } = await prepare(c, parseCommands);
    const refusals = commands.map((command) => commandRejection(command, access));
    const outcomes = await runPipeline(redis, commands, refusals);
    return c.json(outcomes.map((outcome) => item(outcome, encoding)));
  });

  app.post("/multi-exec", async (c) => {
    const { parsed: commands, encoding, access } = await prepare(c, parseCommands);
    for (const [index, command] of commands.entries()) {
      const refusal = commandRejection(command, access);
      if (refusal !== undefined) throw new GatewayError(400, `${refusal} (command ${index})`);
    }
    const outcomes = await runTransaction(redis, commands);
    return c.json(outcomes.map((outcome) => item(outcome, encoding)));
  });

  const notAllowed = (c: Context) => {
    c.header("allow", "POST");
    return errorResponse(c, new GatewayError(405, "ERR method not allowed: use POST"));
  };
  for (const path of ["/", "/pipeline", "/multi-exec"]) app.all(path, notAllowed);

  app.notFound((c) =>
    errorResponse(
      c,
      new GatewayError(404, "ERR not found: this gateway serves POST /, /pipeline and /multi-exec"),
    ),
  );
  app.onError((error, c) => {
    c.header("upstash-sync-token", SYNC_TOKEN);
    if (error instanceof GatewayError) return errorResponse(c, error);
    return errorResponse(c, new GatewayError(500, "ERR internal gateway error"));
  });
  return app;
}
