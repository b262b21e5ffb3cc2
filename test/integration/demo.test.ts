/// <reference types="node" />
/**
 * `npm run demo` as a user runs it (`tsx examples/node/demo.ts`): on a real Redis it runs its
 * workers and exits 0; with Redis refused or silent, it prints one line saying why and exits 1
 * within seconds, instead of never exiting while ioredis floods stderr with reconnections.
 */

import { spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  elapsed: number;
}

/** Runs the demo with `REDIS_URL`, killing it after `limit` ms. */
function demo(redisUrl: string, limit = 20_000): Promise<Run> {
  const started = performance.now();
  const child = spawn(`${root}node_modules/.bin/tsx`, [`${root}examples/node/demo.ts`], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", REDIS_URL: redisUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), limit);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, elapsed: performance.now() - started });
    }),
  );
}

let server: RedisProcess;
let silent: Server;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = await startRedisServer();
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await server?.stop();
});

describe("npm run demo", () => {
  it("runs its workers on a real Redis and exits 0", async () => {
    const run = await demo(server.url);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("fences strictly increasing: true");
    expect(run.stderr).toBe("");
  });

  it("with Redis refused, prints one line naming the cause and exits 1 within seconds", async () => {
    const run = await demo(`redis://127.0.0.1:${await freePort()}`);
    expect(run.code).toBe(1);
    expect(run.elapsed).toBeLessThan(10_000);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^edgelock demo failed: cannot acquire lock "report": .*ECONNREFUSED/);
  });

  it("with Redis silent, prints one line and exits 1 within seconds", async () => {
    const { port } = silent.address() as { port: number };
    const run = await demo(`redis://127.0.0.1:${port}`);
    expect(run.code).toBe(1);
    expect(run.elapsed).toBeLessThan(10_000);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^edgelock demo failed: .*did not answer/);
  });
});
