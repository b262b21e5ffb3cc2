/**
 * `edgelock/gateway`: a server that speaks the Upstash Redis REST protocol in front of any Redis,
 * so `@upstash/redis` (and edgelock's `edgelock/upstash` adapter) can run against your own Redis
 * from Workers, Vercel, Lambda or tests.
 *
 * - `POST /` (one command), `POST /pipeline`, `POST /multi-exec`, as Upstash serves them;
 * - tokens as `Authorization: Bearer` or `?_token=`, several, optionally read-only;
 * - replies in RESP2 shapes, base64 or plain per request (`Upstash-Encoding`);
 * - connection-state and blocking commands refused; transactions never interleaved.
 *
 * Run it with `npx edgelock gateway --redis redis://127.0.0.1:6379 --token ...`, start it from
 * code with {@link startGateway}, or mount {@link createGatewayApp} in your own Hono app.
 * This entry is for Node (it uses `node:http` and ioredis); edge code imports `edgelock` and
 * `edgelock/upstash` only.
 *
 * @see https://upstash.com/docs/redis/features/restapi
 * @module
 */

export { createGatewayApp, type GatewayAppOptions, type GatewayVariables, SYNC_TOKEN } from "./app";
export type { GatewayToken } from "./auth";
export { DEFAULT_MAX_BODY_BYTES } from "./body";
export { type GatewayCliOptions, type GatewayCommand, parseGatewayArgs } from "./cli-args";
export { type Access, READ_ONLY_COMMANDS } from "./commands";
export { type GatewayErrorBody, WRONGPASS } from "./errors";
export { DEFAULT_COMMAND_TIMEOUT, type GatewayRedisOptions, gatewayRedis } from "./redis";
export {
  DEFAULT_PORT,
  type GatewayTlsOptions,
  KEEP_ALIVE_TIMEOUT,
  type RunningGateway,
  type StartGatewayOptions,
  startGateway,
} from "./server";
