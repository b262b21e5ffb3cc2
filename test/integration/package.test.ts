/**
 * The published package, as a user gets it: packed with `npm pack`, installed into an empty
 * project with nothing else, then imported from ESM and CommonJS, and `npx edgelock gateway`
 * started and used by the real `@upstash/redis` client.
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisProcess, startRedisServer } from "../support/redis-server.js";
import { upstashClient } from "../support/upstash-client.js";

const run = promisify(execFile);
let dir: string;
let app: string;
let server: RedisProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgelock-package-"));
  app = join(dir, "app");
  await run("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: process.cwd() });
  const tarball = (await readdir(dir)).find((name) => name.endsWith(".tgz"));
  if (!tarball) throw new Error("npm pack produced no tarball");
  await run("mkdir", [app]);
  await writeFile(join(app, "package.json"), '{ "name": "app", "private": true }\n');
  const flags = ["--offline", "--no-audit", "--no-fund", "--silent"];
  await run("npm", ["install", join(dir, tarball), ...flags], { cwd: app });
  server = await startRedisServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("imports from ESM and CommonJS and takes a lock on the memory backend", async () => {
    const esm = `import { createLocker, LockError } from "edgelock";
      import { memoryAdapter } from "edgelock/memory";
      const lease = await createLocker({ adapter: memoryAdapter() }).tryAcquire("k", 1000);
      console.log(typeof LockError, lease.fence > 0);`;
    const cjs = `const { createLocker } = require("edgelock");
      const { memoryAdapter } = require("edgelock/memory");
      createLocker({ adapter: memoryAdapter() }).tryAcquire("k", 1000)
        .then((lease) => console.log(lease.fence > 0));`;
    const fromEsm = await run("node", ["--input-type=module", "-e", esm], { cwd: app });
    const fromCjs = await run("node", ["-e", cjs], { cwd: app });
    expect(fromEsm.stdout.trim()).toBe("function true");
    expect(fromCjs.stdout.trim()).toBe("true");
  });

  it("loads RedisLock's transports on demand from the installed package", async () => {
    const script = `import { RedisLock } from "edgelock";
      const lock = new RedisLock();
      lock.configure({ connection: { uri: "memory://package" } });
      await lock.open("pkg");
      console.log(await lock.tryAcquireLock("pkg", "k", 1000), await lock.tryAcquireLock("pkg", "k", 1000));
      await lock.close("pkg");`;
    const { stdout } = await run("node", ["--input-type=module", "-e", script], { cwd: app });
    expect(stdout.trim()).toBe("true false");
  });

  it("runs `npx edgelock gateway` from a clean install, for the real REST client", async () => {
    const gateway = spawn(
      "npx",
      ["--offline", "edgelock", "gateway", "--redis", server.url, "--port", "0"],
      {
        cwd: app,
        detached: true, // its own process group: npx, its shell and the gateway stop together
        env: { ...process.env, EDGELOCK_GATEWAY_TOKENS: "pkg-token" },
      },
    );
    const exited = new Promise((resolve) => gateway.once("exit", resolve));
    let url = "";
    try {
      url = await listeningUrl(gateway);
      const client = upstashClient(url, "pkg-token");
      expect(await client.set("package-test", "works")).toBe("OK");
      expect(await client.get("package-test")).toBe("works");
    } finally {
      if (gateway.pid) process.kill(-gateway.pid, "SIGTERM");
    }
    await exited;
    await expect(fetch(url, { method: "POST", body: "[]" })).rejects.toThrow(); // it stopped
  });
});

/** Resolves the first http:// URL the process prints (or rejects with what it printed). */
function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`no URL printed:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /http:\/\/[\w.:[\]]+/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("exit", () => reject(new Error(`gateway exited:\n${output}`)));
  });
}
