/**
 * No secret in anything edgelock reports over REST: every failure path of the upstash adapter
 * through the real gateway (401, 400 NOPERM for a read-only token, 413, a Redis that echoes the
 * command, 503, an unreachable or hanging endpoint, a non-JSON error page, failures under a held
 * lease), of `RedisLock` over `http://`, of the Hono middlewares, and of the gateway CLI's output
 * (Redis credentials in the URL). Every error, hook argument, HTTP response and console line is
 * searched for the lock tokens, REST tokens and Redis password, through the whole cause chain.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis as Upstash } from "@upstash/redis";
import { createLocker, LockError, type Locker, RedisLock } from "edgelock";
import { type RunningGateway, startGateway } from "edgelock/gateway";
import { idempotency, lock } from "edgelock/hono";
import { upstashAdapter, upstashTransport } from "edgelock/upstash";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpFaultProxy, startHttpFaultProxy } from "../support/http-fault-proxy.js";
import { freePort, type RedisProcess, startRedisServer } from "../support/redis-server.js";
import {
  captureOutput,
  describeNoSecret,
  expectNoSecret,
  freshKey,
  type RedactionScenario,
  TokenRecorder,
} from "../support/secrets.js";

const REST_TOKEN = "rest-Rw7cq-never-shown";
const READ_ONLY_TOKEN = "rest-Ro3kz-never-shown";
const WRONG_REST_TOKEN = "rest-wrong-K2p8v-never-shown";
const PASSWORD = "pw-Hn5wd-never-shown";

const recorder = new TokenRecorder();
const secrets = () => [REST_TOKEN, READ_ONLY_TOKEN, WRONG_REST_TOKEN, PASSWORD, ...recorder.tokens];
const output = captureOutput();

const root = fileURLToPath(new URL("../..", import.meta.url));

let main: RedisProcess;
/** A Redis with EVALSHA disabled: it answers "unknown command ... with args beginning with: ...". */
let echoing: RedisProcess;
/** The gateway in front of `main`, with a read-write and a read-only token. */
let rest: RunningGateway;
/** The same with a 64-byte body limit: every lock request is too large. */
let tiny: RunningGateway;
/** A gateway in front of `echoing`, with a 200 ms command timeout. */
let echoRest: RunningGateway;
let proxy: HttpFaultProxy;

beforeAll(async () => {
  [main, echoing] = await Promise.all([
    startRedisServer(),
    startRedisServer({ args: ["--rename-command", "EVALSHA", ""] }),
  ]);
  const tokens = [REST_TOKEN, { token: READ_ONLY_TOKEN, readOnly: true }];
  [rest, tiny, echoRest] = await Promise.all([
    startGateway({ redis: main.url, tokens, port: 0 }),
    startGateway({ redis: main.url, tokens, port: 0, maxBodyBytes: 64 }),
    startGateway({ redis: echoing.url, tokens, port: 0, commandTimeout: 200 }),
  ]);
  proxy = await startHttpFaultProxy(rest.url);
});

afterAll(async () => {
  output.restore();
  await proxy?.close();
  await Promise.all([rest?.close(), tiny?.close(), echoRest?.close()]);
  await Promise.all([main?.stop(), echoing?.stop()]);
});

/** A locker over the real client for `url` and `token`, recording its lock tokens. */
function lockerVia(url: string, token: string, requestTimeout = 1_000): Locker {
  const client = new Upstash({ url, token, retry: { retries: 0 }, enableTelemetry: false });
  const adapter = recorder.adapter(upstashAdapter(client, { requestTimeout }));
  return createLocker({ adapter, retries: 0 });
}

