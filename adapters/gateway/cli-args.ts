/**
 * The command line of `edgelock gateway`, parsed into {@link startGateway} options. Kept apart
 * from `cli.ts` (which runs on import) so it can be tested.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { GatewayToken } from "./auth";
import { DEFAULT_PORT } from "./server";

/** The help text of `edgelock gateway`. */
export const GATEWAY_USAGE = `Usage: edgelock gateway [options]

Serves the Upstash Redis REST protocol (POST /, /pipeline, /multi-exec) in front of a Redis,
so @upstash/redis and edgelock/upstash can use it.

Options:
  --redis <url>             Redis to serve (env REDIS_URL; default redis://127.0.0.1:6379)
  --port <n>                port to listen on, 0 for a free one (default ${DEFAULT_PORT})
  --host <address>          address to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --token <token>           a read-write token; repeat for several
  --read-only-token <token> a token that may only read; repeat for several
  --max-body-bytes <n>      largest request body in bytes (default 1048576)
  --command-timeout <ms>    deadline of one Redis command in milliseconds (default 5000)
  --tls-cert <file>         serve HTTPS with this PEM certificate (chain); needs --tls-key
  --tls-key <file>          the PEM private key of --tls-cert
  -h, --help                show this help

Environment:
  EDGELOCK_GATEWAY_TOKENS           read-write tokens, comma-separated
  EDGELOCK_GATEWAY_READONLY_TOKENS  read-only tokens, comma-separated
  REDIS_URL                         Redis to serve when --redis is not given

At least one token is required. Prefer the environment for tokens: command-line arguments are
visible to other users of the machine (ps). The gateway never prints a token. Serve HTTPS
(--tls-cert, --tls-key) whenever clients reach it over a network: every request carries a token.

Example:
  EDGELOCK_GATEWAY_TOKENS=s3cret npx edgelock gateway --redis redis://127.0.0.1:6379 --port 8079
`;

/** What `edgelock gateway` was asked to start. */
export interface GatewayCliOptions {
  /** `--redis`, else `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  redis: string;
  /** `--port`, else 8079. */
  port: number;
  /** `--host`, else `127.0.0.1`. */
  host: string;
  /** `--token` and `EDGELOCK_GATEWAY_TOKENS`, then the read-only ones; never empty. */
  tokens: GatewayToken[];
  /** `--max-body-bytes`, in bytes. */
  maxBodyBytes?: number;
  /** `--command-timeout`, in milliseconds. */
  commandTimeout?: number;
  /** `--tls-cert` and `--tls-key`: the PEM files to serve HTTPS with. */
  tlsFiles?: { cert: string; key: string };
}

/** The parsed command line: show the help, or start the gateway. */
export type GatewayCommand = { kind: "help" } | { kind: "gateway"; options: GatewayCliOptions };

/** A command line that cannot be run; the CLI prints the message and exits with status 2. */
export class CliUsageError extends Error {
  override readonly name = "CliUsageError";
}

function integer(flag: string, text: string | undefined, min: number, max: number) {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new CliUsageError(`${flag} must be an integer from ${min} to ${max}, got '${text}'`);
  }
  return value;
}

const fromList = (list: string | undefined) =>
  (list ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "");

function parse(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        redis: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        token: { type: "string", multiple: true },
        "read-only-token": { type: "string", multiple: true },
        "max-body-bytes": { type: "string" },
        "command-timeout": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new CliUsageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Parses the arguments after the program name (`["gateway", "--port", "8079", ...]`) with the
 * tokens and Redis URL the environment adds. Throws a {@link CliUsageError} for anything that
 * cannot run, including no token at all; its message never contains a token.
 *
 * @example
 * ```ts
 * parseGatewayArgs(["gateway", "--port", "0"], { EDGELOCK_GATEWAY_TOKENS: "a,b" });
 * // { kind: "gateway", options: { redis: "redis://127.0.0.1:6379", port: 0, host: "127.0.0.1",
 * //   tokens: ["a", "b"] } }
 * ```
 */
export function parseGatewayArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): GatewayCommand {
  const { values, positionals } = parse(argv);
  if (values.help === true) return { kind: "help" };
  if (positionals[0] !== "gateway" || positionals.length > 1) {
    throw new CliUsageError(
      positionals.length === 0
        ? "missing command: edgelock gateway [options] (see --help)"
        : "unexpected arguments: the only command is 'edgelock gateway [options]' (see --help)",
    );
  }
  const readWrite = [...(values.token ?? []), ...fromList(env.EDGELOCK_GATEWAY_TOKENS)];
  const readOnly = [
    ...(values["read-only-token"] ?? []),
    ...fromList(env.EDGELOCK_GATEWAY_READONLY_TOKENS),
  ];
  if (readWrite.length + readOnly.length === 0) {
    throw new CliUsageError(
      "no token: pass --token (or --read-only-token), or set EDGELOCK_GATEWAY_TOKENS; " +
        "the gateway does not serve Redis without authentication",
    );
  }
  if ([...readWrite, ...readOnly].some((token) => token.trim() !== token || token === "")) {
    throw new CliUsageError("tokens must not be empty or start or end with whitespace");
  }
  const maxBodyBytes = integer("--max-body-bytes", values["max-body-bytes"], 1, 2 ** 31);
  const commandTimeout = integer("--command-timeout", values["command-timeout"], 1, 2 ** 31);
  const cert = values["tls-cert"];
  const key = values["tls-key"];
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliUsageError("--tls-cert and --tls-key go together: pass both, or neither");
  }
  return {
    kind: "gateway",
    options: {
      redis: values.redis ?? env.REDIS_URL ?? "redis://127.0.0.1:6379",
      port: integer("--port", values.port, 0, 65_535) ?? DEFAULT_PORT,
      host: values.host ?? "127.0.0.1",
      tokens: [...readWrite, ...readOnly.map((token) => ({ token, readOnly: true }))],
      ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
      ...(commandTimeout === undefined ? {} : { commandTimeout }),
      ...(cert === undefined || key === undefined ? {} : { tlsFiles: { cert, key } }),
    },
  };
}
