/**
 * `edgelock gateway`: argument parsing, and the command itself run as a child process
 * (`tsx adapters/gateway/cli.ts gateway ...`) serving the real `@upstash/redis` client.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis as Upstash } from "@upstash/redis";
import { parseGatewayArgs } from "edgelock/gateway";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const TSX = `${root}node_modules/.bin/tsx`;
const CLI = `${root}adapters/gateway/cli.ts`;

describe("parseGatewayArgs", () => {
  it("reads flags, with defaults for the rest", () => {
    expect(
      parseGatewayArgs(
        ["gateway", "--redis", "redis://h:1", "--port", "0", "--token", "a", "--token", "b"],
        {},
      ),
    ).toEqual({
      kind: "gateway",
      options: { redis: "redis://h:1", port: 0, host: "127.0.0.1", tokens: ["a", "b"] },
    });
    expect(
      parseGatewayArgs(
        [
          "gateway",
          "--read-only-token=r",
          "--host",
          "0.0.0.0",
          "--max-body-bytes",
          "2048",
          "--command-timeout",
          "750",
        ],
        {},
      ),
    ).toEqual({
      kind: "gateway",
      options: {
        redis: "redis://127.0.0.1:6379",
        port: 8079,
        host: "0.0.0.0",
        tokens: [{ token: "r", readOnly: true }],
        maxBodyBytes: 2048,
        commandTimeout: 750,
      },
    });
  });

  it("adds tokens and the Redis URL from the environment", () => {
    const parsed = parseGatewayArgs(["gateway", "--token", "flag"], {
      EDGELOCK_GATEWAY_TOKENS: " env1, env2 ,,",
      EDGELOCK_GATEWAY_READONLY_TOKENS: "ro1",
      REDIS_URL: "redis://env:6380",
    });
    expect(parsed).toEqual({
      kind: "gateway",
      options: {
        redis: "redis://env:6380",
        port: 8079,
        host: "127.0.0.1",
        tokens: ["flag", "env1", "env2", { token: "ro1", readOnly: true }],
      },
    });
    const flagWins = parseGatewayArgs(["gateway", "--redis", "redis://flag:1"], {
      EDGELOCK_GATEWAY_TOKENS: "t",
      REDIS_URL: "redis://env:6380",
    });
    expect(flagWins.kind === "gateway" && flagWins.options.redis).toBe("redis://flag:1");
  });

  it("reads --tls-cert and --tls-key, which go together", () => {
    const tls = ["--tls-cert", "/etc/gw/cert.pem", "--tls-key", "/etc/gw/key.pem"];
    expect(parseGatewayArgs(["gateway", "--token", "t", ...tls], {})).toMatchObject({
      options: { tlsFiles: { cert: "/etc/gw/cert.pem", key: "/etc/gw/key.pem" } },
    });
    for (const half of [tls.slice(0, 2), tls.slice(2)]) {
      expect(() => parseGatewayArgs(["gateway", "--token", "t", ...half], {})).toThrow(
        /--tls-cert and --tls-key go together/,
      );
    }
  });

  it("shows the help for --help or -h", () => {
    expect(parseGatewayArgs(["gateway", "--help"], {})).toEqual({ kind: "help" });
    expect(parseGatewayArgs(["-h"], {})).toEqual({ kind: "help" });
  });

  it("refuses to run without a token, and bad arguments, never echoing a token", () => {
    expect(() => parseGatewayArgs(["gateway"], {})).toThrow(/no token/);
    expect(() => parseGatewayArgs(["gateway"], { EDGELOCK_GATEWAY_TOKENS: " , " })).toThrow(
      /no token/,
    );
    expect(() => parseGatewayArgs(["--token", "t"], {})).toThrow(/missing command/);
    expect(() => parseGatewayArgs(["serve", "--token", "t"], {})).toThrow(/unexpected arguments/);
    expect(() => parseGatewayArgs(["gateway", "s3cret-positional"], {})).not.toThrow(
      /s3cret-positional/,
    );
    expect(() => parseGatewayArgs(["gateway", "--token", "t", "--port", "http"], {})).toThrow(
      "--port must be an integer from 0 to 65535, got 'http'",
    );
    expect(() => parseGatewayArgs(["gateway", "--token", "t", "--port", "70000"], {})).toThrow(
      /--port/,
    );
    expect(() => parseGatewayArgs(["gateway", "--token", "t", "--verbose"], {})).toThrow(
      /--verbose/,
    );
    expect(() => parseGatewayArgs(["gateway", "--token", " padded"], {})).toThrow(/whitespace/);
  });
});

/** A running `edgelock` child process with its output so far. */
interface Cli {
  child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<number | null>;
}

