#!/usr/bin/env node
/**
 * The `edgelock` command: `edgelock gateway --redis redis://host:6379 --port 8079 --token ...`.
 *
 * Prints the URL it listens on (never a token); on SIGINT or SIGTERM it stops accepting, answers
 * the requests in flight and exits 0. A second signal exits at once with status 1.
 * Exit status 2 is a bad command line, 1 a failure to start.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { CliUsageError, GATEWAY_USAGE, type GatewayCliOptions, parseGatewayArgs } from "./cli-args";
import { type StartGatewayOptions, startGateway } from "./server";

/**
 * The Redis URL without its credentials, for printing: no user info, and no query values
 * (ioredis also reads `?password=` from the query).
 */
function redisForDisplay(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username !== "" || parsed.password !== "") {
      parsed.username = "";
      parsed.password = "***";
    }
    for (const name of new Set(parsed.searchParams.keys())) parsed.searchParams.set(name, "***");
    return parsed.toString();
  } catch {
    return "(the given Redis)";
  }
}

/** The options of {@link startGateway} for a command line, with the TLS files read. */
async function gatewayOptions(cli: GatewayCliOptions): Promise<StartGatewayOptions> {
  const { tlsFiles, ...options } = cli;
  if (tlsFiles === undefined) return options;
  const [cert, key] = await Promise.all([readFile(tlsFiles.cert), readFile(tlsFiles.key)]);
  return { ...options, tls: { cert, key } };
}

async function main(): Promise<void> {
  let command: ReturnType<typeof parseGatewayArgs>;
  try {
    command = parseGatewayArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof CliUsageError)) throw error;
    process.stderr.write(`edgelock: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  if (command.kind === "help") {
    process.stdout.write(GATEWAY_USAGE);
    return;
  }

  const { options } = command;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(await gatewayOptions(options));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`edgelock gateway: cannot start: ${message}\n`);
    process.exitCode = 1;
    return;
  }
  const readOnly = options.tokens.filter((token) => typeof token !== "string").length;
  process.stdout.write(
    `edgelock gateway listening on ${gateway.url} ` +
      `(redis ${redisForDisplay(options.redis)}; ${options.tokens.length} token(s), ` +
      `${readOnly} read-only)\n`,
  );

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stdout.write(`edgelock gateway: ${signal}, answering requests in flight\n`);
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

void main();