/** The rejection of `promise`, which must reject with a LockError of `code`. */
async function failure(promise: Promise<unknown>, code = "LOCK_UNAVAILABLE"): Promise<unknown> {
  const error = await promise.then(
    () => expect.unreachable("expected a rejection"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(LockError);
  expect(error).toMatchObject({ code });
  return error;
}

/** Everything a response shows: status, headers and body. */
async function shown(response: Response): Promise<string> {
  const headers: string[] = [];
  response.headers.forEach((value, name) => {
    headers.push(`${name}: ${value}`);
  });
  return [String(response.status), ...headers, await response.text()].join("\n");
}

const key = freshKey;

const scenarios: RedactionScenario[] = [
  [
    "upstash: wrong REST token (401)",
    true,
    async () => {
      const error = await failure(lockerVia(rest.url, WRONG_REST_TOKEN).tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/WRONGPASS/);
      return [error];
    },
  ],
  [
    "upstash: read-only REST token (400 NOPERM), for every operation",
    true,
    async () => {
      const locker = lockerVia(rest.url, READ_ONLY_TOKEN);
      const error = await failure(locker.tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/NOPERM/);
      return [error, await failure(locker.inspect(key(), "el1.a-token-to-compare-with-xyz"))];
    },
  ],
  [
    "upstash: request over the gateway's body limit (413)",
    true,
    async () => {
      const error = await failure(lockerVia(tiny.url, REST_TOKEN).tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/too large/);
      return [error];
    },
  ],
  [
    "upstash: Redis echoes the command through the gateway (400)",
    true,
    async () => {
      const error = await failure(lockerVia(echoRest.url, REST_TOKEN).tryAcquire(key(), 5_000));
      expect((error as Error).message).toMatch(/unknown command 'evalsha'/i);
      return [error];
    },
  ],
  [
    "upstash: Redis not answering behind the gateway (503)",
    true,
    async () => {
      echoing.pause();
      try {
        return [await failure(lockerVia(echoRest.url, REST_TOKEN).tryAcquire(key(), 5_000))];
      } finally {
        echoing.resume();
      }
    },
  ],
  [
    "upstash: endpoint unreachable",
    true,
    async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      return [await failure(lockerVia(url, REST_TOKEN).tryAcquire(key(), 5_000))];
    },
  ],
  [
    "upstash: request timeout",
    true,
    async () => {
      proxy.inject({ kind: "hang" }, 2);
      return [await failure(lockerVia(proxy.url, REST_TOKEN, 200).tryAcquire(key(), 5_000))];
    },
  ],
  [
    "upstash: an error page that is not JSON",
    true,
    async () => {
      proxy.inject({ kind: "respond", status: 502, body: "<html>Bad Gateway</html>" }, 2);
      return [await failure(lockerVia(proxy.url, REST_TOKEN).tryAcquire(key(), 5_000))];
    },
  ],
  [
    "upstash: extend, release and inspect failing under a held lease",
    true,
    async () => {
      const locker = lockerVia(proxy.url, REST_TOKEN);
      const name = key();
      const lease = await locker.tryAcquire(name, 5_000);
      if (!lease) throw new Error("the lock should have been free");
      const refusal = '{"error":"ERR something broke"}';
      proxy.inject({ kind: "respond", status: 400, body: refusal, contentType: "json" }, 3);
      const reported = [
        await failure(lease.extend()),
        await failure(lease.release()),
        await failure(locker.inspect(name, lease.token)),
      ];
      await lease.release();
      return reported;
    },
  ],
  [
    "RedisLock: http:// with a wrong token, in the URI and as credential.password",
    false,
    async () => {
      const reported: unknown[] = [];
      const { host } = new URL(rest.url);
      for (const config of [
        { connection: { uri: `http://:${WRONG_REST_TOKEN}@${host}` } },
        { connection: { uri: rest.url }, credential: { password: WRONG_REST_TOKEN } },
      ]) {
        const lock = new RedisLock({ transports: [recorder.transport(upstashTransport)] });
        lock.configure(config);
        reported.push(await failure(lock.open("trace")));
        reported.push(await new Promise((resolve) => lock.open("trace", resolve)));
      }
      return reported;
    },
  ],
  [
    "RedisLock: http:// with a read-only token opens, then cannot lock",
    true,
    async () => {
      const lock = new RedisLock({ transports: [recorder.transport(upstashTransport)] });
      lock.configure({
        connection: { uri: rest.url },
        credential: { password: READ_ONLY_TOKEN },
        options: { retries: 0 },
      });
      await lock.open("trace");
      try {
        const error = await failure(lock.tryAcquireLock("trace", key(), 5_000));
        const viaCallback = await new Promise((resolve) =>
          lock.acquireLock("trace", key(), 5_000, 100, resolve),
        );
        expect(viaCallback).toMatchObject({ code: "LOCK_UNAVAILABLE" });
        return [error, viaCallback];
      } finally {
        await lock.close("trace");
      }
    },
  ],
  [
    "Hono lock and idempotency middlewares: store echoing the command",
    true,
    async () => {
      const locker = lockerVia(echoRest.url, REST_TOKEN);
      const hooked: unknown[] = [];
      const app = new Hono();
      app.post("/plain", lock({ locker, key: "plain", ttl: 5_000 }), (c) => c.text("ran"));
      app.post(
        "/hooked",
        lock({
          locker,
          key: "hooked",
          ttl: 5_000,
          onUnavailable: (c, info) => {
            hooked.push(info);
            return c.text("unavailable", 503);
          },
        }),
        (c) => c.text("ran"),
      );
      const client = new Upstash({ url: echoRest.url, token: REST_TOKEN, retry: { retries: 0 } });
      const adapter = recorder.adapter(upstashAdapter(client));
      app.post("/once", idempotency({ adapter, allowGlobalKeys: true }), (c) => c.text("ran"));
      const responses = [
        await app.request("/plain", { method: "POST" }),
        await app.request("/hooked", { method: "POST" }),
        await app.request("/once", { method: "POST", headers: { "Idempotency-Key": key() } }),
      ];
      expect(responses.map((response) => response.status)).toEqual([503, 503, 503]);
      expect(hooked).toHaveLength(1);
      return [...(await Promise.all(responses.map(shown))), ...hooked];
    },
  ],
];

describeNoSecret("no secret in what edgelock reports over REST", scenarios, {
  recorder,
  output,
  secrets,
});

/** Runs `edgelock gateway` until it prints its URL (then stops it) or exits; returns its output. */
function cliOutput(args: string[]): Promise<string> {
  const child = spawn(
    `${root}node_modules/.bin/tsx`,
    [`${root}adapters/gateway/cli.ts`, "gateway", "--port", "0", ...args],
    { cwd: root, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" } },
  );
  let text = "";
  const collect = (chunk: Buffer) => {
    text += chunk.toString();
    if (/listening on/.test(text)) child.kill("SIGTERM");
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  return new Promise((resolve) => child.once("exit", () => resolve(text)));
}

describe("the gateway CLI's output", () => {
  it("never shows the Redis password (user info or ?password=) or a token", async () => {
    const credentials = `redis://:${PASSWORD}@127.0.0.1:${main.port}/?password=${PASSWORD}&db=0`;
    const tokens = ["--token", REST_TOKEN, "--read-only-token", READ_ONLY_TOKEN];
    const [started, malformed] = await Promise.all([
      cliOutput(["--redis", credentials, ...tokens]),
      cliOutput(["--redis", `redis://:${PASSWORD}@127.0.0.1:99999`, ...tokens]),
    ]);
    expect(started).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+ \(redis redis:\/\/:\*\*\*@/);
    expect(started).toMatch(/password=\*\*\*/);
    expect(malformed).toMatch(/cannot start/);
    expectNoSecret(`${started}\n${malformed}`, secrets(), "the CLI");
  });
});