function runCli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(TSX, [CLI, ...args], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      UPSTASH_DISABLE_TELEMETRY: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exit,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output);
          if (match === null) return;
          cleanup();
          resolve(match);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} in output within ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`exited before ${pattern}:\n${output}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off("exit", onExit);
        };
        listeners.add(check);
        child.once("exit", onExit);
        check();
      });
    },
  };
}

describe("edgelock gateway (child process)", () => {
  let redis: RedisProcess;
  const running: Cli[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const cli of running) cli.child.kill("SIGKILL");
    await redis?.stop();
  });

  it("serves the real client, prints its URL but no token, and drains on SIGTERM → exit 0", async () => {
    const token = "cli-token-7f3a9c";
    const readOnly = "cli-readonly-2b8e";
    const cli = runCli(["gateway", "--redis", redis.url, "--port", "0", "--token", token], {
      EDGELOCK_GATEWAY_READONLY_TOKENS: readOnly,
    });
    running.push(cli);
    const [, url] = await cli.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const client = new Upstash({ url: url as string, token, retry: { retries: 0 } });
    expect(await client.set("cli:k", "v", { px: 10_000 })).toBe("OK");
    expect(await client.get("cli:k")).toBe("v");
    const reader = new Upstash({ url: url as string, token: readOnly, retry: { retries: 0 } });
    expect(await reader.get("cli:k")).toBe("v");
    await expect(reader.del("cli:k")).rejects.toThrow(/NOPERM/);

    const inFlight = fetch(url as string, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(["debug", "sleep", "0.3"]),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    cli.child.kill("SIGTERM");
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ result: "OK" });
    expect(await cli.exit).toBe(0);
    expect(cli.output()).toMatch(/SIGTERM/);
    expect(cli.output()).not.toContain(token);
    expect(cli.output()).not.toContain(readOnly);
  });

  it("takes its tokens and Redis from the environment, and hides Redis credentials", async () => {
    // redis-server has no password; ioredis warns about the AUTH and carries on.
    const plain = runCli(["gateway", "--port", "0"], {
      EDGELOCK_GATEWAY_TOKENS: "env-token-one,env-token-two",
      REDIS_URL: redis.url.replace("redis://", "redis://:not-the-password@"),
    });
    running.push(plain);
    const [, url] = await plain.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    expect(plain.output()).toMatch(
      /redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+; 2 token\(s\), 0 read-only/,
    );
    const client = new Upstash({
      url: url as string,
      token: "env-token-two",
      retry: { retries: 0 },
    });
    expect(await client.incr("cli:env")).toBe(1);
    plain.child.kill("SIGINT");
    expect(await plain.exit).toBe(0);
    expect(plain.output()).not.toContain("env-token");
    expect(plain.output()).not.toContain("not-the-password");
  });

  it("refuses to start without a token (exit 2), and prints --help (exit 0)", async () => {
    const refused = runCli(["gateway", "--redis", redis.url, "--port", "0"]);
    running.push(refused);
    expect(await refused.exit).toBe(2);
    expect(refused.output()).toMatch(/no token/);
    expect(refused.output()).not.toMatch(/listening/);

    const help = runCli(["gateway", "--help"]);
    running.push(help);
    expect(await help.exit).toBe(0);
    expect(help.output()).toMatch(/Usage: edgelock gateway/);
    expect(help.output()).toMatch(/EDGELOCK_GATEWAY_TOKENS/);
  });
});
